"""TensorFlow side of a trial: eager GradientTape, tf.function, XLA, or Keras ``fit``.

Compile evidence (``framework_env["compile_evidence"]``) counts two things apart, because they
differ: ``traces`` is how often ``tf.function`` traced Python into a graph
(``experimental_get_tracing_count``), ``xla_compilations`` how many XLA executables were
compiled. XLA compiles once per concrete input shape even when an ``input_signature`` (dims
left None) keeps TensorFlow at one trace. XLA's compilations are counted from its documented
persistent compilation cache (``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=<dir>``, set
by the parent for every trial child): each compiled executable is written there as one file
``xla_compile_cache__<signature>__<fingerprint>__XLA_<device>_JIT.pb`` right after its
compilation, so the files the folder gains during a call are the compilations that call made
(checked: an ``input_signature`` function called at batches 16, 32, 48, 16, 64, 32 traces once
and writes 4 files, one per distinct shape, the first call of each). An executable loaded
from a warm cache is not compiled and adds no file: a warm-cache trial reports 0; retrace and
compile trials always start from an empty cache.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

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
from fwstudy.measure import collectors, training
from fwstudy.measure.timing import StepSamples, measure_steps
from fwstudy.workloads.spec import WorkloadSpec


def configure(config: TrialConfig) -> str:
    tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    tf.config.threading.set_inter_op_parallelism_threads(config.interop_threads)
    if config.device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise TrialError("device 'gpu' asked for, but TensorFlow sees no GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    set_precision(config.precision, config.device)
    return "/GPU:0" if config.device == "gpu" else "/CPU:0"


def set_precision(precision: str, device: str, *, policy: bool = True) -> None:
    """The precision as the torch backend sets it (rule 3): TF32 execution only for ``tf32``
    (TensorFlow enables it by default on Ampere and newer; fp32 and bf16 turn it off), and for
    ``bf16`` Keras' "mixed_bfloat16" policy (bfloat16 compute, float32 variables; the loss
    casts the logits to float32), set before the model is built. ``policy=False``: the flag
    only (a bare GEMM has no Keras layer)."""
    tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")
    if policy:
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")


def precision_env(precision: str) -> dict[str, Any]:
    """What decides the real math of this trial: the Keras dtype policy, TF32 execution, the
    oneDNN fp32 math mode variable, and whether XLA may use CUDA graphs (its command buffers,
    ``--xla_gpu_enable_command_buffer`` in XLA_FLAGS; unset means XLA's built-in default)."""
    flags = os.environ.get("XLA_FLAGS") or ""
    command_buffer = [f for f in flags.split() if f.startswith("--xla_gpu_enable_command_buffer")]
    return {
        "precision": precision,
        "keras_dtype_policy": keras.mixed_precision.global_policy().name,
        "tf32_execution": tf.config.experimental.tensor_float_32_execution_enabled(),
        "onednn_default_fpmath_mode": os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE"),
        "xla_cuda_graphs": command_buffer[0] if command_buffer else "XLA default (flag unset)",
    }


def precision_check(model, x, config: TrialConfig, spec: WorkloadSpec, device: str) -> dict[str, Any] | None:
    """A reduced-precision trial's forward against fp32 from the same weights and batch
    (``fwstudy.measure.precision``): the reference is a float32-policy twin given the trained
    model's weights (a mixed policy's variables are float32 already), run with TF32 off."""
    if config.precision == "fp32":
        return None
    from fwstudy.measure import precision

    with tf.device(device):
        reduced = tf.cast(model(x, training=False), tf.float32).numpy()
        set_precision("fp32", config.device)
        reference_model = spec.implementation("tensorflow").build_model(config.workload_params)
        reference_model(x, training=False)
        reference_model.set_weights(model.get_weights())
        reference = reference_model(x, training=False).numpy()
        set_precision(config.precision, config.device)
    return precision.compare(reduced, reference, config.precision, config.workload, config.workload_params)


def onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory="
XLA_COUNT_METHOD = (
    "files gained by the XLA persistent compilation cache folder (TF_XLA_FLAGS "
    "--tf_xla_persistent_cache_directory): one file per compiled XLA executable, written "
    "after its compilation; executables loaded from a warm cache are not counted"
)
COMPILE_SCOPE = {
    "eager": "nothing compiled: eager GradientTape step, op by op",
    "graph": "tf.function of the whole train_step (forward, backward, apply_gradients), no XLA",
    "compiled": "the whole train_step including apply_gradients (Adam) in one tf.function "
    "with jit_compile=True: one XLA cluster per concrete input shape",
    "fit": "Keras fit: its train_function is a tf.function without XLA (jit_compile=False)",
}
INFER_SCOPE = {
    "eager": "nothing compiled: model(x, training=False) op by op",
    "graph": "one tf.function of the forward pass per input shape, no XLA",
    "compiled": "one tf.function of the forward pass per input shape, jit_compile=True (XLA)",
    "fit": "Keras predict_on_batch: its predict_function is a tf.function (reduce_retracing) "
    "without XLA, jit_compile=False set explicitly (Keras' 'auto' would pick XLA on a GPU)",
}


def xla_cache_dir() -> Path | None:
    """The XLA persistent compilation cache folder this process was started with, if any."""
    for token in os.environ.get("TF_XLA_FLAGS", "").split():
        if token.startswith(XLA_CACHE_FLAG):
            return Path(token[len(XLA_CACHE_FLAG) :])
    return None


def xla_cache_entries() -> int | None:
    """Compiled executables in the XLA persistent cache (None: no cache folder configured)."""
    folder = xla_cache_dir()
    if folder is None:
        return None
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.name.startswith("xla_compile_cache__") and p.name.endswith(".pb"))


def gained(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def tracing_count(fn: Any) -> int:
    """tf.function traces so far; 0 for a plain Python function (eager)."""
    count = getattr(fn, "experimental_get_tracing_count", None)
    return int(count()) if count is not None else 0


def compiler_import_s() -> float:
    """The one-off import/initialization of the compiler stack, reported apart from compile
    time: 0.0 on TensorFlow. XLA is linked into the TensorFlow library loaded by ``import
    tensorflow`` (counted in ``import_s``), and its first use imports nothing lazily (the
    modules a first ``jit_compile`` call adds to ``sys.modules`` are only autograph's generated
    module for the function itself); measured: a first jit call after one plain tf.function
    call costs what later jit compilations of the same tiny function cost. The one-off set-up
    of the first ``tf.function`` call (~0.05-0.1 s) is paid alike by graph and compiled modes
    and by every user, so it stays in the first call."""
    return 0.0


def compile_evidence(traces: int, before: int | None, after: int | None, jit: bool) -> dict[str, Any]:
    return {
        "traces": traces,
        "xla_compilations": gained(before, after),
        "xla_cache_entries_before": before,
        "xla_cache_entries_after": after,
        "xla_cache_dir_set": xla_cache_dir() is not None,
        "jit_compile": jit,
        "xla_compilations_method": XLA_COUNT_METHOD,
    }


def framework_env(config: TrialConfig, device: str) -> dict[str, Any]:
    build = dict(tf.sysconfig.get_build_info())
    env: dict[str, Any] = {
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn_enabled": onednn_enabled(),
        "build_info": {k: str(v) for k, v in build.items()},
        "keras_backend": keras.backend.backend(),
        "jit_compile": config.mode == "compiled",
        "tf_function": config.mode in ("graph", "compiled", "fit"),
        "compile_scope": (INFER_SCOPE if config.task == "inference" else COMPILE_SCOPE)[config.mode],
        "compiler_import_s": compiler_import_s(),
        **precision_env(config.precision),
    }
    if device.startswith("/GPU"):
        env["gpu_name"] = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        ).get("device_name")
        env["cuda_version"] = build.get("cuda_version")
        env["cudnn_version"] = build.get("cudnn_version")
    return env


def gpu_peak_mb(device: str) -> float | None:
    if not device.startswith("/GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def reset_gpu_peak(device: str) -> None:
    if device.startswith("/GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def make_optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(
        learning_rate=training.LEARNING_RATE,
        beta_1=training.ADAM_BETA_1,
        beta_2=training.ADAM_BETA_2,
        epsilon=training.ADAM_EPSILON,
    )



def tape_step(model, loss_fn, optimizer, x, y):
    """One step of the custom GradientTape loop, the one the timings measure: the parity gate,
    F8's training runs and F9's planted bugs call this same step (wrapped in ``tf.function``
    for graph mode, with ``jit_compile`` for compiled), so they check what is timed."""
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables, strict=True))
    return loss

class Training:
    """Model, batches and optimizer of one trial; ``step`` is what the harness times and
    ``bare`` the same training written as a plain loop, for the overhead benchmark."""

    def __init__(self, config: TrialConfig, spec: WorkloadSpec):
        self.config = config
        self.device = configure(config)
        params = config.workload_params
        keras.utils.set_random_seed(config.seed)
        gen = np.random.default_rng(config.seed)
        self.pool = [
            spec.synthetic_batch(params, config.batch_size, gen) for _ in range(training.BATCH_POOL)
        ]
        with tf.device(self.device):
            self.model = spec.implementation("tensorflow").build_model(params)
            self.optimizer = make_optimizer()
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.batches = [tuple(tf.constant(a) for a in batch) for batch in self.pool]
        if config.mode != "fit":
            self.optimizer.build(self.model.trainable_variables)
            fn = self.train_step
            self.fn = fn if config.mode == "eager" else tf.function(fn, jit_compile=config.mode == "compiled")
        self.on_gpu = self.device.startswith("/GPU")
        reset_gpu_peak(self.device)

    def train_step(self, x, y):
        return tape_step(self.model, self.loss_fn, self.optimizer, x, y)

    def step(self, i: int) -> float:
        with tf.device(self.device):
            loss = self.fn(*self.batches[i % len(self.batches)])
            if self.on_gpu:
                tf.test.experimental.sync_devices()
            return float(loss)

    def bare(self, steps: int) -> float:
        start = time.perf_counter()
        with tf.device(self.device):
            for i in range(steps):
                loss = self.fn(*self.batches[i % len(self.batches)])
            float(loss)
            if self.on_gpu:
                tf.test.experimental.sync_devices()
        return time.perf_counter() - start

    def fit_samples(self) -> StepSamples:
        """Keras ``fit`` owns its loop: the in-memory batches go through a tf.data pipeline, as
        every ``fit`` user's do, and the first batch (the trace) is reported as compile time.
        Keras' ``train_function`` is a Python closure around its tf.functions, so the traces
        are counted by a Python side effect of ``train_step``, which runs only while tracing
        (``self.fit_traces``). It reads 2, both in the first call: the optimizer's and the
        loss tracker's variables are created in the first trace, and tf.function traces once
        more after a trace that created variables."""
        config = self.config
        keras_step = self.model.train_step

        def counted_step(data):
            self.fit_traces += 1
            return keras_step(data)

        self.fit_traces = 0
        self.model.train_step = counted_step
        x = np.concatenate([b[0] for b in self.pool])
        y = np.concatenate([b[1] for b in self.pool])
        with tf.device(self.device):
            dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size).repeat()
            self.model.compile(
                optimizer=self.optimizer, loss=self.loss_fn, jit_compile=False, steps_per_execution=1
            )
            timer = _BatchTimer(first_timed=1 + config.warmup)
            total = 1 + config.warmup + config.steps
            self.model.fit(dataset, epochs=1, steps_per_epoch=total, callbacks=[timer], verbose=0)
        return StepSamples(
            compile_s=timer.times[0],
            step_times_s=timer.times[1 + config.warmup :],
            losses=timer.losses,
            cpu_s=time.process_time() - timer.cpu_start,
            wall_s=time.perf_counter() - timer.wall_start,
        )


class _BatchTimer(keras.callbacks.Callback):
    """Times each ``fit`` batch; reading the loss as a float makes the step finish first."""

    def __init__(self, first_timed: int) -> None:
        super().__init__()
        self.first_timed = first_timed
        self.times: list[float] = []
        self.losses: list[float] = []
        self._start = 0.0
        self.cpu_start = self.wall_start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:  # Keras' first batch traces: the samplers' first call, as measure_steps marks it
            self._first_call = collectors.first_call()
            self._first_call.__enter__()
        if batch == self.first_timed:
            self.cpu_start, self.wall_start = time.process_time(), time.perf_counter()
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        self.times.append(time.perf_counter() - self._start)
        if batch == 0:
            self._first_call.__exit__(None, None, None)


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    before = xla_cache_entries()
    run = Training(config, spec)
    if config.mode == "fit":
        samples = run.fit_samples()
        traces = run.fit_traces
    else:
        samples = measure_steps(run.step, config.warmup, config.steps)
        traces = tracing_count(run.fn)
    env = framework_env(config, run.device)
    env["compile_evidence"] = compile_evidence(traces, before, xla_cache_entries(), jit=config.mode == "compiled")
    peak = gpu_peak_mb(run.device)
    return TrainResult(
        samples=samples, params=run.model.count_params(), framework_env=env, gpu_peak_mb=peak,
        precision_check=precision_check(run.model, run.batches[0][0], config, spec, run.device),
    )


def retrace_function(run: Training, config: TrialConfig):
    """The tf.function of a retrace variant: plain (one trace per new shape), reduce_retracing
    (TF generalizes shapes after a retrace), input_signature (one trace, dims left None)."""
    jit = config.mode == "compiled"
    if config.variant == "reduce_retracing":
        return tf.function(run.train_step, jit_compile=jit, reduce_retracing=True)
    if config.variant == "input_signature":
        x, y = run.batches[0]
        x_shape = [None] * len(x.shape) if config.length_sequence else [None, *x.shape[1:]]
        signature = [tf.TensorSpec(x_shape, x.dtype), tf.TensorSpec([None], y.dtype)]
        return tf.function(run.train_step, jit_compile=jit, input_signature=signature)
    return tf.function(run.train_step, jit_compile=jit)


def retrace(config: TrialConfig, spec: WorkloadSpec) -> RetraceResult:
    """Each shape of the sequence timed alone; the record counts per call the traces and the
    XLA compilations it caused (``compile_evidence["per_call"]``)."""
    if config.mode == "fit":
        raise TrialError("retrace counts tf.function traces: modes eager, graph and compiled")
    before = xla_cache_entries()
    run = Training(config, spec)
    fn = run.train_step if config.mode == "eager" else retrace_function(run, config)
    gen = np.random.default_rng(config.seed + 1)
    times, per_call = [], []
    traces, entries = 0, before
    with tf.device(run.device):
        for batch, length in shape_sequence(config):
            x, y = (tf.constant(a) for a in spec.synthetic_batch(shaped_params(config.workload_params, length), batch, gen))
            start = time.perf_counter()
            loss = fn(x, y)
            if run.on_gpu:
                tf.test.experimental.sync_devices()
            float(loss)
            times.append(time.perf_counter() - start)
            now_traces, now_entries = tracing_count(fn), xla_cache_entries()
            per_call.append({
                "batch": batch, "length": length, "traces": now_traces - traces,
                "xla_compilations": gained(entries, now_entries),
            })
            traces, entries = now_traces, now_entries
    env = framework_env(config, run.device)
    evidence = compile_evidence(traces, before, entries, jit=config.mode == "compiled")
    evidence.update(variant=config.variant, per_call=per_call)
    env["compile_evidence"] = evidence
    return RetraceResult(
        shape_times_s=times, traces=traces, params=run.model.count_params(),
        framework_env=env, gpu_peak_mb=gpu_peak_mb(run.device),
    )


def overhead(config: TrialConfig, spec: WorkloadSpec, blocks: int, **options: Any) -> dict[str, Any]:
    if config.mode == "fit":
        raise TrialError("fit runs Keras' own loop: there is no harness loop to compare")
    run = Training(config, spec)
    measure_steps(run.step, config.warmup, 1)  # trace/compile and warm up before either loop
    return overhead_blocks(run.bare, run.step, config.steps, blocks, **options)


def infer(config: TrialConfig, spec: WorkloadSpec) -> InferResult:
    """``training=False``. Graph and compiled modes give each input shape (batch 1, batch N)
    its own ``tf.function`` (XLA for compiled), traced and compiled by its first call, which
    ``measure_steps`` times apart; fit mode uses Keras' high-level ``predict_on_batch`` (its one
    predict_function, XLA off as the mode table says: fit = tf.function without XLA). Each call
    returns its output to the host (``.numpy()``), as a served model must. The batch-1 latency
    loop runs quiet (garbage collector and memory sampler paused)."""
    before = xla_cache_entries()
    device = configure(config)
    params = config.workload_params
    keras.utils.set_random_seed(config.seed)
    gen = np.random.default_rng(config.seed)
    jit = config.mode == "compiled"
    with tf.device(device):
        model = spec.implementation("tensorflow").build_model(params)
        one = tf.constant(spec.synthetic_batch(params, 1, gen)[0])
        many = tf.constant(spec.synthetic_batch(params, config.batch_size, gen)[0])

        def plain(x):
            return model(x, training=False)

        if config.mode == "fit":
            model.jit_compile = False  # an uncompiled model's "auto" means XLA on a GPU

            def predict(x):
                return model.predict_on_batch(x)

            forward_one = forward_many = predict
        elif config.mode == "eager":
            forward_one = forward_many = plain
        else:
            forward_one = tf.function(plain, jit_compile=jit)
            forward_many = tf.function(plain, jit_compile=jit)
        reset_gpu_peak(device)

        def traces_of(forward) -> int:
            return tracing_count(model.predict_function if config.mode == "fit" else forward)

        def timed(forward, x, steps: int, quiet: bool):
            def call(i: int) -> float:
                out = forward(x)
                out = out if isinstance(out, np.ndarray) else out.numpy()
                return float(out.reshape(-1)[0])

            traces, entries = traces_of(forward), xla_cache_entries()
            samples = measure_steps(call, config.warmup, steps, quiet=quiet)
            evidence = {
                "batch": int(x.shape[0]), "first_call_s": samples.compile_s,
                "traces": traces_of(forward) - traces,
                "xla_compilations": gained(entries, xla_cache_entries()),
            }
            return samples, evidence

        latency, batch1 = timed(forward_one, one, config.latency_calls, quiet=True)
        throughput, batch_n = timed(forward_many, many, config.steps, quiet=False)
    env = framework_env(config, device)
    env["inference_compile"] = {"batch1": batch1, "batchN": batch_n}
    traces = batch1["traces"] + batch_n["traces"]
    env["compile_evidence"] = compile_evidence(traces, before, xla_cache_entries(), jit=jit)
    peak = gpu_peak_mb(device)
    return InferResult(
        latency=latency, throughput=throughput, params=model.count_params(), framework_env=env,
        gpu_peak_mb=peak, precision_check=precision_check(model, many, config, spec, device),
    )
