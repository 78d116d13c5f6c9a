"""The measuring loop both frameworks share, and the summary of its samples.

Keeping one loop for both frameworks means the harness costs the same on each side; the first
call (trace, XLA or inductor compile) is timed on its own and never enters steady state
(fairness rule 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StepSamples:
    compile_s: float
    step_times_s: list[float]
    losses: list[float] = field(default_factory=list)
    # Process CPU time (all threads, user + sys) and wall time over the timed steps only.
    cpu_s: float | None = None
    wall_s: float | None = None


def measure_steps(step: Callable[[int], float], warmup: int, steps: int) -> StepSamples:
    """Run ``1 + warmup + steps`` steps; ``step(i)`` must return the loss as a Python float.

    Returning the loss as a float forces the step to finish (host sync) on both frameworks,
    and GPU backends also synchronize the device inside ``step`` (fairness rule 5).
    """
    clock = time.perf_counter
    start = clock()
    losses = [step(0)]
    compile_s = clock() - start
    for i in range(1, warmup + 1):
        losses.append(step(i))
    times = []
    cpu_start, wall_start = time.process_time(), clock()
    for i in range(warmup + 1, warmup + 1 + steps):
        start = clock()
        loss = step(i)
        times.append(clock() - start)
        losses.append(loss)
    cpu_s, wall_s = time.process_time() - cpu_start, clock() - wall_start
    return StepSamples(compile_s=compile_s, step_times_s=times, losses=losses, cpu_s=cpu_s, wall_s=wall_s)


def cpu_metrics(samples: StepSamples, threads: int) -> dict[str, float]:
    """CPU utilization of the steady state: busy cores, and that as a share of the threads
    the trial was given (1.0 = every granted thread busy all the time)."""
    if not samples.cpu_s or not samples.wall_s:
        return {}
    cores = samples.cpu_s / samples.wall_s
    return {"cpu_cores_busy": cores, "cpu_utilization": cores / threads}


def latency_metrics(call_times_s: list[float]) -> dict[str, float]:
    ms = np.asarray(call_times_s) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "latency_ms_p50": float(p50),
        "latency_ms_p90": float(p90),
        "latency_ms_p99": float(p99),
        "latency_ms_mean": float(ms.mean()),
    }


def summarize(samples: StepSamples, batch_size: int, flops_per_step: int) -> dict[str, float]:
    ms = np.asarray(samples.step_times_s) * 1e3
    median_s = float(np.median(ms)) / 1e3
    q25, q75 = np.percentile(ms, [25, 75])
    return {
        "compile_s": samples.compile_s,
        "step_time_ms_median": float(np.median(ms)),
        "step_time_ms_mean": float(ms.mean()),
        "step_time_ms_min": float(ms.min()),
        "step_time_ms_p90": float(np.percentile(ms, 90)),
        "step_time_ms_iqr": float(q75 - q25),
        "throughput_samples_per_s": batch_size / median_s,
        "achieved_gflops": flops_per_step / median_s / 1e9,
        "loss_first": samples.losses[0],
        "loss_last": samples.losses[-1],
    }
