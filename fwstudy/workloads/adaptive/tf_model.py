"""TensorFlow/Keras twin of the adaptive-depth network: the loop is an explicit
``tf.while_loop`` with ``maximum_iterations``, inside a custom layer.

Why not Python control flow over tensors, converted by autograph, as a ``tf.function`` user
would write first? Measured with ``fwstudy parity --workload adaptive --modes`` (the variants
live in ``tf_variants``), in Keras 3 with TF 2.21:

* autograph does not convert a Keras layer's ``call`` (Keras' ``__call__`` is outside the code
  it converts), so a plain ``while tf.reduce_any(active) ...`` runs eagerly but fails in
  ``tf.function``, XLA and ``fit``; the functional model can't even be built without a
  ``compute_output_shape``;
* the same loop converted explicitly (``tf.autograph.to_graph``) runs everywhere except XLA
  training: its ``tf.while_loop`` has no ``maximum_iterations``, and XLA cannot size the stacks
  that backpropagation through a while loop keeps (``for i in tf.range(K)`` with a ``break``
  does get one, and works);
* ``tf.while_loop(..., maximum_iterations=K)`` needs no conversion at all and runs in eager (as
  a Python loop), ``tf.function``, XLA (forward and backward) and ``fit`` alike.

The cost is the loop's shape: its state is an explicit tuple, the body a function returning the
next state, and the early exit a ``cond`` callable instead of a ``while`` test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf


def torch_like_init(fan_in: int) -> keras.initializers.Initializer:
    """U(±1/sqrt(fan_in)), ``nn.Linear``'s default: Keras' Glorot init has twice the block's
    spectral radius, which would make TF's own initial weights need more iterations than
    PyTorch's and time a different amount of work."""
    bound = fan_in**-0.5
    return keras.initializers.RandomUniform(-bound, bound)


class AdaptiveBlock(keras.layers.Layer):
    """The damped fixed-point block iterated per sample (``spec`` docstring); its input is the
    encoded ``inj`` and its output the converged state."""

    def __init__(self, units: int, rate: float, threshold: float, max_steps: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.rate, self.threshold, self.max_steps = units, rate, threshold, max_steps

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight(
            shape=(self.units, self.units), initializer=torch_like_init(self.units), name="kernel"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def iterate(self, inj: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The converged state and each sample's number of iterations."""
        batch = tf.shape(inj)[:1]
        state = (tf.tanh(inj), tf.ones(batch, tf.bool), tf.zeros(batch, tf.int64))

        def cond(z, active, iterations):
            return tf.reduce_any(active)

        def body(z, active, iterations):
            update = self.rate * (tf.tanh(tf.matmul(z, self.kernel) + inj) - z)
            z = tf.where(active[:, None], z + update, z)
            iterations += tf.cast(active, tf.int64)
            rms = tf.sqrt(tf.reduce_mean(tf.square(update), axis=1))
            return z, active & (rms > self.threshold), iterations

        z, _, iterations = tf.while_loop(cond, body, state, maximum_iterations=self.max_steps)
        return z, iterations

    def call(self, inj):
        return self.iterate(inj)[0]


def build_model(params: Mapping[str, Any], block: type[AdaptiveBlock] = AdaptiveBlock) -> keras.Model:
    """``block`` lets ``tf_variants`` swap in the other ways of writing the loop."""
    d, h, c = params["input_dim"], params["hidden"], params["classes"]
    x = keras.Input(shape=(d,))
    inj = keras.layers.Dense(
        h, kernel_initializer=torch_like_init(d), bias_initializer=torch_like_init(d), name="encode"
    )(x)
    z = block(h, float(params["rate"]), float(params["threshold"]), params["max_steps"], name="block")(inj)
    logits = keras.layers.Dense(
        c, kernel_initializer=torch_like_init(h), bias_initializer=torch_like_init(h), name="head"
    )(z)
    return keras.Model(x, logits, name="adaptive")
