"""TensorFlow side of a trial: eager GradientTape, tf.function, XLA, or Keras ``fit``."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy import training
from fwstudy.backends import TrainResult, TrialError
from fwstudy.config import TrialConfig
from fwstudy.timing import StepSamples, measure_steps
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


def framework_env(config: TrialConfig, device: str) -> dict[str, Any]:
    build = tf.sysconfig.get_build_info()
    env: dict[str, Any] = {
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf_is_cuda_build": bool(build.get("is_cuda_build")),
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


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    device = configure(config)
    params = config.workload_params
    keras.utils.set_random_seed(config.seed)
    gen = np.random.default_rng(config.seed)
    pool = [spec.synthetic_batch(params, config.batch_size, gen) for _ in range(training.BATCH_POOL)]
    with tf.device(device):
        model = spec.implementation("tensorflow").build_model(params)
        optimizer = keras.optimizers.Adam(
            learning_rate=training.LEARNING_RATE,
            beta_1=training.ADAM_BETA_1,
            beta_2=training.ADAM_BETA_2,
            epsilon=training.ADAM_EPSILON,
        )
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if config.mode == "fit":
            samples = fit_samples(config, model, optimizer, loss_fn, pool)
        else:
            samples = loop_samples(config, model, optimizer, loss_fn, pool, device)
    return TrainResult(
        samples=samples, params=model.count_params(), framework_env=framework_env(config, device)
    )


def loop_samples(config, model, optimizer, loss_fn, pool, device: str) -> StepSamples:
    batches = [tuple(tf.constant(a) for a in batch) for batch in pool]
    optimizer.build(model.trainable_variables)

    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    if config.mode == "eager":
        fn = train_step
    else:
        fn = tf.function(train_step, jit_compile=config.mode == "compiled")
    on_gpu = device.startswith("/GPU")

    def step(i: int) -> float:
        loss = fn(*batches[i % len(batches)])
        if on_gpu:
            tf.test.experimental.sync_devices()
        return float(loss)

    return measure_steps(step, config.warmup, config.steps)


class _BatchTimer(keras.callbacks.Callback):
    """Times each ``fit`` batch; reading the loss as a float makes the step finish first."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.losses: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        self.times.append(time.perf_counter() - self._start)


def fit_samples(config, model, optimizer, loss_fn, pool) -> StepSamples:
    """Keras ``fit`` owns its loop: the in-memory batches go through a tf.data pipeline, as
    every ``fit`` user's do, and the first batch (the trace) is reported as compile time."""
    x = np.concatenate([b[0] for b in pool])
    y = np.concatenate([b[1] for b in pool])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size).repeat()
    model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=False, steps_per_execution=1)
    timer = _BatchTimer()
    total = 1 + config.warmup + config.steps
    model.fit(dataset, epochs=1, steps_per_epoch=total, callbacks=[timer], verbose=0)
    return StepSamples(
        compile_s=timer.times[0],
        step_times_s=timer.times[1 + config.warmup :],
        losses=timer.losses,
    )
