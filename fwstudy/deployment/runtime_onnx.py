"""onnxruntime: F6's runtime for both frameworks' ONNX files and their int8 versions, and F7's
common ground. Framework-free (onnxruntime and onnx import neither TensorFlow nor PyTorch), so
an ONNX artifact is served in a process that holds no framework at all.

``quantize`` is onnxruntime's ``quantize_dynamic`` (int8 weights, activations quantized per call
from their observed range): the same recipe applied to both exporters' files, so the two int8
rows differ only by the graph each exporter wrote (rule 10).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np


def prepare(runtime: str) -> None:
    import onnxruntime  # noqa: F401  (the runtime's import is part of its cold start)


def session(path: str | Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def load(runtime: str, path: str, threads: int):
    run = session(path, threads)
    name = run.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return run.run(None, {name: x})[0]

    return predict


def quantize(source: str | Path, target: str | Path) -> None:
    """int8 weights by ``quantize_dynamic`` (QInt8), written to ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def graph_stats(path: str | Path) -> dict[str, Any]:
    """What an exporter wrote: the default-domain opset, node count, op types (with counts) and
    the file's size. Nodes of nested graphs (an LSTM's loop body) are counted too."""
    import onnx

    model = onnx.load(str(path))
    counts: Counter[str] = Counter()

    def walk(graph) -> None:
        for node in graph.node:
            counts[node.op_type] += 1
            for attribute in node.attribute:
                if attribute.g is not None and len(attribute.g.node):
                    walk(attribute.g)
                for sub in attribute.graphs:
                    walk(sub)

    walk(model.graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "nodes": int(sum(counts.values())), "op_types": dict(sorted(counts.items())),
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "size_bytes": Path(path).stat().st_size}
