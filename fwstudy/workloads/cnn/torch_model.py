"""PyTorch twin of the CNN: NCHW convolutions fed by the spec's NHWC images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from fwstudy.workloads.cnn.spec import flat_features


class CNN(nn.Module):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__()
        k = params["kernel"]
        self.conv1 = nn.Conv2d(params["channels"], params["filters1"], k, padding="same")
        self.conv2 = nn.Conv2d(params["filters1"], params["filters2"], k, padding="same")
        self.dense1 = nn.Linear(flat_features(params), params["dense"])
        self.dense2 = nn.Linear(params["dense"], params["classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The data is channels-last for both twins (spec docstring); PyTorch convolves NCHW.
        x = x.permute(0, 3, 1, 2)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)  # (C, H, W) order: transfer.flat_dense_* reorders for Keras
        return self.dense2(F.relu(self.dense1(x)))


def build_model(params: Mapping[str, Any]) -> nn.Module:
    return CNN(params)
