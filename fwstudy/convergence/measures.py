"""The math of F8 and F10 that needs no framework: the IG quadrature both sides use, the
target accuracy, time-to-accuracy, where matched trajectories part, and the agreement
measures between two attribution maps.
"""

from __future__ import annotations

import numpy as np

from fwstudy.errors import BadInput


def ig_rule(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of captum's ``riemann_trapezoid``, the rule both frameworks integrate
    Integrated Gradients with (captum's default, Gauss-Legendre, would differ by quadrature
    alone).

    captum places ``steps`` points evenly on [0, 1] (both ends included) and weights each 1/steps,
    the two ends halved: the weights sum to 1 - 1/steps, not 1 (a trapezoid on that grid would
    weight 1/(steps-1)). So even an exact gradient leaves a completeness error of about
    1/steps of the logit difference; both sides share it, and F10 reports it as measured.
    """
    if steps < 2:
        raise BadInput(f"ig_steps must be >= 2, got {steps}")
    alphas = np.linspace(0.0, 1.0, steps)
    weights = np.full(steps, 1.0 / steps)
    weights[0] /= 2
    weights[-1] /= 2
    return alphas, weights


def target_accuracy(final_accuracies: np.ndarray | list[float], share: float) -> float:
    """``share`` of the best final accuracy reached (the converged reference): never a number
    typed low enough to be trivial."""
    values = np.asarray(final_accuracies, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan")
    return float(share * values.max())


def time_to_accuracy(test_accuracy: np.ndarray, train_s: np.ndarray, target: float) -> float:
    """Training wall-clock at the end of the first epoch whose test accuracy reaches
    ``target``; NaN when no epoch does (the run never got there)."""
    accuracy = np.asarray(test_accuracy, dtype=float)
    reached = np.flatnonzero(accuracy >= target)
    return float(np.asarray(train_s, dtype=float)[reached[0]]) if reached.size else float("nan")


def first_exceeding(steps: np.ndarray, difference: np.ndarray, threshold: float) -> float:
    """The first step whose |difference| exceeds ``threshold``; NaN when none does."""
    over = np.flatnonzero(np.abs(np.asarray(difference, dtype=float)) > threshold)
    return float(np.asarray(steps)[over[0]]) if over.size else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (n, d) arrays; NaN for a constant row."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=-1) / denominator, np.nan)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rank correlation (Pearson of the ranks, ties averaged)."""
    return pearson(_ranks(a), _ranks(b))


def top_k(a: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k features of largest magnitude, per row (ties: the lower index)."""
    return np.argsort(-np.abs(a), axis=-1, kind="stable")[..., :k]


def top_k_agreement(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Feature agreement (Krishna et al., 2022): the share of the two top-k sets in common."""
    ta, tb = top_k(a, k), top_k(b, k)
    return np.array([len(set(x) & set(y)) / k for x, y in zip(ta, tb, strict=True)])


def sign_agreement(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Sign agreement (Krishna et al., 2022): the share of the top-k features both maps hold
    *and* give the same sign."""
    ta, tb = top_k(a, k), top_k(b, k)
    out = []
    for row_a, row_b, x, y in zip(a, b, ta, tb, strict=True):
        common = set(x) & set(y)
        out.append(sum(np.sign(row_a[i]) == np.sign(row_b[i]) for i in common) / k)
    return np.asarray(out, dtype=float)


MEASURES = ("pearson", "spearman", "top_k", "sign")


def agreement(a: np.ndarray, b: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every measure, one value per row (sample), between two (n, d) attribution maps."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"attribution maps must be two (n, d) arrays of one shape, got {a.shape} and {b.shape}")
    k = min(k, a.shape[1])
    return {"pearson": pearson(a, b), "spearman": spearman(a, b),
            "top_k": top_k_agreement(a, b, k), "sign": sign_agreement(a, b, k)}


def completeness_error(attribution_sum: np.ndarray, logit_difference: np.ndarray) -> np.ndarray:
    """|sum of IG attributions - (F(x) - F(baseline))| relative to |F(x) - F(baseline)|."""
    s, d = np.asarray(attribution_sum, dtype=float), np.asarray(logit_difference, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(s - d) / np.abs(d)
