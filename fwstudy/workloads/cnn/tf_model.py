"""TensorFlow/Keras twin of the CNN: NHWC convolutions, Keras' native layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def build_model(params: Mapping[str, Any]) -> keras.Model:
    """Explicit layer names: weight transfer finds variables by path."""
    k = params["kernel"]
    image = params["image"]
    return keras.Sequential(
        [
            keras.Input(shape=(image, image, params["channels"])),
            keras.layers.Conv2D(params["filters1"], k, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(params["filters2"], k, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(params["dense"], activation="relu", name="dense1"),
            keras.layers.Dense(params["classes"], name="dense2"),
        ],
        name="cnn",
    )
