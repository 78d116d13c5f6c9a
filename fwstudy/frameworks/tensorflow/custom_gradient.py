"""F9c, TensorFlow side: the straight-through clamp with ``tf.custom_gradient``, its Keras
network, the arrays of the parity check and the cost of a training step in each mode
(``fwstudy/usability/custom_gradient.py`` says what and why). ``LAYER_PARTS`` names the
custom-gradient code for F9a's metrics."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.usability.custom_gradient import WIDTHS, reference_batch, reference_weights

LAYER_PARTS = ("straight_through_clamp",)


@tf.custom_gradient
def straight_through_clamp(x):
    def grad(upstream):
        return upstream

    return tf.clip_by_value(x, -1.0, 1.0), grad


def builtin_clamp(x):
    return tf.clip_by_value(x, -1.0, 1.0)


class Net(keras.Model):
    def __init__(self, variant: str, dtype: str):
        super().__init__(dtype=dtype)
        self.act = straight_through_clamp if variant == "custom" else builtin_clamp
        self.dense0 = keras.layers.Dense(WIDTHS[1], dtype=dtype, name="dense0")
        self.dense1 = keras.layers.Dense(WIDTHS[2], dtype=dtype, name="dense1")
        self.dense2 = keras.layers.Dense(WIDTHS[3], dtype=dtype, name="dense2")

    def call(self, x):
        h = self.act(self.dense0(x))
        h = self.act(self.dense1(h))
        return self.dense2(h)


def built(variant: str, dtype: str) -> Net:
    model = Net(variant, dtype)
    model(np.zeros((1, WIDTHS[0]), dtype=dtype))
    weights = reference_weights()
    for i, layer in enumerate((model.dense0, model.dense1, model.dense2)):
        layer.kernel.assign(weights[f"dense{i}.weight"].T.astype(dtype))
        layer.bias.assign(weights[f"dense{i}.bias"].astype(dtype))
    return model


def parity_arrays() -> dict[str, np.ndarray]:
    """Logits (custom variant) and every weight's gradient (both variants) in PyTorch's names
    and layouts, in both precisions."""
    x, y = reference_batch()
    arrays = {}
    for dtype in ("float32", "float64"):
        for variant in ("custom", "builtin"):
            model = built(variant, dtype)
            with tf.GradientTape() as tape:
                logits = model(tf.constant(x.astype(dtype)))
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), logits))
            layers = (model.dense0, model.dense1, model.dense2)
            grads = tape.gradient(loss, [v for layer in layers for v in (layer.kernel, layer.bias)])
            if variant == "custom":
                arrays[f"{dtype}:logits"] = logits.numpy()
            for i in range(len(layers)):
                arrays[f"{dtype}:{variant}:grad:dense{i}.weight"] = grads[2 * i].numpy().T
                arrays[f"{dtype}:{variant}:grad:dense{i}.bias"] = grads[2 * i + 1].numpy()
    return arrays


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``warmup + steps`` steps in ``mode``; the first call (trace, XLA compile) is timed
    on its own; XLA compilations are counted as in the trials (``frameworks/tensorflow/trial.py``)."""
    from fwstudy.frameworks.tensorflow.trial import gained, xla_cache_entries

    keras.utils.set_random_seed(0)
    result: dict[str, Any] = {}
    if job.get("arrays"):
        np.savez(job["arrays"], **parity_arrays())
    model = built(job["variant"], "float32")
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    xs, ys = reference_batch()
    x, y = tf.constant(xs.astype("float32")), tf.constant(ys)

    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    mode = job["mode"]
    if mode != "eager":
        train_step = tf.function(train_step, jit_compile=mode == "compiled")
    before = xla_cache_entries()
    begin = time.perf_counter()
    float(train_step(x, y))
    result["first_call_s"] = time.perf_counter() - begin
    for _ in range(job["warmup"]):
        float(train_step(x, y))
    times = []
    for _ in range(job["steps"]):
        begin = time.perf_counter()
        float(train_step(x, y))
        times.append(time.perf_counter() - begin)
    result["step_ms_median"] = 1e3 * float(np.median(times))
    result["step_ms"] = [1e3 * t for t in times]
    if mode != "eager":
        result["traces"] = int(train_step.experimental_get_tracing_count())
    if mode == "compiled":
        result["xla_compilations"] = gained(before, xla_cache_entries())
    return result
