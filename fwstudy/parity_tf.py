"""TensorFlow/Keras side of the parity gate; imported only inside a parity child (rule 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy import training
from fwstudy.workloads.spec import WorkloadSpec
from fwstudy.workloads.transfer import check_shapes


def keras_variables(model: keras.Model) -> dict[str, Any]:
    """Variables by path relative to the model: a Sequential model prefixes its own name."""
    prefix = f"{model.name}/"
    return {v.path.removeprefix(prefix): v for v in model.weights}


def break_activation(model: keras.Model) -> str:
    """Swap the first non-linear activation (ReLU → ELU, anything else → ReLU): a twin that
    differs by one activation, which the gate must catch."""
    linear = keras.activations.get("linear")
    for layer in model.layers:
        owner = getattr(layer, "cell", layer)  # an RNN layer's activation lives on its cell
        activation = getattr(owner, "activation", None)
        if activation is None or activation is linear:
            continue
        relu = activation is keras.activations.get("relu")
        owner.activation = keras.activations.get("elu" if relu else "relu")
        return owner.name
    raise ValueError(f"model {model.name} has no non-linear activation to break")


def compute(
    job: Mapping[str, Any], spec: WorkloadSpec, params: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Initial weights, logits, loss and gradients from one batch, then the Adam losses."""
    tf.config.threading.set_intra_op_parallelism_threads(job["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(job["seed"])
    model = spec.implementation("tensorflow").build_model(params)
    variables = keras_variables(model)
    shapes = spec.weight_map().keras_shapes(params)
    if job["weights"]:
        with np.load(job["weights"]) as npz:
            given = {name: npz[name] for name in npz.files}
        check_shapes(given, shapes, "keras")
        for name, variable in variables.items():
            variable.assign(given[name])
    weights = {n: np.asarray(v.numpy()).copy() for n, v in variables.items()}
    check_shapes(weights, shapes, "keras")
    info: dict[str, Any] = {"params": model.count_params(), "version": tf.__version__}
    if job.get("break") == "activation":
        info["broken_layer"] = break_activation(model)

    with np.load(job["inputs"]) as npz:
        inputs = {name: npz[name] for name in npz.files}
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainable = model.trainable_variables
    names = {id(v): n for n, v in variables.items()}
    with tf.GradientTape() as tape:
        logits = model(tf.constant(inputs["x"]), training=True)
        loss = loss_fn(tf.constant(inputs["y"]), logits)
    grads = tape.gradient(loss, trainable)
    arrays: dict[str, np.ndarray] = {"logits": np.asarray(logits), "loss": np.asarray(float(loss))}
    arrays.update({f"weight:{n}": a for n, a in weights.items()})
    for variable, grad in zip(trainable, grads, strict=True):
        # Embedding gradients come back as IndexedSlices; the gate compares dense tensors.
        arrays[f"grad:{names[id(variable)]}"] = np.asarray(tf.convert_to_tensor(grad))

    losses = []
    if "xs" in inputs:
        optimizer = keras.optimizers.Adam(
            learning_rate=training.LEARNING_RATE,
            beta_1=training.ADAM_BETA_1,
            beta_2=training.ADAM_BETA_2,
            epsilon=training.ADAM_EPSILON,
        )
        for x, y in zip(inputs["xs"], inputs["ys"], strict=True):
            with tf.GradientTape() as tape:
                step_loss = loss_fn(tf.constant(y), model(tf.constant(x), training=True))
            step_grads = tape.gradient(step_loss, trainable)
            optimizer.apply_gradients(zip(step_grads, trainable, strict=True))
            losses.append(float(step_loss))
    arrays["losses"] = np.asarray(losses, dtype=np.float64)
    return arrays, info
