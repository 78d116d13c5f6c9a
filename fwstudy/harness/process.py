"""Starting a child process: its environment, its job file, and reaping it.

Every child of the study (a trial, a parity side, a GEMM peak, an overhead benchmark) starts
the same way: ``run_job`` writes a job file, runs ``python -m fwstudy.harness.child JOB`` in a
session of its own, tied to this process by a lifeline (``harness/lifeline.py``: nothing it
starts outlives this process, however this process ends), with ``child_environment`` (thread counts set before any framework import,
identical for both frameworks: rule 1), and reads the JSON result the child wrote atomically.
A child that leaves no result died (crash, signal, timeout), and ``ChildOutcome`` says how.
Data-parallel workers are started by their framework's launcher instead
(``harness/distributed``), but with the same environment and the same entry point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.harness import lifeline

TAIL_LINES = 15


@dataclass
class ChildOutcome:
    returncode: int | None
    timed_out: bool
    output_tail: str
    wall_s: float
    reason: str | None = None  # said by whoever ran the child (a fork server that died)

    def describe(self) -> str:
        """Why the child did not succeed, in words a results table can show."""
        if self.reason:
            return self.reason
        if self.timed_out:
            return "timed out"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return f"exited with status {self.returncode}"

    @property
    def status(self) -> str:
        """How a child that left no result ended, in the results store's words (rule 9)."""
        return "timeout" if self.timed_out else "failed"

    def error(self, phase: str | None = None, timeout_s: float | None = None) -> str:
        """The stored reason of a child that left no result: why it ended (the limit it ran
        past, the phase it was in) and its last output, so a failed row explains itself. One
        wording for trials, deployment, usability and convergence runs."""
        reason = self.describe()
        if self.timed_out and timeout_s is not None:
            reason += f" after {timeout_s:g} s"
        if phase:
            reason = f"{phase}: {reason}"
        tail = self.output_tail.strip()
        return f"{reason}; last output:\n{tail}" if tail else reason


def run_child(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    workdir: Path | None = None,
) -> ChildOutcome:
    """Run ``argv`` with a lifeline (``harness/lifeline.py``); on timeout, once it exits, or when
    this process is interrupted (Ctrl-C, SIGTERM), kill its whole tree.

    Killing the tree after a normal exit too removes helpers a framework may leave running
    (inductor compile workers, for example), so nothing of the trial outlives it; the
    lifeline does the same if this process dies without a chance to (SIGKILL). ``workdir``
    is the child's own folder: its TMPDIR goes inside it.
    """
    with tempfile.TemporaryFile(mode="w+b") as log:
        start = time.monotonic()
        child = lifeline.spawn(argv, env=env, workdir=workdir, stdout=log, cwd=cwd)
        timed_out = False
        try:
            child.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            child.end()
        wall = time.monotonic() - start
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    tail = "\n".join(lines[-TAIL_LINES:])
    return ChildOutcome(
        returncode=None if timed_out else child.proc.returncode,
        timed_out=timed_out,
        output_tail=tail,
        wall_s=wall,
    )


def thread_variables(threads: int, interop_threads: int) -> dict[str, str]:
    """Variables the OpenMP/MKL/oneDNN runtimes and TensorFlow read at import time."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(interop_threads),
    }


def base_child_environment(threads: int, interop_threads: int, device: str) -> dict[str, str]:
    """This process's environment with ``threads`` set before any framework import, Keras on
    TensorFlow, inductor compiling in the trial's own process, and no GPU for a CPU child."""
    env = dict(os.environ)
    env.update(thread_variables(threads, interop_threads))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env["PYTHONUNBUFFERED"] = "1"
    # Inductor compiles in a pool of worker subprocesses by default: their memory and CPU
    # would escape the trial's own measurements (F2's compile peak, cpu_s), and their number
    # follows the machine's cores rather than the trial's threads. One compile thread keeps
    # the compile inside the measured process; records list the variable (env["variables"]).
    env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    if device == "cpu":
        # A CPU trial must not touch a GPU even where one exists.
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def child_environment(config: TrialConfig, threads: int | None = None) -> dict[str, str]:
    """The environment of a trial's child: its threads (or ``threads``, a worker's share) set
    before the framework import (``base_child_environment``)."""
    return base_child_environment(threads or config.threads, config.interop_threads, config.device)


def compile_cache_variables(cache_dir: str) -> dict[str, str]:
    """Point every persistent compile cache of both frameworks at ``cache_dir``: a fresh one
    makes a cold compile, a reused one a warm compile. (Without this, inductor would reuse
    /tmp/torchinductor_<user> across trials while XLA starts cold: an unfair F1.)"""
    return {
        "FWSTUDY_COMPILE_CACHE": cache_dir,
        "TORCHINDUCTOR_CACHE_DIR": str(Path(cache_dir, "inductor")),
        "TRITON_CACHE_DIR": str(Path(cache_dir, "triton")),
        "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={Path(cache_dir, 'xla')}",
    }


def child_argv(job_path: Path | str, python: str = sys.executable) -> list[str]:
    """The command line of every child: one entry point, the job file says what to do."""
    return [python, "-m", "fwstudy.harness.child", str(job_path)]


def run_job(
    job: dict[str, Any],
    *,
    timeout_s: float,
    env: Mapping[str, str],
    workdir: Path,
    python: str = sys.executable,
) -> tuple[ChildOutcome, Any]:
    """Write ``job`` (its ``kind`` names what the child does) into ``workdir``, run the child
    and return how it ended with the JSON it wrote to ``job["out"]`` (None when it wrote none,
    or when it timed out: a result written after the deadline is not trusted)."""
    job = {**job, "out": str(workdir / f"{job['kind']}-result.json")}
    job_path = workdir / f"{job['kind']}-job.json"
    job_path.write_text(json.dumps(job))
    outcome = run_child(child_argv(job_path, python), timeout_s=timeout_s, env=env, workdir=workdir)
    return outcome, None if outcome.timed_out else read_result(Path(job["out"]))


def read_result(path: Path) -> Any:
    """The JSON a child wrote, or None when it wrote none or an unreadable one (a child killed
    mid-write leaves no file, since results are written atomically; anything else unreadable
    is treated as no result, and the caller records why)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
