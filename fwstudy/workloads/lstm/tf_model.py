"""TensorFlow/Keras twin of the LSTM classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def build_model(params: Mapping[str, Any]) -> keras.Model:
    """Keras' default LSTM (tanh, sigmoid gates, one bias) returns the last state, like h_n."""
    tokens = keras.Input(shape=(None,), dtype="int64")  # any length: the retracing experiment
    x = keras.layers.Embedding(params["vocab"], params["embed"], name="embed")(tokens)
    x = keras.layers.LSTM(params["hidden"], name="lstm")(x)
    logits = keras.layers.Dense(params["classes"], name="head")(x)
    return keras.Model(tokens, logits, name="lstm_model")
