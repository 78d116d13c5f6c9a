"""Inside the child of one F8 training run (job kind ``convergence``) or one F10 evaluation
(job kind ``robustness``): import one framework (rule 1), do the work, write the tables and
weights, then the summary JSON last and atomically: a parent that finds no summary knows the
child died, and records the run as failed with the reason (rule 9).

The framework's code is ``fwstudy/frameworks/<framework>/convergence.py``; this module imports
no framework itself.
"""

from __future__ import annotations

import importlib
import io
import json
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.convergence import tables
from fwstudy.convergence.init import matched_weights
from fwstudy.convergence.plan import RobustnessRun, TrainRun, dataset_for
from fwstudy.errors import error_text
from fwstudy.harness.environment import frameworks_loaded
from fwstudy.results.atomic import atomic_write_bytes, atomic_write_text


def side(framework: str):
    """``fwstudy.frameworks.<framework>.convergence``: imports that framework."""
    return importlib.import_module(f"fwstudy.frameworks.{framework}.convergence")


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: Path | str) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def train(job: dict[str, Any]) -> dict[str, Any]:
    from fwstudy.workloads import get_workload

    run = TrainRun.from_dict(job["run"])
    spec = get_workload(run.workload)
    params = dict(run.workload_params)
    data = dataset_for(run.task, params)
    initial = matched_weights(run.workload, params, run.seed) if run.arm == "matched" else None
    steps_per_epoch = len(data.y_train) // run.batch_size
    result = side(run.framework).train(run, spec, params, data, initial, steps_per_epoch)
    root, run_id = Path(job["root"]), job["run_id"]
    tables.write(tables.path_of(root, run_id, "steps"), "steps", result["steps"])
    tables.write(tables.path_of(root, run_id, "epochs"), "epochs", result["epochs"])
    save_npz(tables.weights_path(root, run_id), result["weights"])
    losses, accuracy = result["steps"]["loss"], result["epochs"]["test_accuracy"]
    metrics = {
        "final_test_accuracy": accuracy[-1],
        "best_test_accuracy": max(accuracy),
        "final_test_loss": result["epochs"]["test_loss"][-1],
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "train_s": result["steps"]["train_s"][-1],
        "first_step_s": result["steps"]["train_s"][0],
        "steps": len(losses),
        "epochs": run.epochs,
        "params": result["info"]["params"],
    }
    return {"metrics": metrics, "info": result["info"]}


def robustness(job: dict[str, Any]) -> dict[str, Any]:
    from fwstudy.workloads import get_workload

    run = RobustnessRun(**{**job["run"], "runs": tuple(TrainRun.from_dict(r) for r in job["run"]["runs"])})
    spec = get_workload(run.workload)
    params = dict(run.runs[0].workload_params)
    data = dataset_for(run.runs[0].task, params)
    weights = {int(seed): load_npz(path) for seed, path in job["weights"].items()}
    result = side(run.framework).evaluate(run, spec, params, data, weights)
    root, run_id = Path(job["root"]), job["run_id"]
    for kind in ("attacks", "attributions", "completeness", "timings"):
        tables.write(tables.path_of(root, run_id, kind), kind, result[kind])
    clean = [a for a, e in zip(result["attacks"]["accuracy"], result["attacks"]["epsilon"], strict=True) if e == 0]
    metrics = {"seeds": len(run.runs)}
    if clean:  # epsilon 0 is in the grid
        metrics["clean_accuracy_median"] = float(np.median(clean))
    return {"metrics": metrics, "info": result["info"]}


def run_job(job: dict[str, Any]) -> int:
    try:
        summary = {"status": "ok", "error": None, **(train(job) if job["kind"] == "convergence" else robustness(job))}
    except Exception as exc:  # recorded as a failed run with its reason (rule 9)
        traceback.print_exc()
        summary = {"status": "failed", "error": error_text(exc), "metrics": {}, "info": {}}
    summary["frameworks_loaded"] = frameworks_loaded()
    atomic_write_text(Path(job["out"]), json.dumps(summary, default=float))
    return 0 if summary["status"] == "ok" else 1
