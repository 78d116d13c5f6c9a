"""PyTorch twin of the LSTM classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class SingleBiasLSTM(nn.LSTM):
    """``nn.LSTM`` (same fused kernels) whose ``bias_hh_l0`` is a constant zero buffer.

    Keras' LSTM has one bias per gate; ``nn.LSTM`` adds ``bias_ih + bias_hh``. Turning the
    second into a buffer leaves ``bias_ih_l0`` as the single trainable bias, makes the parameter
    count equal to Keras' and keeps Adam's step on the bias the same size (spec docstring).
    The buffer stays in the state_dict so that a stock ``nn.LSTM`` checkpoint still loads.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, batch_first=True)
        del self.bias_hh_l0
        self.register_buffer("bias_hh_l0", torch.zeros(4 * hidden_size))
        self._init_flat_weights()  # nn.LSTM passes this list to its kernel: pick up the buffer


class LSTMClassifier(nn.Module):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__()
        self.embed = nn.Embedding(params["vocab"], params["embed"])
        self.lstm = SingleBiasLSTM(params["embed"], params["hidden"])
        self.head = nn.Linear(params["hidden"], params["classes"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embed(tokens))
        return self.head(h[-1])


def build_model(params: Mapping[str, Any]) -> nn.Module:
    return LSTMClassifier(params)
