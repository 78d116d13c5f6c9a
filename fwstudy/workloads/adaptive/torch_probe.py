"""PyTorch facts for the adaptive workload's parity report (``fwstudy parity --modes``); runs in
the torch parity child only.

* each sample's iterations from the parity weights, and from PyTorch's own seeded
  initialisation (what a trial of this framework times);
* whether ``torch.compile(fullgraph=True)`` can capture the model as one graph: the plain
  ``torch.compile`` of the ``compiled`` mode splits it at every data-dependent ``while`` test
  (its graph breaks are in that mode's info).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fwstudy.parity.child import error_text
from fwstudy.workloads.adaptive.torch_model import build_model


def probe(
    model: torch.nn.Module, params: Mapping[str, Any], job: Mapping[str, Any], inputs: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    x = torch.as_tensor(inputs["x"])
    with torch.no_grad():
        logits = model(x).numpy()
        arrays = {"logits": logits, "iterations": model.iterate(x)[1].numpy()}
        torch.manual_seed(job["seed"])
        arrays["own_init_iterations"] = build_model(params).iterate(x)[1].numpy()
    start = time.perf_counter()
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            out = torch.compile(model, fullgraph=True)(x).numpy()
        fullgraph = {"status": "ok", "forward_max_abs_diff": float(np.max(np.abs(out - logits)))}
    except Exception as exc:
        fullgraph = {"status": "failed", "error": error_text(exc)}
    fullgraph["wall_s"] = time.perf_counter() - start
    torch._dynamo.reset()
    return arrays, {"fullgraph": fullgraph}
