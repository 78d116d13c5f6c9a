"""What every data-parallel worker does around its framework's training: framework-free.

A worker announces its pid the moment it starts (so the parent can prove none outlives the
trial), dies with its launcher, and ends by writing one JSON file, atomically: its samples, or
the one-line error that stopped it. A worker that leaves no file died from outside Python
(signal, abort); the parent then reports how, from the exit status.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.errors import error_text
from fwstudy.harness.distributed.plan import Plan
from fwstudy.results.atomic import atomic_write_text

# Test-only fault injection: the worker of this global rank kills itself with SIGKILL once it
# has finished this many steps (the first, compiling step counts as one). Never set by the
# study; a record made with it says so in env.distributed.fault_injection.
FAULT_RANK_VARIABLE = "FWSTUDY_FAULT_RANK"
FAULT_AFTER_VARIABLE = "FWSTUDY_FAULT_AFTER_STEPS"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerContext:
    config: TrialConfig
    plan: Plan
    rank: int
    local_rank: int
    out_dir: Path

    @property
    def worker_config(self) -> TrialConfig:
        """The trial as one worker sees it: its share of the threads and of the batch."""
        return dataclasses.replace(
            self.config, threads=self.plan.threads_per_worker, batch_size=self.plan.per_worker_batch,
            workers=1, scaling="strong",
        )


def result_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"rank-{rank}.json"


def started_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"started-{rank}.json"


def die_with_parent() -> None:
    """SIGKILL this worker when its launcher dies, so that killing the launcher (timeout,
    crash) can never leave a worker blocked in a collective forever."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() == 1:  # the launcher died before the prctl took effect
        os._exit(1)


def lifetime_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fault_hook(rank: int) -> Callable[[int], None]:
    """``hook(i)`` after step ``i``: a no-op unless the test-only fault variables name this rank."""
    target, after = os.environ.get(FAULT_RANK_VARIABLE), os.environ.get(FAULT_AFTER_VARIABLE)
    if target is None or int(target) != rank:
        return lambda i: None
    limit = int(after or 1)

    def hook(i: int) -> None:
        if i + 1 >= limit:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def fault_injection() -> dict[str, str] | None:
    values = {k: os.environ[k] for k in (FAULT_RANK_VARIABLE, FAULT_AFTER_VARIABLE) if k in os.environ}
    return values or None


# The rank of a worker, as its launcher gives it: torchrun's variables for PyTorch, ours (set
# with TF_CONFIG by ``launch._start_tf``) for TensorFlow.
RANK_VARIABLES = {"torch": ("RANK", "LOCAL_RANK"), "tensorflow": ("FWSTUDY_DIST_RANK", "FWSTUDY_DIST_LOCAL_RANK")}


def job_path(out_dir: Path) -> Path:
    """The job file every worker of a trial is started with (``harness.child``'s entry point)."""
    return out_dir / "worker-job.json"


def load_context(out_dir: Path, rank: int, local_rank: int) -> WorkerContext:
    config = TrialConfig.from_dict(json.loads((out_dir / "config.json").read_text()))
    plan = Plan.from_dict(json.loads((out_dir / "plan.json").read_text()))
    return WorkerContext(config=config, plan=plan, rank=rank, local_rank=local_rank, out_dir=out_dir)


def run_job(job: dict[str, Any]) -> int:
    """Inside one worker (job kind ``worker``): run the framework's ``train`` and write its
    result, or the error that stopped it, for the parent."""
    from fwstudy import frameworks

    die_with_parent()
    out_dir = Path(job["out_dir"])
    rank_name, local_name = RANK_VARIABLES[job["framework"]]
    rank, local_rank = int(os.environ[rank_name]), int(os.environ[local_name])
    started = {"rank": rank, "local_rank": local_rank, "pid": os.getpid(), "host": socket.gethostname()}
    atomic_write_text(started_path(out_dir, rank), json.dumps(started))
    try:
        ctx = load_context(out_dir, rank, local_rank)
        train = frameworks.load(job["framework"], "worker").train
        result = {"status": "ok", **started, **train(ctx)}
        code = 0
    except Exception as exc:  # the parent turns it into a failed record naming this rank
        result = {"status": "failed", **started, "error": error_text(exc), "time": time.time()}
        traceback.print_exc()
        code = 1
    result["peak_rss_mb"] = lifetime_peak_rss_mb()
    atomic_write_text(result_path(out_dir, rank), json.dumps(result, default=str))
    return code


def samples_payload(samples: Any, comm_ms: list[float] | None = None) -> dict[str, Any]:
    """A ``fwstudy.measure.timing.StepSamples`` as plain JSON, plus per-step communication times."""
    return {
        "compile_s": samples.compile_s,
        "step_times_s": list(samples.step_times_s),
        "losses": [float(v) for v in samples.losses],
        "cpu_s": samples.cpu_s,
        "wall_s": samples.wall_s,
        "comm_ms": comm_ms,
    }
