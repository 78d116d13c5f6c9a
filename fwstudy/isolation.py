"""Run a child in its own process group and always reap it: no hang, no orphan, no zombie."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TAIL_LINES = 15


@dataclass
class ChildOutcome:
    returncode: int | None
    timed_out: bool
    output_tail: str
    wall_s: float

    def describe(self) -> str:
        """Why the child did not succeed, in words a results table can show."""
        if self.timed_out:
            return "timed out"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return f"exited with status {self.returncode}"


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ChildOutcome:
    """Run ``argv`` in a new session; on timeout, or once it exits, kill its whole group.

    Killing the group after a normal exit too removes helpers a framework may leave running
    (inductor compile workers, for example), so nothing of the trial outlives it.
    """
    with tempfile.TemporaryFile(mode="w+b") as log:
        start = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_group(proc.pid)
            proc.wait()
        wall = time.monotonic() - start
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    tail = "\n".join(lines[-TAIL_LINES:])
    return ChildOutcome(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        output_tail=tail,
        wall_s=wall,
    )
