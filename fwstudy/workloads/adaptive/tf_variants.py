"""The other ways a TensorFlow user might write the adaptive loop, kept to *measure* what TF needs
(``tf_probe``), never timed. Each subclass replaces only ``AdaptiveBlock.iterate``: same
weights, same math, same halting rule; only the control-flow construct differs.

* ``python_while``: Python control flow over tensors, exactly as the PyTorch twin writes it;
* ``autograph_while``: the same function converted by autograph (``tf.autograph.to_graph``),
  which is what ``tf.function`` would do to it if it reached a Keras layer's ``call``;
* ``autograph_for_range``: ``for _ in tf.range(K)`` with a tensor-dependent ``break``, also
  converted: autograph turns it into a ``tf.while_loop`` *with* ``maximum_iterations``.

The twin itself (``tf_model.AdaptiveBlock``) is the fourth: an explicit ``tf.while_loop``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from fwstudy.workloads.adaptive.tf_model import AdaptiveBlock


def _python_while(self, inj):
    z = tf.tanh(inj)
    active = tf.ones(tf.shape(inj)[:1], tf.bool)
    iterations = tf.zeros(tf.shape(inj)[:1], tf.int64)
    step = 0
    while step < self.max_steps and tf.reduce_any(active):
        update = self.rate * (tf.tanh(tf.matmul(z, self.kernel) + inj) - z)
        z = tf.where(active[:, None], z + update, z)
        iterations += tf.cast(active, tf.int64)
        active = active & (tf.sqrt(tf.reduce_mean(tf.square(update), axis=1)) > self.threshold)
        step += 1
    return z, iterations


def _for_range(self, inj):
    z = tf.tanh(inj)
    active = tf.ones(tf.shape(inj)[:1], tf.bool)
    iterations = tf.zeros(tf.shape(inj)[:1], tf.int64)
    for _ in tf.range(self.max_steps):
        if not tf.reduce_any(active):
            break
        update = self.rate * (tf.tanh(tf.matmul(z, self.kernel) + inj) - z)
        z = tf.where(active[:, None], z + update, z)
        iterations += tf.cast(active, tf.int64)
        active = active & (tf.sqrt(tf.reduce_mean(tf.square(update), axis=1)) > self.threshold)
    return z, iterations


class PythonWhileBlock(AdaptiveBlock):
    iterate = _python_while


class AutographWhileBlock(AdaptiveBlock):
    iterate = tf.autograph.to_graph(_python_while)


class AutographForRangeBlock(AdaptiveBlock):
    iterate = tf.autograph.to_graph(_for_range)


class UnshapedPythonWhileBlock(PythonWhileBlock):
    """``python_while`` without ``compute_output_shape``: Keras must then trace ``call`` on
    symbolic tensors to build the functional model, with no autograph."""

    compute_output_shape = keras.layers.Layer.compute_output_shape  # Keras' default, unset


VARIANTS: dict[str, type[AdaptiveBlock]] = {
    "python_while": PythonWhileBlock,
    "autograph_while": AutographWhileBlock,
    "autograph_for_range": AutographForRangeBlock,
    "tf_while_loop": AdaptiveBlock,
}
