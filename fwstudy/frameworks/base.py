"""The interface every ``frameworks/<name>/`` package implements, framework-free.

Four small protocols, one per part (``fwstudy.frameworks.PARTS``): a part is a module, loaded
by ``fwstudy.frameworks.load(name, part)`` inside a child that imports only that framework.
Writing them down once is what keeps the two sides twins: the harness calls the same
functions with the same meaning on both, and ``tests/test_frameworks_base.py`` checks (by
reading the source, without importing a framework) that every package defines them all.
The result types below are what a trial part returns to ``harness/trial_child.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fwstudy.measure.timing import StepSamples

if TYPE_CHECKING:
    from fwstudy.config.trial import TrialConfig
    from fwstudy.harness.distributed.worker import WorkerContext
    from fwstudy.workloads.spec import WorkloadSpec


@dataclass
class TrainResult:
    samples: StepSamples
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)
    gpu_peak_mb: float | None = None
    # A reduced-precision trial's check against fp32 (fwstudy.measure.precision.compare).
    precision_check: dict[str, Any] | None = None


@dataclass
class InferResult:
    """Batch-1 latency calls and large-batch calls; first calls (trace/compile) timed apart."""

    latency: StepSamples
    throughput: StepSamples
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)
    gpu_peak_mb: float | None = None
    precision_check: dict[str, Any] | None = None


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


def overhead_blocks(
    bare, step, steps: int, blocks: int, *, max_blocks: int | None = None,
    target_width_pct: float | None = None, confidence: float = 0.95,
) -> dict[str, Any]:
    """Alternate blocks of the hand-written loop ``bare(n) -> seconds`` and of the runner's
    measured loop over ``step`` (same process, same model, same batches), the first of each
    pair alternating (ABBA) so that a drift hits both; each pair gives one ratio harness/bare.

    The overhead is the median of those paired ratios minus 1, with its distribution-free
    (order-statistic) interval at ``confidence``. With ``target_width_pct``, blocks go on after
    the first ``blocks`` until that interval reaches ``confidence`` and is narrower than the
    target (in percentage points), or ``max_blocks`` pairs have run: an interval narrower than
    3% is what shows a 3% overhead target met, or missed."""
    import statistics
    import time

    from fwstudy.measure.timing import measure_steps
    from fwstudy.results.stats import order_statistic_interval

    def harness(n: int) -> float:
        start = time.perf_counter()
        measure_steps(step, 0, n - 1)  # the first call plus n - 1 timed steps: n steps, as bare
        return time.perf_counter() - start

    bare_times, harness_times, ratios = [], [], []
    limit = max(blocks, max_blocks or blocks)
    low = high = reached = float("nan")
    while len(ratios) < limit:
        if len(ratios) % 2:
            h = harness(steps) / steps
            b = bare(steps) / steps
        else:
            b = bare(steps) / steps
            h = harness(steps) / steps
        bare_times.append(b)
        harness_times.append(h)
        ratios.append(h / b)
        if len(ratios) >= max(blocks, 2):
            _, low, high, reached = order_statistic_interval(np.asarray(ratios), confidence)
            if target_width_pct is None and len(ratios) >= blocks:
                break
            if target_width_pct is not None and reached >= confidence and (high - low) * 100 < target_width_pct:
                break
    return {
        "bare_step_ms": statistics.median(bare_times) * 1e3,
        "harness_step_ms": statistics.median(harness_times) * 1e3,
        "overhead_pct": (statistics.median(ratios) - 1) * 100,
        "overhead_ci_low_pct": (low - 1) * 100,
        "overhead_ci_high_pct": (high - 1) * 100,
        "overhead_ci_confidence": reached,
        "blocks": len(ratios),
        "block_ratios": ratios,
    }


class TrialPart(Protocol):
    """``frameworks/<name>/trial.py``: the measured work of one trial (task train, compile,
    inference, retrace) and the harness-overhead benchmark. Every function builds the
    workload's twin from ``spec``, sets the config's threads and device, and synchronizes
    the device before each clock read (rule 5)."""

    def train(self, config: TrialConfig, spec: WorkloadSpec) -> TrainResult: ...

    def infer(self, config: TrialConfig, spec: WorkloadSpec) -> InferResult: ...

    def retrace(self, config: TrialConfig, spec: WorkloadSpec) -> RetraceResult: ...

    def overhead(self, config: TrialConfig, spec: WorkloadSpec, blocks: int, **options: Any) -> dict[str, Any]: ...


class GemmPart(Protocol):
    """``frameworks/<name>/gemm.py``: seconds per GEMM of ``size`` in a precision (fp32, tf32,
    bf16: the MFU yardstick of trials in that precision)."""

    def gemm_times(
        self, size: int, repeats: int, threads: int, device: str, precision: str = "fp32"
    ) -> list[float]: ...


class ParityPart(Protocol):
    """``frameworks/<name>/parity.py``: this framework's half of the parity gate: weights,
    logits, loss, gradients (and Adam losses, mode outputs) as NumPy arrays, plus a summary."""

    def compute(
        self, job: Mapping[str, Any], spec: WorkloadSpec, params: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...


class WorkerPart(Protocol):
    """``frameworks/<name>/worker.py``: one data-parallel worker's training, on the
    framework's own distributed engine; returns the JSON payload ``collect`` assembles."""

    def train(self, ctx: WorkerContext) -> dict[str, Any]: ...


PROTOCOLS: dict[str, type] = {"trial": TrialPart, "gemm": GemmPart, "parity": ParityPart, "worker": WorkerPart}
