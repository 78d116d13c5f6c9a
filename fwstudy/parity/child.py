"""Inside one parity child (job kind ``parity``): one framework's half of the gate.

It imports exactly one framework (the job's), computes that twin's forward output, loss,
gradients and optional Adam losses from the job's weights and inputs, and writes them as
``.npz`` with a small JSON summary. The summary is written last, atomically, so a parent that
finds none knows the child died.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy import frameworks
from fwstudy.errors import error_text
from fwstudy.harness.environment import frameworks_loaded
from fwstudy.results.atomic import atomic_write_text


def run(job: dict[str, Any]) -> dict[str, Any]:
    from fwstudy.workloads import get_workload

    spec = get_workload(job["workload"])
    params = spec.resolve_params(job["params"])
    try:
        side = frameworks.load(job["framework"], "parity")
        arrays, info = side.compute(job, spec, params)
        np.savez(job["arrays"], **arrays)
    except Exception as exc:  # the parent reports it; a traceback helps whoever debugs the twin
        traceback.print_exc()
        return {"status": "failed", "error": error_text(exc), "frameworks_loaded": frameworks_loaded()}
    return {"status": "ok", "error": None, **info, "frameworks_loaded": frameworks_loaded()}


def run_job(job: dict[str, Any]) -> int:
    summary = run(job)
    atomic_write_text(Path(job["out"]), json.dumps(summary))
    return 0 if summary["status"] == "ok" else 1
