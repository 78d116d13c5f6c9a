"""Start the processes of a data-parallel trial and make sure none of them outlives it.

``torchrun`` starts each worker in a session of its own, so killing the launcher's process
group is not enough: the whole tree is found with psutil, stopped (so nothing forks while it
is being collected), then killed group by group (``lifeline.kill_tree``). Each launched
process has a lifeline, so all of it dies with the parent too, SIGKILL included; workers also
ask the kernel to kill them when their launcher dies
(``fwstudy.harness.distributed.worker.die_with_parent``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fwstudy.harness import lifeline
from fwstudy.harness.lifeline import kill_tree

POLL_S = 0.05
# After the first worker fails, the others get this long to write their own errors before
# they are killed (a peer of a dead worker usually blocks in a collective rather than exit).
GRACE_S = 3.0
TAIL_LINES = 15


@dataclass
class Launched:
    """One process the parent started, with its log."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    returncode: int | None = None
    exited_at: float | None = None
    spawned: lifeline.Spawned | None = None

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervision:
    """How a group of launched processes ended."""

    timed_out: bool
    wall_s: float
    first_failure: Launched | None
    killed: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)


def start(name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> Launched:
    """One process of the trial, with a lifeline (``harness/lifeline.py``) and its TMPDIR in the
    trial's folder (torchelastic and autograph write there; the folder goes with the trial)."""
    with open(log_path, "wb") as log:
        child = lifeline.spawn(argv, env=env, workdir=log_path.parent, stdout=log)
    return Launched(name=name, proc=child.proc, log_path=log_path, spawned=child)


def supervise(
    launched: Sequence[Launched], timeout_s: float, worker_pids: Callable[[], list[int]] = list
) -> Supervision:
    """Wait until every process exits 0, one fails, or ``timeout_s`` passes; then kill all
    that is left of the trial. A failure gives the others ``GRACE_S`` to report first."""
    start_t = time.monotonic()
    deadline = start_t + timeout_s
    first_failure: Launched | None = None
    timed_out = False
    while True:
        now = time.monotonic()
        for item in launched:
            if item.returncode is None and (code := item.proc.poll()) is not None:
                item.returncode, item.exited_at = code, now
                if code != 0 and first_failure is None:
                    first_failure = item
                    deadline = min(deadline, now + GRACE_S)
        if all(item.returncode is not None for item in launched):
            break
        if now >= deadline:
            timed_out = first_failure is None
            break
        time.sleep(POLL_S)
    killed, survivors = kill_tree([item.proc.pid for item in launched], worker_pids())
    for item in launched:
        item.proc.wait()
        if item.spawned is not None:
            item.spawned.release()
    return Supervision(
        timed_out=timed_out, wall_s=time.monotonic() - start_t, first_failure=first_failure,
        killed=killed, survivors=survivors,
    )


def describe_exit(code: int | None) -> str:
    if code is None:
        return "was still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
