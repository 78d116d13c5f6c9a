"""F9a API level "Keras fit": the high-level API, where Keras owns the loop.

The user's training step is the ``compile`` call (optimizer and loss: ``STEP_PARTS``); ``fit``
runs it (inside ``tf.function`` by default, as every ``fit`` user gets)."""

from __future__ import annotations

import keras
import numpy as np

from fwstudy.measure.training import LEARNING_RATE

STEP_PARTS = ("compile_model",)


def compile_model(model: keras.Model) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> list[float]:
    compile_model(model)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    return [float(v) for v in history.history["loss"]]


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x, batch_size=len(x), verbose=0)
