"""What a Dask worker runs for one trial: the local harness, in a fresh child process.

Kept small and free of client code: the worker imports this module (and through it the
harness) and nothing of the batch. The worker's event loop never imports a framework either:
the trial's framework lives only in the child ``run_trial`` starts.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig


def worker_facts() -> dict[str, Any]:
    """What the client checks before sending trials here: the same measuring code, and the
    environment fingerprint trial ids are hashed with on this host."""
    from fwstudy.harness.environment import code_version, fingerprint_digest

    return {"code_version": code_version(), "fingerprint": fingerprint_digest(),
            "hostname": socket.gethostname(), "pid": os.getpid()}


def run_on_worker(config: TrialConfig, gemm_size: int, batch_token: str, code: str) -> dict[str, Any]:
    """Measure ``config`` on this worker and return its record, which says where it ran.

    The trials of one batch share compile caches on this worker (as a local batch shares
    them, ``harness.batch.measure``), in the worker's own folder, which Dask removes with the
    worker. ``code`` is the client's code version: a worker running other measuring code
    would store numbers the client's ids do not describe, so it refuses."""
    from distributed import get_worker

    from fwstudy.harness.environment import code_version
    from fwstudy.harness.runner import run_trial

    if code_version() != code:
        raise RuntimeError(f"worker code version {code_version()} differs from the client's {code}:"
                           " install the same fwstudy checkout on every host")
    worker = get_worker()
    cache = Path(worker.local_directory, f"fwstudy-compile-cache-{batch_token}")
    cache.mkdir(parents=True, exist_ok=True)
    record = run_trial(config, gemm_size=gemm_size, cache_dir=str(cache))
    record["dask"] = {"worker": worker.address, "worker_name": str(worker.name),
                      "hostname": socket.gethostname(), "worker_pid": os.getpid()}
    return record
