"""F6 (deployment and edge) and F7 (interoperability), framework-free.

``catalog`` names the export paths and the runtime each artifact runs in; ``child`` is the job
kind ``export`` (train, export, serve: one path and one framework or runtime per process) and
``interop`` (F7); ``serve`` times an artifact in its own runtime; ``runtime_onnx`` and
``runtime_litert`` are the two framework-free runtimes (onnxruntime, LiteRT's interpreter);
``runs`` is the parent: jobs from a profile, children, the results store. The framework halves
live in ``frameworks/<name>/export.py``.
"""
