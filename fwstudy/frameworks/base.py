"""What both ``frameworks/<name>/trial.py`` modules implement, framework-free.

Each imports exactly one framework and runs in a child. Both expose ``train(config, spec) -> TrainResult``, ``infer(config, spec) -> InferResult`` and
``overhead(config, spec, blocks) -> dict`` with the same meaning on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fwstudy.measure.timing import StepSamples


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


@dataclass
class RetraceResult:
    """Per-shape step times over a changing-shape sequence and what the framework recompiled."""

    shape_times_s: list[float]
    traces: int
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)
    graph_breaks: int | None = None
    graphs: int | None = None
    gpu_peak_mb: float | None = None


def shape_sequence(config) -> list[tuple[int, int | None]]:
    lengths = config.length_sequence or (None,) * len(config.batch_sequence)
    return list(zip(config.batch_sequence, lengths, strict=True))


def shaped_params(params, length: int | None):
    return params if length is None else {**params, "length": length}


class TrialError(RuntimeError):
    """A trial that cannot run as asked (no GPU, an op a compiler rejects): a result, not a crash."""


def overhead_blocks(bare, step, steps: int, blocks: int) -> dict[str, float]:
    """Alternate blocks of the hand-written loop ``bare(n) -> seconds`` and of the runner's
    measured loop over ``step`` (same process, same model, same batches) so that drift hits
    both; overhead = median harness / median bare - 1."""
    import statistics
    import time

    from fwstudy.measure.timing import measure_steps

    def harness(n: int) -> float:
        start = time.perf_counter()
        measure_steps(step, 0, n - 1)  # the first call plus n - 1 timed steps: n steps, as bare
        return time.perf_counter() - start

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
