"""F9b, PyTorch side: a small network with the planted bugs of ``usability.catalog.BUGS``.

Each bug's cause carries a ``# SITE: <bug>`` comment: ``usability.planted`` reads the line
numbers from this file, so the check "does the error name the line of the bug" follows the
code. The TensorFlow twin (``frameworks/tensorflow/debugging.py``) plants the same bugs at the
same places of the same network. Runs in a child that imports PyTorch only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy.usability.planted import PRINT_MARK, run_planted

INPUTS, HIDDEN, CLASSES, BATCH = 16, 32, 4, 8


class Net(nn.Module):
    def __init__(self, bug: str):
        super().__init__()
        self.bug = bug
        self.dense0 = nn.Linear(INPUTS, HIDDEN)
        self.dense1 = nn.Linear(HIDDEN + (1 if bug == "shape" else 0), HIDDEN)
        self.dense2 = nn.Linear(HIDDEN, CLASSES)
        self.scale = torch.from_numpy(np.ones(HIDDEN))  # NumPy's default dtype: float64

    def forward(self, x):
        h = torch.relu(self.dense0(x))
        if self.bug == "dtype":
            h = h * self.scale  # SITE: dtype
        if self.bug in ("nan", "nan_checked"):
            h = torch.sqrt(h - 1.0)  # SITE: nan nan_checked
        if self.bug == "print_hook":
            print(PRINT_MARK, tuple(h.shape))  # SITE: print_hook
            breakpoint()
        h = torch.relu(self.dense1(h))  # SITE: shape
        return self.dense2(h)


def concrete(value: Any) -> bool:
    """Whether a debugger would see numbers: a real tensor whose values can be read."""
    try:
        np.asarray(value.detach().cpu().numpy())
    except Exception:
        return False
    return True


def run(job: dict[str, Any]) -> dict[str, Any]:
    bug, mode, steps = job["bug"], job["mode"], job["steps"]
    from fwstudy.frameworks.torch.trial import compile_evidence, reset_compile_counters

    torch.manual_seed(0)
    if bug == "nan_checked":
        torch.autograd.set_detect_anomaly(True)
    model = Net(bug)
    forward = model
    if mode == "compiled":
        reset_compile_counters()
        forward = torch.compile(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.standard_normal((BATCH, INPUTS), dtype=np.float32))
    y = torch.from_numpy(gen.integers(0, CLASSES, size=BATCH))

    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    result = run_planted(bug, step, (x, y), steps, __file__, concrete)
    if mode == "compiled":
        evidence = compile_evidence()
        result.update(graphs=evidence["graphs"], graph_breaks=evidence["graph_breaks"])
    return result
