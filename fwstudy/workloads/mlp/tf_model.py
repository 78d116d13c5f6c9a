"""TensorFlow/Keras twin of the MLP: Dense layers in the order of ``spec.widths``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from fwstudy.workloads.mlp.spec import widths


def build_model(params: Mapping[str, Any]) -> keras.Model:
    """Explicit layer names (``dense0`` ...): weight transfer finds variables by path, and
    Keras' automatic names depend on how many layers the process built before."""
    w = widths(params)
    layers: list[keras.layers.Layer] = [keras.Input(shape=(w[0],))]
    for i in range(1, len(w)):
        activation = "relu" if i < len(w) - 1 else None
        layers.append(keras.layers.Dense(w[i], activation=activation, name=f"dense{i - 1}"))
    return keras.Sequential(layers, name="mlp")
