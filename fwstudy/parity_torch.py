"""PyTorch side of the parity gate; imported only inside a parity child (rule 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy import training
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
    logits = model(torch.as_tensor(inputs["x"]))
    loss = loss_fn(logits, torch.as_tensor(inputs["y"]))
    loss.backward()
    arrays: dict[str, np.ndarray] = {
        "logits": logits.detach().numpy().copy(),
        "loss": np.asarray(loss.item()),
    }
    arrays.update({f"weight:{n}": a for n, a in weights.items()})
    for name, param in model.named_parameters():
        arrays[f"grad:{name}"] = param.grad.numpy().copy()
    model.zero_grad(set_to_none=True)

    losses = []
    if "xs" in inputs:
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=training.LEARNING_RATE,
            betas=(training.ADAM_BETA_1, training.ADAM_BETA_2),
            eps=training.ADAM_EPSILON,
        )
        for x, y in zip(inputs["xs"], inputs["ys"], strict=True):
            optimizer.zero_grad(set_to_none=True)
            step_loss = loss_fn(model(torch.as_tensor(x)), torch.as_tensor(y))
            step_loss.backward()
            optimizer.step()
            losses.append(step_loss.item())
    arrays["losses"] = np.asarray(losses, dtype=np.float64)
    count = sum(p.numel() for p in model.parameters())
    return arrays, {"params": count, "version": torch.__version__}
