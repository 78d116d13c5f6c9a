"""The study's statistics (fairness rule 7): medians with distribution-free intervals, paired
TF/PT ratios over blocks, the A-vs-A noise floor and a noisy-configuration flag.

The unit of observation is one trial (one fresh process), never one step: steps inside a
process share its warm caches, allocator and clock state, so only trials are independent.

Every interval here is an order-statistic (sign-test) interval: for any continuous
distribution, the median lies in [x_(k), x_(n-k+1)] of n independent values with probability
exactly 1 - 2 P(Binom(n, 1/2) <= k - 1), whatever the distribution's shape (ties only raise
it). Nothing is resampled, so nothing is random, and every interval carries the confidence it
*reaches*: with few trials no interval can reach 95% (n = 3 reaches 75% at best), and a
percentile bootstrap would then quietly call [min, max] a 95% interval. Reached confidence of
the median interval requested at 0.95 (``median_ci``; the paired ratio interval over n blocks
is the same interval, so the same numbers):

    n        3      4      5       6       7       8       9       10
    reached  0.750  0.875  0.9375  0.9688  0.9844  0.9922  0.9609  0.9785

(k grows by one at n = 9: [x_(2), x_(8)] already reaches 0.95.) ``repeats_for(c)`` gives the
smallest n reaching c: 5 for 0.90, 6 for 0.95.

Intervals are tuples (estimate, low, high) exactly as before, so ``m, lo, hi = median_ci(x)``
still works; the reached confidence is the attribute ``.confidence`` (and ``.requested``,
``.short``), not a fourth element.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

FRAMEWORKS = ("tensorflow", "torch")
CONFIG_COLUMNS = ("workload", "mode", "device", "precision", "isolation", "batch_size", "threads")
# Rule 8: records from different environments (versions, CPU, host: the record's fingerprint)
# are never pooled. When the table says which environment measured a trial, that is one more
# grouping key, so each environment gets its own rows and a reader sees the split.
ENVIRONMENT_COLUMN = "fingerprint"
# Metrics where a larger value wins; every other metric (times, memory, sizes) is lower-is-better.
HIGHER_IS_BETTER = frozenset({"throughput_samples_per_s", "achieved_gflops"})
# The A-vs-A noise floor is this quantile of |log(a/b)| over A-vs-A pairs (see noise_floor_aa).
NOISE_FLOOR_QUANTILE = 0.90
# With at least this many A-vs-A pairs per framework the floor is the larger per-framework
# floor (the noisier framework governs); with fewer, a framework's 90th percentile would rest
# on its one or two largest pairs, so the pairs of both frameworks are pooled. Pooling is
# also what the comparison's own noise looks like: under "no difference" a TF-vs-PT pair
# varies like the average of a TF and a PT A-vs-A pair, and the pooled pairs are that mix.
MIN_PAIRS_PER_FRAMEWORK = 20
# Confidences are sums of powers of 1/2; this only absorbs rounding in the comparison.
_TOLERANCE = 1e-12

NAN = float("nan")


class Interval(tuple):
    """(estimate, low, high), unpacking as the three values it always did, plus the confidence
    the interval actually reaches (``confidence``) and the one asked for (``requested``).

    ``short`` is True when even the widest interval the data allow cannot reach the requested
    confidence: the interval is then the widest one ([min, max]) at its lower, stated level.
    Equality is the tuple's (the three numbers), so old ``== (a, b, c)`` checks still hold.
    """

    def __new__(cls, estimate: float, low: float, high: float, confidence: float,
                requested: float):
        self = super().__new__(cls, (float(estimate), float(low), float(high)))
        self.confidence = float(confidence)
        self.requested = float(requested)
        return self

    def __getnewargs__(self):
        return (*self, self.confidence, self.requested)

    @property
    def estimate(self) -> float:
        return self[0]

    @property
    def low(self) -> float:
        return self[1]

    @property
    def high(self) -> float:
        return self[2]

    @property
    def short(self) -> bool:
        return bool(self.confidence + _TOLERANCE < self.requested)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self[0]!r}, low={self[1]!r}, high={self[2]!r}, "
                f"confidence={self.confidence!r}, requested={self.requested!r})")


class MedianCI(Interval):
    """(median, low, high) with ``.confidence`` reached; see ``median_ci``."""

    @property
    def median(self) -> float:
        return self[0]


class RatioCI(Interval):
    """(ratio, low, high) with ``.confidence`` reached; see ``ratio_ci``."""

    @property
    def ratio(self) -> float:
        return self[0]


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """NaN is a missing measurement; failed trials are reported by ``results.failures``."""
    array = np.asarray(values, dtype=float).ravel()
    return array[~np.isnan(array)]


@functools.lru_cache(maxsize=4096)
def order_statistic_rank(n: int, confidence: float) -> tuple[int, float]:
    """(k, reached): the largest k whose [x_(k), x_(n-k+1)] covers the median of n values with
    probability >= ``confidence``, and that probability, 1 - 2 P(Binom(n, 1/2) <= k - 1).

    When even k = 1 ([min, max], reaching 1 - 2^(1-n)) falls short, k is 1 and ``reached``
    says how far short. n < 2 has no interval: (0, 0.0).
    """
    if n < 2:
        return 0, 0.0
    ks = np.arange(1, (n + 1) // 2 + 1)
    reached = 1.0 - 2.0 * stats.binom.cdf(ks - 1, n, 0.5)  # decreasing in k
    ok = np.flatnonzero(reached + _TOLERANCE >= confidence)
    k = int(ks[ok[-1]]) if ok.size else 1
    return k, float(reached[k - 1])


def repeats_for(confidence: float) -> int:
    """The smallest number of trials (or of paired blocks) whose median interval, and so the
    paired TF/PT ratio interval, reaches ``confidence``: [min, max] of n values reaches
    1 - 2 (1/2)^n, so 5 for 0.90 (0.9375), 6 for 0.95 (0.96875), 8 for 0.99.

    ``ratio_ci``'s unpaired interval spends sqrt(confidence) on each side and needs
    ``repeats_for(sqrt(confidence))`` trials on each (7 for 0.95).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = 2
    while stats.binom.cdf(0, n, 0.5) * 2 > 1.0 - confidence + _TOLERANCE:
        n += 1
    return n


def order_statistic_interval(
    values: np.ndarray, confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Median and its order-statistic interval along the last axis of a NaN-free array of
    shape (..., n): (median, low, high, reached). The vectorized core of ``median_ci`` and
    of the paired ratio interval (so the simulations test the code the study runs)."""
    x = np.sort(np.asarray(values, dtype=float), axis=-1)
    n = x.shape[-1]
    median = np.median(x, axis=-1) if n else np.full(x.shape[:-1], NAN)
    k, reached = order_statistic_rank(n, confidence)
    if k == 0:
        nan = np.full(x.shape[:-1], NAN)
        return median, nan, nan.copy(), 0.0
    return median, x[..., k - 1], x[..., n - k], reached


def median_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    *,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> MedianCI:
    """Median with its distribution-free order-statistic interval [x_(k), x_(n-k+1)].

    k is the largest rank whose interval reaches ``confidence``; ``.confidence`` is what it
    reaches (exact for continuous data, a lower bound with ties). When [min, max] is the best
    the sample allows and still falls short (n <= 4 at 0.95), that is returned and ``.short``
    says so. One value has no interval (NaN, confidence 0), not a fake zero-width one;
    identical values genuinely have a zero-width one. ``n_resamples`` and ``seed`` are
    ignored (nothing is resampled; they are kept so older calls still work).
    """
    x = _clean(values)
    median, low, high, reached = order_statistic_interval(x, confidence)
    return MedianCI(float(median), float(low), float(high), reached, confidence)


def ratio_ci(
    numerator_values: Sequence[float] | np.ndarray,
    denominator_values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    *,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> RatioCI:
    """median(a)/median(b) of two UNPAIRED samples with a distribution-free interval.

    Each median gets its order-statistic interval at sqrt(confidence); a and b are
    independent, so both cover with probability >= reached_a * reached_b, and when both cover
    [low_a/high_b, high_a/low_b] covers the ratio of medians. ``.confidence`` is that product
    (3 vs 3 trials: 0.5625; 5 vs 5: 0.879; 7 vs 7: 0.969). The Hodges-Lehmann two-sample
    interval would be narrower, but it estimates a shift of log values and covers the ratio of
    medians only if the two samples differ by a pure scale factor (same shape), which nothing
    guarantees for, say, eager vs compiled step times. Positive values are assumed (times,
    throughputs); a zero or negative denominator bound leaves the interval NaN. The figures
    unpack (ratio, low, high); see ``compare_frameworks`` for the paired TF/PT ratio.
    """
    a, b = _clean(numerator_values), _clean(denominator_values)
    if a.size == 0 or b.size == 0:
        return RatioCI(NAN, NAN, NAN, 0.0, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(a) / np.median(b))
    each = float(np.sqrt(confidence))
    ma, a_low, a_high, reach_a = order_statistic_interval(a, each)
    mb, b_low, b_high, reach_b = order_statistic_interval(b, each)
    if a.size < 2 or b.size < 2 or not (b_low > 0 and a_low >= 0):
        return RatioCI(ratio, NAN, NAN, 0.0, confidence)
    return RatioCI(ratio, float(a_low / b_high), float(a_high / b_low), reach_a * reach_b,
                   confidence)


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
    """Median over all pairs of repeats of |a - b| / mean(a, b) (the "repeats" floor).

    The trials are independent runs of the SAME framework and configuration, in different
    blocks, so their difference is noise (scheduling, frequency, cache, allocator state) plus
    whatever drifted between blocks; it is the fallback when no A-vs-A pair (two trials in
    one block) exists, and overstates the within-block noise by the block effect. For two
    close numbers |a - b| / mean(a, b) is about |log(a/b)|. NaN with fewer than two trials.
    """
    x = _clean(values_by_repeat)
    if x.size < 2:
        return NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = [abs(a - b) / ((a + b) / 2) for a, b in itertools.combinations(x, 2)]
    return float(np.median(diffs))


def noise_floor_aa(abs_log_pairs: np.ndarray, axis: int = -1) -> np.ndarray:
    """The A-vs-A floor: the 90th percentile of |log(a/b)| over A-vs-A pairs (same framework,
    configuration and block, two replicas), along ``axis``.

    Why the 90th: the difference between a thing and itself exceeds it in only one pair in
    ten, so a TF/PT ratio beyond it is larger than nine self-comparisons in ten, a practical
    threshold on top of the ratio interval (which only says the ratio is not exactly 1). The
    median of the pairs would call a difference that a coin-flip's worth of self-comparisons
    reaches "real"; a still higher quantile is just the maximum of the few pairs there are.
    """
    return np.quantile(np.asarray(abs_log_pairs, dtype=float), NOISE_FLOOR_QUANTILE, axis=axis)


def verdicts(
    log_ratio: np.ndarray,
    log_low: np.ndarray,
    log_high: np.ndarray,
    reached: np.ndarray | float,
    requested: float,
    floor: np.ndarray | float,
    higher_is_better: bool = False,
    arms: tuple[str, str] = FRAMEWORKS,
) -> np.ndarray:
    """Vectorized ``faster``: a framework is named only when the interval of log(TF/PT)
    reaches the requested confidence, excludes 0 and |log ratio| exceeds the noise floor (log
    units). "insufficient data": no interval, or one short of the requested confidence (it
    cannot back a claim at that level); otherwise "no clear difference". ``arms``: what the
    ratio's numerator and denominator are called (the frameworks, unless told otherwise)."""
    log_ratio, log_low, log_high, reached, floor = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (log_ratio, log_low, log_high, reached, floor)))
    no_interval = np.isnan(log_low) | np.isnan(log_high) | (reached + _TOLERANCE < requested)
    with np.errstate(invalid="ignore"):
        beyond = np.abs(log_ratio) > floor  # NaN floor: cannot tell, no claim
        tf_larger = (log_low > 0) & beyond
        tf_smaller = (log_high < 0) & beyond
    a, b = arms
    larger, smaller = (a, b) if higher_is_better else (b, a)
    return np.select([no_interval, tf_larger, tf_smaller],
                     ["insufficient data", larger, smaller], "no clear difference")


def _by_environment(table: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """``by`` plus the environment column when the table has one (see ENVIRONMENT_COLUMN);
    ``precision`` and ``isolation`` only when the table has them (tables from before those
    columns were fp32, one process per trial)."""
    by = [c for c in by if c not in ("precision", "isolation") or c in table]
    if ENVIRONMENT_COLUMN in table and ENVIRONMENT_COLUMN not in by and table[ENVIRONMENT_COLUMN].notna().any():
        by.append(ENVIRONMENT_COLUMN)
    return by


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
    seed: int | None = None,
) -> pd.DataFrame:
    """One row per configuration × framework: the numbers figure F1 draws, from ok trials.

    ``ci_low``/``ci_high`` are ``median_ci``'s interval and ``confidence`` the level it
    reaches (below ``confidence`` with few trials; NaN interval and 0 with one trial).
    ``noise_floor`` is the "repeats" floor over the trials. ``seed`` is ignored.
    """
    keys = [*_by_environment(table, by), "framework"]
    rows = []
    for key, group in _trial_values(table, metric).groupby(keys, dropna=False, sort=True):
        values = group["value"].to_numpy(dtype=float)
        ci = median_ci(values, confidence=confidence)
        rows.append({
            **dict(zip(keys, key, strict=True)), "n": len(values), "median": ci.median,
            "ci_low": ci.low, "ci_high": ci.high, "confidence": ci.confidence,
            "relative_iqr": relative_iqr(values), "noisy": iqr_flag(values),
            "noise_floor": noise_floor(values),
        })
    columns = [*keys, "n", "median", "ci_low", "ci_high", "confidence", "relative_iqr", "noisy",
               "noise_floor"]
    return pd.DataFrame(rows, columns=columns)


def _log(values: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values.where(values > 0))  # a ratio needs positive values


def _trials_by_block(framework, repeat, replica, log_value) -> dict[tuple, list]:
    """{(framework, repeat): [(replica, log value), ...]} of one configuration's trials."""
    blocks: dict[tuple, list] = defaultdict(list)
    for f, b, r, v in zip(framework, repeat, replica, log_value, strict=True):
        blocks[(f, b)].append((r, v))
    return blocks


def _paired_log_ratios(blocks: dict[tuple, list], arms: tuple[str, str] = FRAMEWORKS) -> tuple[np.ndarray, int]:
    """(d_b = log(a_b / b_b) over the complete blocks in block order, incomplete blocks), the
    arms a and b being TensorFlow and PyTorch unless told otherwise. A side is the mean log
    (geometric mean) of its arm's positive values in the block."""
    sides: dict[object, dict[str, float]] = defaultdict(dict)
    for (arm, block), trials in blocks.items():
        logs = np.array([v for _, v in trials], dtype=float)
        logs = logs[np.isfinite(logs)]
        if arm in arms and logs.size:
            sides[block][arm] = float(logs.mean())
    all_blocks = {block for _, block in blocks}
    d = [sides[b][arms[0]] - sides[b][arms[1]] for b in sorted(sides) if len(sides[b]) == len(arms)]
    return np.asarray(d, dtype=float), len(all_blocks) - len(d)


def _floor(blocks: dict[tuple, list], arms: tuple[str, str] = FRAMEWORKS) -> tuple[float, str]:
    """(floor in log units, source) of one configuration: the A-vs-A floor when any A-vs-A
    pair (two replicas of one arm in one block) exists, else the "repeats" floor
    (median over pairs of one arm's trials of |log(a/b)|, the larger arm's: the
    log form of ``noise_floor``)."""
    pairs: dict[str, list[float]] = {f: [] for f in arms}
    every: dict[str, list[float]] = {f: [] for f in arms}
    for (arm, _), trials in blocks.items():
        if arm not in arms:
            continue
        every[arm] += [v for _, v in trials if np.isfinite(v)]
        for (ra, a), (rb, b) in itertools.combinations(trials, 2):
            if ra != rb and np.isfinite(a - b):
                pairs[arm].append(abs(a - b))
    counts = [len(pairs[f]) for f in arms]
    if min(counts) >= MIN_PAIRS_PER_FRAMEWORK:
        return float(max(noise_floor_aa(pairs[f]) for f in arms)), "a-vs-a"
    if sum(counts):
        return float(noise_floor_aa([d for f in arms for d in pairs[f]])), "a-vs-a"
    floors = []
    for framework in arms:
        x = np.asarray(every[framework], dtype=float)
        if x.size >= 2:
            upper = np.triu_indices(x.size, 1)
            floors.append(float(np.median(np.abs(x[:, None] - x[None, :])[upper])))
    if not floors:
        return NAN, "none"
    return max(floors), "repeats"


def compare_frameworks(
    table: pd.DataFrame,
    metric: str = "step_time_ms_median",
    by: Sequence[str] = CONFIG_COLUMNS,
    confidence: float = 0.95,
    seed: int | None = None,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """One row per configuration: the TF/PT ratio (tensorflow / torch) over paired blocks.

    Trials run in blocks (``repeat``: one trial of each framework per block, run back to
    back), so slow drift of the machine hits both sides of a block alike and cancels in the
    per-block log ratio d_b = log(tf_b / pt_b) (a framework's trials in one block, e.g. two
    A-vs-A replicas, enter as their geometric mean of positive values). Blocks missing one
    side (or with no positive value on one side: a ratio needs them) are dropped and counted
    in ``blocks_dropped``; ``blocks`` counts the complete ones.

    ``ratio`` = exp(median d_b) and [``ratio_ci_low``, ``ratio_ci_high``] = exp of the
    sign-test (order-statistic) interval of median d_b, reaching ``confidence`` (the column)
    = 1 - 2 P(Binom(blocks, 1/2) <= k - 1): 0.75 at 3 blocks, 0.9375 at 5, 0.969 at 6, 0.984 at
    7 when 0.95 is asked. The sign test is chosen over the Wilcoxon signed-rank
    (Hodges-Lehmann) interval because it assumes only independent blocks: Wilcoxon also
    needs d_b symmetric about its centre, which fails when one framework's trials have a
    one-sided tail (a GC pause, a late compile) that the other's lack; and at the block
    counts the study runs (5-7) both reach the same confidence with [min, max] (1 - 2^(1-n));
    Hodges-Lehmann's finer grid (n(n+1)/2 Walsh averages) only starts to give a narrower
    interval at a given confidence from about 7 blocks on. Fewer than 2 complete blocks: no
    interval (confidence 0); with no complete block ``ratio`` is median(tf)/median(pt).

    ``noise_floor`` (log units, ~ relative for small values) is the 90th percentile of
    |log(a/b)| over A-vs-A pairs (two ``replica`` of one framework in one block; a table
    without the column is all replica 0), pooled over both frameworks unless each has at
    least ``MIN_PAIRS_PER_FRAMEWORK`` pairs (then the larger of the two);
    ``noise_floor_source`` is "a-vs-a". Without any A-vs-A pair it falls back to the median
    over pairs of one framework's repeats (the larger framework's), source "repeats"; that
    floor also carries the drift between blocks, so it is larger and costs power: run A-vs-A
    replicas. Source "none" (floor NaN): no framework has two trials.
    ``within_noise``: |log ratio| <= floor.

    ``faster`` names a framework only when the interval reaches ``confidence``, excludes 1 and
    |log ratio| > floor ("insufficient data" when there is no interval or it falls short of
    ``confidence``: ask for fewer nines or run ``repeats_for(confidence)`` blocks; otherwise
    "no clear difference"). ``p_value`` stays the unpaired Mann-Whitney p over all trials.
    A configuration that only one framework ran keeps its row with n = 0.
    ``higher_is_better`` defaults from the metric (throughput and GFLOP/s: higher wins; times
    and memory: lower wins). ``seed`` is ignored (nothing is random).
    """
    return compare_arms(table, "framework", FRAMEWORKS, metric=metric, by=by, confidence=confidence,
                        higher_is_better=higher_is_better)


def compare_arms(
    table: pd.DataFrame,
    arm: str,
    arms: tuple[str, str],
    metric: str = "step_time_ms_median",
    by: Sequence[str] = CONFIG_COLUMNS,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """``compare_frameworks`` for any two arms: the values ``arms`` (a, b) of column ``arm``,
    ratio a/b over paired blocks, the A-vs-A floor from replicas of one arm in one block.
    The count and median columns are named after the arms (``n_<a>``, ``median_<a>``, ...),
    and ``faster`` names an arm. E.g. the isolation check (``harness/isolation.py``):
    ``compare_arms(table, "isolation", ("fork", "process"))``."""
    if higher_is_better is None:
        higher_is_better = metric in HIGHER_IS_BETTER
    by = [c for c in _by_environment(table, by) if c != arm]
    values = _trial_values(table, metric)
    values = values.assign(
        repeat=values["repeat"] if "repeat" in values else 0,
        replica=values["replica"].fillna(0) if "replica" in values else 0,
        log_value=_log(values["value"].astype(float)),
    )
    a_name, b_name = arms
    rows = []
    for key, group in values.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        a, b = (group.loc[group[arm] == f, "value"].to_numpy(float) for f in arms)
        blocks = _trials_by_block(*(group[c].to_numpy() for c in (arm, "repeat", "replica", "log_value")))
        d, dropped = _paired_log_ratios(blocks, arms)
        median_d, low, high, reached = order_statistic_interval(d, confidence)
        if d.size == 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                median_d = np.log(np.median(a) / np.median(b)) if a.size and b.size else NAN
        floor, source = _floor(blocks, arms)
        faster = verdicts(median_d, low, high, reached, confidence, floor, higher_is_better, arms)
        rows.append({
            **dict(zip(by, key, strict=True)),
            f"n_{a_name}": a.size, f"n_{b_name}": b.size,
            f"median_{a_name}": float(np.median(a)) if a.size else NAN,
            f"median_{b_name}": float(np.median(b)) if b.size else NAN,
            "ratio": float(np.exp(median_d)), "ratio_ci_low": float(np.exp(low)),
            "ratio_ci_high": float(np.exp(high)), "confidence": reached,
            "blocks": int(d.size), "blocks_dropped": dropped,
            "p_value": mann_whitney_p(a, b), "noise_floor": floor,
            "noise_floor_source": source,
            "within_noise": bool(abs(median_d) <= floor),
            "faster": str(faster),
        })
    columns = [*by, f"n_{a_name}", f"n_{b_name}", f"median_{a_name}", f"median_{b_name}", "ratio",
               "ratio_ci_low", "ratio_ci_high", "confidence", "blocks", "blocks_dropped",
               "p_value", "noise_floor", "noise_floor_source", "within_noise", "faster"]
    return pd.DataFrame(rows, columns=columns)
