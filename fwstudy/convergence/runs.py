"""Parent side of F8/F10: the runs a profile asks for, each in its own child process, recorded
in the results store and reused when already measured (like every trial of the study).

A run's scalar results (final accuracy, clean accuracy, ...) are a record in ``ResultStore``
(task ``convergence`` or ``robustness``, the arm in the ``variant`` column, the seed in
``repeat``), so ``failures`` and the environment columns work as for any trial; its curves and
maps are Parquet tables beside them (``convergence.tables``). A crashed or timed-out child is a
failed record with its reason, and the batch goes on (rule 9).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile, threads_of
from fwstudy.config.trial import FRAMEWORKS
from fwstudy.convergence import tables
from fwstudy.convergence.plan import CONVERGENCE_MODES, RobustnessRun, TrainRun
from fwstudy.harness.environment import base_environment, code_version
from fwstudy.harness.process import base_child_environment, run_job
from fwstudy.results.store import ResultStore

Run = TrainRun | RobustnessRun


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def train_configs(profile: Profile) -> list[TrainRun]:
    """Every (seed, workload, arm, mode, framework) of F8, seeds outermost; within a seed the
    order is shuffled from the profile and seed, so that neither framework always runs first
    (a neighbour's load cannot favour one side)."""
    threads = threads_of(profile)
    out = []
    for seed in range(profile.seeds):
        block = [
            TrainRun(workload=w, framework=f, arm=arm, mode=mode, seed=seed, epochs=profile.epochs,
                     threads=threads, timeout_s=profile.trial_timeout_s)
            for w in profile.convergence_workloads for arm in profile.arms
            for mode in profile.convergence_modes for f in profile.frameworks
            if mode in CONVERGENCE_MODES[f]
        ]
        random.Random(f"{profile.profile}/convergence/{seed}").shuffle(block)
        out += block
    return out


def robustness_configs(profile: Profile) -> list[RobustnessRun]:
    """One evaluation per (workload, arm, framework) over every seed's trained weights.
    Matched: both frameworks evaluate PyTorch's matched-arm weights (the same numbers);
    idiomatic: each its own. Weights come from the first convergence mode's runs."""
    threads = threads_of(profile)
    mode = profile.convergence_modes[0]
    out = []
    for workload in profile.robustness_workloads:
        for arm in profile.arms:
            for framework in profile.frameworks:
                source = "torch" if arm == "matched" else framework
                runs = tuple(
                    TrainRun(workload=workload, framework=source, arm=arm, mode=mode, seed=s,
                             epochs=profile.epochs, threads=threads, timeout_s=profile.trial_timeout_s)
                    for s in range(profile.seeds))
                out.append(RobustnessRun(
                    workload=workload, framework=framework, arm=arm, runs=runs,
                    attacks=tuple(profile.attacks), epsilons=tuple(profile.epsilons),
                    pgd_steps=profile.pgd_steps, pgd_step_ratio=profile.pgd_step_ratio,
                    explain_samples=profile.explain_samples, ig_steps=profile.ig_steps,
                    threads=threads, timeout_s=profile.trial_timeout_s))
    return out


def make_record(run: Run, run_id: str, kind: str, status: str, error: str | None,
                metrics: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A record the store's tidy table reads like any trial's: the arm is its ``variant``, the
    seed its ``repeat``; ``config`` keeps the whole run."""
    env = base_environment()
    env.update(device="cpu", threads=run.threads, child=info)
    # A diverged run's NaN loss is a fact, but not a number a strict JSON record can hold: the
    # metric is left out and named here, so the record stays readable and says what happened.
    nonfinite = sorted(k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v))
    metrics = {k: v for k, v in metrics.items() if k not in nonfinite}
    if nonfinite:
        env["nonfinite_metrics"] = nonfinite
    train = isinstance(run, TrainRun)
    config = dataclasses.asdict(run) if train else {
        **{k: v for k, v in dataclasses.asdict(run).items() if k != "runs"},
        "runs": [r.to_dict() for r in run.runs]}
    workload_params = dict(run.workload_params if train else run.runs[0].workload_params)
    config.update(task=kind, steps=int(metrics.get("steps", 0)), warmup=0, interop_threads=1,
                  workload_params=workload_params, variant=run.arm)
    return {
        "trial_id": run_id, "workload": run.workload, "framework": run.framework,
        "mode": run.mode if train else run.runs[0].mode, "device": "cpu",
        "batch_size": run.batch_size if train else run.explain_samples, "threads": run.threads,
        "repeat": run.seed if train else 0, "replica": 0, "status": status, "error": error,
        "metrics": metrics, "samples": {}, "config": config, "env": env,
    }


def run_child(run: Run, run_id: str, root: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One isolated child (its thread variables set before the framework import, rule 1)."""
    kind = "convergence" if isinstance(run, TrainRun) else "robustness"
    payload = run.to_dict() if isinstance(run, TrainRun) else {
        **{k: v for k, v in dataclasses.asdict(run).items() if k != "runs"}, "runs": [r.to_dict() for r in run.runs]}
    job = {"kind": kind, "run": payload, "root": str(root), "run_id": run_id, **(extra or {})}
    env = base_child_environment(run.threads, 1, "cpu")
    with tempfile.TemporaryDirectory(prefix=f"fwstudy-{kind}-") as tmp:
        outcome, summary = run_job(job, timeout_s=run.timeout_s, env=env, workdir=Path(tmp))
    if summary is None:
        return make_record(run, run_id, kind, outcome.status, outcome.error(timeout_s=run.timeout_s), {}, {})
    record = make_record(run, run_id, kind, summary["status"], summary["error"], summary["metrics"], summary["info"])
    record["env"]["frameworks_loaded"] = summary.get("frameworks_loaded")
    record["wall_s"] = outcome.wall_s
    return record


def store_of(profile: Profile) -> ResultStore:
    return ResultStore(paths.results_dir(profile.profile, profile.results_dir))


def run_all(
    runs: Sequence[Run], store: ResultStore, *, force: bool = False,
    progress: Callable[[str], None] = _print,
    before: Callable[[Run], dict[str, Any] | str] | None = None,
) -> pd.DataFrame:
    """Measure every run not yet in ``store`` (all when ``force``, once per ``make`` run) and
    return the tidy table of all of them. ``before(run)`` gives a run's extra job fields, or a
    string: the reason it cannot run (recorded as failed)."""
    version = code_version()
    ids = [r.identity(version) for r in runs]
    run_id_env = os.environ.get("FWSTUDY_RUN_ID")

    def needed(trial_id: str) -> bool:
        if not store.has(trial_id):
            return True
        return force and not (run_id_env and store.record(trial_id).get("run_id") == run_id_env)

    todo = [i for i, t in enumerate(ids) if needed(t)]
    progress(f"{len(runs)} runs: {len(runs) - len(todo)} already measured, {len(todo)} to measure")
    for n, index in enumerate(todo, 1):
        run, run_id = runs[index], ids[index]
        begin = time.monotonic()
        extra = before(run) if before else {}
        if isinstance(extra, str):
            kind = "convergence" if isinstance(run, TrainRun) else "robustness"
            record = make_record(run, run_id, kind, "failed", extra, {}, {})
        else:
            record = run_child(run, run_id, store.root, extra)
        record["run_id"] = run_id_env
        store.save(record)
        outcome = "ok" if record["status"] == "ok" else f"{record['status'].upper()}: {str(record['error']).splitlines()[0]}"
        progress(f"[{n}/{len(todo)}] {run.label()}: {outcome} ({time.monotonic() - begin:.0f} s)")
    return store.table(ids)


def measure_training(profile: Profile, runs: Sequence[TrainRun] | None = None) -> pd.DataFrame:
    """F8's runs (the profile's, unless given), measured where missing."""
    return run_all(list(runs if runs is not None else train_configs(profile)), store_of(profile), force=profile.force)


def measure_robustness(profile: Profile, runs: Sequence[RobustnessRun] | None = None) -> pd.DataFrame:
    """F10's evaluations; the training runs they read are measured first where missing."""
    runs = list(runs if runs is not None else robustness_configs(profile))
    store = store_of(profile)
    version = code_version()
    needed = list({r.identity(version): r for run in runs for r in run.runs}.values())
    trained = run_all(needed, store, force=profile.force)
    ok = set(trained.loc[trained["status"] == "ok", "trial_id"])

    def weights(run: RobustnessRun) -> dict[str, Any] | str:
        files = {}
        for r in run.runs:
            run_id = r.identity(version)
            path = tables.weights_path(store.root, run_id)
            if run_id not in ok or not path.exists():
                return f"training run {r.label()} ({run_id}) did not succeed: no weights to evaluate"
            files[str(r.seed)] = str(path)
        return {"weights": files}

    return run_all(runs, store, force=profile.force, before=weights)


def frameworks_in(table: pd.DataFrame) -> list[str]:
    return [f for f in FRAMEWORKS if f in set(table["framework"])]


def load_tables(profile: Profile, table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The ``kind`` tables of the ok runs in ``table``, with each run's columns beside them."""
    root = paths.results_dir(profile.profile, profile.results_dir)
    return load_tables_at(root, table, kind)


def load_tables_at(root: Path | str, table: pd.DataFrame, kind: str) -> pd.DataFrame:
    runs = table[table["status"] == "ok"].drop_duplicates("trial_id")
    frames = []
    for row in runs.itertuples():
        path = tables.path_of(root, row.trial_id, kind)
        if not path.exists():
            continue
        frame = tables.read(path, kind)
        if kind in ("steps", "epochs"):
            frame = frame.assign(seed=int(row.repeat))
        frames.append(frame.assign(trial_id=row.trial_id, workload=row.workload, framework=row.framework,
                                   mode=row.mode, arm=row.variant, fingerprint=getattr(row, "fingerprint", None)))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
