"""TensorFlow/Keras twin of the transformer: post-norm encoder layers around Keras'
``MultiHeadAttention``, written as a functional model with named layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from fwstudy.workloads.transformer.spec import LAYER_NORM_EPSILON


class PositionEmbedding(keras.layers.Layer):
    """Adds one learned (length, d_model) weight: the twin of ``Transformer.positions``.

    Shorter sequences use the first positions, so one model serves the changing sequence
    lengths of the retracing experiment (F4), as the PyTorch twin does."""

    def __init__(self, length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(
            shape=(self.length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="positions",
        )

    def call(self, x):
        return x + self.positions[: keras.ops.shape(x)[1]]


def build_model(params: Mapping[str, Any]) -> keras.Model:
    d, heads = params["d_model"], params["heads"]
    tokens = keras.Input(shape=(None,), dtype="int64")  # any length up to params["length"]
    x = keras.layers.Embedding(params["vocab"], d, name="embed")(tokens)
    x = PositionEmbedding(params["length"], name="positions")(x)
    for i in range(params["layers"]):
        attended = keras.layers.MultiHeadAttention(heads, d // heads, name=f"enc{i}_attn")(x, x)
        x = keras.layers.Add(name=f"enc{i}_add1")([x, attended])
        x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"enc{i}_norm1")(x)
        hidden = keras.layers.Dense(params["ff"], activation="relu", name=f"enc{i}_ff1")(x)
        hidden = keras.layers.Dense(d, name=f"enc{i}_ff2")(hidden)
        x = keras.layers.Add(name=f"enc{i}_add2")([x, hidden])
        x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"enc{i}_norm2")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    logits = keras.layers.Dense(params["classes"], name="head")(x)
    return keras.Model(tokens, logits, name="transformer_model")
