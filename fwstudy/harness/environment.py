"""The environment every record carries (fairness rule 8), gathered without importing a framework.

The framework-specific part (its own thread settings, build flags) is added by the backend that
runs inside the child; this module only reads package metadata, /proc and git.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata as md
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the fwstudy package

# Environment variables that change what a framework does with the CPU; recorded verbatim.
RECORDED_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    # oneDNN's implicit down-conversion of fp32 math (BF16, TF32, ANY): the CPU twin of TF32.
    "ONEDNN_DEFAULT_FPMATH_MODE",
    "DNNL_DEFAULT_FPMATH_MODE",
    "TF_XLA_FLAGS",
    "XLA_FLAGS",
    "KERAS_BACKEND",
    "CUDA_VISIBLE_DEVICES",
    "TORCHINDUCTOR_CACHE_DIR",
    "TORCHINDUCTOR_COMPILE_THREADS",
    "OMP_WAIT_POLICY",
    "KMP_BLOCKTIME",
    "FWSTUDY_COMPILE_CACHE",
)

# The code that runs inside a trial or launches it (relative to the fwstudy package): what
# the code version hashes. Figures, statistics, parity reports, docs and notebooks change
# what is drawn from a measurement, never the measurement, so they never invalidate one.
MEASURING_CODE = (
    "workloads",
    "frameworks",
    "harness",
    "measure",
    "config",
    "errors.py",
    "paths.py",
)
# Report code that lives beside a workload but only reads results (parent side, no trial).
REPORT_ONLY = ("parity_report.py", "expressiveness.py")


def package_version(*names: str) -> str | None:
    """The installed version of the first distribution found; None when none is installed."""
    for name in names:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The /proc/cpuinfo flags that decide what bf16 (and fp32) math costs on this CPU: AVX-512
# BF16 converts and dot products, AMX tiles (a bf16 matmul unit), AVX-512 and AVX-VNNI.
BF16_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx_vnni", "avx512_fp16")


def cpu_precision_flags() -> dict[str, bool]:
    """Which of ``BF16_FLAGS`` this CPU has: a bf16 run without AVX-512 BF16 or AMX emulates
    bf16 by conversions, and one with AMX has a matmul unit fp32 cannot use."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return {flag: flag in flags for flag in BF16_FLAGS}
    except OSError:
        pass
    return {}


def measuring_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The source files ``code_version`` hashes, in a stable order."""
    files: list[Path] = []
    for name in MEASURING_CODE:
        path = package_dir / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else [])
    return [f for f in files if f.name not in REPORT_ONLY]


def hash_code(package_dir: Path = PACKAGE_DIR) -> str:
    digest = hashlib.sha256()
    for path in measuring_files(package_dir):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def subpackage_version(package_dir: Path, names: tuple[str, ...]) -> str:
    """``code_version`` plus the files of a run package (deployment, usability) that decide
    what its runs measure: a changed export path or child re-measures that package's runs
    only, a changed table or figure nothing."""
    digest = hashlib.sha256(code_version().encode())
    for name in sorted(names):
        path = package_dir / name
        if path.exists():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def code_version() -> str:
    """Hash of the measuring code (``MEASURING_CODE``): a changed collector, loop or model
    invalidates old measurements; a changed figure or statistic does not."""
    return hash_code(PACKAGE_DIR)


def tensorflow_version() -> str | None:
    return package_version("tensorflow-cpu", "tensorflow", "tensorflow-gpu")


@functools.cache
def _fingerprint() -> tuple[tuple[str, Any], ...]:
    return tuple(_read_fingerprint().items())


def fingerprint() -> dict[str, Any]:
    """What makes a measurement of this environment differ from another's with the same code
    and configuration: framework and NumPy versions, CPU model and host. Records carry it
    (``env["fingerprint"]``), trial ids hash it, GEMM peaks are cached under it. Read once
    per process."""
    return dict(_fingerprint())


def _read_fingerprint() -> dict[str, Any]:
    return {
        "torch": package_version("torch"),
        "tensorflow": tensorflow_version(),
        "keras": package_version("keras"),
        "numpy": package_version("numpy"),
        "cpu_model": cpu_model(),
        "host": socket.gethostname(),
    }


def fingerprint_digest(values: dict[str, Any] | None = None) -> str:
    blob = json.dumps(fingerprint() if values is None else values, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@functools.cache
def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(PACKAGE_DIR), *args],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if commit else None}


def base_environment() -> dict[str, Any]:
    """What is true of this process and machine, independent of any framework."""
    try:
        physical = __import__("psutil").cpu_count(logical=False)
    except Exception:  # psutil missing or unreadable: not worth failing a trial
        physical = None
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_precision_flags": cpu_precision_flags(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "torch_version": package_version("torch"),
        "tensorflow_version": tensorflow_version(),
        "keras_version": package_version("keras"),
        "numpy_version": package_version("numpy"),
        "fwstudy_version": package_version("fwstudy"),
        "code_version": code_version(),
        "fingerprint": fingerprint(),
        "fingerprint_digest": fingerprint_digest(),
        **git_state(),
        "variables": {name: os.environ.get(name) for name in RECORDED_VARIABLES},
        # A busy machine slows OpenMP badly (a preempted thread stalls every parallel region):
        # the load at the start of a trial tells a reader whether its numbers were contended.
        "load_average_1m": os.getloadavg()[0],
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def frameworks_loaded() -> dict[str, bool]:
    """Which frameworks this process has imported: proof of fairness rule 1 in every record."""
    return {name: name in sys.modules for name in ("torch", "tensorflow")}
