"""Nothing a trial starts outlives the process that started it, however that process ends.

The obvious tools each miss a case:

* a process group is not signalled when the parent is SIGKILLed (nobody is left to send it);
* ``PR_SET_PDEATHSIG`` fires when the parent *thread* that forked exits, not the process, and
  is cleared in grandchildren;
* a launcher (``torchrun``) starts its workers in sessions of their own, outside the group.

So every child gets three things from ``spawn``:

1. **Its own session and group**, so the parent can stop the whole tree on a timeout, an
   exception or SIGTERM/SIGINT (``kill_tree``: stop everything, then kill it, so nothing forks
   while it is being collected).
2. **A lifeline**: the read end of a pipe whose write end only the parent holds. The kernel
   closes the write end however the parent dies, SIGKILL included. The child's first act
   (``guard``) forks a watchdog that blocks on the pipe. A byte on the pipe means the parent
   ended the child normally; end-of-file without it means the parent is gone, and the watchdog
   kills the child's whole tree and removes the parent's temporary folders (which the parent
   can no longer remove itself). A watchdog is a separate process, so it wakes up even while
   the child's main thread holds the GIL in a long framework call.
3. **A subreaper**: ``guard`` makes the child a ``PR_SET_CHILD_SUBREAPER``, so a grandchild
   whose own parent died (and any process that left the group with ``setsid``) is re-parented
   to the child rather than to init, and stays in the tree that ``kill_tree`` walks.

Temporary folders are made with ``owned_tempdir``: named after the owning process
(``fwstudy-<kind>.<pid>.<random>``), removed on every exit path the owner survives, listed to
every watchdog for the paths it does not, and swept by the next run (``sweep_stale``) when the
owner died between children. Each child's ``TMPDIR`` is a folder inside its own work folder,
so what frameworks write there (TensorFlow's autograph modules, torchelastic's folders)
goes with it.

This module imports no framework and nothing heavy before the fork (psutil only in the
watchdog and the parent), so ``guard`` costs the trial child a fork and nothing else.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIFELINE_VARIABLE = "FWSTUDY_LIFELINE"  # "<fd>:<inode>" of the pipe's read end
OWNED_VARIABLE = "FWSTUDY_OWNED"  # JSON list of folders the watchdog removes if the parent dies
RELEASE = b"r"
PR_SET_CHILD_SUBREAPER = 36
KILL_WAIT_S = 5.0
_STALE = re.compile(r"^fwstudy-[A-Za-z0-9_-]+\.(\d+)\.[A-Za-z0-9_]+$")

# The folders of this process's ``owned_tempdir`` blocks still open (innermost last).
_owned: list[str] = []
# The watchdog ``guard`` forked in this process (None in a parent, or before ``guard``).
_watchdog: int | None = None


# --- parent side -------------------------------------------------------------------------------


@contextlib.contextmanager
def owned_tempdir(kind: str) -> Iterator[Path]:
    """A temporary folder removed when the block ends by any exit this process survives, and
    by the watchdog of any child started inside the block when this process is killed."""
    path = tempfile.mkdtemp(prefix=f"fwstudy-{kind}.{os.getpid()}.")
    _owned.append(path)
    try:
        yield Path(path)
    finally:
        _owned.remove(path)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the ``owned_tempdir`` folders whose owner is dead (killed between two children,
    when no watchdog was running to remove them). Returns what was removed."""
    removed = []
    base = Path(root or tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _STALE.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclass
class Spawned:
    """A child started by ``spawn``: its process and the write end of its lifeline."""

    proc: subprocess.Popen
    lifeline_fd: int | None

    def release(self) -> None:
        """Tell the watchdog the parent ended the child on purpose (no clean-up), and close."""
        if self.lifeline_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.lifeline_fd, RELEASE)
        with contextlib.suppress(OSError):
            os.close(self.lifeline_fd)
        self.lifeline_fd = None

    def end(self) -> list[int]:
        """Kill whatever is left of the child's tree, reap the child, release the lifeline.
        Called on every path: normal exit, timeout, and an exception in the parent."""
        killed, _ = kill_tree([self.proc.pid])
        self.proc.wait()
        self.release()
        return killed


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    stdout: Any = None,
    cwd: str | None = None,
    stdin: Any = subprocess.DEVNULL,
    stderr: Any = None,
) -> Spawned:
    """Start ``argv`` in a session of its own with a lifeline (see the module docstring).

    ``workdir``: the child's own folder; its ``TMPDIR`` becomes ``workdir/tmp``. The watchdog
    removes every folder of this process's open ``owned_tempdir`` blocks if the parent dies.
    ``stderr`` defaults to ``stdout``'s file when that is given (one log of the child)."""
    read_fd, write_fd = os.pipe()
    child_env = dict(os.environ if env is None else env)
    child_env[LIFELINE_VARIABLE] = f"{read_fd}:{os.fstat(read_fd).st_ino}"
    child_env[OWNED_VARIABLE] = json.dumps([*_owned, *([str(workdir)] if workdir else [])])
    if workdir is not None:
        tmp = Path(workdir, "tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        child_env["TMPDIR"] = str(tmp)
    try:
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=stdout,
            stderr=stderr if stderr is not None else subprocess.STDOUT if stdout is not None else None,
            env=child_env, cwd=cwd, start_new_session=True, pass_fds=(read_fd,),
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return Spawned(proc=proc, lifeline_fd=write_fd)


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) turned into an exception, like SIGINT's KeyboardInterrupt, so that
    every ``finally`` runs: children are killed and temporary folders removed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """While a command-line parent runs: SIGTERM and SIGHUP unwind like Ctrl-C does (main
    thread only; elsewhere nothing changes). The previous handlers come back afterwards."""
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread
            previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- killing a tree ----------------------------------------------------------------------------


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def running(p: Any) -> bool:
    """Alive and not a zombie (a zombie has exited; only its exit status is left)."""
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def tree(roots: Sequence[int], extra_pids: Sequence[int] = ()) -> dict[int, Any]:
    """Every live process of the roots: their trees and every member of their process groups
    (a helper stays in its group after its parent exits and it is re-parented, so the tree
    alone would miss it). This process and its own group are never part of it."""
    import psutil

    own = _pgid(0)
    found: dict[int, Any] = {}
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
        with contextlib.suppress(OSError):
            os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def kill_tree(roots: Sequence[int], extra_pids: Sequence[int] = ()) -> tuple[list[int], list[int]]:
    """SIGSTOP the processes of the roots until no new one appears (nothing forks while it is
    being collected), then SIGKILL each and each process group. Returns the pids killed and
    those still running ``KILL_WAIT_S`` later (should be none). Processes that are not this
    one's children are polled rather than waited for: a zombie nobody reaps is gone too."""
    own = _pgid(0)
    seen: dict[int, Any] = {}
    groups = {*roots, *extra_pids} - {own}
    while True:
        current = tree(roots, extra_pids)
        new = [pid for pid in current if pid not in seen and running(current[pid])]
        if not new:
            break
        groups |= {g for g in map(_pgid, new) if g is not None} - {own}
        _signal_all(new, set(), signal.SIGSTOP)
        seen.update({pid: current[pid] for pid in new})
    _signal_all(list(seen), groups, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    alive = [p for pid, p in seen.items() if pid not in roots]
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if running(p)]
        if alive:
            time.sleep(0.02)
    return sorted(seen), sorted(p.pid for p in alive)


# --- child side --------------------------------------------------------------------------------


def _set_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the lifeline still works
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _watch(fd: int, target: int, owned: list[str]) -> None:
    """The watchdog's whole life: wait for the parent's byte or its death."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            try:
                data = os.read(fd, 1)
                break
            except InterruptedError:
                continue
        if not data:  # end of file without the release byte: the parent is gone
            kill_tree([target])
            for path in owned:
                shutil.rmtree(path, ignore_errors=True)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def guard() -> None:
    """First call of every child entry point: become a subreaper and fork the watchdog of the
    lifeline ``spawn`` passed. Without a lifeline (run by hand, or by a launcher that closed
    it), nothing happens. The variables are removed so that grandchildren don't inherit them."""
    global _watchdog
    spec = os.environ.pop(LIFELINE_VARIABLE, None)
    try:
        owned = [str(p) for p in json.loads(os.environ.pop(OWNED_VARIABLE, "[]") or "[]")]
    except ValueError:
        owned = []
    if not spec or _watchdog is not None:
        return
    try:
        fd, inode = (int(part) for part in spec.split(":"))
        info = os.fstat(fd)
    except (ValueError, OSError):
        return
    if not stat.S_ISFIFO(info.st_mode) or info.st_ino != inode:
        return  # the number names some other file: the lifeline was not passed down to us
    _set_subreaper()
    target = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _watch(fd, target, owned)
    os.close(fd)
    _watchdog = pid


def disarm() -> None:
    """Before a guarded child exits on its own: stop its watchdog and kill what it started,
    so nothing of it is left for the parent to collect (or to outlive it)."""
    global _watchdog
    if _watchdog is None:
        return
    with contextlib.suppress(OSError):
        os.kill(_watchdog, signal.SIGKILL)
        os.waitpid(_watchdog, 0)
    _watchdog = None
    with contextlib.suppress(Exception):
        import psutil

        children = psutil.Process().children(recursive=True)
        if children:
            kill_tree([p.pid for p in children])


def main(argv: list[str]) -> int:
    """``python -m fwstudy.harness.lifeline PROGRAM [ARGS...]``: guard, then become PROGRAM.

    For a launcher that is not one of fwstudy's children (``torchrun``): the watchdog and the
    subreaper survive the ``exec``, so the launcher's workers die with the parent too."""
    if not argv:
        print("usage: python -m fwstudy.harness.lifeline PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    guard()
    os.execvp(argv[0], argv)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
