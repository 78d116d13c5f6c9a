"""F9c, PyTorch side: the straight-through clamp as a ``torch.autograd.Function``, its network,
the arrays of the parity check and the cost of a training step in each mode
(``fwstudy/usability/custom_gradient.py`` says what and why). ``LAYER_PARTS`` names the
custom-gradient code for F9a's metrics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy.usability.custom_gradient import WIDTHS, reference_batch, reference_weights

LAYER_PARTS = ("StraightThroughClamp",)


class StraightThroughClamp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Net(nn.Module):
    def __init__(self, variant: str):
        super().__init__()
        self.act = StraightThroughClamp.apply if variant == "custom" else nn.functional.hardtanh
        for i, (fan_in, fan_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
            self.add_module(f"dense{i}", nn.Linear(fan_in, fan_out))

    def forward(self, x):
        h = self.act(self.dense0(x))
        h = self.act(self.dense1(h))
        return self.dense2(h)


def built(variant: str, dtype: torch.dtype) -> Net:
    model = Net(variant).to(dtype)
    state = {k: torch.from_numpy(v).to(dtype) for k, v in reference_weights().items()}
    model.load_state_dict(state)
    return model


def parity_arrays() -> dict[str, np.ndarray]:
    """Logits (custom variant) and every weight's gradient (both variants), in both precisions."""
    x, y = reference_batch()
    arrays = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        for variant in ("custom", "builtin"):
            model = built(variant, dtype)
            logits = model(torch.from_numpy(x).to(dtype))
            nn.functional.cross_entropy(logits, torch.from_numpy(y)).backward()
            if variant == "custom":
                arrays[f"{name}:logits"] = logits.detach().numpy()
            for key, param in model.named_parameters():
                arrays[f"{name}:{variant}:grad:{key}"] = param.grad.numpy()
    return arrays


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``warmup + steps`` steps in ``mode``; the first call is timed on its own."""
    from fwstudy.frameworks.torch.trial import compile_evidence, reset_compile_counters

    torch.manual_seed(0)
    result: dict[str, Any] = {}
    if job.get("arrays"):
        np.savez(job["arrays"], **parity_arrays())
    model = built(job["variant"], torch.float32)
    forward = model
    if job["mode"] == "compiled":
        reset_compile_counters()
        forward = torch.compile(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = reference_batch()
    x, y = torch.from_numpy(xs).float(), torch.from_numpy(ys)

    def step() -> float:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    begin = time.perf_counter()
    step()
    result["first_call_s"] = time.perf_counter() - begin
    for _ in range(job["warmup"]):
        step()
    times = []
    for _ in range(job["steps"]):
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    result["step_ms_median"] = 1e3 * float(np.median(times))
    result["step_ms"] = [1e3 * t for t in times]
    if job["mode"] == "compiled":
        evidence = compile_evidence()
        result.update(graphs=evidence["graphs"], graph_breaks=evidence["graph_breaks"],
                      compiles=evidence["compiles"])
    return result
