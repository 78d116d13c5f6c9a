"""The trials each figure needs, derived from a profile and nothing else, and the one call a
notebook makes to get them measured (or reused)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pandas as pd

from fwstudy.config import TrialConfig, default_threads, modes_for
from fwstudy.profile import Profile


def _grid(profile: Profile) -> Iterator[tuple[int, str, str, str]]:
    """Repeats outermost and the two frameworks adjacent, so that a drift of the machine
    touches both sides alike (rule 7); modes a framework lacks are skipped."""
    for repeat in range(profile.repeats):
        for workload in profile.workloads:
            for mode in profile.modes:
                for framework in profile.frameworks:
                    if mode in modes_for(framework, workload):
                        yield repeat, workload, mode, framework


def training_speed_configs(profile: Profile) -> list[TrialConfig]:
    """F1, and F2/F11 which read the same trials' memory, CPU and FLOP/s."""
    threads = profile.threads or default_threads()
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, steps=profile.steps,
            warmup=profile.warmup, threads=threads, device=profile.device, repeat=repeat,
            timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework in _grid(profile)
    ]


def inference_configs(profile: Profile) -> list[TrialConfig]:
    """F5: batch-1 latency over ``latency_calls`` calls and throughput at the large batch."""
    threads = profile.threads or default_threads()
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, task="inference",
            batch_size=profile.inference_batch_size, latency_calls=profile.latency_calls,
            steps=profile.steps, warmup=profile.warmup, threads=threads, device=profile.device,
            repeat=repeat, timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework in _grid(profile)
    ]


def measure(profile: Profile, configs: list[TrialConfig]) -> pd.DataFrame:
    """Measure what is missing from ``results/<profile>/`` (everything when forced) and return
    the tidy table of ``configs``."""
    from fwstudy import paths
    from fwstudy.batch import run_batch
    from fwstudy.results import ResultStore
    from fwstudy.runner import run_trial

    store = ResultStore(paths.results_dir(profile.profile, profile.results_dir))
    run = functools.partial(run_trial, gemm_size=profile.gemm_size)
    return run_batch(configs, store, force=profile.force, run=run)
