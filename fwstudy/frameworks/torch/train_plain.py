"""F9a API level "plain PyTorch loop": the training script a PyTorch user writes by hand.

Written as a user would, not as the study's harness does (no timers, no collectors), because F9a
measures its lines, complexity and API symbols (``fwstudy/usability/code_metrics.py``) and F12
times its cold start to the first step. ``STEP_PARTS`` names the training step for F9a."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fwstudy.measure.training import LEARNING_RATE

STEP_PARTS = ("train_step",)


def train_step(model, optimizer, loss_fn, x, y):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    losses = []
    for _ in range(epochs):
        for start in range(0, len(inputs), batch_size):
            batch = slice(start, start + batch_size)
            loss = train_step(model, optimizer, loss_fn, inputs[batch], labels[batch])
            losses.append(loss.item())
    return losses


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()
