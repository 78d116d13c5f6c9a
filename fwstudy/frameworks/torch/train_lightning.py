"""F9a API level "PyTorch high-level trainer": PyTorch Lightning's ``Trainer.fit``.

The user writes a ``LightningModule`` (its ``training_step`` and ``configure_optimizers`` are
the training step: ``STEP_PARTS``) and hands data to the Trainer, which owns the loop. The
Trainer is told to write nothing (no logger, checkpoint, progress bar or summary, a temporary
root folder): a study run must leave no files behind, and those lines count in F9a as a user
who wants the same would write them."""

from __future__ import annotations

import tempfile

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fwstudy.measure.training import LEARNING_RATE

STEP_PARTS = ("Classifier.training_step", "Classifier.configure_optimizers")


class Classifier(L.LightningModule):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.loss_fn = nn.CrossEntropyLoss()
        self.losses: list[float] = []

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.model(x), y)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LEARNING_RATE)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> list[float]:
    data = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch_size)
    classifier = Classifier(model)
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_epochs=epochs, accelerator="cpu", default_root_dir=root, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )
        trainer.fit(classifier, data)
    return classifier.losses


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()
