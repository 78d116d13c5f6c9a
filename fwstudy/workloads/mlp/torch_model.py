"""PyTorch twin of the MLP: Linear layers in the order of ``spec.widths``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from fwstudy.workloads.mlp.spec import widths


def build_model(params: Mapping[str, Any]) -> nn.Module:
    w = widths(params)
    modules: list[nn.Module] = []
    for i in range(len(w) - 1):
        modules.append(nn.Linear(w[i], w[i + 1]))
        if i < len(w) - 2:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)

