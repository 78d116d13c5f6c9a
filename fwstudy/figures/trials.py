"""The grid of trials figures share: repeats outermost, the frameworks adjacent.

Several figures read the same trials (F1, F2 and F11 are one set of training trials), so the
configs that define them are built here once and reused: a trial's identity is its config,
and the store measures each identity once."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

from fwstudy.config.profile import Profile, threads_of
from fwstudy.config.trial import TrialConfig, modes_for


def narrowed(profile: Profile, **changes) -> Profile:
    """The profile with some fields replaced (a figure's own workloads, repeats or modes)."""
    return dataclasses.replace(profile, **changes)


def grid(profile: Profile) -> Iterator[tuple[int, str, str, str, int]]:
    """``(block, workload, mode, framework, replica)`` in paired blocks (rule 7).

    Each block holds one trial of every configuration of both frameworks (two, replicas 0
    and 1, in the first ``aa_blocks`` blocks: the A-vs-A pairs of the noise floor), in an
    order shuffled per block with a seed of the profile and block: a drift of the machine,
    or a neighbour's load, cannot favour the framework that always runs first. Modes a
    framework lacks are skipped."""
    for block in range(profile.repeats):
        replicas = 2 if block < profile.aa_blocks else 1
        items = [
            (block, workload, mode, framework, replica)
            for workload in profile.workloads
            for mode in profile.modes
            for framework in profile.frameworks
            if mode in modes_for(framework, workload)
            for replica in range(replicas)
        ]
        random.Random(f"{profile.profile}/{block}").shuffle(items)
        yield from items


def sized(profile: Profile, workload: str) -> dict:
    """The profile's size of ``workload`` (``workload_sizes``) as TrialConfig fields."""
    sizes = dict(profile.workload_sizes.get(workload, {}))
    batch = sizes.pop("batch_size", None)
    return {"batch_size": batch, "workload_params": sizes}


def training_configs(profile: Profile) -> list[TrialConfig]:
    """F1, and F2/F11 which read the same trials' memory, CPU and FLOP/s: every configuration
    in each of the profile's precisions, the precisions of one configuration adjacent in its
    block (so a drift hits them alike)."""
    threads = threads_of(profile)
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, steps=profile.steps,
            warmup=profile.warmup, threads=threads, device=profile.device, repeat=repeat,
            replica=replica, timeout_s=profile.trial_timeout_s, precision=precision,
            **sized(profile, workload),
        )
        for repeat, workload, mode, framework, replica in grid(profile)
        for precision in profile.precisions
    ]
