"""PyTorch twin of the MLP: Linear layers in the order of ``spec.widths``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from fwstudy.workloads.mlp.spec import widths


def build_model(params: Mapping[str, Any]) -> nn.Module:
    """Named modules (``dense0`` ...) so that state_dict keys match the Keras layer names."""
    w = widths(params)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(len(w) - 1):
        modules[f"dense{i}"] = nn.Linear(w[i], w[i + 1])
        if i < len(w) - 2:
            modules[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(modules)
