"""Run a list of trials into a store: reuse what is measured, save each trial as it ends.

``measure(profile, configs)`` is the one call a notebook makes to get its trials."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.harness.environment import code_version
from fwstudy.harness.runner import run_trial
from fwstudy.results.store import ResultStore


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def run_batch(
    configs: Sequence[TrialConfig],
    store: ResultStore,
    *,
    force: bool = False,
    progress: Callable[[str], None] = _print,
    run: Callable[[TrialConfig], dict] = run_trial,
) -> pd.DataFrame:
    """Measure every config not yet in ``store`` (all of them when ``force``) and return the
    tidy table of the whole batch. A failed trial is saved like any other and the batch goes on."""
    version = code_version()
    ids = [config.identity(version) for config in configs]
    run_id = os.environ.get("FWSTUDY_RUN_ID")

    def needed(trial_id: str) -> bool:
        if not store.has(trial_id):
            return True
        # Forcing re-measures once per run: notebooks that share trials (F1, F2, F11) within
        # one `make figures FORCE=1` measure them once, not once per notebook.
        return force and not (run_id and store.record(trial_id).get("run_id") == run_id)

    todo = [i for i, tid in enumerate(ids) if needed(tid)]
    reused = len(configs) - len(todo)
    progress(
        f"{len(configs)} trials: {reused} already measured, {len(todo)} to measure"
        + (" (forced)" if force else "")
    )
    failed = 0
    started = time.monotonic()
    for n, index in enumerate(todo, 1):
        config = configs[index]
        begin = time.monotonic()
        record = run(config)
        record["run_id"] = run_id
        store.save(record)
        took = time.monotonic() - begin
        if record["status"] == "ok":
            outcome = f"ok, {record['metrics']['step_time_ms_median']:.2f} ms/step"
        else:
            failed += 1
            outcome = f"{record['status'].upper()}: {str(record['error']).splitlines()[0]}"
        progress(f"[{n}/{len(todo)}] {config.label()} r{config.repeat}: {outcome} ({took:.0f} s)")
    if todo:
        progress(
            f"measured {len(todo)} trials in {time.monotonic() - started:.0f} s"
            f" ({failed} not ok), reused {reused}"
        )
    return store.table(ids)


def measure(profile: Profile, configs: list[TrialConfig]) -> pd.DataFrame:
    """Measure what is missing from ``results/<profile>/`` (everything when forced) and return
    the tidy table of ``configs``, each row with its workload's parity verdict (rule 6).

    The verdict of every workload in ``configs`` comes first (``parity.verdict``, cached per
    code version): each measured record carries it in ``parity``, and the table's
    ``parity_passed`` column lets a figure flag a workload whose twins disagree.

    The trials of one call share compile caches (inductor's and XLA's, both frameworks alike):
    steady-state figures don't pay a cold compile per repeat. Cold and warm compile costs are
    F4's ``compile`` trials, which always start from empty caches."""
    from fwstudy.parity.verdict import workload_verdict

    verdicts = {
        workload: workload_verdict(workload, threads=profile.threads, timeout_s=profile.trial_timeout_s)
        for workload in dict.fromkeys(c.workload for c in configs)
    } if profile.parity_gate else {}
    store = ResultStore(paths.results_dir(profile.profile, profile.results_dir))
    with tempfile.TemporaryDirectory(prefix="fwstudy-compile-cache-") as cache:
        trial = functools.partial(run_trial, gemm_size=profile.gemm_size, cache_dir=cache)

        def run(config: TrialConfig) -> dict:
            record = trial(config)
            if config.workload in verdicts:
                record["parity"] = verdicts[config.workload]
            return record

        table = run_batch(configs, store, force=profile.force, run=run)
    passed = {w: v["passed"] for w, v in verdicts.items()}
    return table.assign(parity_passed=table["workload"].map(passed) if passed else None)
