"""TensorFlow/Keras side of F8 (training to convergence) and F10 (FGSM/PGD, saliency,
Integrated Gradients); imported only inside a ``convergence`` or ``robustness`` child (rule 1).

The PyTorch twin of every function here is ``frameworks/torch/convergence.py``, with the same
scope (rule 10): the same loss, batch order, attack steps, and for Integrated Gradients the
same baseline, step count and quadrature as captum's ``riemann_trapezoid``
(``convergence.measures.ig_rule``), written here with ``tf.GradientTape``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.convergence.loop import train_epochs
from fwstudy.convergence.measures import ig_rule
from fwstudy.frameworks.tensorflow.parity import keras_variables
from fwstudy.frameworks.tensorflow.trial import make_optimizer, tape_step
from fwstudy.measure import training

EVAL_BATCH = 512


def configure(threads: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def build(spec, params: Mapping[str, Any], seed: int, weights: Mapping[str, np.ndarray] | None) -> keras.Model:
    """The twin, with Keras' own seeded initializers, or ``weights`` (PyTorch layout, moved by
    the workload's weight map)."""
    keras.utils.set_random_seed(seed)
    model = spec.implementation("tensorflow").build_model(params)
    if weights is not None:
        converted = spec.weight_map().to_keras(weights, params)
        for name, variable in keras_variables(model).items():
            variable.assign(converted[name])
    return model


def evaluate_split(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on a split, ``training=False``, in batches."""
    correct, loss = 0, 0.0
    for start in range(0, len(y), EVAL_BATCH):
        yb = y[start:start + EVAL_BATCH]
        logits = model(tf.constant(x[start:start + EVAL_BATCH]), training=False)
        correct += int(np.sum(np.argmax(np.asarray(logits), axis=1) == yb))
        loss += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(yb), logits)))
    return correct / len(y), loss / len(y)


def train(run, spec, params, data, initial, steps_per_epoch: int) -> dict[str, Any]:
    """``run.epochs`` epochs of Adam on the seeded batch order: the custom GradientTape loop,
    eager or under ``tf.function`` (graph) or ``tf.function(jit_compile=True)`` (compiled).
    The clock covers training steps only (the first call's trace or XLA compile included)."""
    configure(run.threads)
    model = build(spec, params, run.seed, initial)
    if run.arm == "matched":
        optimizer = make_optimizer()  # the study's aligned constants
    else:
        optimizer = keras.optimizers.Adam(learning_rate=training.LEARNING_RATE)  # Keras' defaults
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_step = functools.partial(tape_step, model, loss_fn, optimizer)
    if run.mode != "eager":
        train_step = tf.function(train_step, jit_compile=run.mode == "compiled")
    total = steps_per_epoch * run.epochs
    batches = [(tf.constant(x), tf.constant(y)) for x, y in data.batches(run.batch_size, total, seed=run.seed)]
    steps, epochs = train_epochs(batches, lambda x, y: float(train_step(x, y)),
                                 lambda: evaluate_split(model, data.x_test, data.y_test), steps_per_epoch)
    keras_weights = {n: np.asarray(v.numpy()).copy() for n, v in keras_variables(model).items()}
    weights = spec.weight_map().to_torch(keras_weights, params)
    info = {"params": int(model.count_params()), "version": tf.__version__,
            "adam_eps": float(optimizer.epsilon)}
    return {"steps": steps, "epochs": epochs, "weights": weights, "info": info}


# --- F10 ------------------------------------------------------------------------------------


def input_gradient(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """d(summed cross-entropy)/dx: the direction both attacks step along (its sign)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=False)))
    return tape.gradient(loss, x)


def fgsm(model: keras.Model, x: tf.Tensor, y: tf.Tensor, epsilon: float) -> tf.Tensor:
    """One signed-gradient step of size epsilon, clipped to the pixel range [0, 1]."""
    return tf.clip_by_value(x + epsilon * tf.sign(input_gradient(model, x, y)), 0.0, 1.0)


def pgd(model: keras.Model, x: tf.Tensor, y: tf.Tensor, epsilon: float, steps: int, ratio: float) -> tf.Tensor:
    """``steps`` signed-gradient steps of ``ratio * epsilon`` from x itself, each projected onto
    the L-infinity ball and [0, 1] (as the PyTorch side)."""
    adv = x
    for _ in range(steps):
        adv = adv + ratio * epsilon * tf.sign(input_gradient(model, adv, y))
        adv = tf.clip_by_value(tf.minimum(tf.maximum(adv, x - epsilon), x + epsilon), 0.0, 1.0)
    return adv


def accuracy(model: keras.Model, x: tf.Tensor, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(np.asarray(model(x, training=False)), axis=1) == y))


def target_logits(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.gather(model(x, training=False), y, axis=1, batch_dims=1)


def saliency(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Gradient of the target logit times the input (captum's ``InputXGradient``)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        selected = tf.reduce_sum(target_logits(model, x, y))
    return tape.gradient(selected, x) * x


def integrated_gradients(model: keras.Model, x: tf.Tensor, y: tf.Tensor, baseline: tf.Tensor, steps: int) -> tf.Tensor:
    """(x - baseline) times the weighted sum of target-logit gradients at baseline + alpha (x -
    baseline), with captum's ``riemann_trapezoid`` alphas and weights; all points in one batch,
    as captum evaluates them (``internal_batch_size`` None)."""
    alphas, weights = ig_rule(steps)
    n = x.shape[0]
    alpha = tf.reshape(tf.constant(alphas, dtype=x.dtype), (-1,) + (1,) * len(x.shape))
    points = tf.reshape(baseline[None] + alpha * (x - baseline)[None], (steps * n, *x.shape[1:]))
    with tf.GradientTape() as tape:
        tape.watch(points)
        selected = tf.reduce_sum(target_logits(model, points, tf.tile(y, [steps])))
    grads = tf.reshape(tape.gradient(selected, points), (steps, n, *x.shape[1:]))
    w = tf.reshape(tf.constant(weights, dtype=x.dtype), (-1,) + (1,) * len(x.shape))
    return tf.reduce_sum(grads * w, axis=0) * (x - baseline)


def timed(call, repeats: int = 3) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call (results brought to host)."""
    np.asarray(call())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(call())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def evaluate(run, spec, params, data, weights_by_seed: Mapping[int, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Attacks on the whole test split and attributions of its first ``explain_samples``
    digits (target: the true label; baseline: the black image), per seed's weights."""
    configure(run.threads)
    out = {kind: {} for kind in ("attacks", "attributions", "completeness", "timings")}

    def add(kind: str, **columns) -> None:
        for name, values in columns.items():
            out[kind].setdefault(name, []).extend(values if isinstance(values, list) else [values])

    x_all, y_all = tf.constant(data.x_test), tf.constant(data.y_test)
    n = min(run.explain_samples, len(data.y_test))
    xe, ye = x_all[:n], y_all[:n]
    baseline = tf.zeros_like(xe)
    for seed, state in sorted(weights_by_seed.items()):
        model = build(spec, params, seed, state)
        for attack in run.attacks:
            for epsilon in run.epsilons:
                if epsilon == 0:
                    adv = x_all
                elif attack == "fgsm":
                    adv = fgsm(model, x_all, y_all, epsilon)
                else:
                    adv = pgd(model, x_all, y_all, epsilon, run.pgd_steps, run.pgd_step_ratio)
                add("attacks", seed=seed, attack=attack, epsilon=epsilon,
                    accuracy=accuracy(model, adv, data.y_test), n=len(data.y_test))
        maps = attribution_calls(model, xe, ye, baseline, run.ig_steps)
        for method, call in maps.items():
            add("timings", seed=seed, method=method, seconds=timed(call), samples=n)
            add_map(add, seed, method, np.asarray(call()).reshape(n, -1))
        add_map(add, seed, "fgsm_sign", np.sign(np.asarray(input_gradient(model, xe, ye))).reshape(n, -1))
        ig_sum = np.asarray(maps["integrated_gradients"]()).reshape(n, -1).sum(axis=1)
        difference = np.asarray(target_logits(model, xe, ye) - target_logits(model, baseline, ye))
        add("completeness", seed=[seed] * n, sample=list(range(n)), label=data.y_test[:n].tolist(),
            attribution_sum=ig_sum.astype(float).tolist(), logit_difference=difference.astype(float).tolist())
    out["info"] = {"version": tf.__version__, "ig_rule": "riemann_trapezoid (convergence.measures.ig_rule)"}
    return out


def attribution_calls(model: keras.Model, x: tf.Tensor, y: tf.Tensor, baseline: tf.Tensor, steps: int):
    """Gradient x input and Integrated Gradients (as the PyTorch side's captum calls), as
    calls to time and to run."""
    return {
        "saliency": lambda: saliency(model, x, y),
        "integrated_gradients": lambda: integrated_gradients(model, x, y, baseline, steps),
    }


def add_map(add, seed: int, method: str, values: np.ndarray) -> None:
    n, d = values.shape
    add("attributions", seed=[seed] * (n * d), sample=np.repeat(np.arange(n), d).tolist(),
        method=[method] * (n * d), feature=np.tile(np.arange(d), n).tolist(),
        value=values.astype(float).ravel().tolist())
