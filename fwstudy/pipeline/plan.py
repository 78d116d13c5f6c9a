"""``fwstudy plan --profile P``: the trials a run of the notebooks would measure now, with an
estimated time, before anything runs.

Each notebook's list comes from the same functions its code cell calls (``TRIAL_NOTEBOOKS``
for the timing notebooks, the ``configs`` of the others), and each item's fate from the same
rule the batch applies (``harness.batch.reason_to_measure`` for trials, "not stored" for the
other runs). A trial two notebooks share is listed under the first that measures it.

The estimate of an item is the median wall time of the stored records most like it (same task,
workload, framework and mode) in the profile's results, whatever their code version: earlier
runs are the best guide to the next. Without such a record: "no estimate". The parity gate and
GEMM peaks a run may also need are not in the estimate.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwstudy import paths
from fwstudy.config.profile import Profile, load_profile_file, resolve_profile_path

# Per notebook, the calls its code cell makes to build its trials (a test reads the notebooks
# and checks each call is there).
TRIAL_NOTEBOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "01_training_speed": ("training_speed", ("configs",)),
    "02_resource_usage": ("resource_usage", ("configs",)),
    "03_scalability": ("scalability", ("sweep_points", "data_parallel_points", "unique_configs")),
    "04_graph_modes": ("graph_modes", ("eager_configs", "compile_configs", "retrace_configs")),
    "05_inference": ("inference", ("configs",)),
    "11_hardware": ("hardware", ("configs",)),
}
ESTIMATE_RECORDS = 15  # newest comparable records read per kind of item


@dataclass
class Item:
    notebook: str
    label: str
    trial_id: str
    reason: str
    key: tuple[str, str, str, str]  # task, workload, framework, mode
    estimate_s: float | None = None


def trial_configs(notebook: str, profile: Profile) -> list[Any]:
    """The TrialConfigs a timing notebook passes to ``measure``."""
    import importlib

    module_name, _ = TRIAL_NOTEBOOKS[notebook]
    module = importlib.import_module(f"fwstudy.figures.{module_name}")
    if notebook == "03_scalability":
        configs = module.unique_configs([*module.sweep_points(profile), *module.data_parallel_points(profile)])
    elif notebook == "04_graph_modes":
        configs = [*module.eager_configs(profile), *module.compile_configs(profile), *module.retrace_configs(profile)]
    else:
        configs = module.configs(profile)
    return [profile.isolate(config) for config in configs]  # as ``harness.batch.measure`` does


def _trials(profile: Profile, store: Any) -> Iterator[Item]:
    import os

    from fwstudy.harness.batch import reason_to_measure, retry_failed
    from fwstudy.harness.environment import code_version

    version, run_id, retry = code_version(), os.environ.get("FWSTUDY_RUN_ID"), retry_failed()
    for notebook in TRIAL_NOTEBOOKS:
        for config in trial_configs(notebook, profile):
            trial_id = config.identity(version)
            reason = reason_to_measure(config, store.measured(trial_id), run_id=run_id, force=profile.force,
                                       retry=retry)
            yield Item(notebook, f"{config.label()} r{config.repeat}", trial_id, reason or "",
                       (config.task, config.workload, config.framework, config.mode))


def _runs(profile: Profile, store: Any) -> Iterator[Item]:
    """F6, F8, F9, F10 and F12: runs measured when not stored (or with ``force``)."""
    from fwstudy.deployment import runs as deployment
    from fwstudy.figures import convergence, ease_of_use, footprint, robustness
    from fwstudy.harness.environment import code_version
    from fwstudy.usability import runs as usability

    version = code_version()

    def item(notebook: str, label: str, trial_id: str, key: tuple[str, str, str, str]) -> Item:
        stored = store.measured(trial_id) is not None
        return Item(notebook, label, trial_id, "" if stored and not profile.force else
                    ("forced" if stored else "new"), key)

    for run in convergence.configs(profile):
        yield item("08_convergence", run.label(), run.identity(version),
                   ("convergence", run.workload, run.framework, run.mode))
    robustness_runs = robustness.configs(profile)
    training = {r.identity(version): r for run in robustness_runs for r in run.runs}
    for trial_id, run in training.items():
        yield item("10_robustness", f"{run.label()} (training)", trial_id,
                   ("convergence", run.workload, run.framework, run.mode))
    for run in robustness_runs:
        yield item("10_robustness", run.label(), run.identity(version),
                   ("robustness", run.workload, run.framework, run.runs[0].mode))
    jobs = ease_of_use.configs(profile)
    for job in [*jobs["debugging"], *jobs["custom_gradient"]]:
        yield item("09_ease_of_use", _job_label(job), usability.identity(job), _job_key(job))
    for job in footprint.configs(profile):
        yield item("12_footprint", _job_label(job), usability.identity(job), _job_key(job))
    for workload in profile.deployment_workloads:
        job = deployment.train_job(profile, workload)
        train_id = deployment.identity(job)
        yield item("06_deployment", f"train {workload}", train_id, ("deployment_train", workload, "torch", "train"))
        for export in deployment.export_jobs(profile, workload, train_id):
            path = deployment.catalog.PATHS[export["path"]]
            yield item("06_deployment", f"{workload} {export['path']}", deployment.identity(export),
                       ("deployment_export", workload, export["framework"], path.runtime))


def _job_label(job: dict[str, Any]) -> str:
    return " ".join(str(v) if isinstance(v, str) else f"{k}={v}" for k, v in job.items()
                    if k not in ("arrays", "modules"))


def _job_key(job: dict[str, Any]) -> tuple[str, str, str, str]:
    from fwstudy.usability.runs import WORKLOAD_OF

    mode = job.get("mode") or job.get("condition") or job.get("target")
    return (f"usability_{job['task']}", job.get("workload") or WORKLOAD_OF[job["task"]], job["framework"], str(mode))


def estimates(root: Path, keys: set[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], float]:
    """Median wall time (s) of the newest stored records of each key that carry one."""
    import pyarrow.dataset as ds

    folder = root / "trials"
    if not keys or not folder.is_dir():
        return {}
    columns = ["trial_id", "task", "workload", "framework", "mode", "timestamp"]
    try:
        table = ds.dataset(folder, format="parquet").to_table(columns=columns).to_pandas()
    except Exception:  # an unreadable file: the store quarantines it on the next run; no estimate
        return {}
    table = table.drop_duplicates("trial_id")
    found: dict[tuple[str, str, str, str], float] = {}
    for key, group in table.groupby(["task", "workload", "framework", "mode"], dropna=False):
        key = tuple(str(v) for v in key)
        if key not in keys:
            continue
        walls = []
        for trial_id in group.sort_values("timestamp", ascending=False)["trial_id"].head(ESTIMATE_RECORDS):
            try:
                wall = json.loads((root / "records" / f"{trial_id}.json").read_text()).get("wall_s")
            except (OSError, ValueError):
                continue
            if isinstance(wall, (int, float)) and wall > 0:
                walls.append(float(wall))
        if walls:
            found[key] = statistics.median(walls)
    return found


def plan(profile_name: str) -> tuple[Profile, list[Item]]:
    """The profile and every item a run of all notebooks on it would measure (each once)."""
    from fwstudy.results.store import ResultStore

    profile = load_profile_file(resolve_profile_path(profile_name))
    root = paths.results_dir(profile.profile, profile.results_dir)
    store = ResultStore(root, warn=lambda line: None)
    seen: set[str] = set()
    items = []
    for item in [*_trials(profile, store), *_runs(profile, store)]:
        if item.trial_id in seen:
            continue
        seen.add(item.trial_id)
        if item.reason:
            items.append(item)
    times = estimates(root, {i.key for i in items})
    for item in items:
        item.estimate_s = times.get(item.key)
    return profile, items


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def report(profile_name: str, out: Callable[[str], None] = print) -> int:
    """Print the plan: a total line, then per notebook its items with reason and estimate."""
    profile, items = plan(profile_name)
    known = [i.estimate_s for i in items if i.estimate_s is not None]
    missing = len(items) - len(known)
    total = (f"estimated {_duration(sum(known))}" if known else "no estimate") + (
        f" ({missing} without an estimate)" if known and missing else "")
    out(f"profile {profile.profile}: {len(items)} trials and runs to measure; {total}"
        + ("" if items else " (everything is stored)"))
    for notebook in sorted({i.notebook for i in items}):
        mine = [i for i in items if i.notebook == notebook]
        part = sum(i.estimate_s for i in mine if i.estimate_s is not None)
        out(f"{notebook}: {len(mine)} to measure" + (f", ~{_duration(part)}" if part else ""))
        for i in mine:
            estimate = f"~{_duration(i.estimate_s)}" if i.estimate_s is not None else "no estimate"
            out(f"  {i.reason:<15} {i.label}  [{estimate}]")
    out("07_interoperability: not listed (its run is built and measured inside one call, "
        "fwstudy.deployment.runs.interop_run)")
    return 0
