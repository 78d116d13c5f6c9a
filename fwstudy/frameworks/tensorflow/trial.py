"""TensorFlow side of a trial: eager GradientTape, tf.function, XLA, or Keras ``fit``."""

from __future__ import annotations

import time
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
from fwstudy.measure import training
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
        # fp32 on both sides (fairness rule 3): TF32 off, as the torch backend does.
        tf.config.experimental.enable_tensor_float_32_execution(False)
        return "/GPU:0"
    return "/CPU:0"


def onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


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
    }
    if device.startswith("/GPU"):
        env["gpu_name"] = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        ).get("device_name")
        env["cuda_version"] = build.get("cuda_version")
        env["tf32"] = tf.config.experimental.tensor_float_32_execution_enabled()
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
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model(x, training=True))
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

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
        every ``fit`` user's do, and the first batch (the trace) is reported as compile time."""
        config = self.config
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
        if batch == self.first_timed:
            self.cpu_start, self.wall_start = time.process_time(), time.perf_counter()
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        self.times.append(time.perf_counter() - self._start)


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    run = Training(config, spec)
    if config.mode == "fit":
        samples = run.fit_samples()
    else:
        samples = measure_steps(run.step, config.warmup, config.steps)
    return TrainResult(
        samples=samples, params=run.model.count_params(),
        framework_env=framework_env(config, run.device), gpu_peak_mb=gpu_peak_mb(run.device),
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
    if config.mode == "fit":
        raise TrialError("retrace counts tf.function traces: modes eager, graph and compiled")
    run = Training(config, spec)
    fn = run.train_step if config.mode == "eager" else retrace_function(run, config)
    gen = np.random.default_rng(config.seed + 1)
    times = []
    with tf.device(run.device):
        for batch, length in shape_sequence(config):
            x, y = (tf.constant(a) for a in spec.synthetic_batch(shaped_params(config.workload_params, length), batch, gen))
            start = time.perf_counter()
            loss = fn(x, y)
            if run.on_gpu:
                tf.test.experimental.sync_devices()
            float(loss)
            times.append(time.perf_counter() - start)
    traces = 0 if config.mode == "eager" else int(fn.experimental_get_tracing_count())
    return RetraceResult(
        shape_times_s=times, traces=traces, params=run.model.count_params(),
        framework_env=framework_env(config, run.device), gpu_peak_mb=gpu_peak_mb(run.device),
    )


def overhead(config: TrialConfig, spec: WorkloadSpec, blocks: int) -> dict[str, float]:
    if config.mode == "fit":
        raise TrialError("fit runs Keras' own loop: there is no harness loop to compare")
    run = Training(config, spec)
    measure_steps(run.step, config.warmup, 1)  # trace/compile and warm up before either loop
    return overhead_blocks(run.bare, run.step, config.steps, blocks)


def infer(config: TrialConfig, spec: WorkloadSpec) -> InferResult:
    """``training=False``; graph and compiled modes wrap the call in ``tf.function`` (XLA for
    compiled), fit mode uses Keras' high-level ``predict_on_batch``. Each call returns its
    output to the host (``.numpy()``), as a served model must."""
    device = configure(config)
    params = config.workload_params
    keras.utils.set_random_seed(config.seed)
    gen = np.random.default_rng(config.seed)
    with tf.device(device):
        model = spec.implementation("tensorflow").build_model(params)
        one = tf.constant(spec.synthetic_batch(params, 1, gen)[0])
        many = tf.constant(spec.synthetic_batch(params, config.batch_size, gen)[0])
        if config.mode == "fit":
            def forward(x):
                return model.predict_on_batch(x)
        else:
            def plain(x):
                return model(x, training=False)
            forward = plain if config.mode == "eager" else tf.function(plain, jit_compile=config.mode == "compiled")
        reset_gpu_peak(device)

        def call(x) -> float:
            out = forward(x)
            out = out if isinstance(out, np.ndarray) else out.numpy()
            return float(out.reshape(-1)[0])

        latency = measure_steps(lambda i: call(one), config.warmup, config.latency_calls)
        throughput = measure_steps(lambda i: call(many), config.warmup, config.steps)
    return InferResult(
        latency=latency, throughput=throughput, params=model.count_params(),
        framework_env=framework_env(config, device), gpu_peak_mb=gpu_peak_mb(device),
    )
