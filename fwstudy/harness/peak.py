"""The machine's fp32 GEMM peak, measured here with each framework's GEMM and NumPy's BLAS,
cached, and the CPU's theoretical peak where its flags and clock allow an estimate.

MFU = achieved FLOP/s / the machine's peak: the best fp32 GEMM any of torch, TensorFlow and
NumPy reaches on this device with the trial's threads (one denominator per device, so both
frameworks are divided by the same number). ``mfu_own`` divides by the trial's own framework's
GEMM instead: how much of what *this* framework can get out of the machine a workload uses.
Each source is measured in its own child (one framework per process), ``GEMM_REPEATS``
back-to-back calls after untimed warm-up calls (each GEMM module's own), the peak being the fastest call; on a GPU the
matrices are at least ``GPU_MIN_GEMM_SIZE`` square (smaller ones leave the device idle).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.harness import environment, process
from fwstudy.harness.lifeline import owned_tempdir
from fwstudy.paths import project_root
from fwstudy.results.atomic import (
    Unreadable,
    atomic_write_text,
    read_cache,
    strict_json,
)

DEFAULT_GEMM_SIZE = 1024
GEMM_REPEATS = 50
GPU_MIN_GEMM_SIZE = 8192
PEAK_TIMEOUT_S = 300.0
# Where a peak may come from: the two frameworks and NumPy's BLAS (CPU only).
PEAK_SOURCES: tuple[str, ...] = ("torch", "tensorflow", "numpy")
# The arithmetic of the GEMM (config.trial.PRECISIONS): fp32; tf32 (fp32 storage, TF32 tensor
# cores: GPU); bf16 (bfloat16 matrices, fp32 accumulation: the matmul a bf16 mixed-precision
# step runs). A trial's MFU divides by the peak of its own precision. NumPy's BLAS has fp32 only.
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


def cache_dir() -> Path:
    import os

    override = os.environ.get("FWSTUDY_CACHE_DIR")
    return Path(override) if override else project_root() / "results" / "cache"


def gemm_size_for(device: str, size: int) -> int:
    """The GEMM size actually measured: ``size`` on a CPU, at least GPU_MIN_GEMM_SIZE on a GPU."""
    return max(size, GPU_MIN_GEMM_SIZE) if device == "gpu" else size


def cache_key(
    source: str, threads: int, device: str, size: int, precision: str = "fp32",
    fingerprint: dict[str, Any] | None = None,
) -> str:
    """The cache file of one peak: host, source, settings and the environment fingerprint
    (torch, TensorFlow, Keras and NumPy versions, CPU model, host), so that an upgrade or
    another machine measures again instead of reusing a stale peak."""
    values = environment.fingerprint() if fingerprint is None else fingerprint
    digest = environment.fingerprint_digest(values)
    return f"{values.get('host')}-{source}-{device}-{precision}-t{threads}-n{size}-{digest}.json"


def read_cached_peak(path: Path) -> dict[str, Any] | None:
    """The cached peak at ``path``; None when there is none or it is unusable (empty,
    truncated, not an object, no positive finite ``gemm_peak_gflops``). An unusable file is
    reported in one line naming it and removed, so the peak is measured and cached again:
    the runner reads this after the trial was measured, and a bad cache must never cost a
    trial its result."""
    def check(result: dict[str, Any]) -> None:
        value = result["gemm_peak_gflops"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise Unreadable(f"gemm_peak_gflops is {value!r}, not a positive number")

    return read_cache(path, "GEMM-peak", ("gemm_peak_gflops",), check)


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
    framework: str, threads: int, device: str, size: int = DEFAULT_GEMM_SIZE, *,
    python: str = sys.executable, precision: str = "fp32",
) -> dict[str, Any] | None:
    """The cached peak of one source (``PEAK_SOURCES``) for this environment and settings,
    measured in a fresh child when missing.

    None when the measurement fails or the source can't run there (NumPy on a GPU): a missing
    peak leaves MFU empty, it never fails a trial.
    """
    if framework not in PEAK_SOURCES:
        raise ValueError(f"unknown GEMM source {framework!r}; valid: {', '.join(PEAK_SOURCES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"no GEMM peak for precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if framework == "numpy" and (device != "cpu" or precision != "fp32"):
        return None
    size = gemm_size_for(device, size)
    path = cache_dir() / "gemm_peaks" / cache_key(framework, threads, device, size, precision)
    cached = read_cached_peak(path)
    if cached is not None:
        return cached
    env = process.base_child_environment(threads, 1, device)
    job = {
        "kind": "gemm", "framework": framework, "threads": threads, "device": device, "size": size,
        "repeats": GEMM_REPEATS, "precision": precision,
    }
    with owned_tempdir("peak") as tmp:
        outcome, result = process.run_job(job, timeout_s=PEAK_TIMEOUT_S, env=env, workdir=Path(tmp), python=python)
    if result is None:
        print(f"fwstudy: GEMM peak of {framework} not measured ({outcome.describe()})", file=sys.stderr)
        return None
    result.update(
        framework=framework, threads=threads, device=device, precision=precision,
        fingerprint=environment.fingerprint(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    try:
        atomic_write_text(path, strict_json(result, indent=1))
    except OSError as exc:  # an unwritable cache costs a re-measurement next time, not this result
        print(f"fwstudy: GEMM peak not cached at {path} ({exc.strerror or exc})", file=sys.stderr)
    return result


def machine_peak(
    threads: int, device: str, size: int = DEFAULT_GEMM_SIZE, *,
    python: str = sys.executable, precision: str = "fp32",
) -> dict[str, Any]:
    """Every source's peak on this device and the best of them, MFU's one denominator:
    ``{"gemm_peak_gflops": best, "best_source": name, "peaks": {source: GFLOP/s or None},
    "details": {source: its cached measurement}, ...}`` (``gemm_peak_gflops`` None when no
    source could be measured)."""
    details = {
        source: gemm_peak(source, threads, device, size, python=python, precision=precision)
        for source in PEAK_SOURCES
    }
    peaks = {source: (d or {}).get("gemm_peak_gflops") for source, d in details.items()}
    measured = {source: value for source, value in peaks.items() if value}
    best = max(measured, key=measured.get) if measured else None
    return {
        "gemm_peak_gflops": measured[best] if best else None,
        "best_source": best,
        "peaks": peaks,
        "gemm_size": gemm_size_for(device, size),
        "gemm_repeats": GEMM_REPEATS,
        "threads": threads,
        "device": device,
        "precision": precision,
        "details": details,
    }


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


def numpy_gemm_times(size: int, repeats: int, threads: int) -> tuple[list[float], list[dict]]:
    """Seconds per fp32 ``a @ b`` of NumPy's BLAS limited to ``threads`` (threadpoolctl), and
    the thread pools as they were while it ran."""
    from threadpoolctl import threadpool_limits

    from fwstudy.measure.collectors import threadpool_info

    gen = np.random.default_rng(0)
    a = gen.standard_normal((size, size), dtype=np.float32)
    b = gen.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    with threadpool_limits(limits=threads):
        for _ in range(2):
            np.matmul(a, b, out=out)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
        pools = threadpool_info()
    return times, pools


def run_job(job: dict[str, Any]) -> int:
    """Inside the child (job kind ``gemm``): one source (a framework, or NumPy's BLAS), one
    GEMM size, the job's threads and device."""
    repeats = job.get("repeats", GEMM_REPEATS)
    if job["framework"] == "numpy":
        times, pools = numpy_gemm_times(job["size"], repeats, job["threads"])
        result = {**summarize_gemm(times, job["size"]), "threadpools": pools}
    else:
        from fwstudy import frameworks

        module = frameworks.load(job["framework"], "gemm")
        times = module.gemm_times(
            job["size"], repeats, job["threads"], job["device"], job.get("precision", "fp32")
        )
        result = summarize_gemm(times, job["size"])
    atomic_write_text(Path(job["out"]), json.dumps(result))
    return 0
