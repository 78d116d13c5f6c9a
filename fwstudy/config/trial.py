"""One trial's parameters, validated once, so that every entry point rejects bad input alike."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fwstudy import frameworks
from fwstudy.errors import BadInput, choices

FRAMEWORKS: tuple[str, ...] = frameworks.NAMES

# The execution modes of docs/methodology.md. A mode a framework lacks is a bad-input error, never a
# silent fallback, so that a figure can't compare a graph mode against an eager one by accident.
FRAMEWORK_MODES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("eager", "graph", "compiled", "fit"),
    "torch": ("eager", "compiled"),
}
ALL_MODES: tuple[str, ...] = ("eager", "graph", "compiled", "fit")
DEVICES: tuple[str, ...] = ("cpu", "gpu")
# The arithmetic of the matmuls and convolutions (issue 16's precision axis). fp32: true float32
# on both sides (TF32 off on a GPU, oneDNN's default fp32 math on a CPU). tf32: float32 storage,
# TF32 tensor-core matmuls (a GPU's; no CPU has it). bf16: mixed precision, bfloat16 compute with
# float32 weights and loss (torch.autocast; Keras' "mixed_bfloat16" policy).
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")
GPU_ONLY_PRECISIONS: tuple[str, ...] = ("tf32",)
# train: steady-state training steps. inference: batch-1 latency percentiles plus throughput
# at ``batch_size`` (F5).
# compile: a training trial plus a second process on the same compile cache (warm compile).
# retrace: training steps over a sequence of changing input shapes (F4), per tracing variant.
TASKS: tuple[str, ...] = ("train", "inference", "compile", "retrace")
RETRACE_VARIANTS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("plain", "reduce_retracing", "input_signature"),
    "torch": ("default", "dynamic"),
}
# Data-parallel scaling (fwstudy.harness.distributed): strong keeps ``batch_size`` as the global batch
# and splits it over the workers; weak gives every worker ``batch_size`` (global = N x batch).
SCALINGS: tuple[str, ...] = ("strong", "weak")
DEFAULT_LATENCY_CALLS = 200
# How a trial's process starts (docs/methodology.md, "Isolation"). process: a fresh interpreter
# that imports its framework, then measures (every trial pays the import: 1-5 s on a CPU).
# fork: a child forked from a warm server that imported the framework once
# (fwstudy.harness.forkserver); everything after the import is the trial's own process, as
# under ``process``: its memory high-water mark, thread pools, compile state and caches. Only
# steady-state tasks may fork; compile and retrace trials measure first-call costs, and
# data-parallel trials start their workers through a launcher: always ``process``.
ISOLATIONS: tuple[str, ...] = ("process", "fork")
FORKABLE_TASKS: tuple[str, ...] = ("train", "inference")

DEFAULT_STEPS = 30
DEFAULT_WARMUP = 5
DEFAULT_TIMEOUT_S = 600.0


def default_threads() -> int:
    """All logical cores the process may use: the same number goes to both frameworks."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """Reject bools, floats and strings as well as sizes below the minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be an integer, got {value!r}")
    low = 0 if allow_zero else 1
    if value < low:
        raise BadInput(f"{name} must be >= {low}, got {value}")
    return value


def check_finite(name: str, value: Any) -> None:
    """NaN and infinite numbers are rejected everywhere, however deep in a list or mapping:
    ``nan`` as a timeout would mean no timeout, and a NaN in a record is not valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"{name} must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(f"{name}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_finite(name, item)


def check_cores(what: str, threads: int, *, oversubscribe: bool, cores: int | None = None) -> None:
    """More threads on a host than it has logical cores (threads, or workers x threads per
    worker) measures the scheduler, not the framework: allowed only when asked for."""
    cores = cores or default_threads()
    if threads > cores and not oversubscribe:
        raise BadInput(
            f"{what} asks for {threads} threads on {cores} logical cores; lower it, "
            f"or pass --oversubscribe (profile: oversubscribe: true) to measure that on purpose"
        )


def check_choice(name: str, value: Any, valid: tuple[str, ...] | list[str]) -> str:
    if value not in valid:
        raise BadInput(f"unknown {name} {value!r}; valid {name}s: {choices(valid)}")
    return value


def check_precision(precision: Any, device: str) -> str:
    """A precision the device lacks is bad input, never a silent fp32 run."""
    check_choice("precision", precision, PRECISIONS)
    if precision in GPU_ONLY_PRECISIONS and device != "gpu":
        valid = [p for p in PRECISIONS if p not in GPU_ONLY_PRECISIONS]
        raise BadInput(
            f"precision {precision!r} needs device 'gpu' (TF32 is an NVIDIA tensor-core format); "
            f"valid precisions on {device}: {choices(valid)}"
        )
    return precision


def modes_for(framework: str, workload: str | None = None) -> tuple[str, ...]:
    """The modes a framework (and, when given, a workload) supports."""
    modes = FRAMEWORK_MODES[framework]
    if workload is not None:
        from fwstudy.workloads import get_workload

        spec = get_workload(workload)
        modes = tuple(m for m in modes if m in spec.modes)
    return modes


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines a measurement; its hash (with the code version) is its identity."""

    workload: str
    framework: str
    mode: str
    batch_size: int | None = None
    steps: int = DEFAULT_STEPS
    warmup: int = DEFAULT_WARMUP
    threads: int = field(default_factory=default_threads)
    interop_threads: int = 1
    device: str = "cpu"
    precision: str = "fp32"
    # The block this trial belongs to (rule 7: one trial of each framework per block, in random
    # order), and its replica within the block: replica 1 repeats replica 0's configuration in
    # the same block, an A-vs-A pair whose difference is pure noise (the noise floor).
    repeat: int = 0
    replica: int = 0
    seed: int = 0
    workload_params: Mapping[str, Any] = field(default_factory=dict)
    task: str = "train"
    latency_calls: int = DEFAULT_LATENCY_CALLS
    # Data-parallel workers (fwstudy.harness.distributed): 1 is a plain single-process trial; N > 1
    # splits ``threads`` evenly over N worker processes on this host (or the hosts given).
    workers: int = 1
    # The retrace task: batch sizes to step through, and sequence lengths beside them for
    # workloads with a ``length`` parameter (empty: the workload's length throughout).
    variant: str | None = None
    batch_sequence: tuple[int, ...] = ()
    length_sequence: tuple[int, ...] = ()
    scaling: str = "strong"
    isolation: str = "process"
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        from fwstudy.workloads import WORKLOADS, get_workload

        check_choice("workload", self.workload, sorted(WORKLOADS))
        check_choice("framework", self.framework, FRAMEWORKS)
        check_choice("device", self.device, DEVICES)
        check_precision(self.precision, self.device)
        check_choice("task", self.task, TASKS)
        if self.mode not in ALL_MODES:
            raise BadInput(f"unknown mode {self.mode!r}; valid modes: {choices(ALL_MODES)}")
        valid = modes_for(self.framework, self.workload)
        if self.mode not in valid:
            raise BadInput(
                f"mode {self.mode!r} is not available for {self.framework} on {self.workload}; "
                f"{self.framework} modes: {choices(valid)}"
            )
        spec = get_workload(self.workload)
        params = spec.resolve_params(dict(self.workload_params))
        object.__setattr__(self, "workload_params", params)
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", spec.default_batch_size)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("steps", self.steps)
        check_positive_int("warmup", self.warmup, allow_zero=True)
        check_positive_int("threads", self.threads)
        check_positive_int("interop_threads", self.interop_threads)
        check_positive_int("repeat", self.repeat, allow_zero=True)
        check_positive_int("replica", self.replica, allow_zero=True)
        check_positive_int("seed", self.seed, allow_zero=True)
        check_positive_int("latency_calls", self.latency_calls)
        check_positive_int("workers", self.workers)
        self._check_retrace(spec)
        check_choice("scaling", self.scaling, SCALINGS)
        check_choice("isolation", self.isolation, ISOLATIONS)
        if self.isolation == "fork" and not self.forkable:
            raise BadInput(
                f"isolation 'fork' is for single-process {' and '.join(FORKABLE_TASKS)} trials; "
                f"a {self.task} trial with {self.workers} worker(s) needs isolation 'process'"
            )
        if self.scaling == "strong" and self.batch_size % self.workers:
            raise BadInput(
                f"strong scaling splits batch_size {self.batch_size} over {self.workers} workers: "
                f"it must be a multiple of workers"
            )
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)):
            raise BadInput(f"timeout_s must be a number, got {self.timeout_s!r}")
        for item in dataclasses.fields(self):
            check_finite(item.name, getattr(self, item.name))
        if self.timeout_s <= 0:
            raise BadInput(f"timeout_s must be > 0, got {self.timeout_s}")

    def _check_retrace(self, spec) -> None:
        object.__setattr__(self, "batch_sequence", tuple(self.batch_sequence))
        object.__setattr__(self, "length_sequence", tuple(self.length_sequence))
        for name in ("batch_sequence", "length_sequence"):
            for value in getattr(self, name):
                check_positive_int(name, value)
        if self.task != "retrace":
            if self.variant is not None or self.batch_sequence or self.length_sequence:
                raise BadInput("variant, batch_sequence and length_sequence belong to task 'retrace'")
            return
        check_choice("variant", self.variant, RETRACE_VARIANTS[self.framework])
        if not self.batch_sequence:
            raise BadInput("task 'retrace' needs a non-empty batch_sequence")
        if self.length_sequence:
            if "length" not in spec.defaults:
                raise BadInput(f"workload {self.workload} has no sequence length to vary")
            if len(self.length_sequence) != len(self.batch_sequence):
                raise BadInput("length_sequence must be as long as batch_sequence")
            if max(self.length_sequence) > self.workload_params["length"]:
                raise BadInput("length_sequence exceeds the workload's length parameter")

    @property
    def forkable(self) -> bool:
        """Whether this trial may run forked from a warm server (``ISOLATIONS``)."""
        return self.task in FORKABLE_TASKS and self.workers == 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["workload_params"] = dict(self.workload_params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise BadInput(
                f"unknown trial parameter {unknown[0]!r}; valid parameters: {choices(sorted(names))}"
            )
        return cls(**data)

    def identity(self, code_version: str, fingerprint: str | None = None) -> str:
        """Hash of what changes the measurement: the configuration, the code version and the
        environment fingerprint (framework and NumPy versions, CPU model, host; by default
        this machine's, ``harness.environment.fingerprint_digest``), so that a record measured
        elsewhere is never reused as if measured here. The timeout only decides when to give up."""
        if fingerprint is None:
            from fwstudy.harness.environment import fingerprint_digest

            fingerprint = fingerprint_digest()
        data = self.to_dict()
        data.pop("timeout_s")
        if data["isolation"] == "process":
            data.pop("isolation")  # trials stored before the isolation field keep their ids
        blob = json.dumps({"config": data, "code": code_version, "env": fingerprint}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def label(self) -> str:
        from fwstudy.workloads import get_workload

        if self.task == "retrace":
            shapes = "/".join(map(str, self.batch_sequence))
            return f"{self.framework} {self.workload} {self.mode} retrace {self.variant} b={shapes} t={self.threads}"
        task = "" if self.task == "train" else f" {self.task}"
        extra = "".join(f" {k}={v}" for k, v in sorted(self.workload_params.items())
                        if v != get_workload(self.workload).defaults[k])
        if self.workers > 1:
            extra += f" workers={self.workers} {self.scaling}"
        if self.precision != "fp32":
            extra += f" {self.precision}"
        if self.isolation != "process":
            extra += f" ({self.isolation})"
        return f"{self.framework} {self.workload} {self.mode}{task} b={self.batch_size} t={self.threads}{extra}"
