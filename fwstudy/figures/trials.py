"""The grid of trials figures share: repeats outermost, the frameworks adjacent.

Several figures read the same trials (F1, F2 and F11 are one set of training trials), so the
configs that define them are built here once and reused: a trial's identity is its config,
and the store measures each identity once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig, default_threads, modes_for


def threads_of(profile: Profile) -> int:
    """The profile's thread count, else all cores: the same for both frameworks (rule 1)."""
    return profile.threads or default_threads()


def narrowed(profile: Profile, **changes) -> Profile:
    """The profile with some fields replaced (a figure's own workloads, repeats or modes)."""
    return dataclasses.replace(profile, **changes)


def grid(profile: Profile) -> Iterator[tuple[int, str, str, str]]:
    """Repeats outermost and the two frameworks adjacent, so that a drift of the machine
    touches both sides alike (rule 7); modes a framework lacks are skipped."""
    for repeat in range(profile.repeats):
        for workload in profile.workloads:
            for mode in profile.modes:
                for framework in profile.frameworks:
                    if mode in modes_for(framework, workload):
                        yield repeat, workload, mode, framework


def training_configs(profile: Profile) -> list[TrialConfig]:
    """F1, and F2/F11 which read the same trials' memory, CPU and FLOP/s."""
    threads = threads_of(profile)
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, steps=profile.steps,
            warmup=profile.warmup, threads=threads, device=profile.device, repeat=repeat,
            timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework in grid(profile)
    ]
