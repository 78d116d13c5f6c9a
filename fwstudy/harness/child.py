"""The one entry point of every child process: ``python -m fwstudy.harness.child JOB.json``.

The job file's ``kind`` says what the child does, and names the module that does it:

* ``trial``: one measurement (``harness/trial_child.py``)
* ``parity``: one framework's half of the parity gate (``parity/child.py``)
* ``gemm``: one framework's GEMM peak (``harness/peak.py``)
* ``overhead``: the harness-overhead benchmark of one framework (``harness/overhead.py``)
* ``worker``: one data-parallel worker (``harness/distributed/worker.py``)
* ``usability``: a planted bug, a custom-gradient twin or a cold start (``usability/child.py``, F9/F12)
* ``convergence``, ``robustness``: one F8 training run, one F10 evaluation
  (``convergence/child.py``)
* ``export``, ``interop``: one F6 training, export or serving phase, one F7 side
  (``deployment/child.py``)
* ``forkserver``: import a framework once, then fork one trial per request
  (``harness/forkserver.py``)

Each module's ``run_job(job) -> int`` writes its result atomically to ``job["out"]`` (a worker:
into its trial folder) and returns the exit status. This module imports nothing heavy, so the
child's import footprint is its framework's and the measuring code's alone. Its first act is
``lifeline.guard()``: the child, and everything it starts, dies with its parent.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from fwstudy.harness import lifeline

KINDS: dict[str, str] = {
    "trial": "fwstudy.harness.trial_child",
    "parity": "fwstudy.parity.child",
    "gemm": "fwstudy.harness.peak",
    "overhead": "fwstudy.harness.overhead",
    "worker": "fwstudy.harness.distributed.worker",
    "usability": "fwstudy.usability.child",
    "convergence": "fwstudy.convergence.child",
    "robustness": "fwstudy.convergence.child",
    "export": "fwstudy.deployment.child",
    "interop": "fwstudy.deployment.child",
    "forkserver": "fwstudy.harness.forkserver",
}


def main(argv: list[str]) -> int:
    # First: tie this process (and all it will start) to the parent's lifetime.
    lifeline.guard()
    if len(argv) != 1:
        print("usage: python -m fwstudy.harness.child JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    if job.get("kind") not in KINDS:
        print(f"unknown job kind {job.get('kind')!r}; valid kinds: {', '.join(KINDS)}", file=sys.stderr)
        return 2
    code = importlib.import_module(KINDS[job["kind"]]).run_job(job)
    sys.stdout.flush()
    sys.stderr.flush()
    lifeline.disarm()
    # Skip interpreter teardown: framework thread pools (and collective runtimes) can take
    # seconds to unwind, or hang, and the result is already safe on disk.
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
