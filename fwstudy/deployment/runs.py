"""Parent side of F6: the jobs a profile asks for, their children, and the results store.

Per workload: one ``train`` child (PyTorch, the workload's real data), then per export path one
``export`` child (the path's framework only) and, when it succeeds, one ``serve`` child (a
fresh process with the artifact's runtime only: its cold start is a real one). Artifacts live
under ``results/<profile>/artifacts/<workload>/<training run>/<path>/``, beside the weights and
inputs they came from.

Runs are stored like the other non-trial runs (``ResultStore``; task ``deployment_train`` or
``deployment_export``, the path in ``variant``, the runtime in ``mode``). A run's id hashes the
job, this package's and the framework halves' code (``code_version`` covers the latter) and
the environment fingerprint; an export's id also hashes the training run it starts from. A
child that crashes or times out is a failed run with its reason, and the batch goes on
(rule 9).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile, threads_of
from fwstudy.deployment import catalog, interop
from fwstudy.harness import lifeline
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
    run_job,
)
from fwstudy.results.store import ResultStore

PACKAGE_DIR = Path(__file__).resolve().parent
# Files of this package that decide what a run measures (figures and tables only read).
MEASURING = ("catalog.py", "child.py", "interop.py", "runs.py", "runtime_litert.py", "runtime_onnx.py", "serve.py")


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def deployment_version() -> str:
    return subpackage_version(PACKAGE_DIR, MEASURING)


def identity(job: dict[str, Any]) -> str:
    blob = json.dumps({"job": job, "code": deployment_version(), "env": fingerprint_digest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def store_of(profile: Profile) -> ResultStore:
    return ResultStore(paths.results_dir(profile.profile, profile.results_dir))


def failed(outcome: ChildOutcome, phase: str) -> dict[str, Any]:
    """The result of a child that left none: how it ended and its last output (rule 9)."""
    return {"status": outcome.status, "error": outcome.error(phase=phase)}


def child(job: dict[str, Any], profile: Profile, kind: str = "export", python: str = sys.executable,
          env_extra: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """One child with the trials' environment (threads before the import, a fresh compile cache
    in its own folder); its result, or a failed one saying how it ended."""
    with lifeline.owned_tempdir(kind) as tmp:
        env = base_child_environment(threads_of(profile), 1, profile.device)
        env.update(compile_cache_variables(str(tmp / "cache")))
        env.update(env_extra or {})
        full = {"kind": kind, **job, "spawn_time": time.time()}
        outcome, result = run_job(full, timeout_s=profile.trial_timeout_s, env=env, workdir=tmp, python=python)
    return (result if result is not None else failed(outcome, job.get("phase") or job.get("side", kind))), outcome.wall_s


def make_record(job: dict[str, Any], run_id: str, result: dict[str, Any], threads: int, task: str) -> dict[str, Any]:
    metrics = {k: float(v) for k, v in result.items()
               if isinstance(v, int | float) and not isinstance(v, bool) and v is not None and k != "pid"}
    env = {**base_environment(), "fingerprint": fingerprint(), "code_version": code_version(),
           "deployment_version": deployment_version(), "device": "cpu", "threads": threads}
    path = catalog.PATHS.get(job.get("path", ""))
    return {
        "trial_id": run_id, "workload": job["workload"], "framework": job.get("framework", "torch"),
        "mode": path.runtime if path else job.get("task") or job.get("phase"), "device": "cpu", "batch_size": None, "threads": threads,
        "repeat": 0, "replica": 0, "status": result["status"], "error": result.get("error"), "metrics": metrics,
        "samples": {}, "result": result, "job": job,
        "config": {"task": task, "steps": int(job.get("latency_calls", 0)), "warmup": int(job.get("warmup", 0)),
                   "interop_threads": 1, "workload_params": {}, "variant": job.get("path"), "job": job},
        "env": env,
    }


def artifacts_root(profile: Profile) -> Path:
    return store_of(profile).root / "artifacts"


def train_job(profile: Profile, workload: str) -> dict[str, Any]:
    return {"phase": "train", "workload": workload, "epochs": profile.deployment_epochs, "seed": 0,
            "large_batch": profile.inference_batch_size, "calibration": profile.deployment_calibration,
            "threads": threads_of(profile)}


def export_jobs(profile: Profile, workload: str, train_id: str) -> list[dict[str, Any]]:
    """One job per path of ``deployment_paths`` whose framework is in ``frameworks``."""
    folder = artifacts_root(profile) / workload / train_id
    jobs = []
    for name in profile.deployment_paths:
        path = catalog.check_path(name)
        if path.framework not in profile.frameworks:
            continue
        jobs.append({"phase": "export", "workload": workload, "framework": path.framework, "path": name,
                     "train_id": train_id, "weights": str(folder / "weights.npz"), "inputs": str(folder / "inputs.npz"),
                     "artifact_dir": str(folder / name), "max_batch": max(profile.inference_batch_size, 1024),
                     "threads": threads_of(profile), "warmup": profile.warmup,
                     "latency_calls": profile.deployment_latency_calls,
                     "throughput_calls": profile.deployment_throughput_calls})
    return jobs


class Runner:
    """Runs the jobs not yet stored (all with ``force``, once per ``make`` run) and saves each
    record the moment its children end."""

    def __init__(self, profile: Profile, progress: Callable[[str], None] = _print, python: str = sys.executable):
        self.profile, self.progress, self.python = profile, progress, python
        self.store = store_of(profile)
        self.run_env = os.environ.get("FWSTUDY_RUN_ID")

    def stored(self, run_id: str) -> dict[str, Any] | None:
        record = self.store.measured(run_id)
        if record is None:
            return None
        if self.profile.force and not (self.run_env and record.get("run_id") == self.run_env):
            return None
        return record

    def save(self, job, run_id, result, task) -> dict[str, Any]:
        record = make_record(job, run_id, result, threads_of(self.profile), task)
        record["run_id"] = self.run_env
        self.store.save(record)
        return record

    def train(self, workload: str) -> dict[str, Any]:
        job = train_job(self.profile, workload)
        run_id = identity(job)
        folder = artifacts_root(self.profile) / workload / run_id
        record = self.stored(run_id)
        if record is not None and record["status"] == "ok" and (folder / "weights.npz").exists():
            return record
        folder.mkdir(parents=True, exist_ok=True)
        begin = time.monotonic()
        result, _ = child({**job, "weights": str(folder / "weights.npz"), "inputs": str(folder / "inputs.npz")},
                          self.profile, python=self.python)
        self.progress(f"train {workload}: {note(result)} ({time.monotonic() - begin:.0f} s)")
        return self.save(job, run_id, result, "deployment_train")

    def export(self, job: dict[str, Any]) -> dict[str, Any]:
        run_id = identity(job)
        record = self.stored(run_id)
        if record is not None:
            return record
        begin = time.monotonic()
        result, _ = child(job, self.profile, python=self.python)
        if result["status"] == "ok":
            served, _ = child({**job, "phase": "serve", "artifact": result["artifact"],
                               "reference": str(Path(job["artifact_dir"]) / "reference.npz")},
                              self.profile, python=self.python)
            status, error = served.pop("status"), served.pop("error")
            served.pop("pid", None)
            result.update(served)
            if status != "ok":
                result.update(status=status, error=f"serve: {error}")
        self.progress(f"{job['workload']} {job['path']}: {note(result)} ({time.monotonic() - begin:.0f} s)")
        return self.save(job, run_id, result, "deployment_export")

    def run(self, workloads: list[str]) -> list[dict[str, Any]]:
        records = []
        for workload in workloads:
            trained = self.train(workload)
            records.append(trained)
            jobs = export_jobs(self.profile, workload, trained["trial_id"])
            if trained["status"] != "ok":
                for job in jobs:  # nothing to export: each path says why (rule 9)
                    result = {"status": "failed", "error": f"training failed: {trained['error']}"}
                    records.append(self.save(job, identity(job), result, "deployment_export"))
                continue
            self.progress(f"{workload}: {len(jobs)} export paths")
            records.extend(self.export(job) for job in jobs)
        return records


def note(result: dict[str, Any]) -> str:
    if result["status"] == "ok":
        return "ok"
    return f"{result['status'].upper()}: {str(result['error']).splitlines()[0]}"


def flat(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: the job's fields, the result's, and the environment's identity."""
    rows = []
    for record in records:
        env = record.get("env", {})
        task = record["config"]["task"]
        rows.append({**record["job"], **record["result"], "task": task, "record_id": record["trial_id"],
                     "host": env.get("hostname"), "cpu_model": env.get("cpu_model"), "threads": record.get("threads"),
                     "code_version": env.get("deployment_version"),
                     "torch_version": env.get("fingerprint", {}).get("torch"),
                     "tensorflow_version": env.get("fingerprint", {}).get("tensorflow")})
    return pd.DataFrame(rows)


def measure_deployment(profile: Profile, progress: Callable[[str], None] = _print,
                       python: str = sys.executable) -> pd.DataFrame:
    """F6: every workload of ``deployment_workloads`` along every path of ``deployment_paths``."""
    store = store_of(profile)
    store.check_writable()
    with store.lock(progress):
        return flat(Runner(profile, progress, python).run(profile.deployment_workloads))


# --- F7 -----------------------------------------------------------------------------------------

# The logits of the matrix, in the order figures show them.
# "TF eager" is the TensorFlow twin, a Keras model, on Keras' TensorFlow backend; "Keras on
# torch" is the same Keras model and weights on Keras' torch backend.
INTEROP_SOURCES = ("PT eager", "TF eager", "ONNX from PT", "ONNX from TF", "Keras on torch")


def interop_inputs(workload: str, batch: int, seed: int = 0) -> np.ndarray:
    """The shared inputs: the workload's seeded synthetic batch at its default shape."""
    from fwstudy.workloads import get_workload

    spec = get_workload(workload)
    x, _ = spec.synthetic_batch(spec.resolve_params({}), batch, np.random.default_rng(seed))
    return x


def interop_run(runner: Runner, workload: str) -> dict[str, Any]:
    """One workload's F7 run: six children, one side each; the matrix from their logits."""
    profile = runner.profile
    job = {"task": "interop", "workload": workload, "batch": profile.interop_batch, "seed": 0,
           "steps": profile.keras_backend_steps, "threads": threads_of(profile)}
    run_id = identity(job)
    record = runner.stored(run_id)
    if record is not None:
        return record
    begin = time.monotonic()
    folder = artifacts_root(profile) / workload / "interop" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "inputs.npz", x=interop_inputs(workload, profile.interop_batch))
    common = {**job, "inputs": str(folder / "inputs.npz"), "weights": str(folder / "weights.npz")}
    sides: dict[str, dict[str, Any]] = {}
    onnx = {"torch": str(folder / "from_torch.onnx"), "tensorflow": str(folder / "from_tensorflow.onnx")}
    for framework in ("torch", "tensorflow"):
        sides[framework], _ = child({**common, "side": framework, "onnx": onnx[framework]}, profile, "interop",
                                    runner.python)
    present = {k: v for k, v in onnx.items() if Path(v).exists()}
    sides["onnxruntime"], _ = child({**common, "side": "onnxruntime", "onnx": present}, profile, "interop",
                                    runner.python)
    sides["keras_torch"], _ = child({**common, "side": "keras"}, profile, "interop", runner.python,
                                    env_extra={"KERAS_BACKEND": "torch"})
    sides["keras_tensorflow"] = sides["tensorflow"]  # the TF twin is the Keras model on TF
    logits: dict[str, np.ndarray] = {}
    wanted = {"PT eager": ("torch", "logits"), "TF eager": ("tensorflow", "logits"),
              "ONNX from PT": ("onnxruntime", "torch_logits"), "ONNX from TF": ("onnxruntime", "tensorflow_logits"),
              "Keras on torch": ("keras_torch", "logits")}
    for name, (side, key) in wanted.items():
        if sides[side].get("status") == "ok" and key in sides[side]:
            logits[name] = np.asarray(sides[side][key], dtype=np.float64)
    errors = {side: str(r["error"]).splitlines()[0] for side, r in sides.items() if r.get("status") != "ok"}
    pairs = interop.matrix(logits)
    # The run stands on the four routes of the ONNX question; Keras on the torch backend is a
    # second question, and its failure (with its reason) leaves the matrix without its row.
    missing = sorted(set(INTEROP_SOURCES[:4]) - set(logits))
    result: dict[str, Any] = {
        "status": "failed" if missing else "ok",
        "error": (f"missing {', '.join(missing)}: " + "; ".join(f"{k}: {e}" for k, e in errors.items()))
                 if missing else None,
        "side_errors": errors,
        "matrix": pairs, "logit_scale": max((float(np.max(np.abs(v))) for v in logits.values()), default=None),
        "max_pairwise": max((v for row in pairs.values() for v in row.values()), default=None),
        "tolerance": interop.FORWARD_TOLERANCE,
        "graphs": {k: sides["onnxruntime"].get(f"{k}_graph") for k in ("torch", "tensorflow")},
        "onnx_runtime_frameworks": sides["onnxruntime"].get("frameworks_loaded"),
        "keras": {backend: {k: sides[f"keras_{backend}"].get(k)
                            for k in ("backend", "step_time_ms_median", "frameworks_loaded", "status", "error")}
                  for backend in ("torch", "tensorflow")},
        "onnx_export_s": {k: sides[k].get("onnx_export_s") for k in ("torch", "tensorflow")},
    }
    for backend in ("torch", "tensorflow"):
        result[f"keras_{backend}_step_ms"] = sides[f"keras_{backend}"].get("step_time_ms_median")
    runner.progress(f"interop {workload}: {note(result)} ({time.monotonic() - begin:.0f} s)")
    return runner.save({**job, "framework": "both"}, run_id, result, "interop")


def measure_interop(profile: Profile, progress: Callable[[str], None] = _print,
                    python: str = sys.executable) -> list[dict[str, Any]]:
    """F7: the matrix of every workload of ``interop_workloads``; one stored record each."""
    store = store_of(profile)
    store.check_writable()
    runner = Runner(profile, progress, python)
    with store.lock(progress):
        return [interop_run(runner, workload)["result"] | {"workload": workload}
                for workload in profile.interop_workloads]
