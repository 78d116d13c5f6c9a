"""The export paths of F6: which framework writes each artifact, which runtime runs it, and at
what precision. Names here are the profile's ``deployment_paths`` values.

A path belongs to one framework (the exporter's process imports that framework only, rule 1)
and one runtime (the serving process imports that runtime only: LiteRT's interpreter and
onnxruntime without TensorFlow or PyTorch, the SavedModel with TensorFlow, the PyTorch
artifacts with PyTorch, a ``.pte`` with ExecuTorch's runtime, which needs torch's tensors).
An int8 path names the fp32 path it is compared with, from the same trained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from fwstudy.errors import BadInput, choices


@dataclass(frozen=True)
class ExportPath:
    framework: str
    runtime: str
    precision: str  # "fp32" or "int8"
    fp32: str | None  # the fp32 path an int8 path is compared with
    what: str  # a few words for tables and figures


PATHS: dict[str, ExportPath] = {
    # TensorFlow, through Keras 3's own exporters (model.export).
    "savedmodel": ExportPath("tensorflow", "tensorflow", "fp32", None, "SavedModel"),
    "litert_fp32": ExportPath("tensorflow", "litert", "fp32", None, "LiteRT fp32"),
    "litert_dynamic_int8": ExportPath("tensorflow", "litert", "int8", "litert_fp32", "LiteRT dynamic-range int8"),
    "litert_int8": ExportPath("tensorflow", "litert", "int8", "litert_fp32", "LiteRT full-integer int8"),
    "onnx_tf": ExportPath("tensorflow", "onnxruntime", "fp32", None, "ONNX from TF (onnxruntime)"),
    "onnx_tf_int8": ExportPath("tensorflow", "onnxruntime", "int8", "onnx_tf", "ONNX from TF, quantize_dynamic int8"),
    # PyTorch.
    "torch_export": ExportPath("torch", "torch", "fp32", None, "torch.export (.pt2)"),
    "aoti": ExportPath("torch", "aoti", "fp32", None, "AOTInductor package"),
    "onnx_torch": ExportPath("torch", "onnxruntime", "fp32", None, "ONNX from PyTorch (onnxruntime)"),
    "onnx_torch_int8": ExportPath("torch", "onnxruntime", "int8", "onnx_torch", "ONNX from PyTorch, quantize_dynamic int8"),
    "pt2e_int8": ExportPath("torch", "inductor", "int8", "torch_export", "PT2E int8 (X86 quantizer), lowered by torch.compile"),
    "executorch": ExportPath("torch", "executorch", "fp32", None, "ExecuTorch .pte, XNNPACK"),
    "executorch_int8": ExportPath("torch", "executorch", "int8", "executorch", "ExecuTorch .pte, XNNPACK int8 (XNNPACKQuantizer)"),
}

# The module that loads and runs each runtime's artifacts (``prepare()``, ``load(runtime, path,
# threads)``): the framework-free runtimes here, the framework-bound ones on their side.
RUNTIME_MODULES: dict[str, str] = {
    "litert": "fwstudy.deployment.runtime_litert",
    "onnxruntime": "fwstudy.deployment.runtime_onnx",
    "tensorflow": "fwstudy.frameworks.tensorflow.export",
    "torch": "fwstudy.frameworks.torch.export",
    "aoti": "fwstudy.frameworks.torch.export",
    "inductor": "fwstudy.frameworks.torch.export",
    "executorch": "fwstudy.frameworks.torch.export",
}
# The exporting module of each framework (``export(job) -> dict``, ``train(job) -> dict``).
EXPORT_MODULES: dict[str, str] = {
    "tensorflow": "fwstudy.frameworks.tensorflow.export",
    "torch": "fwstudy.frameworks.torch.export",
}
FRAMEWORKS = tuple(EXPORT_MODULES)


def paths_of(framework: str) -> list[str]:
    return [name for name, path in PATHS.items() if path.framework == framework]


def check_path(name: object, framework: str | None = None) -> ExportPath:
    """The path ``name``; a one-line ``BadInput`` naming the valid choices for an unknown one,
    or for one that ``framework`` lacks (``onnx_tf`` asked of PyTorch)."""
    if not isinstance(name, str) or name not in PATHS:
        raise BadInput(f"unknown export path {name!r}; valid paths: {choices(PATHS)}")
    path = PATHS[name]
    if framework is not None:
        if framework not in EXPORT_MODULES:
            raise BadInput(f"unknown framework {framework!r}; valid frameworks: {choices(EXPORT_MODULES)}")
        if path.framework != framework:
            raise BadInput(
                f"framework {framework} has no export path {name!r}; its paths: {choices(paths_of(framework))}"
            )
    return path
