"""TensorFlow/Keras side of the parity gate; imported only inside a parity child (rule 1)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.config.trial import modes_for
from fwstudy.errors import error_text
from fwstudy.frameworks.tensorflow.trial import make_optimizer
from fwstudy.parity.modes import mode_key, optional_module
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
        optimizer = make_optimizer()
        for x, y in zip(inputs["xs"], inputs["ys"], strict=True):
            with tf.GradientTape() as tape:
                step_loss = loss_fn(tf.constant(y), model(tf.constant(x), training=True))
            step_grads = tape.gradient(step_loss, trainable)
            optimizer.apply_gradients(zip(step_grads, trainable, strict=True))
            losses.append(float(step_loss))
    arrays["losses"] = np.asarray(losses, dtype=np.float64)
    if job.get("modes"):
        x, y = tf.constant(inputs["x"]), tf.constant(inputs["y"])
        info["modes"] = {}
        for mode in modes_for("tensorflow", spec.name):
            restore(variables, weights)
            info["modes"][mode] = run_mode(model, variables, mode, x, y, arrays)
        restore(variables, weights)
        probe = optional_module(f"{spec.package}.tf_probe")
        if probe is not None:
            probe_arrays, info["probe"] = probe.probe(model, params, job, inputs)
            arrays.update({f"probe:{n}": a for n, a in probe_arrays.items()})
    return arrays, info


def restore(variables: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> None:
    for name, variable in variables.items():
        variable.assign(weights[name])


def function_mode_outputs(
    model: keras.Model, variables: Mapping[str, Any], mode: str, x: tf.Tensor, y: tf.Tensor
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """eager, graph (``tf.function``) or compiled (``tf.function(jit_compile=True)``), with the
    training step written as ``frameworks/tensorflow/trial.py``'s ``Training.train_step`` is.

    For the traced modes it also tries the forward with ``autograph=False``: whether the
    model's control flow needed autograph's conversion to be traced, a fact of the code."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainable = model.trainable_variables
    names = {id(v): n for n, v in variables.items()}
    optimizer = make_optimizer()
    optimizer.build(trainable)

    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        return logits, loss, tape.gradient(loss, trainable)

    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, trainable)
        optimizer.apply_gradients(zip(grads, trainable, strict=True))
        return loss

    info: dict[str, Any] = {}
    if mode != "eager":
        jit = mode == "compiled"
        forward_backward = tf.function(forward_backward, jit_compile=jit)
        train_step = tf.function(train_step, jit_compile=jit)
    logits, loss, grads = forward_backward(x, y)
    outputs = {"logits": np.asarray(logits), "loss": np.asarray(float(loss))}
    for variable, grad in zip(trainable, grads, strict=True):
        outputs[f"grad:{names[id(variable)]}"] = np.asarray(tf.convert_to_tensor(grad))
    if mode != "eager":  # before the step below changes the weights
        plain = tf.function(lambda x: model(x, training=True), autograph=False, jit_compile=mode == "compiled")
        try:
            diff = float(np.max(np.abs(np.asarray(plain(x)) - outputs["logits"])))
            info["without_autograph"] = {"status": "ok", "forward_max_abs_diff": diff}
        except Exception as exc:
            info["without_autograph"] = {"status": "failed", "error": error_text(exc)}
    train_step(x, y)
    outputs["step_loss"] = np.asarray(float(forward_backward(x, y)[1]))
    if mode != "eager":
        info["traces"] = int(forward_backward.experimental_get_tracing_count())
    return outputs, info


def fit_mode_outputs(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> dict[str, np.ndarray]:
    """Keras' own API, compiled as ``frameworks/tensorflow/trial.py`` compiles it for ``fit`` (no XLA): the
    forward by ``predict_on_batch``, the loss by ``test_on_batch`` (``evaluate``'s step), one
    step by ``train_on_batch`` (``fit``'s step). No gradients: Keras only ever applies them."""
    logits = model.predict_on_batch(x)
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    loss = model.test_on_batch(x, y)
    model.train_on_batch(x, y)
    step_loss = model.test_on_batch(x, y)
    return {
        "logits": np.asarray(logits),
        "loss": np.asarray(scalar(loss)),
        "step_loss": np.asarray(scalar(step_loss)),
    }


def scalar(logs: Any) -> float:
    """``test_on_batch`` returns the loss alone, or a list led by it when metrics are compiled."""
    return float(np.ravel(np.asarray(logs, dtype=np.float64))[0])


def run_mode(
    model: keras.Model,
    variables: Mapping[str, Any],
    mode: str,
    x: tf.Tensor,
    y: tf.Tensor,
    arrays: dict[str, np.ndarray],
) -> dict[str, Any]:
    """One execution mode; fills ``arrays`` (``parity_modes``); a mode that raises is a result."""
    start = time.perf_counter()
    try:
        if mode == "fit":
            outputs, info = fit_mode_outputs(model, x, y), {}
        else:
            outputs, info = function_mode_outputs(model, variables, mode, x, y)
    except Exception as exc:  # a mode that can't run this workload is a result
        return {"status": "failed", "error": error_text(exc), "wall_s": time.perf_counter() - start}
    arrays.update({mode_key(mode, n): a for n, a in outputs.items()})
    return {"status": "ok", "error": None, "wall_s": time.perf_counter() - start, "info": info}
