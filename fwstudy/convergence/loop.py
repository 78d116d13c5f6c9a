"""The training loop of F8, once for both frameworks: each side passes its own step and its
own evaluation, so the clock, the per-step record and the per-epoch record are the same code
on both sides (no framework here; the steps are framework calls).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any


def train_epochs(
    batches: Iterable[tuple[Any, Any]],
    step: Callable[[Any, Any], float],
    evaluate: Callable[[], tuple[float, float]],
    steps_per_epoch: int,
) -> tuple[dict[str, list], dict[str, list]]:
    """Run ``step(x, y) -> loss`` over ``batches`` and ``evaluate() -> (accuracy, loss)`` on the
    test split after every epoch. The clock covers the steps only (the first call's trace or
    compile included: a user waits for them), never evaluation. Returns the per-step record
    (step, epoch, loss, train_s) and the per-epoch one (epoch, step, test_accuracy,
    test_loss, train_s), as columns."""
    steps: dict[str, list] = {"step": [], "epoch": [], "loss": [], "train_s": []}
    epochs: dict[str, list] = {"epoch": [], "step": [], "test_accuracy": [], "test_loss": [], "train_s": []}
    clock = 0.0
    for n, (x, y) in enumerate(batches, 1):
        start = time.perf_counter()
        loss = step(x, y)
        clock += time.perf_counter() - start
        epoch = (n - 1) // steps_per_epoch + 1
        for name, value in (("step", n), ("epoch", epoch), ("loss", loss), ("train_s", clock)):
            steps[name].append(value)
        if n % steps_per_epoch == 0:
            accuracy, test_loss = evaluate()
            for name, value in (("epoch", epoch), ("step", n), ("test_accuracy", accuracy),
                                ("test_loss", test_loss), ("train_s", clock)):
                epochs[name].append(value)
    return steps, epochs
