"""The child side of F6 and F7: ``python -m fwstudy.harness.child JOB`` with ``kind: export``
or ``kind: interop``. One job, one process, one framework or one runtime (rule 1).

``export`` jobs have a ``phase``:

* ``train``: PyTorch trains the workload on its real data and writes the weights and inputs
  every later process reads (``frameworks/torch/export.py``);
* ``export``: one framework writes one path's artifact, with its eager model's logits on the
  held-out split beside it (the reference drift is measured against);
* ``serve``: a fresh process loads the artifact in its own runtime and times it
  (``deployment/serve.py``).

``interop`` jobs (F7) have a ``side``: ``torch`` or ``tensorflow`` (the eager twin from the
shared weights, its logits and its ONNX file), ``onnxruntime`` (both ONNX files run with no
framework loaded), ``keras`` (the TensorFlow twin's Keras model on the backend the job's
environment names: parity and step time).

A path the framework lacks, or an unknown one, is bad input: one line on stderr, exit 2, no
result. Any other exception is a failed result with its reason (rule 9); only a crash leaves no
result, and the parent records that instead. A failed result's ``error`` is one line (the
exception and where it came from: what a table shows); ``error_detail`` keeps the whole message
and traceback (a converter's error names the op that failed at the end of a long message).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from fwstudy.deployment import catalog
from fwstudy.errors import BadInput, error_text
from fwstudy.results.atomic import atomic_write_text, strict_json

PHASES = ("train", "export", "serve")
SIDES = ("torch", "tensorflow", "onnxruntime", "keras")
DETAIL_CHARS = 20_000  # the end of a failure's message and traceback, kept in its record


def error_detail(exc: BaseException) -> str:
    """The exception's whole message and traceback (its last ``DETAIL_CHARS``)."""
    return "".join(traceback.format_exception(exc))[-DETAIL_CHARS:]


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_phase(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    module = importlib.import_module(catalog.EXPORT_MODULES[job["framework"]])
    inputs = dict(np.load(job["inputs"]))
    model = module.eager_model(job)
    logits = np.asarray(module.reference(model, inputs["x_test"]), dtype=np.float64)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == inputs["y_test"]))
    folder = Path(job["artifact_dir"])
    shutil.rmtree(folder, ignore_errors=True)  # a rerun's artifact, never a stale one
    folder.mkdir(parents=True)
    np.savez(folder / "reference.npz", logits=logits, accuracy=accuracy)
    target, seconds = module.export(job, model, inputs)
    return {"artifact": str(target), "export_s": seconds, "size_bytes": size_on_disk(target),
            "size_mb": size_on_disk(target) / 2**20, "eager_accuracy": accuracy}


def run_phase(job: dict[str, Any]) -> dict[str, Any]:
    phase = job.get("phase")
    if phase not in PHASES:
        raise BadInput(f"unknown export phase {phase!r}; valid phases: {', '.join(PHASES)}")
    if phase == "train":
        return importlib.import_module(catalog.EXPORT_MODULES["torch"]).train(job)
    path = catalog.check_path(job.get("path"), job.get("framework"))
    if phase == "export":
        return export_phase(job)
    from fwstudy.deployment import serve

    return serve.serve({**job, "runtime": path.runtime})


def run_interop(job: dict[str, Any]) -> dict[str, Any]:
    side = job.get("side")
    if side not in SIDES:
        raise BadInput(f"unknown interop side {side!r}; valid sides: {', '.join(SIDES)}")
    from fwstudy.deployment import interop

    return interop.run_side(job)


def run_job(job: dict[str, Any]) -> int:
    try:
        result = run_interop(job) if job.get("kind") == "interop" else run_phase(job)
        result = {"status": "ok", "error": None, **result}
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        result = {"status": "failed", "error": error_text(exc), "error_detail": error_detail(exc)}
    result["pid"] = os.getpid()
    atomic_write_text(Path(job["out"]), strict_json(result, default=str))
    return 0
