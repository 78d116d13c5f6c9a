"""PyTorch side of a trial: eager loop or torch.compile (inductor), on CPU or CUDA.

Compiled scope (training), the same as TensorFlow's XLA ``train_step`` as far as dynamo can
go: ``torch.compile(model)`` compiles the forward and, through AOTAutograd, the backward; a
second ``torch.compile``d function that calls ``optimizer.step()`` compiles Adam's update (the
documented "compiled optimizer" recipe). The loss (cross-entropy on the logits), ``zero_grad``
and the Python loop stay eager. A model dynamo does not capture (``nn.LSTM``: dynamo skips RNN
modules, ``torch._dynamo.config.allow_rnn`` is False) keeps its optimizer eager too, so the
"compiled" step is eager's and the record says so (``compile_evidence["captured"]`` False).
Eager mode: plain ``torch.optim.Adam`` with its default implementation (the for-loop,
single-tensor one on CPU; foreach on CUDA), recorded as ``framework_env["optimizer"]``.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy.config.trial import TrialConfig
from fwstudy.frameworks.base import (
    InferResult,
    RetraceResult,
    TrainResult,
    TrialError,
    overhead_blocks,
    shape_sequence,
    shaped_params,
)
from fwstudy.measure import training
from fwstudy.measure.timing import measure_steps
from fwstudy.workloads.spec import WorkloadSpec


def configure(config: TrialConfig) -> torch.device:
    torch.set_num_threads(config.threads)
    torch.set_num_interop_threads(config.interop_threads)
    if config.device == "gpu":
        if not torch.cuda.is_available():
            raise TrialError("device 'gpu' asked for, but torch.cuda.is_available() is False")
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    set_precision(config.precision, device)
    return device


def set_precision(precision: str, device: torch.device) -> None:
    """The fp32 math of the precision, as TensorFlow's ``set_precision`` sets it (rule 3):
    TF32 matmuls and convolutions only for ``tf32`` (``allow_tf32`` and matmul precision
    "high"), full fp32 ("highest") otherwise, bf16 included (autocast picks bf16 for the ops it
    lowers; everything else stays true fp32)."""
    tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def autocast(precision: str, device: torch.device):
    """bf16 mixed precision: ``torch.autocast`` around the forward and the loss (the backward
    runs outside it, as PyTorch's recipe says); a no-op context for fp32 and tf32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_env(precision: str, device: torch.device) -> dict[str, Any]:
    """What decides the real math of this trial (issue 16): matmul precision, TF32 flags,
    autocast, oneDNN's implicit fp32 down-conversion variable."""
    env: dict[str, Any] = {
        "precision": precision,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "autocast_dtype": "bfloat16" if precision == "bf16" else None,
        "onednn_default_fpmath_mode": os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE"),
        "mkldnn_bf16_supported": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: None)()),
    }
    if device.type == "cuda":
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        env["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    return env


def precision_check(model: nn.Module, x: torch.Tensor, config: TrialConfig, device: torch.device) -> dict[str, Any] | None:
    """A reduced-precision trial's forward against fp32 from the same weights and batch
    (``fwstudy.measure.precision``): the model in eval mode, the reduced forward under the
    trial's own settings, the reference with TF32 off and no autocast."""
    if config.precision == "fp32":
        return None
    from fwstudy.measure import precision

    was_training = model.training
    model.eval()
    with torch.no_grad():
        with autocast(config.precision, device):
            reduced = model(x).float().cpu().numpy()
        set_precision("fp32", device)
        reference = model(x).float().cpu().numpy()
        set_precision(config.precision, device)
    model.train(was_training)
    return precision.compare(reduced, reference, config.precision, config.workload, config.workload_params)


# The compiler stack and what inductor imports lazily on its first compile (found by diffing
# sys.modules around a first compile: ~1,400 of its ~1,600 new modules come with these).
COMPILER_MODULES = (
    "torch._dynamo",
    "torch._dynamo.backends.inductor",
    "torch._functorch.aot_autograd",
    "torch._inductor.compile_fx",
    "torch._inductor.graph",
    "torch._inductor.lowering",
    "torch._inductor.decomposition",
    "torch._inductor.scheduler",
    "torch._inductor.codecache",
    "torch._inductor.async_compile",
    "torch._inductor.select_algorithm",
    "torch._inductor.kernel.mm",
    "torch._inductor.codegen.cpp",
    "torch._inductor.codegen.cpp_wrapper_cpu",
    "torch._inductor.fx_passes.pre_grad",
    "torch._inductor.fx_passes.joint_graph",
    "torch._inductor.fx_passes.post_grad",
    "torch.distributed.tensor",
    "torch.export._trace",
    "torch.utils.cpp_extension",
)


def import_compiler() -> float:
    """Import the compiler stack (dynamo, AOTAutograd, inductor and the modules inductor would
    import lazily during its first compile) and return the seconds that took.

    Compiled modes call this before the first, timed, call, so that the first call's time
    (``compile_s``, the compile cost) no longer includes these one-off imports (several
    seconds: more than a small model's whole compile); the import is reported apart as
    ``framework_env["compiler_import_s"]``. A module this torch build lacks is skipped."""
    start = time.perf_counter()
    for name in COMPILER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return time.perf_counter() - start


def reset_compile_counters() -> None:
    from torch._dynamo.utils import counters

    counters.clear()


def compile_evidence() -> dict[str, Any]:
    """What torch.compile did since the counters were last cleared (torch._dynamo.utils.counters):
    ``compiles`` = frames dynamo converted (first compiles and recompiles), ``graphs`` = distinct
    FX graphs, ``graph_breaks``; inductor's FX-graph cache and AOTAutograd's cache hits, misses
    and bypasses (a warm cache turns misses into hits); ``captured`` = at least one graph (False:
    dynamo captured nothing and everything ran eagerly)."""
    from torch._dynamo.utils import counters

    graphs = int(counters["stats"]["unique_graphs"])
    return {
        "compiles": int(counters["frames"]["ok"]),
        "graphs": graphs,
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "fxgraph_cache_hit": int(counters["inductor"]["fxgraph_cache_hit"]),
        "fxgraph_cache_miss": int(counters["inductor"]["fxgraph_cache_miss"]),
        "fxgraph_cache_bypass": int(counters["inductor"]["fxgraph_cache_bypass"]),
        "aotautograd_cache_hit": int(counters["aot_autograd"]["autograd_cache_hit"]),
        "aotautograd_cache_miss": int(counters["aot_autograd"]["autograd_cache_miss"]),
        "aotautograd_cache_bypass": int(counters["aot_autograd"]["autograd_cache_bypass"]),
        "captured": graphs > 0,
    }


def eager_adam_implementation(params: list[torch.Tensor]) -> str:
    """Which implementation plain ``torch.optim.Adam`` picks for these parameters (foreach
    only where every parameter is on a foreach device: CUDA, not CPU)."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach

        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    except (ImportError, TypeError):
        foreach = bool(params) and all(p.device.type == "cuda" for p in params)
    return "foreach" if foreach else "for-loop (single-tensor)"


EAGER_SCOPE = "nothing compiled: forward, backward and Adam ({adam}) run eagerly"
COMPILED_SCOPE = (
    "torch.compile (inductor, default mode) of the model: forward and backward (AOTAutograd); "
    "Adam's update compiled by a torch.compile'd function calling optimizer.step() (the compiled-"
    "optimizer recipe); the cross-entropy loss, zero_grad and the Python loop stay eager"
)
NOT_CAPTURED_SCOPE = (
    "nothing compiled: dynamo captured no graph of the model (nn.LSTM is skipped, "
    "allow_rnn=False), so the optimizer step stays eager too and the step is eager's"
)
INFERENCE_COMPILED_SCOPE = (
    "torch.compile(model, dynamic=False) per input shape: a fresh compiled model for batch 1 and "
    "another for batch N (torch._dynamo.reset() between), forward only, under inference_mode"
)


def framework_env(config: TrialConfig, device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "parallel_info": torch.__config__.parallel_info(),
        "compile": {"backend": "inductor", "mode": "default"}
        if config.mode == "compiled"
        else None,
    }
    env.update(precision_env(config.precision, device))
    if device.type == "cuda":
        env["gpu_name"] = torch.cuda.get_device_name(device)
        env["cuda_version"] = torch.version.cuda
        env["cudnn_version"] = torch.backends.cudnn.version()
        env["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        if config.mode == "compiled":
            # inductor's "default" mode launches its kernels one by one; CUDA graphs are
            # "reduce-overhead" mode's (triton.cudagraphs), off here unless configured on.
            from torch._inductor import config as inductor_config

            env["cuda_graphs"] = bool(inductor_config.triton.cudagraphs)
        else:
            env["cuda_graphs"] = False
    return env


def to_device(batch: tuple[np.ndarray, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(a).to(device) for a in batch)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Adam with the constants of fwstudy.measure.training, shared by trials and the parity gate."""
    return torch.optim.Adam(
        model.parameters(),
        lr=training.LEARNING_RATE,
        betas=(training.ADAM_BETA_1, training.ADAM_BETA_2),
        eps=training.ADAM_EPSILON,
    )


def compiled_optimizer_step(optimizer: torch.optim.Optimizer):
    """``optimizer.step()`` inside a ``torch.compile``d function (the compiled-optimizer recipe,
    ``fullgraph=False``): inductor fuses Adam's per-parameter updates into generated kernels."""

    @torch.compile(fullgraph=False)
    def step() -> None:
        optimizer.step()

    return step


def gpu_peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class Training:
    """Model, batches and optimizer of one trial; ``step`` is what the harness times and
    ``bare`` the same training written as a plain loop, for the overhead benchmark.

    Compiled mode (module docstring): the compiler stack is imported first
    (``compiler_import_s``), the compile counters cleared, the model wrapped in
    ``torch.compile``; the optimizer step is decided on its first call, right after the first
    forward and backward: compiled when dynamo captured a graph of the model, eager when it
    captured none (``model_evidence`` keeps the model's counts at that point)."""

    def __init__(self, config: TrialConfig, spec: WorkloadSpec, dynamic: bool | None = None):
        self.device = configure(config)
        self.compiled = config.mode == "compiled"
        self.compiler_import_s = import_compiler() if self.compiled else None
        if self.compiled:
            reset_compile_counters()
        params = config.workload_params
        torch.manual_seed(config.seed)
        self.model = spec.implementation("torch").build_model(params).to(self.device)
        self.model.train()
        gen = np.random.default_rng(config.seed)
        self.batches = [
            to_device(spec.synthetic_batch(params, config.batch_size, gen), self.device)
            for _ in range(training.BATCH_POOL)
        ]
        self.loss_fn = nn.CrossEntropyLoss()
        self.precision = config.precision
        self.optimizer = make_optimizer(self.model)
        self.eager_adam = eager_adam_implementation(list(self.model.parameters()))
        self.model_evidence: dict[str, Any] | None = None
        self.optimizer_frames = 0
        if self.compiled:
            self.forward = torch.compile(self.model, dynamic=dynamic)
            self.optimizer_step = self._first_optimizer_step
        else:
            self.forward = self.model
            self.optimizer_step = self.optimizer.step
        self.sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _first_optimizer_step(self) -> None:
        self.model_evidence = compile_evidence()
        if self.model_evidence["captured"]:
            self.optimizer_step = compiled_optimizer_step(self.optimizer)
        else:
            self.optimizer_step = self.optimizer.step
        self.optimizer_step()
        # The optimizer compiles once (its parameters never change shape): its frames are not
        # recompiles of the model, which is what a retrace count compares with TF's traces.
        self.optimizer_frames = compile_evidence()["compiles"] - self.model_evidence["compiles"]

    def train_on(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, self.device):
            loss = self.loss_fn(self.forward(x), y)
        loss.backward()
        self.optimizer_step()
        return loss

    def step(self, i: int) -> float:
        loss = self.train_on(*self.batches[i % len(self.batches)])
        self.sync()
        return loss.item()

    def bare(self, steps: int) -> float:
        start = time.perf_counter()
        for i in range(steps):
            x, y = self.batches[i % len(self.batches)]
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(self.precision, self.device):
                loss = self.loss_fn(self.forward(x), y)
            loss.backward()
            self.optimizer_step()
        self.sync()
        return time.perf_counter() - start

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def scope(self) -> str:
        if not self.compiled:
            return EAGER_SCOPE.format(adam=self.eager_adam)
        if self.model_evidence is not None and not self.model_evidence["captured"]:
            return NOT_CAPTURED_SCOPE
        return COMPILED_SCOPE

    def env(self, config: TrialConfig) -> dict[str, Any]:
        """framework_env plus the compile scope, the eager optimizer's implementation and, in
        compiled mode, the compiler's import time and the compile evidence (model and optimizer
        graphs apart)."""
        env = framework_env(config, self.device)
        env["compile_scope"] = self.scope()
        env["optimizer"] = {
            "class": "torch.optim.Adam",
            "implementation": "compiled (inductor)" if self.compiled and self.scope() == COMPILED_SCOPE
            else self.eager_adam,
        }
        if self.compiled:
            evidence = compile_evidence()
            model_graphs = self.model_evidence["graphs"] if self.model_evidence else evidence["graphs"]
            evidence.update(model_graphs=model_graphs, optimizer_graphs=evidence["graphs"] - model_graphs)
            env["compile_evidence"] = evidence
            env["compiler_import_s"] = self.compiler_import_s
        return env


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    run = Training(config, spec)
    samples = measure_steps(run.step, config.warmup, config.steps)
    peak = gpu_peak_mb(run.device)
    return TrainResult(
        samples=samples, params=run.param_count(), framework_env=run.env(config),
        gpu_peak_mb=peak, precision_check=precision_check(run.model, run.batches[0][0], config, run.device),
    )


def retrace(config: TrialConfig, spec: WorkloadSpec) -> RetraceResult:
    """Training steps over changing shapes; ``dynamic`` variant: ``torch.compile(dynamic=True)``,
    default: ``dynamic`` unset (dynamo specializes, then recompiles with dynamic dims). The
    compiled optimizer step sees the same parameter shapes at every input shape."""
    run = Training(config, spec, dynamic=True if config.variant == "dynamic" else None)
    gen = np.random.default_rng(config.seed + 1)
    times = []
    for batch, length in shape_sequence(config):
        x, y = to_device(spec.synthetic_batch(shaped_params(config.workload_params, length), batch, gen), run.device)
        start = time.perf_counter()
        loss = run.train_on(x, y)
        run.sync()
        loss.item()
        times.append(time.perf_counter() - start)
    counts = compile_evidence() if config.mode == "compiled" else {"compiles": 0, "graphs": 0, "graph_breaks": 0}
    return RetraceResult(
        shape_times_s=times, traces=counts["compiles"] - run.optimizer_frames, graphs=counts["graphs"],
        graph_breaks=counts["graph_breaks"], params=run.param_count(),
        framework_env=run.env(config), gpu_peak_mb=gpu_peak_mb(run.device),
    )


PEER_MIN_RUN_S = 2.0


def peer_timer_ms(
    config: TrialConfig, spec: WorkloadSpec, run: Training | None = None, min_run_time: float = PEER_MIN_RUN_S
) -> dict[str, Any]:
    """The same training step timed by an independent tool, ``torch.utils.benchmark.Timer``
    (``blocked_autorange``), at the trial's threads (``num_threads=config.threads``: the Timer
    defaults to 1 and sets the pool size around its loops), cycling through the same batch
    pool. Its statistic is the median over blocks of each block's mean step time, with the
    garbage collector off (``timeit`` disables it while timing); the runner's is the median of
    single steps, collector on."""
    from torch.utils import benchmark

    if run is None:
        run = Training(config, spec)
        measure_steps(run.step, config.warmup, 1)  # compile and warm up first
    timer = benchmark.Timer(
        stmt="step(next(counter))",
        globals={"step": run.step, "counter": itertools.count()},
        num_threads=config.threads,
    )
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return {
        "peer_step_ms": measurement.median * 1e3,
        "peer_mean_step_ms": measurement.mean * 1e3,
        "peer_blocks": len(measurement.raw_times),
        "peer_steps_per_block": measurement.number_per_run,
        "peer_method": (
            f"torch.utils.benchmark.Timer(num_threads={config.threads}).blocked_autorange("
            f"min_run_time={min_run_time:g}): median of per-block mean step times, GC off"
        ),
    }


def overhead(config: TrialConfig, spec: WorkloadSpec, blocks: int, **options: Any) -> dict[str, Any]:
    """The runner's loop against a bare loop (``overhead_blocks``), then the same step timed by
    torch.utils.benchmark's Timer as an independent cross-check (``peer_timer_ms``)."""
    run = Training(config, spec)
    measure_steps(run.step, config.warmup, 1)  # compile and warm up before either loop
    result: dict[str, Any] = dict(overhead_blocks(run.bare, run.step, config.steps, blocks, **options))
    result.update(peer_timer_ms(config, spec, run))
    return result


def infer(config: TrialConfig, spec: WorkloadSpec) -> InferResult:
    """``eval()`` and ``inference_mode``; each call copies its output to the host, as a
    served model must (and as TF's ``.numpy()`` does).

    Compiled mode compiles each input shape on its own: ``torch.compile(model,
    dynamic=False)`` for batch 1, then ``torch._dynamo.reset()`` and a fresh compiled object
    for batch N, so neither shape runs a kernel generalized over a symbolic batch;
    ``framework_env["inference_compile"]`` keeps each shape's first-call time and counters.
    The batch-1 latency loop runs quiet (no GC, no RSS sampling: ``measure_steps(quiet=True)``)."""
    device = configure(config)
    compiled = config.mode == "compiled"
    compiler_import_s = import_compiler() if compiled else None
    params = config.workload_params
    torch.manual_seed(config.seed)
    model = spec.implementation("torch").build_model(params).to(device).eval()
    gen = np.random.default_rng(config.seed)
    one = to_device(spec.synthetic_batch(params, 1, gen), device)[0]
    many = to_device(spec.synthetic_batch(params, config.batch_size, gen), device)[0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    shapes: dict[str, Any] = {}

    def shape_forward(label: str):
        if not compiled:
            return model
        if shapes:
            torch._dynamo.reset()
        reset_compile_counters()
        return torch.compile(model, dynamic=False)

    def run_shape(label: str, x: torch.Tensor, steps: int, quiet: bool):
        forward = shape_forward(label)

        def call(i: int) -> float:
            with autocast(config.precision, device):
                out = forward(x).cpu()
            return float(out.reshape(-1)[0])

        samples = measure_steps(call, config.warmup, steps, quiet=quiet)
        shapes[label] = {"batch": int(x.shape[0]), "first_call_s": samples.compile_s}
        if compiled:
            shapes[label].update(compile_evidence())
        return samples

    with torch.inference_mode():
        latency = run_shape("batch1", one, config.latency_calls, quiet=True)
        throughput = run_shape("batchN", many, config.steps, quiet=False)
    env = framework_env(config, device)
    env["inference_compile"] = shapes
    if compiled:
        captured = all(s["captured"] for s in shapes.values())
        totals = {
            key: sum(s[key] for s in shapes.values())
            for key, value in shapes["batch1"].items()
            if isinstance(value, int) and not isinstance(value, bool) and key != "batch"
        }
        env["compile_evidence"] = {**totals, "captured": captured}
        env["compiler_import_s"] = compiler_import_s
        env["compile_scope"] = INFERENCE_COMPILED_SCOPE if captured else (
            "nothing compiled: dynamo captured no graph of the model (nn.LSTM is skipped, "
            "allow_rnn=False), so every call runs eagerly"
        )
    else:
        env["compile_scope"] = "nothing compiled: the forward runs eagerly"
    peak = gpu_peak_mb(device)
    return InferResult(
        latency=latency, throughput=throughput, params=sum(p.numel() for p in model.parameters()),
        framework_env=env, gpu_peak_mb=peak, precision_check=precision_check(model, many, config, device),
    )
