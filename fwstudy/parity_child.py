"""Entry point of one parity child: ``python -m fwstudy.parity_child JOB.json``.

It imports exactly one framework (the job's), computes that twin's forward output, loss,
gradients and optional Adam losses from the job's weights and inputs, and writes them as
``.npz`` with a small JSON summary. The summary is written last, atomically, so a parent that
finds none knows the child died.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.environment import frameworks_loaded

MODULES = {"torch": "fwstudy.parity_torch", "tensorflow": "fwstudy.parity_tf"}


def error_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}{where}"


def run(job: dict[str, Any]) -> dict[str, Any]:
    from fwstudy.workloads import get_workload

    spec = get_workload(job["workload"])
    params = spec.resolve_params(job["params"])
    try:
        side = importlib.import_module(MODULES[job["framework"]])
        arrays, info = side.compute(job, spec, params)
        np.savez(job["out"], **arrays)
    except Exception as exc:  # the parent reports it; a traceback helps whoever debugs the twin
        traceback.print_exc()
        return {"status": "failed", "error": error_text(exc), "frameworks_loaded": frameworks_loaded()}
    return {"status": "ok", "error": None, **info, "frameworks_loaded": frameworks_loaded()}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    summary = run(job)
    target = Path(job["summary"])
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary))
    tmp.replace(target)
    sys.stdout.flush()
    sys.stderr.flush()
    # As in fwstudy.child: skip interpreter teardown, the results are already on disk.
    os._exit(0 if summary["status"] == "ok" else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
