"""PyTorch twin of the transformer: stock ``nn.TransformerEncoderLayer`` blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fwstudy.workloads.transformer.spec import LAYER_NORM_EPSILON


class Transformer(nn.Module):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__()
        d = params["d_model"]
        self.embed = nn.Embedding(params["vocab"], d)
        self.positions = nn.Parameter(torch.empty(params["length"], d))
        nn.init.normal_(self.positions, std=0.02)
        # A ModuleList rather than nn.TransformerEncoder: the latter's nested-tensor fast path
        # only applies to padded inference, and the plain stack keeps state_dict keys simple.
        self.encoder = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d,
                params["heads"],
                params["ff"],
                dropout=0.0,
                activation="relu",
                layer_norm_eps=LAYER_NORM_EPSILON,
                batch_first=True,
                norm_first=False,
            )
            for _ in range(params["layers"])
        )
        self.head = nn.Linear(d, params["classes"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]  # shorter sequences: a prefix
        for layer in self.encoder:
            x = layer(x)
        return self.head(x.mean(dim=1))


def build_model(params: Mapping[str, Any]) -> nn.Module:
    return Transformer(params)
