"""The study's statistics (fairness rule 7): medians with bootstrap CIs, TF/PT ratios with
their own CIs, Mann-Whitney p-values, the A-vs-A noise floor and a noisy-configuration flag.

The unit of observation is one trial (one fresh process), never one step: steps inside a
process share its warm caches, allocator and clock state, so only trials are independent.
Everything is seeded, so the same table always yields the same numbers.

Intervals use the percentile bootstrap rather than BCa: BCa's jackknife of a median over a
handful of trials is often degenerate (tied leave-one-out medians) and then warns or fails,
while the percentile interval of the median is well defined for any sample of two or more.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

FRAMEWORKS = ("tensorflow", "torch")
CONFIG_COLUMNS = ("workload", "mode", "device", "batch_size", "threads")
N_RESAMPLES = 9999
# Metrics where a larger value wins; every other metric (times, memory, sizes) is lower-is-better.
HIGHER_IS_BETTER = frozenset({"throughput_samples_per_s", "achieved_gflops"})

NAN = float("nan")


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """NaN is a missing measurement; failed trials are reported by ``results.failures``."""
    array = np.asarray(values, dtype=float).ravel()
    return array[~np.isnan(array)]


def median_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Median with a percentile-bootstrap interval.

    One value has no spread to resample (interval NaN, not a fake zero-width one); identical
    values have a genuinely zero-width interval, returned without asking scipy.
    """
    x = _clean(values)
    if x.size == 0:
        return NAN, NAN, NAN
    median = float(np.median(x))
    if x.size == 1:
        return median, NAN, NAN
    if np.all(x == x[0]):
        return median, median, median
    result = stats.bootstrap(
        (x,), np.median, n_resamples=n_resamples, vectorized=True, confidence_level=confidence,
        method="percentile", rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return median, float(ci.low), float(ci.high)


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.median(a, axis=axis) / np.median(b, axis=axis)


def ratio_ci(
    numerator_values: Sequence[float] | np.ndarray,
    denominator_values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """median(a)/median(b) with a bootstrap interval that resamples a and b independently.

    The trials of two frameworks are separate processes, not pairs, so the samples are
    resampled unpaired; the ratio's interval then carries both sides' uncertainty, which two
    separate median intervals cannot express.
    """
    a, b = _clean(numerator_values), _clean(denominator_values)
    if a.size == 0 or b.size == 0:
        return NAN, NAN, NAN
    ratio = float(_ratio_of_medians(a, b))
    if a.size == 1 or b.size == 1:
        return ratio, NAN, NAN
    if np.all(a == a[0]) and np.all(b == b[0]):
        return ratio, ratio, ratio
    result = stats.bootstrap(
        (a, b), _ratio_of_medians, n_resamples=n_resamples, vectorized=True, paired=False,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return ratio, float(ci.low), float(ci.high)


def mann_whitney_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; NaN when either side has fewer than two trials.

    With one trial on a side the test can only rank a single number, and its p-value (often
    exactly 1) reads as "same" when it means "no data"; NaN says the latter. Note that with
    few trials the smallest reachable p is large (2 vs 2 trials: 1/3), so a big p here is
    absence of evidence, not evidence of equality.
    """
    x, y = _clean(a), _clean(b)
    if x.size < 2 or y.size < 2:
        return NAN
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def relative_iqr(values: Sequence[float] | np.ndarray) -> float:
    """IQR/median: spread in the same units as a ratio, so 0.1 reads as "±10% of a step"."""
    x = _clean(values)
    if x.size < 2:
        return NAN
    median = np.median(x)
    if median == 0:
        return NAN
    q1, q3 = np.percentile(x, [25, 75])
    return float((q3 - q1) / abs(median))


def iqr_flag(values: Sequence[float] | np.ndarray, threshold: float = 0.10) -> bool:
    """True when trials disagree by more than ``threshold`` of their median.

    Such a configuration's median and ratio are not trustworthy until rerun; with fewer than
    two trials the spread is unknown and the flag stays False (n says why).
    """
    spread = relative_iqr(values)
    return bool(spread > threshold)  # NaN compares False


def noise_floor(values_by_repeat: Sequence[float] | np.ndarray) -> float:
    """Median over all pairs of A-vs-A trials of |a - b| / mean(a, b).

    The trials are independent runs of the SAME framework and configuration, so any
    difference between two of them is noise (scheduling, frequency, cache, allocator state).
    For two close numbers |a/b - 1| is about |a - b| / mean(a, b), so this is the size of the
    ratio one gets by comparing a thing with itself: a TF/PT ratio within 1 ± noise floor is
    no larger than run-to-run noise and is not a difference, even if its CI excludes 1. The
    median over pairs is robust to one outlying trial. NaN with fewer than two trials.
    """
    x = _clean(values_by_repeat)
    if x.size < 2:
        return NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = [abs(a - b) / ((a + b) / 2) for a, b in itertools.combinations(x, 2)]
    return float(np.median(diffs))


def _trial_values(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    ok = table[(table["status"] == "ok") & (table["metric"] == metric)]
    ok = ok[ok["value"].notna()]
    if "trial_id" in ok and ok["trial_id"].duplicated().any():
        raise ValueError(f"{metric}: more than one value per trial; the sample would be inflated")
    return ok


def summarize_configurations(
    table: pd.DataFrame,
    metric: str = "step_time_ms_median",
    by: Sequence[str] = CONFIG_COLUMNS,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per configuration × framework: the numbers figure F1 draws, from ok trials."""
    keys = [*by, "framework"]
    rows = []
    for key, group in _trial_values(table, metric).groupby(keys, dropna=False, sort=True):
        values = group["value"].to_numpy(dtype=float)
        median, low, high = median_ci(values, confidence=confidence, seed=seed)
        rows.append({
            **dict(zip(keys, key, strict=True)), "n": len(values), "median": median,
            "ci_low": low, "ci_high": high, "relative_iqr": relative_iqr(values),
            "noisy": iqr_flag(values), "noise_floor": noise_floor(values),
        })
    columns = [*keys, "n", "median", "ci_low", "ci_high", "relative_iqr", "noisy", "noise_floor"]
    return pd.DataFrame(rows, columns=columns)


def _verdict(low: float, high: float, higher_is_better: bool) -> str:
    if np.isnan(low) or np.isnan(high):
        return "insufficient data"
    if low > 1:  # tensorflow's value is larger
        return "tensorflow" if higher_is_better else "torch"
    if high < 1:
        return "torch" if higher_is_better else "tensorflow"
    return "no clear difference"


def compare_frameworks(
    table: pd.DataFrame,
    metric: str = "step_time_ms_median",
    by: Sequence[str] = CONFIG_COLUMNS,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """One row per configuration: TF/PT ratio (tensorflow / torch) with CI and p-value.

    ``faster`` names a framework only when the ratio's CI excludes 1; ``within_noise`` adds
    the practical test (|ratio - 1| <= the larger framework's noise floor). A configuration
    that only one framework ran (or whose other side all failed) keeps its row with n = 0, so
    a missing comparison is visible rather than dropped. ``higher_is_better`` defaults from
    the metric (throughput and GFLOP/s: higher wins; times and memory: lower wins).
    """
    if higher_is_better is None:
        higher_is_better = metric in HIGHER_IS_BETTER
    by = list(by)
    rows = []
    for key, group in _trial_values(table, metric).groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        tf, pt = (group.loc[group["framework"] == f, "value"].to_numpy(float) for f in FRAMEWORKS)
        ratio, low, high = ratio_ci(tf, pt, confidence=confidence, seed=seed)
        floor = np.fmax(noise_floor(tf), noise_floor(pt))
        rows.append({
            **dict(zip(by, key, strict=True)),
            "n_tensorflow": tf.size, "n_torch": pt.size,
            "median_tensorflow": float(np.median(tf)) if tf.size else NAN,
            "median_torch": float(np.median(pt)) if pt.size else NAN,
            "ratio": ratio, "ratio_ci_low": low, "ratio_ci_high": high,
            "p_value": mann_whitney_p(tf, pt), "noise_floor": float(floor),
            "within_noise": bool(abs(ratio - 1) <= floor),
            "faster": _verdict(low, high, higher_is_better),
        })
    columns = [*by, "n_tensorflow", "n_torch", "median_tensorflow", "median_torch", "ratio",
               "ratio_ci_low", "ratio_ci_high", "p_value", "noise_floor", "within_noise", "faster"]
    return pd.DataFrame(rows, columns=columns)
