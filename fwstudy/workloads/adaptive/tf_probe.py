"""TensorFlow facts for the adaptive workload's parity report (``fwstudy parity --modes``); runs
in the TensorFlow parity child only.

* each sample's iterations from the parity weights in eager, ``tf.function`` and XLA (the same
  halting decisions in every mode, not only the same logits), and from TensorFlow's own seeded
  initialisation (what a trial of this framework times);
* every way of writing the loop in ``tf_variants``, run in every TF mode (forward, gradients,
  and for ``fit`` one ``train_on_batch``) from the same weights: which of them each mode can
  run, and whether it agrees with the twin's eager logits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.parity.child import error_text
from fwstudy.workloads.adaptive import tf_variants
from fwstudy.workloads.adaptive.tf_model import build_model

VARIANT_MODES = ("eager", "graph", "compiled", "fit")


def reason(exc: BaseException) -> str:
    """The line of a TF/Keras error that says why: their messages open with "in user code:", a
    filtered traceback and "Exception encountered when calling ...", which say where."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    skip_next = False
    for raw in text.splitlines():
        line = raw.strip()
        if skip_next:
            skip_next = False
            continue
        if line.startswith("File "):
            skip_next = True  # the echoed source line
            continue
        if not line or line == "in user code:" or line.startswith(("Exception encountered", "Arguments received", "•")):
            continue
        line = re.sub(r"^\w+(Error|Exception): ", "", line)
        if line.startswith("Exception encountered"):
            continue
        return f"{type(exc).__name__}: {line[:240]}"
    return error_text(exc)


def iterations_of(model: keras.Model):
    """A function of x giving each sample's iterations (the block's ``iterate``)."""
    encode, block = model.get_layer("encode"), model.get_layer("block")
    return lambda x: block.iterate(encode(x))[1]


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    values = {v.path: v.numpy() for v in source.weights}
    for variable in target.weights:
        variable.assign(values[variable.path])


def run_variant_mode(model: keras.Model, mode: str, x: tf.Tensor, y: tf.Tensor) -> np.ndarray:
    """The logits of ``mode`` after also taking that mode's gradients (or fit's training step)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if mode == "fit":
        model.compile(optimizer="sgd", loss=loss_fn, jit_compile=False)
        logits = model.predict_on_batch(x)
        model.train_on_batch(x, y)  # after predict: the step changes the weights
        return np.asarray(logits)

    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        return logits, tape.gradient(loss, model.trainable_variables)

    if mode != "eager":
        forward_backward = tf.function(forward_backward, jit_compile=mode == "compiled")
    logits, grads = forward_backward(x, y)
    if any(g is None for g in grads):
        raise ValueError("no gradient reached some weights")
    return np.asarray(logits)


def variant_report(
    name: str, block: type, twin: keras.Model, params: Mapping[str, Any], x: tf.Tensor, y: tf.Tensor,
    expected: np.ndarray,
) -> dict[str, Any]:
    """Build the variant, then each mode from the twin's weights: ok with its max abs diff from
    the twin's eager logits, or failed with the first line of why."""
    try:
        model = build_model(params, block=block)
    except Exception as exc:
        return {"build": {"status": "failed", "error": reason(exc)}}
    report: dict[str, Any] = {"build": {"status": "ok"}}
    for mode in VARIANT_MODES:
        copy_weights(twin, model)
        start = time.perf_counter()
        try:
            logits = run_variant_mode(model, mode, x, y)
            report[mode] = {"status": "ok", "forward_max_abs_diff": float(np.max(np.abs(logits - expected)))}
        except Exception as exc:
            report[mode] = {"status": "failed", "error": reason(exc)}
        report[mode]["wall_s"] = time.perf_counter() - start
    return report


def probe(
    model: keras.Model, params: Mapping[str, Any], job: Mapping[str, Any], inputs: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    x, y = tf.constant(inputs["x"]), tf.constant(inputs["y"])
    expected = np.asarray(model(x, training=False))
    iterate = iterations_of(model)
    arrays = {
        "logits": expected,
        "iterations": np.asarray(iterate(x)),
        "iterations_graph": np.asarray(tf.function(iterate)(x)),
        "iterations_compiled": np.asarray(tf.function(iterate, jit_compile=True)(x)),
    }
    keras.utils.set_random_seed(job["seed"])
    arrays["own_init_iterations"] = np.asarray(iterations_of(build_model(params))(x))
    variants = {
        name: variant_report(name, block, model, params, x, y, expected)
        for name, block in tf_variants.VARIANTS.items()
    }
    try:
        build_model(params, block=tf_variants.UnshapedPythonWhileBlock)
        unshaped = {"status": "ok"}
    except Exception as exc:
        unshaped = {"status": "failed", "error": reason(exc)}
    variants["python_while"]["build_without_compute_output_shape"] = unshaped
    return arrays, {"variants": variants}
