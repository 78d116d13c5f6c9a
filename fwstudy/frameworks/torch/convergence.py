"""PyTorch side of F8 (training to convergence) and F10 (FGSM/PGD, saliency, Integrated
Gradients); imported only inside a ``convergence`` or ``robustness`` child (rule 1).

The TensorFlow twin of every function here is ``frameworks/tensorflow/convergence.py``, with
the same scope (rule 10): the same loss, batch order, attack steps and IG quadrature.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fwstudy.convergence.loop import train_epochs
from fwstudy.convergence.measures import ig_rule
from fwstudy.frameworks.torch.trial import make_optimizer
from fwstudy.measure import training

EVAL_BATCH = 512


def build(spec, params: Mapping[str, Any], seed: int, weights: Mapping[str, np.ndarray] | None) -> nn.Module:
    """The twin, with torch's own seeded initialization, or ``weights`` (PyTorch layout)."""
    torch.manual_seed(seed)
    model = spec.implementation("torch").build_model(params)
    if weights is not None:
        model.load_state_dict({n: torch.from_numpy(np.asarray(a)) for n, a in weights.items()}, strict=True)
    return model


@torch.no_grad()
def evaluate_split(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on a split, in evaluation mode, in batches."""
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(y), EVAL_BATCH):
        xb, yb = torch.as_tensor(x[start:start + EVAL_BATCH]), torch.as_tensor(y[start:start + EVAL_BATCH])
        logits = model(xb)
        correct += int((logits.argmax(1) == yb).sum())
        loss += float(F.cross_entropy(logits, yb, reduction="sum"))
    model.train()
    return correct / len(y), loss / len(y)


def train(run, spec, params, data, initial, steps_per_epoch: int) -> dict[str, Any]:
    """``run.epochs`` epochs of Adam on the seeded batch order; the clock covers training steps
    only (first call and compile included: a user waits for them), never evaluation."""
    torch.set_num_threads(run.threads)
    model = build(spec, params, run.seed, initial)
    model.train()
    if run.arm == "matched":
        optimizer = make_optimizer(model)  # the study's aligned constants
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=training.LEARNING_RATE)  # torch's defaults
    forward = torch.compile(model) if run.mode == "compiled" else model
    total = steps_per_epoch * run.epochs
    batches = [(torch.as_tensor(x), torch.as_tensor(y))
               for x, y in data.batches(run.batch_size, total, seed=run.seed)]  # rule 4

    def step(x, y) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    steps, epochs = train_epochs(batches, step, lambda: evaluate_split(model, data.x_test, data.y_test),
                                 steps_per_epoch)
    weights = {n: t.detach().cpu().numpy().copy() for n, t in model.state_dict().items()}
    info = {"params": sum(p.numel() for p in model.parameters()), "version": torch.__version__,
            "adam_eps": optimizer.defaults["eps"]}
    return {"steps": steps, "epochs": epochs, "weights": weights, "info": info}


# --- F10 ------------------------------------------------------------------------------------


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(summed cross-entropy)/dx: the direction both attacks step along (its sign)."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """One signed-gradient step of size epsilon, clipped to the pixel range [0, 1]."""
    return (x + epsilon * input_gradient(model, x, y).sign()).clamp(0.0, 1.0)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int, ratio: float) -> torch.Tensor:
    """``steps`` signed-gradient steps of ``ratio * epsilon`` from x itself (no random start:
    both sides start alike), each projected onto the L-infinity ball and [0, 1]."""
    adv = x.clone()
    for _ in range(steps):
        adv = adv + ratio * epsilon * input_gradient(model, adv, y).sign()
        adv = torch.minimum(torch.maximum(adv, x - epsilon), x + epsilon).clamp(0.0, 1.0)
    return adv


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def timed(call, repeats: int = 3) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def evaluate(run, spec, params, data, weights_by_seed: Mapping[int, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Attacks on the whole test split and attributions of its first ``explain_samples``
    digits (target: the true label; baseline: the black image), per seed's weights."""
    torch.set_num_threads(run.threads)
    out = {kind: {} for kind in ("attacks", "attributions", "completeness", "timings")}

    def add(kind: str, **columns) -> None:
        for name, values in columns.items():
            out[kind].setdefault(name, []).extend(values if isinstance(values, list) else [values])

    x_all, y_all = torch.as_tensor(data.x_test), torch.as_tensor(data.y_test)
    n = min(run.explain_samples, len(data.y_test))
    xe, ye = x_all[:n], y_all[:n]
    alphas, weights = ig_rule(run.ig_steps)
    for seed, state in sorted(weights_by_seed.items()):
        model = build(spec, params, seed, state)
        model.eval()
        for attack in run.attacks:
            for epsilon in run.epsilons:
                if epsilon == 0:
                    adv = x_all
                elif attack == "fgsm":
                    adv = fgsm(model, x_all, y_all, epsilon)
                else:
                    adv = pgd(model, x_all, y_all, epsilon, run.pgd_steps, run.pgd_step_ratio)
                add("attacks", seed=seed, attack=attack, epsilon=epsilon, accuracy=accuracy(model, adv, y_all), n=len(y_all))
        baseline = torch.zeros_like(xe)
        maps = attribution_calls(model, xe, ye, baseline, run.ig_steps)
        for method, call in maps.items():
            add("timings", seed=seed, method=method, seconds=timed(call), samples=n)
            values = call().detach().numpy().reshape(n, -1)
            add_map(add, seed, method, values)
        add_map(add, seed, "fgsm_sign", input_gradient(model, xe, ye).sign().numpy().reshape(n, -1))
        ig_sum = maps["integrated_gradients"]().detach().numpy().reshape(n, -1).sum(axis=1)
        with torch.no_grad():
            rows = torch.arange(n)
            difference = (model(xe)[rows, ye] - model(baseline)[rows, ye]).numpy()
        add("completeness", seed=[seed] * n, sample=list(range(n)), label=ye.tolist(),
            attribution_sum=ig_sum.astype(float).tolist(), logit_difference=difference.astype(float).tolist())
    import captum

    out["info"] = {"version": torch.__version__, "captum": captum.__version__,
                   "ig_rule": "captum riemann_trapezoid", "ig_weights_sum": float(weights.sum()),
                   "ig_alphas": len(alphas)}
    return out


def attribution_calls(model: nn.Module, x: torch.Tensor, y: torch.Tensor, baseline: torch.Tensor, steps: int):
    """captum's gradient x input and Integrated Gradients (target: the label; ``steps``
    points of the ``riemann_trapezoid`` rule from ``baseline``), as calls to time and to run."""
    from captum.attr import InputXGradient, IntegratedGradients

    saliency, ig = InputXGradient(model), IntegratedGradients(model)
    return {
        "saliency": lambda: saliency.attribute(x, target=y),
        "integrated_gradients": lambda: ig.attribute(
            x, baselines=baseline, target=y, n_steps=steps, method="riemann_trapezoid"),
    }


def add_map(add, seed: int, method: str, values: np.ndarray) -> None:
    n, d = values.shape
    add("attributions", seed=[seed] * (n * d), sample=np.repeat(np.arange(n), d).tolist(),
        method=[method] * (n * d), feature=np.tile(np.arange(d), n).tolist(),
        value=values.astype(float).ravel().tolist())
