"""Fork servers: import a framework once, then fork a fresh process for each trial.

Why: on a CPU a trial measures a second or two of steps, and a fresh interpreter pays 1-5 s
to import its framework first (TensorFlow about 4 s, PyTorch about 1 s on the reference
2-core machine). Paid by every trial, the import is most of a quick study's time. A fork
server pays it once per framework and environment, and forks one child per trial.

What the trial keeps (``TrialConfig.isolation == "fork"``): everything after the import is its
own process, exactly as under ``process`` isolation. The server never builds a model, runs an
op or compiles anything, so each child starts from the same post-import state a fresh
process would reach: its own memory (the kernel resets the high-water mark at fork, and the
post-import anonymous-memory baseline is read in the child), its own OpenMP/Eigen thread
pools (created at the first op, in the child), its own tf.function/XLA/dynamo state, and the
same on-disk compile caches (the folders are in the environment). What it does not keep: the
import is the server's, measured once; the records say so (``env["isolation"]``: the
server's pid, its import time, how many trials it served before) and carry the server's
import time and peak, not a measurement of their own. F12 measures imports and cold starts in
fresh processes, always. Whether step times agree with strict isolation is measured, not
assumed: ``fwstudy isolation`` (``harness/isolation.py``) runs the same configurations both
ways in paired blocks.

The protocol is one JSON line per request on the server's stdin (the trial's config, id,
output file, log file, timeout and per-trial variables) and one JSON line per reply on the
server's original stdout (ready once after the import; then per trial its pid, exit status,
whether it timed out, its wall time). The server enforces each trial's timeout (it kills the
child's process group); the parent waits that long plus a grace period for the reply, and
kills the whole server if none comes. Servers are started by ``lifeline.spawn`` like every
child, so a server and its trials die with the parent however it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.harness import lifeline
from fwstudy.harness.process import TAIL_LINES, ChildOutcome, child_argv, read_result

# How long past a trial's own timeout the parent waits for the server's reply before it gives
# the server up for hung, and how long a server may take to import its framework.
REPLY_GRACE_S = 60.0
START_TIMEOUT_S = 300.0
# Tests only: a forked trial that dies by SIGKILL ("kill") or hangs ("hang") right after the fork.
FAULT_VARIABLE = "FWSTUDY_FORK_FAULT"


# --- server side (job kind "forkserver", run by fwstudy.harness.child) ---------------------------


def _wait(pid: int, timeout_s: float) -> int | None:
    """Reap child ``pid``, waiting at most ``timeout_s``: its wait status, or None if it is
    still running. A pidfd (Linux 5.3+) wakes on exit without polling; else poll every 10 ms."""
    deadline = time.monotonic() + timeout_s
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if fd is None:
                time.sleep(min(0.01, left))
            else:
                select.select([fd], [], [], left)
    finally:
        if fd is not None:
            os.close(fd)


def _child(request: Mapping[str, Any], preloaded: dict[str, Any], reply_fd: int) -> None:
    """In the forked child: its own process group, its log, its variables; measure; exit."""
    code = 1
    try:
        os.setpgid(0, 0)  # the server kills this group on a timeout, and nothing else
        os.close(reply_fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.environ.update(request.get("env") or {})
        fault = os.environ.get(FAULT_VARIABLE)
        if fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "hang":
            print("hanging on purpose", flush=True)
            time.sleep(3600)
        import tempfile

        tempfile.tempdir = None  # TMPDIR is the trial's own folder now
        from fwstudy.harness import trial_child
        from fwstudy.results.atomic import atomic_write_text

        config = TrialConfig.from_dict(request["config"])
        record = trial_child.run(config, request["trial_id"], preloaded=preloaded)
        atomic_write_text(Path(request["out"]), json.dumps(record))
        code = 0 if record["status"] == "ok" else 1
    except BaseException:  # noqa: BLE001 - whatever happens, this process must end here
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve_one(request: Mapping[str, Any], imported: Mapping[str, Any], served: int, reply_fd: int) -> dict[str, Any]:
    """Fork the trial of ``request``, wait for it (killing it at its timeout), reap it and
    whatever it left in its process group; return the reply."""
    preloaded = {**imported, "isolation": {
        "level": "fork", "server_pid": os.getpid(), "server_import_s": imported["import_s"],
        "trials_served_before": served,
        "note": "import_s and import_peak_rss_mb are the fork server's, measured once at its start"}}
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request, preloaded, reply_fd)
    status = _wait(pid, float(request["timeout_s"]))
    timed_out = status is None
    if timed_out:
        lifeline.kill_tree([pid])
        _, status = os.waitpid(pid, 0)
    wall = time.monotonic() - start
    lifeline.kill_tree([pid])  # helpers the trial left in its group (none expected)
    return {"pid": pid, "returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out, "wall_s": wall}


def run_job(job: dict[str, Any]) -> int:
    """Job keys: ``framework``. Import it, say so, then serve requests until stdin closes."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the framework prints goes to the server's log, never the replies

    def reply(message: Mapping[str, Any]) -> None:
        os.write(reply_fd, (json.dumps(message) + "\n").encode())

    from fwstudy.errors import error_text
    from fwstudy.harness import trial_child

    try:
        before = trial_child.modules_before_framework_import()
        _, imported = trial_child.import_framework(job["framework"])
        imported["modules_before_framework_import"] = before
    except Exception as exc:  # the trials will fail with this reason
        reply({"ready": False, "error": error_text(exc)})
        return 1
    reply({"ready": True, "pid": os.getpid(), "import_s": imported["import_s"]})
    served = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        reply(serve_one(json.loads(line), imported, served, reply_fd))
        served += 1
    return 0


# --- parent side ---------------------------------------------------------------------------------


class ServerGone(Exception):
    """The server ended, or stopped answering: its trial gets this as the reason."""


class ForkServer:
    """One server: a framework imported under one environment (threads, variables, caches)."""

    def __init__(self, framework: str, env: Mapping[str, str], workdir: Path, python: str = sys.executable):
        self.framework = framework
        self.log_path = workdir / "server.log"
        job_path = workdir / "forkserver-job.json"
        job_path.write_text(json.dumps({"kind": "forkserver", "framework": framework}))
        self._log = self.log_path.open("wb")
        self.spawned = lifeline.spawn(child_argv(job_path, python), env=env, workdir=workdir,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self._buffer = b""
        try:
            hello = self._reply(START_TIMEOUT_S)
        except ServerGone:
            self.close()  # a server that never said hello is not left running
            raise
        if not hello.get("ready"):
            self.close()
            raise ServerGone(f"the {framework} fork server could not import it: {hello.get('error')}")

    def _reply(self, timeout_s: float) -> dict[str, Any]:
        """The server's next reply line, waiting at most ``timeout_s``."""
        fd = self.spawned.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerGone(f"the {self.framework} fork server did not answer within {timeout_s:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise ServerGone(f"the {self.framework} fork server exited ({self.log_tail(3)})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        with contextlib.suppress(OSError):
            self._log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:]) or "no output"
        return "no output"

    def run(self, config: TrialConfig, trial_id: str, workdir: Path) -> tuple[ChildOutcome, Any]:
        """Fork the trial, wait for its reply; the outcome and the record it wrote (None if none)."""
        out, log = workdir / "trial-result.json", workdir / "trial.log"
        tmp = workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        request = {"config": config.to_dict(), "trial_id": trial_id, "out": str(out), "log": str(log),
                   "timeout_s": config.timeout_s, "env": {"TMPDIR": str(tmp)}}
        try:
            self.spawned.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.spawned.proc.stdin.flush()
        except OSError as exc:
            raise ServerGone(f"the {self.framework} fork server is gone ({exc})") from None
        reply = self._reply(config.timeout_s + REPLY_GRACE_S)
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        except OSError:
            tail = ""
        outcome = ChildOutcome(returncode=None if reply["timed_out"] else reply["returncode"],
                               timed_out=reply["timed_out"], output_tail=tail, wall_s=reply["wall_s"])
        return outcome, None if outcome.timed_out else read_result(out)

    def close(self) -> None:
        """Close stdin (the server's loop ends and it exits), then collect its whole tree."""
        with contextlib.suppress(OSError):
            if self.spawned.proc.stdin:
                self.spawned.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.spawned.proc.wait(timeout=10)
        self.spawned.end()
        with contextlib.suppress(OSError):
            self.spawned.proc.stdout.close()
        self._log.close()


class ForkServers:
    """Fork servers by framework and environment, started on first use, all stopped on exit.

    A server whose trial hung, or that died, is stopped and replaced by the next trial that
    needs it: a failure costs that trial, never the batch."""

    def __init__(self, python: str = sys.executable):
        self.python = python
        self._servers: dict[tuple, ForkServer] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ForkServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        self._stack.close()

    def run(self, config: TrialConfig, trial_id: str, env: Mapping[str, str], workdir: Path) -> tuple[ChildOutcome, Any]:
        """Run the trial on the server of its framework and environment; a server found dead
        before the trial (killed between trials) is replaced first, so no trial is lost to it."""
        key = (config.framework, tuple(sorted(env.items())))
        try:
            server = self._servers.get(key)
            if server is not None and server.spawned.proc.poll() is not None:
                self._servers.pop(key).close()
                server = None
            if server is None:
                folder = self._stack.enter_context(lifeline.owned_tempdir(f"forkserver-{config.framework}"))
                server = self._servers[key] = ForkServer(config.framework, env, folder, self.python)
            return server.run(config, trial_id, workdir)
        except ServerGone as gone:
            dead = self._servers.pop(key, None)
            tail = dead.log_tail() if dead else ""
            if dead:
                dead.close()
            return ChildOutcome(returncode=None, timed_out=False, wall_s=0.0, output_tail=tail,
                                reason=str(gone)), None
