"""Memory and CPU collectors that run inside a trial's child process.

Peak memory is reported above the post-import baseline so that the two frameworks' very
different import footprints don't drown the cost of the model and its training; the import
footprint is reported on its own.
"""

from __future__ import annotations

import contextlib
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


def anon_mb() -> float | None:
    """RssAnon: the process's resident anonymous memory (heap, tensors, arenas), without the
    file-backed pages of its shared libraries that RSS counts as well (Linux >= 4.5)."""
    kib = _status_kib("RssAnon")
    return None if kib is None else kib / 1024


# Phases of a trial as the samplers label their samples: before the first call (model and
# data built), during a first call (trace/compile: measure_steps marks it), and after it.
SETUP, FIRST_CALL, STEADY = 0, 1, 2

_ACTIVE: list[RssSampler] = []  # the samplers running in this process


class RssSampler:
    """Samples RSS and RssAnon on a background thread; the curve shows *when* memory grows,
    the kernel's high-water mark (read at the end) catches RSS spikes shorter than the sampling
    interval. Each sample carries its phase (``SETUP``, ``FIRST_CALL``, ``STEADY``), set by
    ``first_call()``; ``pause_sampling()`` stops the sampling for a quiet timed loop."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S):
        self.interval_s = interval_s
        self.times: list[float] = []
        self.values: list[float] = []
        self.anon: list[float] = []
        self.phases: list[int] = []
        self.phase = SETUP
        self.paused = 0
        self.pauses = 0
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._process = psutil.Process()
        self._start = 0.0
        self.sampler_cpu_s = 0.0

    def _sample(self) -> None:  # with self._cond held
        self.times.append(time.monotonic() - self._start)
        self.values.append(self._process.memory_info().rss / 2**20)
        anon = anon_mb()
        self.anon.append(float("nan") if anon is None else anon)
        self.phases.append(self.phase)

    def _run(self) -> None:
        cpu = time.thread_time()
        with self._cond:
            while not self._stopped:
                if self.paused:
                    self._cond.wait()
                    continue
                self._sample()
                self._cond.wait(self.interval_s)
        self.sampler_cpu_s = time.thread_time() - cpu

    def mark(self, phase: int) -> None:
        """Sample now, then enter ``phase`` and sample again: the boundary's own state belongs
        to both sides (memory that outlives a compile is steady-state memory too)."""
        with self._cond:
            self._sample()
            self.phase = phase
            self._sample()

    def pause(self) -> None:
        with self._cond:
            if not self.paused:
                self._sample()
            self.paused += 1
            self.pauses += 1

    def resume(self) -> None:
        with self._cond:
            self.paused -= 1
            if not self.paused:
                self._sample()
                self._cond.notify_all()

    def __enter__(self) -> RssSampler:
        self._start = time.monotonic()
        _ACTIVE.append(self)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._stopped = True
            self._sample()
            self._cond.notify_all()
        self._thread.join()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    @property
    def peak_mb(self) -> float:
        return max(self.values, default=0.0)

    def anon_peak_mb(self, *phases: int) -> float | None:
        """Peak RssAnon over the samples of ``phases`` (all when none given); None when there
        is no such sample or the kernel has no RssAnon."""
        wanted = set(phases) if phases else {SETUP, FIRST_CALL, STEADY}
        values = [v for v, p in zip(self.anon, self.phases, strict=True) if p in wanted and v == v]
        return max(values, default=None)

    def curve(self) -> dict[str, list[float]]:
        step = max(1, len(self.values) // MAX_CURVE_POINTS)
        return {
            "t_s": self.times[::step], "rss_mb": self.values[::step],
            "anon_mb": self.anon[::step], "phase": self.phases[::step],
        }


@contextlib.contextmanager
def first_call():
    """Label the samples of every running sampler taken during the block FIRST_CALL (the
    trace/compile of ``measure_steps``'s step 0) and those after it STEADY."""
    for sampler in list(_ACTIVE):
        sampler.mark(FIRST_CALL)
    try:
        yield
    finally:
        for sampler in list(_ACTIVE):
            sampler.mark(STEADY)


@contextlib.contextmanager
def pause_sampling():
    """Pause every running sampler for the block (one sample at each edge keeps the curve's
    level): a quiet timed loop pays no /proc reads and no GIL hand-offs to the sampler."""
    samplers = list(_ACTIVE)
    for sampler in samplers:
        sampler.pause()
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.resume()


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
