"""PyTorch twin of the adaptive-depth network: the loop is a plain Python ``while`` over
tensors, the "dynamic graph" way. Autograd records whatever iterations ran, so gradients flow
through a data-dependent number of them with nothing else to write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class AdaptiveNet(nn.Module):
    """Default ``nn.Linear`` initialisation, U(±1/sqrt(fan_in)); the Keras twin asks for the same
    distribution explicitly, so that both frameworks' own initial weights halt alike."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__()
        self.encode = nn.Linear(params["input_dim"], params["hidden"])
        self.block = nn.Linear(params["hidden"], params["hidden"], bias=False)
        self.head = nn.Linear(params["hidden"], params["classes"])
        self.rate = float(params["rate"])
        self.threshold = float(params["threshold"])
        self.max_steps = params["max_steps"]

    def iterate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The converged state and each sample's number of iterations."""
        inj = self.encode(x)
        z = torch.tanh(inj)
        active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        iterations = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        step = 0
        while step < self.max_steps and active.any():
            update = self.rate * (torch.tanh(self.block(z) + inj) - z)
            z = torch.where(active[:, None], z + update, z)
            iterations = iterations + active
            active = active & (update.pow(2).mean(dim=1).sqrt() > self.threshold)
            step += 1
        return z, iterations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.iterate(x)[0])


def build_model(params: Mapping[str, Any]) -> nn.Module:
    return AdaptiveNet(params)
