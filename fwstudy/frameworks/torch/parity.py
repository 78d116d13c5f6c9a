"""PyTorch side of the parity gate; imported only inside a parity child (rule 1).

Each precision of ``job["dtypes"]`` (float32, float64) runs the same batch from the same weights:
the float32 model as built (or loaded), then a fresh model loaded with those weights and cast
with ``Module.double()`` (parameters and buffers), fed float64 features; integer token ids stay
integer. The Adam steps and the execution modes run in float32 only, as trials do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy.config.trial import modes_for
from fwstudy.errors import error_text
from fwstudy.frameworks.torch.trial import (
    compile_evidence,
    compiled_optimizer_step,
    make_optimizer,
    reset_compile_counters,
)
from fwstudy.parity.modes import mode_key, optional_module
from fwstudy.workloads.spec import WorkloadSpec
from fwstudy.workloads.transfer import check_shapes


def compute(
    job: Mapping[str, Any], spec: WorkloadSpec, params: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Initial weights, logits, loss and gradients from one batch, then the Adam losses."""
    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    model = spec.implementation("torch").build_model(params)
    model.train()
    shapes = spec.weight_map().torch_shapes(params)
    if job["weights"]:
        with np.load(job["weights"]) as npz:
            given = {name: npz[name] for name in npz.files}
        check_shapes(given, shapes, "torch")
        model.load_state_dict({n: torch.from_numpy(a) for n, a in given.items()}, strict=True)
    weights = {n: t.detach().cpu().numpy().copy() for n, t in model.state_dict().items()}
    check_shapes(weights, shapes, "torch")
    if job.get("break"):
        raise ValueError("the parity gate breaks only the TensorFlow twin")

    with np.load(job["inputs"]) as npz:
        inputs = {name: npz[name] for name in npz.files}
    loss_fn = nn.CrossEntropyLoss()
    arrays: dict[str, np.ndarray] = {f"weight:{n}": a for n, a in weights.items()}
    for dtype in job.get("dtypes", ["float32"]):
        if dtype == "float32":
            twin = model
        else:
            twin = spec.implementation("torch").build_model(params)
            twin.load_state_dict({n: torch.from_numpy(a) for n, a in weights.items()}, strict=True)
            twin.to(getattr(torch, dtype))
            twin.train()
        arrays.update({f"{dtype}:{n}": a for n, a in forward_backward(twin, inputs, dtype).items()})

    losses = []
    if "xs" in inputs:
        optimizer = make_optimizer(model)
        for x, y in zip(inputs["xs"], inputs["ys"], strict=True):
            optimizer.zero_grad(set_to_none=True)
            step_loss = loss_fn(model(torch.as_tensor(x)), torch.as_tensor(y))
            step_loss.backward()
            optimizer.step()
            losses.append(step_loss.item())
    arrays["losses"] = np.asarray(losses, dtype=np.float64)
    count = sum(p.numel() for p in model.parameters())
    info: dict[str, Any] = {"params": count, "version": torch.__version__}
    if job.get("modes"):
        initial = {n: torch.from_numpy(a) for n, a in weights.items()}
        x, y = torch.as_tensor(inputs["x"]), torch.as_tensor(inputs["y"])
        info["modes"] = {}
        for mode in modes_for("torch", spec.name):
            model.load_state_dict(initial, strict=True)
            model.zero_grad(set_to_none=True)
            info["modes"][mode] = run_mode(model, mode, x, y, arrays)
        model.load_state_dict(initial, strict=True)
        probe = optional_module(f"{spec.package}.torch_probe")
        if probe is not None:
            probe_arrays, info["probe"] = probe.probe(model, params, job, inputs)
            arrays.update({f"probe:{n}": a for n, a in probe_arrays.items()})
    return arrays, info


def as_dtype(array: np.ndarray, dtype: str) -> torch.Tensor:
    """Features in ``dtype``; integer token ids and labels stay as they are."""
    array = np.asarray(array)
    return torch.as_tensor(array.astype(dtype) if np.issubdtype(array.dtype, np.floating) else array)


def forward_backward(model: nn.Module, inputs: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Logits, loss and every parameter's gradient of one batch, computed in ``dtype``; refuses a
    model that has a parameter or buffer of another floating dtype (it would not be a
    ``dtype`` run)."""
    wanted = getattr(torch, dtype)
    stray = [n for n, t in model.state_dict().items() if t.is_floating_point() and t.dtype != wanted]
    if stray:
        raise ValueError(f"{dtype} run has tensors of another dtype: {stray[:3]}")
    model.zero_grad(set_to_none=True)
    logits = model(as_dtype(inputs["x"], dtype))
    loss = nn.CrossEntropyLoss()(logits, torch.as_tensor(inputs["y"]))
    loss.backward()
    if logits.dtype != wanted or loss.dtype != wanted:
        raise ValueError(f"{dtype} run computed logits in {logits.dtype}, loss in {loss.dtype}")
    out = {"logits": logits.detach().numpy().copy(), "loss": np.asarray(loss.item(), dtype=dtype)}
    for name, param in model.named_parameters():
        out[f"grad:{name}"] = param.grad.numpy().copy()
    model.zero_grad(set_to_none=True)
    return out


def run_mode(
    model: nn.Module, mode: str, x: torch.Tensor, y: torch.Tensor, arrays: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One execution mode as ``frameworks/torch/trial.py`` trains in it: eager, or compiled =
    the model (forward and backward) through ``torch.compile`` and, when dynamo captured the
    model, Adam's step through a compiled function (``compiled_optimizer_step``); the loss
    stays eager. ``step_loss`` thus checks compiled Adam against eager Adam. Fills ``arrays``
    with the mode's outputs (``parity/modes.py``); a mode that raises is a result with its
    reason."""
    start = time.perf_counter()
    info: dict[str, Any] = {}
    try:
        if mode == "compiled":
            torch._dynamo.reset()
            reset_compile_counters()
            forward = torch.compile(model)
        else:
            forward = model
        loss_fn = nn.CrossEntropyLoss()
        logits = forward(x)
        loss = loss_fn(logits, y)
        loss.backward()
        outputs = {"logits": logits.detach().numpy().copy(), "loss": np.asarray(loss.item())}
        for name, param in model.named_parameters():
            outputs[f"grad:{name}"] = param.grad.numpy().copy()
        optimizer = make_optimizer(model)
        captured = mode == "compiled" and compile_evidence()["captured"]
        model_graphs = compile_evidence()["graphs"] if mode == "compiled" else 0
        (compiled_optimizer_step(optimizer) if captured else optimizer.step)()
        optimizer.zero_grad(set_to_none=True)
        outputs["step_loss"] = np.asarray(loss_fn(forward(x), y).item())
        if mode == "compiled":
            from torch._dynamo.utils import counters

            evidence = compile_evidence()
            info = {
                "graphs": evidence["graphs"],
                "model_graphs": model_graphs,
                "optimizer_graphs": evidence["graphs"] - model_graphs,
                "optimizer_compiled": bool(captured),
                # Dynamo gives up on a whole frame it can't trace (an nn.LSTM, say) and runs it
                # eagerly: the mode then agrees trivially, and its timings are eager's.
                "fell_back_to_eager": not evidence["captured"],
                "graph_breaks": evidence["graph_breaks"],
                "graph_break_reasons": sorted({r.strip().splitlines()[0] for r in counters["graph_break"]})[:3],
            }
    except Exception as exc:  # a mode that can't run this workload is a result
        return {"status": "failed", "error": error_text(exc), "wall_s": time.perf_counter() - start}
    arrays.update({mode_key(mode, n): a for n, a in outputs.items()})
    return {"status": "ok", "error": None, "wall_s": time.perf_counter() - start, "info": info}
