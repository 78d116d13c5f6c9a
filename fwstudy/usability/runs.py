"""Parent side of F9b, F9c and F12: which child runs a profile asks for, running them, and
keeping each result in the results store of ``results/<profile>/``.

These runs are not training trials (``TrialConfig`` has no planted bug, no import condition),
but each is stored like one (``ResultStore``: its numbers in the tidy table with task
``usability_<task>``, the whole result in its JSON record), written when its child ends, with
the environment it ran in. Its id hashes the job, the measuring code (``code_version`` plus
this package's own files) and the environment fingerprint, so a rerun reuses what is measured
and never a record of other code or another machine; ``force`` measures again. A child that crashes or times out is recorded as failed with its reason
(rule 9); the tables keep it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile, threads_of
from fwstudy.harness.environment import (
    base_environment,
    code_version,
    fingerprint,
    fingerprint_digest,
    subpackage_version,
)
from fwstudy.harness.process import (
    ChildOutcome,
    base_child_environment,
    compile_cache_variables,
    run_child,
    run_job,
)
from fwstudy.results.atomic import atomic_write_text
from fwstudy.results.store import ResultStore
from fwstudy.usability import custom_gradient, footprint
from fwstudy.usability.catalog import API_LEVELS, CUSTOM_GRADIENT_VARIANTS, DEBUG_MODES

PACKAGE_DIR = Path(__file__).resolve().parent


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


# The files of this package that decide what a run measures (the framework halves are in
# ``code_version``); code_metrics.py only parses, so a change there re-measures nothing.
MEASURING = ("catalog.py", "child.py", "custom_gradient.py", "footprint.py", "planted.py", "runs.py")


def usability_version() -> str:
    return subpackage_version(PACKAGE_DIR, MEASURING)


def identity(job: dict[str, Any]) -> str:
    blob = json.dumps({"job": job, "code": usability_version(), "env": fingerprint_digest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def failed(outcome: ChildOutcome) -> dict[str, Any]:
    """The result of a child that left none: how it ended and its last output (rule 9)."""
    return {"status": outcome.status, "error": outcome.error()}


def child_run(job: dict[str, Any], profile: Profile, keep: Path) -> dict[str, Any]:
    """One ``usability`` child with the trials' environment (threads set before the import,
    fresh compile caches); arrays it writes are kept beside its record."""
    with tempfile.TemporaryDirectory(prefix="fwstudy-usability-") as tmp:
        env = base_child_environment(threads_of(profile), 1, profile.device)
        env.update(compile_cache_variables(str(Path(tmp, "cache"))))
        full = {"kind": "usability", **job}
        if job.get("arrays"):
            full["arrays"] = str(Path(tmp, "arrays.npz"))
        if job["task"] == "cold_start":
            full["spawn_time"] = time.time()
        outcome, result = run_job(full, timeout_s=profile.trial_timeout_s, env=env, workdir=Path(tmp))
        result = result if result is not None else failed(outcome)
        if job.get("arrays") and Path(tmp, "arrays.npz").exists():
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp, "arrays.npz"), keep)
            result["arrays"] = str(keep)
        result["wall_s"] = outcome.wall_s
    return result


def import_run(job: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """``python -X importtime`` importing one framework and its high-level API, in the warm or
    cold bytecode condition (``footprint`` says how), with the page-cache residency before."""
    with tempfile.TemporaryDirectory(prefix="fwstudy-import-") as tmp:
        env = base_child_environment(threads_of(profile), 1, profile.device)
        if job["condition"] == "cold":
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp, "pycache"))
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.pop("PYTHONPYCACHEPREFIX", None)
        library = footprint.largest_library(job["framework"])
        resident = footprint.resident_fraction(library)
        out, err = Path(tmp, "out.json"), Path(tmp, "importtime.txt")
        argv = [sys.executable, "-X", "importtime", "-c", footprint.IMPORT_CODE, str(out), str(err), *job["modules"]]
        outcome = run_child(argv, timeout_s=profile.trial_timeout_s, env=env)
        if outcome.returncode != 0 or not out.exists():
            result = failed(outcome)
        else:
            rows = footprint.parse_importtime(err.read_text(errors="replace"))
            marks = json.loads(out.read_text())
            result = {"status": "ok", "error": None, **marks,
                      "top_costs": footprint.top_costs(rows),
                      "top_modules": sorted(rows, key=lambda r: r["self_s"], reverse=True)[:30],
                      "importtime_modules": len(rows),
                      "importtime_total_s": sum(r["self_s"] for r in rows)}
        result.update(page_cache_library=str(library) if library else None, page_cache_resident_before=resident,
                      wall_s=outcome.wall_s)
    return result


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: a NaN loss is a fact the result
    states elsewhere (``first_nonfinite_step``), not a number a strict JSON record can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


# The tidy table's workload and mode columns of each task (their rows are not training trials).
WORKLOAD_OF = {"debug": "planted_bug", "custom_gradient": "custom_gradient", "import": "import"}


def make_record(job: dict[str, Any], run_id: str, result: dict[str, Any], threads: int,
                before: dict[str, Any] | None = None) -> dict[str, Any]:
    """A record the store's tidy table reads like any trial's (task ``usability_<task>``; the bug,
    variant, API level or bytecode condition in ``variant``); the child's whole result is kept
    in ``result``, its numbers (and flags, as 0/1) in ``metrics``. ``before``: the environment
    read just before the run started (its load average is the one that slowed it)."""
    result = finite(result)
    metrics = {k: float(v) for k, v in result.items()
               if isinstance(v, int | float) and v is not None and k not in ("pid", "repeat")}
    env = {**(before or base_environment()), "fingerprint": fingerprint(), "code_version": code_version(),
           "usability_version": usability_version(), "device": "cpu", "threads": threads}
    variant = job.get("bug") or job.get("variant") or job.get("level") or job.get("condition")
    return {
        "trial_id": run_id, "workload": job.get("workload") or WORKLOAD_OF[job["task"]],
        "framework": job["framework"], "mode": job.get("mode") or job.get("condition") or job.get("target"),
        "device": "cpu", "batch_size": None, "threads": threads, "repeat": int(job.get("repeat", 0)),
        "replica": 0, "status": result["status"], "error": result.get("error"), "metrics": metrics,
        "samples": {}, "result": result, "job": job,
        "config": {"task": f"usability_{job['task']}", "steps": int(job.get("steps", 0)),
                   "warmup": int(job.get("warmup", 0)), "interop_threads": 1, "workload_params": {},
                   "variant": variant, "job": job},
        "env": env,
    }


def store_of(profile: Profile) -> ResultStore:
    return ResultStore(paths.results_dir(profile.profile, profile.results_dir))


def collect(
    profile: Profile, jobs: list[dict[str, Any]], progress: Callable[[str], None] = _print,
) -> list[dict[str, Any]]:
    """Run every job not yet stored (all when ``profile.force``, once per ``make`` run); return
    the records in the order of ``jobs``."""
    store = store_of(profile)
    ids = [identity(job) for job in jobs]
    run_env = os.environ.get("FWSTUDY_RUN_ID")

    def needed(run_id: str) -> bool:
        if not store.has(run_id):
            return True
        return profile.force and not (run_env and store.record(run_id).get("run_id") == run_env)

    todo = [i for i, run_id in enumerate(ids) if needed(run_id)]
    progress(f"{len(jobs)} runs: {len(jobs) - len(todo)} already measured, {len(todo)} to measure")
    for n, index in enumerate(todo, 1):
        job, run_id = jobs[index], ids[index]
        begin = time.monotonic()
        before = base_environment()
        if job["task"] == "import":
            result = import_run(job, profile)
        else:
            result = child_run(job, profile, store.root / "usability" / f"{run_id}.npz")
        record = make_record(job, run_id, result, threads_of(profile), before)
        record["run_id"] = run_env
        store.save(record)
        label = " ".join(str(v) for k, v in job.items() if k not in ("task", "arrays", "modules"))
        note = "ok" if result["status"] == "ok" else f"{result['status'].upper()}: {str(result['error']).splitlines()[0]}"
        progress(f"[{n}/{len(todo)}] {job['task']} {label}: {note} ({time.monotonic() - begin:.0f} s)")
    return [store.record(run_id) for run_id in ids]


def flat(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: the job's fields, then the result's (lists and dicts stay as they
    are, for the figure's own use), then the environment's identity."""
    rows = []
    for record in records:
        env = record.get("env", {})
        rows.append({**record["job"], **record["result"], "record_id": record["trial_id"],
                     "host": env.get("hostname"), "cpu_model": env.get("cpu_model"), "threads": record.get("threads"),
                     "code_version": env.get("usability_version"), "load_average_1m": env.get("load_average_1m"),
                     "torch_version": env.get("fingerprint", {}).get("torch"),
                     "tensorflow_version": env.get("fingerprint", {}).get("tensorflow")})
    return pd.DataFrame(rows)


# --- what each figure asks for -----------------------------------------------------------------


def debugging_jobs(profile: Profile) -> list[dict[str, Any]]:
    """F9b: every planted bug of ``debug_bugs`` in every mode of ``debug_modes`` each framework has."""
    return [
        {"task": "debug", "bug": bug, "framework": framework, "mode": mode, "steps": profile.debug_steps}
        for bug in profile.debug_bugs
        for framework in profile.frameworks
        for mode in profile.debug_modes
        if mode in DEBUG_MODES[framework]
    ]


def custom_gradient_jobs(profile: Profile) -> list[dict[str, Any]]:
    """F9c: each framework's twin and its builtin counterpart in every mode of
    ``custom_gradient_modes`` it has; the eager custom run also writes the parity arrays."""
    jobs = []
    for framework in profile.frameworks:
        for mode in profile.custom_gradient_modes:
            if mode not in DEBUG_MODES[framework]:
                continue
            for variant in CUSTOM_GRADIENT_VARIANTS:
                jobs.append({"task": "custom_gradient", "framework": framework, "mode": mode, "variant": variant,
                             "steps": profile.custom_gradient_steps, "warmup": profile.warmup,
                             "arrays": mode == "eager" and variant == "custom"})
    return jobs


def import_sequence(framework: str, levels: list[str]) -> list[str]:
    """What an import run imports: the framework, then the packages its API levels of ``levels``
    need beyond it (Keras for TensorFlow's; Lightning only when its level is measured)."""
    wanted = {footprint.HIGH_LEVEL[framework]} if framework == "tensorflow" or "lightning" in levels else set()
    return [m for m in footprint.IMPORTS[framework] if m == footprint.IMPORTS[framework][0] or m in wanted]


def footprint_jobs(profile: Profile) -> list[dict[str, Any]]:
    """F12: import runs (warm, then cold when ``footprint_cold_import``), then cold starts to the
    first training step at each API level of ``footprint_levels`` and (``footprint_predict``) to
    the first prediction, ``footprint_repeats`` times; frameworks in a shuffled order per repeat (rule 7)."""
    order = random.Random(0)
    jobs = []
    conditions = ["warm", "cold"] if profile.footprint_cold_import else ["warm"]
    for condition in conditions:
        for repeat in range(profile.footprint_repeats):
            for framework in order.sample(profile.frameworks, len(profile.frameworks)):
                jobs.append({"task": "import", "framework": framework, "condition": condition, "repeat": repeat,
                             "modules": import_sequence(framework, profile.footprint_levels)})
    for repeat in range(profile.footprint_repeats):
        for framework in order.sample(profile.frameworks, len(profile.frameworks)):
            levels = [lv for lv in profile.footprint_levels if API_LEVELS[lv]["framework"] == framework]
            for level in levels:
                jobs.append({"task": "cold_start", "framework": framework, "level": level, "target": "train",
                             "workload": profile.footprint_workload, "repeat": repeat})
            if levels and profile.footprint_predict:
                jobs.append({"task": "cold_start", "framework": framework, "level": levels[0], "target": "predict",
                             "workload": profile.footprint_workload, "repeat": repeat})
    return jobs


def measure_debugging(profile: Profile) -> pd.DataFrame:
    return flat(collect(profile, debugging_jobs(profile)))


def measure_custom_gradient(profile: Profile) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The cost rows, and the parity report from the eager runs' arrays (None without both)."""
    table = flat(collect(profile, custom_gradient_jobs(profile)))
    return table, parity_of(table)


def parity_of(table: pd.DataFrame) -> dict[str, Any] | None:
    if table.empty or "arrays" not in table:
        return None
    arrays = {}
    for row in table.itertuples():
        if isinstance(row.arrays, str) and row.status == "ok" and Path(row.arrays).exists():
            arrays[row.framework] = custom_gradient.load_arrays(row.arrays)
    if set(arrays) != {"torch", "tensorflow"}:
        return None
    return custom_gradient.parity(arrays["torch"], arrays["tensorflow"])


def measure_footprint(profile: Profile) -> dict[str, Any]:
    """Install sizes and dependencies (read now from this environment's metadata) and the
    measured import and cold-start runs."""
    records = collect(profile, footprint_jobs(profile))
    install = pd.DataFrame(footprint.install_table(list(profile.frameworks)))
    atomic_write_text(store_of(profile).root / "usability" / "install.json", install.to_json(orient="records", indent=1))
    table = flat(records)
    return {"install": install, "imports": table[table["task"] == "import"].reset_index(drop=True),
            "cold_start": table[table["task"] == "cold_start"].reset_index(drop=True)}
