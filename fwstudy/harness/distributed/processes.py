"""Start the processes of a data-parallel trial and make sure none of them outlives it.

``torchrun`` starts each worker in a session of its own, so killing the launcher's process
group is not enough: the whole tree is found with psutil, stopped (so nothing forks while it
is being collected), then killed group by group. Workers also ask the kernel to kill them
when their launcher dies (``fwstudy.harness.distributed.worker.die_with_parent``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

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
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=dict(env), start_new_session=True,
        )
    return Launched(name=name, proc=proc, log_path=log_path)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError, OSError):
        return None


def trial_processes(roots: Sequence[int], extra_pids: Sequence[int] = ()) -> dict[int, psutil.Process]:
    """Every live process of the trial: the trees under the roots and the workers, and every
    member of their process groups (a worker's helpers stay in its group after it exits and
    they are re-parented, so the tree alone would miss them)."""
    own = _pgid(0)
    found: dict[int, psutil.Process] = {}
    for pid in [*roots, *extra_pids]:
        try:
            root = psutil.Process(pid)
            found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
        except psutil.NoSuchProcess:
            continue
    groups = {*roots, *extra_pids, *(g for g in map(_pgid, found) if g is not None)} - {own}
    for p in psutil.process_iter():
        if p.pid not in found and _pgid(p.pid) in groups:
            found[p.pid] = p
    return {pid: p for pid, p in found.items() if pid != os.getpid()}


def _signal_all(pids: Sequence[int], groups: set[int], sig: int) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def kill_tree(roots: Sequence[int], extra_pids: Sequence[int] = ()) -> tuple[list[int], list[int]]:
    """SIGSTOP the trial's processes until no new one appears (nothing forks while it is
    being collected), then SIGKILL each and each process group. ``roots`` are this process's
    children (reaped by the caller); ``extra_pids`` are workers known by their own report.
    Returns the pids killed and those still running afterwards (should be none)."""
    own = _pgid(0)
    seen: dict[int, psutil.Process] = {}
    groups = {*roots, *extra_pids} - {own}
    while True:
        current = trial_processes(roots, extra_pids)
        new = [pid for pid in current if pid not in seen]
        if not new:
            break
        groups |= {g for g in map(_pgid, new) if g is not None} - {own}
        _signal_all(new, set(), signal.SIGSTOP)
        seen.update({pid: current[pid] for pid in new})
    _signal_all(list(seen), groups, signal.SIGKILL)
    others = [p for pid, p in seen.items() if pid not in roots]
    _, alive = psutil.wait_procs(others, timeout=10)
    survivors = [p.pid for p in alive if running(p)]
    return sorted(seen), survivors


def running(p: psutil.Process) -> bool:
    """Alive and not a zombie (a zombie has exited; only its exit status is left)."""
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
