"""Memory and CPU collectors that run inside a trial's child process.

Peak memory is reported above the post-import baseline so that the two frameworks' very
different import footprints don't drown the cost of the model and its training; the import
footprint is reported on its own.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.05  # 20 Hz: one /proc read per sample, far under 1% of a core
MAX_CURVE_POINTS = 400


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def high_water_mb() -> float | None:
    """VmHWM: the kernel's own peak RSS of this process (since the last reset)."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_high_water() -> bool:
    """Reset VmHWM (Linux >= 4.0, ``clear_refs`` 5) so the peak covers only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples RSS on a background thread; the curve shows *when* memory grows, the kernel's
    high-water mark (read at the end) catches spikes shorter than the sampling interval."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S):
        self.interval_s = interval_s
        self.times: list[float] = []
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._process = psutil.Process()
        self._start = 0.0
        self.sampler_cpu_s = 0.0

    def _run(self) -> None:
        cpu = time.thread_time()
        while not self._stop.is_set():
            self.times.append(time.monotonic() - self._start)
            self.values.append(self._process.memory_info().rss / 2**20)
            self._stop.wait(self.interval_s)
        self.sampler_cpu_s = time.thread_time() - cpu

    def __enter__(self) -> RssSampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.values, default=0.0)

    def curve(self) -> dict[str, list[float]]:
        step = max(1, len(self.values) // MAX_CURVE_POINTS)
        return {"t_s": self.times[::step], "rss_mb": self.values[::step]}


def cpu_frequency_info() -> dict[str, object]:
    """Clock and governor where the kernel exposes them (often not inside VMs)."""
    info: dict[str, object] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    for name in ("scaling_governor", "scaling_max_freq", "cpuinfo_max_freq", "scaling_driver"):
        try:
            info[name] = (base / name).read_text().strip()
        except OSError:
            info[name] = None
    try:
        freq = psutil.cpu_freq()
        info["psutil_mhz_current"] = freq.current if freq else None
        info["psutil_mhz_max"] = freq.max if freq else None
    except Exception:  # not readable in some containers
        info["psutil_mhz_current"] = None
    return info


def threadpool_info() -> list[dict]:
    """BLAS/OpenMP pools actually loaded in this process (threadpoolctl), after the import."""
    try:
        from threadpoolctl import threadpool_info as info

        keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture")
        return [{k: pool.get(k) for k in keep} for pool in info()]
    except Exception as exc:  # informative only: never fail a trial for it
        return [{"error": f"{type(exc).__name__}: {exc}"}]
