"""The machine's fp32 GEMM peak per framework, measured here and cached, and the CPU's
theoretical peak where its flags and clock allow an estimate.

MFU = achieved FLOP/s of a training step / this measured peak. Measuring the peak with each
framework's own GEMM (rather than a vendor number) asks how much of what *this* framework can
get out of *this* machine a workload uses.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.harness import process
from fwstudy.paths import project_root
from fwstudy.results.atomic import atomic_write_text

DEFAULT_GEMM_SIZE = 1024
GEMM_REPEATS = 10
PEAK_TIMEOUT_S = 300.0


def cache_dir() -> Path:
    import os

    override = os.environ.get("FWSTUDY_CACHE_DIR")
    return Path(override) if override else project_root() / "results" / "cache"


def summarize_gemm(times: list[float], size: int) -> dict[str, float]:
    flops = 2.0 * size**3
    arr = np.asarray(times)
    return {
        "gemm_size": size,
        "gemm_repeats": len(times),
        "gemm_peak_gflops": flops / arr.min() / 1e9,
        "gemm_median_gflops": flops / float(np.median(arr)) / 1e9,
    }


def gemm_peak(
    framework: str, threads: int, device: str, size: int = DEFAULT_GEMM_SIZE, *, python: str = sys.executable
) -> dict[str, Any] | None:
    """The cached peak for this host and settings, measured in a fresh child when missing.

    None when the measurement fails: a missing peak leaves MFU empty, it never fails a trial.
    """
    key = f"{socket.gethostname()}-{framework}-{device}-t{threads}-n{size}.json"
    path = cache_dir() / "gemm_peaks" / key
    if path.exists():
        return json.loads(path.read_text())
    from fwstudy.config.trial import TrialConfig

    env = process.child_environment(TrialConfig(workload="mlp", framework=framework, mode="eager", threads=threads, device=device))
    job = {"kind": "gemm", "framework": framework, "threads": threads, "device": device, "size": size}
    with tempfile.TemporaryDirectory(prefix="fwstudy-peak-") as tmp:
        outcome, result = process.run_job(job, timeout_s=PEAK_TIMEOUT_S, env=env, workdir=Path(tmp), python=python)
    if result is None:
        print(f"fwstudy: GEMM peak of {framework} not measured ({outcome.describe()})", file=sys.stderr)
        return None
    result.update(
        framework=framework, threads=threads, device=device, host=socket.gethostname(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    atomic_write_text(path, json.dumps(result, indent=1))
    return result


def theoretical_peak_gflops(cores: int) -> dict[str, Any]:
    """fp32 FLOP/s from SIMD width × FMA × 2 pipes × clock × cores: an upper bound whose
    assumptions are returned with it (VMs often hide the true clock; then it is None)."""
    flags: set[str] = set()
    mhz: float | None = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    try:
        mhz = float(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    except (OSError, ValueError):
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    fma = 2 if "fma" in flags or "avx512f" in flags else 1
    pipes = 2
    if mhz is None:
        return {"theoretical_gflops": None, "reason": "CPU clock not readable"}
    gflops = cores * mhz / 1000 * lanes * fma * pipes
    return {
        "theoretical_gflops": gflops,
        "assumptions": f"{cores} cores × {mhz:.0f} MHz × {lanes} fp32 lanes × {fma} (FMA) × {pipes} pipes",
    }


def run_job(job: dict[str, Any]) -> int:
    """Inside the child (job kind ``gemm``): one framework, one GEMM size, the job's threads."""
    from fwstudy import frameworks

    module = frameworks.load(job["framework"], "gemm")
    times = module.gemm_times(job["size"], GEMM_REPEATS, job["threads"], job["device"])
    atomic_write_text(Path(job["out"]), json.dumps(summarize_gemm(times, job["size"])))
    return 0
