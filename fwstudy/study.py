"""The trials each figure needs, derived from a profile and nothing else, and the one call a
notebook makes to get them measured (or reused)."""

from __future__ import annotations

import dataclasses
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
    grid = Profile(**{**dataclasses.asdict(profile), "workloads": profile.inference_workloads or profile.workloads})
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, task="inference",
            batch_size=profile.inference_batch_size, latency_calls=profile.latency_calls,
            steps=profile.steps, warmup=profile.warmup, threads=threads, device=profile.device,
            repeat=repeat, timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework in _grid(grid)
    ]


def measure(profile: Profile, configs: list[TrialConfig]) -> pd.DataFrame:
    """Measure what is missing from ``results/<profile>/`` (everything when forced) and return
    the tidy table of ``configs``.

    The trials of one call share compile caches (inductor's and XLA's, both frameworks alike):
    steady-state figures don't pay a cold compile per repeat. Cold and warm compile costs are
    F4's ``compile`` trials, which always start from empty caches."""
    import tempfile

    from fwstudy import paths
    from fwstudy.batch import run_batch
    from fwstudy.results import ResultStore
    from fwstudy.runner import run_trial

    store = ResultStore(paths.results_dir(profile.profile, profile.results_dir))
    with tempfile.TemporaryDirectory(prefix="fwstudy-compile-cache-") as cache:
        run = functools.partial(run_trial, gemm_size=profile.gemm_size, cache_dir=cache)
        return run_batch(configs, store, force=profile.force, run=run)


def graph_mode_configs(profile: Profile) -> list[TrialConfig]:
    """F4 compile cost: every non-eager mode as a ``compile`` trial (a cold process with its
    full measurement, then a warm-cache process for the warm compile)."""
    threads = profile.threads or default_threads()
    workloads = profile.graph_workloads or profile.workloads
    grid = Profile(**{**dataclasses.asdict(profile), "workloads": workloads, "repeats": profile.compile_repeats})
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, task="compile", steps=profile.steps,
            warmup=profile.warmup, threads=threads, device=profile.device, repeat=repeat,
            timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework in _grid(grid)
        if mode != "eager"
    ]


def eager_baseline_configs(profile: Profile) -> list[TrialConfig]:
    """The eager trials of the F4 workloads, the baseline every speedup is relative to: the
    same trials as F1's where the workloads overlap (shared, not measured twice)."""
    workloads = profile.graph_workloads or profile.workloads
    grid = Profile(**{**dataclasses.asdict(profile), "workloads": workloads, "modes": ["eager"]})
    return training_speed_configs(grid)


def retrace_configs(profile: Profile) -> list[TrialConfig]:
    """F4 retracing: the profile's shape sequence in every tracing variant of each framework;
    sequence lengths change too for workloads that have one. Eager is the no-trace baseline."""
    from fwstudy.config import RETRACE_VARIANTS
    from fwstudy.workloads import get_workload

    threads = profile.threads or default_threads()
    configs = []
    for repeat in range(profile.retrace_repeats):
        for workload in profile.retrace_workloads:
            spec = get_workload(workload)
            lengths = tuple(profile.retrace_lengths) if "length" in spec.defaults else ()
            params = {"length": max(lengths)} if lengths else {}
            for framework in profile.frameworks:
                for mode in modes_for(framework, workload):
                    if mode == "fit" or mode not in profile.modes:
                        continue
                    variants = RETRACE_VARIANTS[framework]
                    for variant in variants[:1] if mode == "eager" else variants:
                        configs.append(TrialConfig(
                            workload=workload, framework=framework, mode=mode, task="retrace",
                            variant=variant, batch_sequence=tuple(profile.retrace_batches),
                            length_sequence=lengths, workload_params=params, threads=threads,
                            device=profile.device, repeat=repeat, timeout_s=profile.trial_timeout_s,
                        ))
    return configs
