"""The measuring loop both frameworks share, and the summary of its samples.

Keeping one loop for both frameworks means the harness costs the same on each side; the first
call (trace, XLA or inductor compile) is timed on its own and never enters steady state
(fairness rule 2).

Nothing here imports scipy or pandas: this module is loaded by the trial child before its
framework, whose import footprint must be the framework's alone (scipy is one of the packages
``trial_child.WATCHED_MODULES`` watches), so the binomial tail of the p99 interval is computed
with ``math.lgamma`` and NumPy rather than ``scipy.stats.binom`` or ``fwstudy.results.stats``
(which imports pandas at module level).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fwstudy.measure import collectors

# The p99 interval asks for this coverage; the record states the coverage it reaches.
P99_CONFIDENCE = 0.95


@dataclass
class StepSamples:
    compile_s: float
    step_times_s: list[float]
    losses: list[float] = field(default_factory=list)
    # Process CPU time (all threads, user + sys) and wall time over the timed steps only.
    cpu_s: float | None = None
    wall_s: float | None = None
    # Whether the timed loop ran with the garbage collector off and the RSS sampler paused.
    quiet: bool = False

    @property
    def total_s(self) -> float:
        """The sum of the timed step times: what throughput and achieved FLOP/s divide by."""
        return float(sum(self.step_times_s))


@contextlib.contextmanager
def quiet_section(quiet: bool):
    """With ``quiet``: collect garbage now, then keep the collector off and every running
    RssSampler paused until the block ends (a 1 ms batch-1 call would otherwise pay for a
    gen-2 collection or a /proc read now and then, in its p99); the collector's previous
    state is restored afterwards."""
    if not quiet:
        yield
        return
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        with collectors.pause_sampling():
            yield
    finally:
        if was_enabled:
            gc.enable()


def measure_steps(
    step: Callable[[int], float], warmup: int, steps: int, *, quiet: bool = False
) -> StepSamples:
    """Run ``1 + warmup + steps`` steps; ``step(i)`` must return the loss as a Python float.

    Returning the loss as a float forces the step to finish (host sync) on both frameworks,
    and GPU backends also synchronize the device inside ``step`` (fairness rule 5). The first
    call is marked for the memory samplers (``collectors.first_call``): its peak is the
    trace/compile peak, everything after it the steady state. ``quiet`` (batch-1 latency
    loops, both frameworks alike): no garbage collection and no RSS sampling during the
    timed steps (``quiet_section``).
    """
    clock = time.perf_counter
    with collectors.first_call():
        start = clock()
        losses = [step(0)]
        compile_s = clock() - start
    for i in range(1, warmup + 1):
        losses.append(step(i))
    times = []
    with quiet_section(quiet):
        cpu_start, wall_start = time.process_time(), clock()
        for i in range(warmup + 1, warmup + 1 + steps):
            start = clock()
            loss = step(i)
            times.append(clock() - start)
            losses.append(loss)
        cpu_s, wall_s = time.process_time() - cpu_start, clock() - wall_start
    return StepSamples(
        compile_s=compile_s, step_times_s=times, losses=losses, cpu_s=cpu_s, wall_s=wall_s, quiet=quiet
    )


def cpu_metrics(samples: StepSamples, threads: int, samples_per_step: int | None = None) -> dict[str, float]:
    """CPU utilization of the steady state: busy cores, and that as a share of the threads
    the trial was given (1.0 = every granted thread busy all the time); with
    ``samples_per_step``, also the process CPU seconds per sample over the timed steps."""
    if not samples.cpu_s or not samples.wall_s:
        return {}
    cores = samples.cpu_s / samples.wall_s
    metrics = {"cpu_cores_busy": cores, "cpu_utilization": cores / threads}
    if samples_per_step and samples.step_times_s:
        metrics["cpu_s_per_sample"] = samples.cpu_s / (samples_per_step * len(samples.step_times_s))
    return metrics


def _binom_cdf(n: int, p: float) -> np.ndarray:
    """P(Binom(n, p) <= k) for k = 0..n, from log-space terms (exact to float rounding)."""
    k = np.arange(n + 1)
    lgamma = np.vectorize(math.lgamma, otypes=[float])
    log_pmf = lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0)
    log_pmf += k * math.log(p) + (n - k) * math.log1p(-p)
    return np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def quantile_interval_ranks(n: int, q: float, confidence: float = P99_CONFIDENCE) -> tuple[int, int, float]:
    """1-based ranks (lo, hi) with P(x_(lo) <= xi_q <= x_(hi)) >= ``confidence`` for any
    continuous distribution, and the coverage reached, F(hi - 1) - F(lo - 1) with
    F the Binom(n, q) CDF (the number of values below the true quantile is Binom(n, q)).

    x_(lo) <= xi_q exactly when B >= lo values fall below xi_q, x_(hi) >= xi_q when B <= hi - 1.
    Equal tails: lo is the largest rank with F(lo - 1) <= (1 - c) / 2 and hi the smallest
    with F(hi - 1) >= 1 - (1 - c) / 2. Where n is too small for a tail (p99 of 200 calls has
    no upper rank that reaches it), the rank stops at the extreme (1 or n) and the reached
    coverage says how far short it falls. n < 1: (0, 0, 0.0).
    """
    if n < 1:
        return 0, 0, 0.0
    cdf = _binom_cdf(n, q)  # cdf[j] = P(B <= j)
    tail = (1.0 - confidence) / 2
    below = np.flatnonzero(cdf[: n] <= tail + 1e-12)  # candidates j = lo - 1, lo = 1..n
    lo = int(below[-1]) + 1 if below.size else 1
    above = np.flatnonzero(cdf[: n] >= 1.0 - tail - 1e-12)  # candidates j = hi - 1
    hi = int(above[0]) + 1 if above.size else n
    lo = min(lo, hi)
    reached = float(cdf[hi - 1] - cdf[lo - 1])
    return lo, hi, reached


def latency_metrics(call_times_s: list[float]) -> dict[str, float]:
    """Percentiles of the batch-1 calls, the number of calls, and a distribution-free interval
    of the p99 (order statistics at binomial ranks, ``P99_CONFIDENCE`` requested, the reached
    coverage reported: with few calls it falls short)."""
    ms = np.asarray(call_times_s, dtype=float) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    lo, hi, reached = quantile_interval_ranks(ms.size, 0.99, P99_CONFIDENCE)
    ordered = np.sort(ms)
    return {
        "latency_ms_p50": float(p50),
        "latency_ms_p90": float(p90),
        "latency_ms_p99": float(p99),
        "latency_ms_mean": float(ms.mean()),
        "latency_ms_p99_ci_low": float(ordered[lo - 1]),
        "latency_ms_p99_ci_high": float(ordered[hi - 1]),
        "latency_ms_p99_ci_confidence": reached,
        "latency_calls": int(ms.size),
    }


def summarize(samples: StepSamples, batch_size: int, flops_per_step: int) -> dict[str, float]:
    """Throughput and achieved FLOP/s from the summed step time (what a user gets over the
    run, stalls included); the median step time stays the robust comparison statistic."""
    ms = np.asarray(samples.step_times_s) * 1e3
    total_s = samples.total_s
    steps = len(samples.step_times_s)
    q25, q75 = np.percentile(ms, [25, 75])
    return {
        "compile_s": samples.compile_s,
        "step_time_ms_median": float(np.median(ms)),
        "step_time_ms_mean": float(ms.mean()),
        "step_time_ms_min": float(ms.min()),
        "step_time_ms_p90": float(np.percentile(ms, 90)),
        "step_time_ms_iqr": float(q75 - q25),
        "timed_total_s": total_s,
        "throughput_samples_per_s": batch_size * steps / total_s,
        "achieved_gflops": flops_per_step * steps / total_s / 1e9,
        "loss_first": samples.losses[0],
        "loss_last": samples.losses[-1],
    }
