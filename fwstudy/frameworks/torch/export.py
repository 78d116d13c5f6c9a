"""PyTorch side of F6: train the workload on its real data, export it along one path, and load
and run the PyTorch-bound artifacts (``torch.export``, AOTInductor, PT2E int8 lowered by
``torch.compile``, ExecuTorch). Imported only inside an ``export`` child (rule 1).

Training uses the library's training code (``convergence.train``, the matched arm: the study's
Adam constants); its weights are the one set every artifact of both frameworks starts from
(the TensorFlow side receives them through the workload's weight map), so an int8 artifact and
its fp32 counterpart differ by quantization alone.

Every artifact keeps a dynamic batch (``torch.export.Dim``, up to ``max_batch``): batch-1
latency and large-batch throughput are read from one artifact, as on the TensorFlow side.
The int8 paths calibrate on ``x_calib``, the same training samples LiteRT's full-integer
converter is given as its representative data set (rule 10).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from fwstudy.frameworks.torch import convergence
from fwstudy.workloads import get_workload


def _threads(threads: int) -> None:
    torch.set_num_threads(threads)


def _params(job: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    spec = get_workload(job["workload"])
    return spec, spec.resolve_params(dict(spec.dataset_params))


def train(job: dict[str, Any]) -> dict[str, Any]:
    """Train on the workload's real data (digits for mlp and cnn); write the weights (PyTorch
    layout) and the inputs every later process reads: the held-out split, one sample, the large
    batch and the calibration samples."""
    _threads(int(job["threads"]))
    spec, params = _params(job)
    data = spec.dataset(params)
    batch = spec.default_batch_size
    run = SimpleNamespace(threads=int(job["threads"]), arm="matched", mode="eager", epochs=int(job["epochs"]),
                          batch_size=batch, seed=int(job["seed"]))
    steps = math.ceil(len(data.y_train) / batch)
    result = convergence.train(run, spec, params, data, None, steps)
    np.savez(job["weights"], **result["weights"])
    large = np.arange(int(job["large_batch"])) % len(data.x_train)
    np.savez(job["inputs"], x_test=data.x_test, y_test=data.y_test, x_one=data.x_test[:1],
             x_large=data.x_train[large], x_calib=data.x_train[: int(job["calibration"])])
    return {"test_accuracy": result["epochs"]["test_accuracy"][-1], "train_s": result["steps"]["train_s"][-1],
            "epochs": run.epochs, "dataset": data.name, "params": result["info"]["params"],
            "torch_version": torch.__version__}


def eager_model(job: dict[str, Any]) -> torch.nn.Module:
    spec, params = _params(job)
    weights = dict(np.load(job["weights"]))
    return convergence.build(spec, params, 0, weights).eval()


def _dynamic(example: torch.Tensor, max_batch: int) -> tuple[dict[int, Any]]:
    return ({0: torch.export.Dim("batch", min=1, max=max_batch)},)


def _pt2e(model: torch.nn.Module, example: torch.Tensor, calib: torch.Tensor, dynamic, quantizer):
    """Quantize by PT2E (torchao): observers inserted by ``quantizer``, calibrated, converted
    to quantize/dequantize pairs around the float ops, then exported again."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(model, (example,), dynamic_shapes=dynamic).module()
    explicit_same_padding(graph)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        prepared(calib)
    converted = convert_pt2e(prepared)
    drop_unused_parameters(converted)
    return torch.export.export(converted, (example,), dynamic_shapes=dynamic)


def explicit_same_padding(module: torch.fx.GraphModule) -> int:
    """Rewrite ``aten.conv2d.padding`` (a convolution with ``padding="same"`` or ``"valid"``, as
    the cnn twin writes it) into ``aten.conv2d.default`` with the equivalent explicit padding:
    the PT2E quantizers annotate only the latter ("conv2d is not an aten conv2d operator"), so
    without this the convolutions would stay float. Same function: stride 1 and an even
    ``dilation * (kernel - 1)`` pad symmetrically; anything else is left as it is."""
    aten = torch.ops.aten
    rewritten = 0
    for node in module.graph.nodes:
        if node.op != "call_function" or node.target != aten.conv2d.padding:
            continue
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        defaults = {"bias": None, "stride": [1, 1], "padding": "valid", "dilation": [1, 1], "groups": 1}
        values = {**defaults, **dict(zip(names, node.args, strict=False)), **node.kwargs}
        kernel = values["weight"].meta["val"].shape[2:]
        stride, dilation = list(values["stride"]), list(values["dilation"])
        if values["padding"] == "valid":
            padding = [0] * len(kernel)
        elif all(s == 1 for s in stride) and all(d * (k - 1) % 2 == 0 for d, k in zip(dilation, kernel, strict=True)):
            padding = [d * (k - 1) // 2 for d, k in zip(dilation, kernel, strict=True)]
        else:
            continue
        node.target = aten.conv2d.default
        node.args = (values["input"], values["weight"], values["bias"], stride, padding, dilation, values["groups"])
        node.kwargs = {}
        rewritten += 1
    module.recompile()
    return rewritten


def drop_unused_parameters(module: torch.fx.GraphModule) -> list[str]:
    """Remove the parameters the converted graph no longer reads: convert_pt2e folds each
    quantized weight into an int8 constant but leaves the float32 original registered, and the
    re-export would save both (an int8 artifact larger than its fp32 counterpart)."""
    used = {node.target for node in module.graph.nodes if node.op == "get_attr"}
    dropped = []
    for name, _ in list(module.named_parameters()):
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(module.get_submodule(owner) if owner else module, attr)
            dropped.append(name)
    return dropped


def _x86_quantizer():
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    return quantizer


def _xnnpack_quantizer():
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config())
    return quantizer


def _executorch(program, target: Path) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    target.write_bytes(lowered.buffer)


def export(job: dict[str, Any], model: torch.nn.Module, inputs: dict[str, np.ndarray]) -> tuple[Path, float]:
    """Write the artifact of ``job["path"]`` into ``job["artifact_dir"]``; (its file, seconds
    the export itself took: tracing, lowering, compiling, quantizing, writing)."""
    _threads(int(job["threads"]))
    folder = Path(job["artifact_dir"])
    name = job["path"]
    example = torch.from_numpy(inputs["x_large"][: min(8, len(inputs["x_large"]))])
    calib = torch.from_numpy(inputs["x_calib"])
    dynamic = _dynamic(example, int(job["max_batch"]))
    start = time.perf_counter()
    if name == "torch_export":
        target = folder / "model.pt2"
        torch.export.save(torch.export.export(model, (example,), dynamic_shapes=dynamic), target)
    elif name == "aoti":
        target = folder / "model_aoti.pt2"
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic)
        torch._inductor.aoti_compile_and_package(program, package_path=str(target))
    elif name in ("onnx_torch", "onnx_torch_int8"):
        from fwstudy.deployment import runtime_onnx

        target = folder / "model.onnx"
        fp32 = target if name == "onnx_torch" else folder / "model_fp32.onnx"
        torch.onnx.export(model, (example,), str(fp32), dynamo=True, dynamic_shapes=dynamic,
                          external_data=False, input_names=["x"], output_names=["logits"])
        if name == "onnx_torch_int8":
            runtime_onnx.quantize(fp32, target)
            fp32.unlink()
    elif name == "pt2e_int8":
        target = folder / "model_pt2e_int8.pt2"
        torch.export.save(_pt2e(model, example, calib, dynamic, _x86_quantizer()), target)
    elif name.startswith("executorch"):
        # XNNPACK sizes some of its buffers from the traced example, not from the batch's upper
        # bound: traced at batch 8, the cnn's .pte refuses batches above 8 (error 0x10 in
        # set_inputs). Tracing at the largest batch makes the bound the one that holds.
        widest = torch.from_numpy(np.resize(inputs["x_large"], (int(job["max_batch"]), *example.shape[1:])))
        if name == "executorch":
            target = folder / "model.pte"
            _executorch(torch.export.export(model, (widest,), dynamic_shapes=dynamic), target)
        else:
            target = folder / "model_int8.pte"
            _executorch(_pt2e(model, widest, calib, dynamic, _xnnpack_quantizer()), target)
    else:
        raise ValueError(f"PyTorch has no export path {name!r}")
    return target, time.perf_counter() - start


def reference(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# --- serving the PyTorch-bound artifacts -------------------------------------------------------


def prepare(runtime: str) -> None:
    """Import what the runtime needs before loading (part of the cold start): ExecuTorch's
    runtime; inductor for AOTInductor's loader and PT2E's compile; for PT2E also torchao, which registers the ``quantized_decomposed`` quantize and
    dequantize ops the saved program calls (without it the file does not deserialize)."""
    if runtime == "executorch":
        import executorch.runtime  # noqa: F401
    elif runtime == "inductor":
        import torch._inductor  # noqa: F401
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    elif runtime == "aoti":
        import torch._inductor  # noqa: F401  (aoti_load_package's home: a runtime import, not loading)


def load(runtime: str, path: str, threads: int):
    """A ``predict(x: ndarray) -> ndarray`` for the artifact at ``path``. PT2E's int8 program
    is lowered by ``torch.compile`` with inductor's freezing on: only then do its quantize/
    dequantize pairs become int8 kernels (oneDNN), and the first call pays the compile."""
    _threads(threads)
    if runtime == "torch":
        module = torch.export.load(path).module()
    elif runtime == "aoti":
        module = torch._inductor.aoti_load_package(path)
    elif runtime == "inductor":
        from torch._inductor import config

        config.freezing = True
        # Static shapes: one compile per batch size (the first call of each is untimed). With
        # automatic dynamic shapes the recompile for a second batch size emitted stride checks
        # its own quantized convolutions fail (cnn: "expected ... stride 1==64").
        module = torch.compile(torch.export.load(path).module(), dynamic=False)
    elif runtime == "executorch":
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(Path(path)).load_method("forward")

        def predict_pte(x: np.ndarray) -> np.ndarray:
            return method.execute((torch.from_numpy(x),))[0].numpy()

        return predict_pte
    else:
        raise ValueError(f"no PyTorch runtime {runtime!r}")

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return predict


# --- F7: the PyTorch twin from seeded weights, and its ONNX file --------------------------------


def interop(job: dict[str, Any]) -> dict[str, Any]:
    """Build the twin at the workload's default shape with PyTorch's seeded initialization (the
    parity gate's source of weights), write those weights (PyTorch layout) for the TensorFlow
    side, the eager logits on the shared inputs, and the ONNX file of ``torch.onnx.export``
    (the dynamo exporter)."""
    _threads(int(job["threads"]))
    spec = get_workload(job["workload"])
    params = spec.resolve_params({})
    torch.manual_seed(int(job["seed"]))
    model = spec.implementation("torch").build_model(params).eval()
    x = np.load(job["inputs"])["x"]
    np.savez(job["weights"], **{n: t.detach().numpy() for n, t in model.state_dict().items()})
    logits = reference(model, x)
    start = time.perf_counter()
    torch.onnx.export(model, (torch.from_numpy(x),), job["onnx"], dynamo=True, external_data=False,
                      input_names=["x"], output_names=["logits"])
    return {"logits": logits.tolist(), "onnx_export_s": time.perf_counter() - start,
            "torch_version": torch.__version__}
