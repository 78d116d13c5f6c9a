"""Per-framework trial code. Each module imports exactly one framework and runs in a child.

Both expose ``train(config, spec) -> TrainResult``, ``infer(config, spec) -> InferResult`` and
``overhead(config, spec, blocks) -> dict`` with the same meaning on both sides.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fwstudy.timing import StepSamples


@dataclass
class TrainResult:
    samples: StepSamples
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)
    gpu_peak_mb: float | None = None


@dataclass
class InferResult:
    """Batch-1 latency calls and large-batch calls; first calls (trace/compile) timed apart."""

    latency: StepSamples
    throughput: StepSamples
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)
    gpu_peak_mb: float | None = None


class TrialError(RuntimeError):
    """A trial that cannot run as asked (no GPU, an op a compiler rejects): a result, not a crash."""


def load_backend(framework: str) -> ModuleType:
    return importlib.import_module(f"fwstudy.backends.{framework}_backend")


def overhead_blocks(bare, harness, steps: int, blocks: int) -> dict[str, float]:
    """Alternate blocks of the hand-written loop and of the harness loop (same process, same
    model, same batches) so that drift hits both; overhead = median harness / median bare - 1."""
    import statistics

    bare_times, harness_times = [], []
    for _ in range(blocks):
        bare_times.append(bare(steps) / steps)
        harness_times.append(harness(steps) / steps)
    bare_ms = statistics.median(bare_times) * 1e3
    harness_ms = statistics.median(harness_times) * 1e3
    return {
        "bare_step_ms": bare_ms,
        "harness_step_ms": harness_ms,
        "overhead_pct": (harness_ms / bare_ms - 1) * 100,
    }
