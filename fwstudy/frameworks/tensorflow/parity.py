"""TensorFlow/Keras side of the parity gate; imported only inside a parity child (rule 1).

Each precision of ``job["dtypes"]`` (float32, float64) runs the same batch from the same weights.
For float64 a fresh Keras model is built under ``keras.config.set_floatx("float64")`` *and*
``keras.config.set_dtype_policy("float64")``: Keras 3 fixes its global dtype policy from floatx
the first time any layer asks for it (``dtype_policies.dtype_policy()``), so after the float32
model exists, setting floatx alone would leave every new layer computing in float32. Each
layer's variables and compute dtype are then checked (``check_dtype``) rather than trusted, and
the float64 gate itself would catch a layer that still rounds to float32 (its error, ~1e-7, is
100 times the float64 tolerance). Integer token ids stay integer.

That is how the gate found one: Keras 3's TensorFlow ``dot_product_attention`` (what
``MultiHeadAttention`` calls) scales the scores by ``tf.cast(scale, dtype)`` of a Python float,
which TensorFlow first makes a float32 constant, so in float64 the scale 1/sqrt(head_dim) is
off by float32 round-off and the transformer's float64 logits by ~3e-10, gradients ~4e-9
norm-relative (measured, against ~1e-15 everywhere else). ``exact_attention_scale`` hands those
layers the scale as a tensor of the model's dtype; float32 (what trials run) is unaffected. The Adam steps and the
execution modes run in float32 only, as trials do.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.config.trial import modes_for
from fwstudy.errors import error_text
from fwstudy.frameworks.tensorflow.trial import make_optimizer, tape_step
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


def break_pooling(model: keras.Model) -> str:
    """Swap the first pooling layer's mode (max ↔ average): Keras' pooling layers share one
    implementation that dispatches on ``pool_mode``, so the layer keeps its name, shape and
    (absent) weights and only its function changes."""
    for layer in model.layers:
        mode = getattr(layer, "pool_mode", None)
        if mode in ("max", "average"):
            layer.pool_mode = "average" if mode == "max" else "max"
            return layer.name
    raise ValueError(f"model {model.name} has no pooling layer to break")


MODEL_BREAKS = {"activation": break_activation, "pooling": break_pooling}


def check_dtype(model: keras.Model, dtype: str) -> None:
    """Every layer's floating variables and compute dtype are ``dtype``: a layer left in another
    precision would make this a mixed-precision run (Input layers have nothing to compute)."""
    stray = [v.path for v in model.weights if "float" in str(v.dtype) and v.dtype != dtype]
    stray += [
        f"{layer.name} computes in {layer.compute_dtype}"
        for layer in model._flatten_layers(include_self=False)
        if not isinstance(layer, keras.layers.InputLayer) and layer.compute_dtype != dtype
    ]
    if stray:
        raise ValueError(f"{dtype} Keras model has layers in another precision: {stray[:3]}")


def build_in(spec: WorkloadSpec, params: Mapping[str, Any], dtype: str) -> keras.Model:
    """The Keras twin with every layer in ``dtype`` (module docstring); the global floatx and
    policy are put back afterwards."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        model = spec.implementation("tensorflow").build_model(params)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    check_dtype(model, dtype)
    return model


def exact_attention_scale(model: keras.Model, dtype: str) -> list[str]:
    """The scale of every ``MultiHeadAttention`` as a ``dtype`` tensor (module docstring); returns
    the layers it changed."""
    fixed = []
    for layer in model._flatten_layers(include_self=False):
        scale = getattr(layer, "_inverse_sqrt_key_dim", None)
        if isinstance(layer, keras.layers.MultiHeadAttention) and isinstance(scale, float):
            layer._inverse_sqrt_key_dim = tf.constant(scale, dtype=dtype)
            fixed.append(layer.name)
    return fixed


def as_dtype(array: np.ndarray, dtype: str) -> tf.Tensor:
    """Features in ``dtype``; integer token ids and labels stay as they are."""
    array = np.asarray(array)
    return tf.constant(array.astype(dtype) if np.issubdtype(array.dtype, np.floating) else array)


def forward_backward(
    model: keras.Model, inputs: Mapping[str, np.ndarray], dtype: str
) -> dict[str, np.ndarray]:
    """Logits, loss and every trainable variable's gradient of one batch, computed in ``dtype``."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
    trainable = model.trainable_variables
    names = {id(v): n for n, v in keras_variables(model).items()}
    with tf.GradientTape() as tape:
        logits = model(as_dtype(inputs["x"], dtype), training=True)
        loss = loss_fn(tf.constant(inputs["y"]), logits)
    grads = tape.gradient(loss, trainable)
    if logits.dtype != dtype or loss.dtype != dtype:
        raise ValueError(f"{dtype} run computed logits in {logits.dtype.name}, loss in {loss.dtype.name}")
    out: dict[str, np.ndarray] = {"logits": np.asarray(logits), "loss": np.asarray(loss.numpy())}
    for variable, grad in zip(trainable, grads, strict=True):
        # Embedding gradients come back as IndexedSlices; the gate compares dense tensors.
        out[f"grad:{names[id(variable)]}"] = np.asarray(tf.convert_to_tensor(grad))
    return out


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
    broken = job.get("break")
    if broken is not None and broken not in MODEL_BREAKS:
        raise ValueError(f"the TensorFlow child breaks only its model ({', '.join(MODEL_BREAKS)}), not {broken!r}")
    if broken:
        info["broken_layer"] = MODEL_BREAKS[broken](model)

    with np.load(job["inputs"]) as npz:
        inputs = {name: npz[name] for name in npz.files}
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainable = model.trainable_variables
    arrays: dict[str, np.ndarray] = {f"weight:{n}": a for n, a in weights.items()}
    for dtype in job.get("dtypes", ["float32"]):
        if dtype == keras.config.floatx():
            twin = model
        else:
            twin = build_in(spec, params, dtype)
            if exact := exact_attention_scale(twin, dtype):
                info[f"{dtype}_exact_attention_scale"] = exact
            restore(keras_variables(twin), {n: a.astype(dtype) for n, a in weights.items()})
            if broken:
                MODEL_BREAKS[broken](twin)
        arrays.update({f"{dtype}:{n}": a for n, a in forward_backward(twin, inputs, dtype).items()})

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
    training step of ``frameworks/tensorflow/trial.py`` (``tape_step``, the one timed).

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

    train_step = functools.partial(tape_step, model, loss_fn, optimizer)

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
