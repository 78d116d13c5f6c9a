"""The isolation check: do trials forked from a warm server measure what fresh processes do?

Quick forks its steady-state trials from one server per framework (``harness/forkserver.py``)
to save the framework import of every trial. That is only honest if a forked trial measures
the same step time, and the same memory, as a strict one-trial-per-process trial. This module
measures both, side by side: every training configuration of the profile (fp32) under both
isolation levels, in paired blocks (each block holds every configuration under both levels
in a shuffled order, a fork trial and its process twin adjacent so that a drift of the
machine hits both alike; the first block holds every configuration twice under each level,
the A-vs-A pairs of the noise floor). Per configuration it reports the median under each
level, the paired fork/process ratio with its sign-test interval, and the A-vs-A floor
(``results.stats.compare_arms``): the levels agree when the ratio's whole interval lies
within the floor (``verdict``).

``fwstudy isolation --profile quick`` runs it into ``results/<profile>-isolation/`` (a store
of its own: the profile's figures and claims never see these trials) and writes the table
to ``build/<profile>/isolation.csv``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence

import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile, load_profile_file, resolve_profile_path
from fwstudy.config.trial import ISOLATIONS, TrialConfig
from fwstudy.errors import BadInput, choices
from fwstudy.figures.trials import narrowed, training_configs  # F1's own grid, sizes and order
from fwstudy.harness.batch import measure
from fwstudy.results import stats

# What the check compares: the step time F1 reports, and the memory F2 reports.
METRICS = ("step_time_ms_median", "peak_anon_above_import_mb")


def store_name(profile: Profile) -> str:
    return f"{profile.profile}-isolation"


def configs(profile: Profile, workloads: Sequence[str] | None = None, blocks: int | None = None) -> list[TrialConfig]:
    """Every training configuration of ``workloads`` (default: the profile's) in the profile's
    modes, fp32, under both isolation levels, in ``blocks`` paired blocks (default: the
    profile's ``repeats``, at least 2); block 0 twice (A-vs-A replicas)."""
    workloads = list(workloads or profile.workloads)
    for workload in workloads:
        if workload not in profile.workloads:
            raise BadInput(f"workload {workload!r} is not in profile {profile.profile}; valid: {choices(profile.workloads)}")
    if blocks is not None and (isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 2):
        raise BadInput(f"blocks must be an integer >= 2 (a paired interval needs two blocks), got {blocks!r}")
    blocks = blocks or max(2, profile.repeats)
    grid = narrowed(profile, workloads=workloads, repeats=blocks, aa_blocks=1, precisions=["fp32"])
    order = random.Random(f"isolation/{profile.profile}")
    out = []
    for config in training_configs(grid):
        levels = list(ISOLATIONS)
        order.shuffle(levels)  # which level of the pair runs first: a coin per pair
        out += [dataclasses.replace(config, isolation=level) for level in levels]
    return out


def analyse(table: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """One row per configuration and metric: medians under fork and process, the paired
    fork/process ratio with its interval, the A-vs-A floor, and ``agree``: the ratio's
    interval reaches the confidence and no clear difference beyond the floor."""
    parts = []
    for metric in METRICS:
        compared = stats.compare_arms(table, "isolation", ("fork", "process"), metric=metric,
                                      by=("workload", "framework", "mode", "device", "threads"),
                                      confidence=confidence)
        if len(compared):
            parts.append(compared.assign(metric=metric))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    frame["verdict"] = [verdict(row, confidence) for row in frame.to_dict("records")]
    return frame.drop(columns=["faster"])


def verdict(row: dict, confidence: float) -> str:
    """``agree``: the fork/process ratio's interval reaches ``confidence`` and lies inside the
    A-vs-A floor (+-floor in log units: shown to differ by no more than a configuration differs
    from itself). ``fork lower``/``process lower``: the interval excludes parity and the
    effect exceeds the floor. ``no clear difference``: neither (the interval is wider than the
    floor: more blocks would tell). ``insufficient data``: no interval at that confidence."""
    if row["faster"] == "insufficient data":
        return "insufficient data"
    if row["faster"] in ISOLATIONS:
        return f"{row['faster']} lower"
    floor = row["noise_floor"]
    if floor == floor and math.log(row["ratio_ci_low"]) >= -floor and math.log(row["ratio_ci_high"]) <= floor:
        return "agree"
    return "no clear difference"


def run(profile: Profile, workloads: Sequence[str] | None = None, blocks: int | None = None) -> pd.DataFrame:
    """Measure the check into its own store and return ``analyse``'s table (also written to
    ``build/<profile>/isolation.csv``)."""
    own = dataclasses.replace(profile, results_dir=str(paths.results_dir(store_name(profile))))
    table = measure(own, configs(profile, workloads, blocks), isolate=False)
    result = analyse(table, profile.confidence)
    out = paths.build_dir(profile.profile) / "isolation.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    return result


def report(profile: str, workloads: Sequence[str] | None, blocks: int | None) -> int:
    """``fwstudy isolation``: run the check, print its table; exit 0 (the table is the result)."""
    chosen = load_profile_file(resolve_profile_path(profile))
    result = run(chosen, workloads, blocks)
    columns = ["metric", "workload", "framework", "mode", "n_fork", "n_process", "median_fork", "median_process",
               "ratio", "ratio_ci_low", "ratio_ci_high", "confidence", "noise_floor", "verdict"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(result[[c for c in columns if c in result]].round(4).to_string(index=False))
    print(f"written: {paths.build_dir(chosen.profile) / 'isolation.csv'}")
    return 0
