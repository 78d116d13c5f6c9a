"""F9b, TensorFlow side: the network of ``frameworks/torch/debugging.py`` in Keras, with the
same planted bugs at the same places (``# SITE: <bug>`` marks each cause).

Keras builds a Dense layer's weights from the first input it sees, so the shape bug builds the
second layer explicitly for one feature too many, as a user who builds layers ahead of use
would. The training step is a GradientTape step, run eagerly, in ``tf.function`` (graph) or in
``tf.function(jit_compile=True)`` (XLA): the modes of docs/methodology.md. Runs in a child that
imports TensorFlow only.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.usability.planted import PRINT_MARK, run_planted

INPUTS, HIDDEN, CLASSES, BATCH = 16, 32, 4, 8


class Net(keras.Model):
    def __init__(self, bug: str):
        super().__init__()
        self.bug = bug
        self.dense0 = keras.layers.Dense(HIDDEN, activation="relu")
        self.dense1 = keras.layers.Dense(HIDDEN, activation="relu")
        self.dense2 = keras.layers.Dense(CLASSES)
        if bug == "shape":
            self.dense1.build((None, HIDDEN + 1))
        self.scale = tf.constant(np.ones(HIDDEN))  # NumPy's default dtype: float64

    def call(self, x):
        h = self.dense0(x)
        if self.bug == "dtype":
            h = h * self.scale  # SITE: dtype
        if self.bug in ("nan", "nan_checked"):
            h = tf.sqrt(h - 1.0)  # SITE: nan nan_checked
        if self.bug == "print_hook":
            print(PRINT_MARK, tuple(h.shape))  # SITE: print_hook
            breakpoint()
        h = self.dense1(h)  # SITE: shape
        return self.dense2(h)


def concrete(value: Any) -> bool:
    """Whether a debugger would see numbers: an eager tensor, not a symbolic one in a trace."""
    try:
        np.asarray(value.numpy())
    except Exception:
        return False
    return True


def run(job: dict[str, Any]) -> dict[str, Any]:
    bug, mode, steps = job["bug"], job["mode"], job["steps"]
    keras.utils.set_random_seed(0)
    if bug == "nan_checked":
        tf.debugging.enable_check_numerics()
    model = Net(bug)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    gen = np.random.default_rng(0)
    x = tf.constant(gen.standard_normal((BATCH, INPUTS), dtype=np.float32))
    y = tf.constant(gen.integers(0, CLASSES, size=BATCH))

    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    if mode == "graph":
        train_step = tf.function(train_step)
    elif mode == "compiled":
        train_step = tf.function(train_step, jit_compile=True)

    def step(x, y):
        return float(train_step(x, y))

    result = run_planted(bug, step, (x, y), steps, __file__, concrete)
    if mode != "eager":
        result["traces"] = int(train_step.experimental_get_tracing_count())
    return result
