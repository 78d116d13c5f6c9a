"""F9a API level "TF custom GradientTape loop": the training script a TensorFlow user writes
when they want to own the loop (eager, as written; ``tf.function`` is one decorator more).

Written as a user would, not as the study's harness does, because F9a measures its lines,
complexity and API symbols and F12 times its cold start. ``STEP_PARTS`` names the step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fwstudy.measure.training import LEARNING_RATE

STEP_PARTS = ("train_step",)


def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> list[float]:
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    losses = []
    for _ in range(epochs):
        for inputs, labels in data:
            loss = train_step(model, optimizer, loss_fn, inputs, labels)
            losses.append(float(loss))
    return losses


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model(x, training=False).numpy()
