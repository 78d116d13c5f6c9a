"""Known-data tests of fwstudy.results.stats: intervals cover known truths, flags fire where they must."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fwstudy.results import stats


def lognormal(median: float, n: int, seed: int, sigma: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(median), sigma, n)


def test_median_ci_covers_known_median_and_narrows_with_more_samples():
    ci = stats.median_ci(lognormal(10.0, 50, seed=1))
    med, low, high = ci  # still unpacks as three numbers
    assert low < 10.0 < high
    assert low <= med <= high
    assert ci.confidence >= 0.95 and not ci.short
    _, low_big, high_big = stats.median_ci(lognormal(10.0, 2000, seed=2))
    assert low_big < 10.0 < high_big
    assert high_big - low_big < (high - low) / 3


def test_intervals_are_deterministic():
    x = lognormal(5.0, 20, seed=3)
    assert stats.median_ci(x) == stats.median_ci(x)
    assert stats.median_ci(x).confidence == stats.median_ci(x).confidence
    assert stats.ratio_ci(x, x[::-1] + 1) == stats.ratio_ci(x, x[::-1] + 1)


def test_reached_confidence_is_the_sign_test_binomial():
    """[x_(k), x_(n-k+1)] reaches 1 - 2 P(Binom(n, 1/2) <= k - 1): exact values, by hand."""
    expected = {3: (1, 0.75), 4: (1, 0.875), 5: (1, 0.9375), 6: (1, 0.96875),
                7: (1, 0.984375), 9: (2, 1 - 2 * 10 / 512), 10: (2, 1 - 2 * 11 / 1024)}
    for n, (k, reached) in expected.items():
        assert stats.order_statistic_rank(n, 0.95) == (k, pytest.approx(reached))
    assert stats.order_statistic_rank(10, 0.99) == (1, pytest.approx(1 - 2 / 1024))
    assert stats.order_statistic_rank(1, 0.95) == (0, 0.0)
    assert stats.repeats_for(0.90) == 5 and stats.repeats_for(0.95) == 6
    assert stats.repeats_for(0.99) == 8
    for c in (0.5, 0.8, 0.9, 0.95, 0.975, 0.99):
        n = stats.repeats_for(c)
        assert stats.order_statistic_rank(n, c)[1] >= c > stats.order_statistic_rank(n - 1, c)[1]


def test_median_ci_short_of_the_requested_confidence_says_so():
    ci = stats.median_ci([3.0, 1.0, 2.0])
    assert ci == (2.0, 1.0, 3.0)  # [min, max]: the widest there is
    assert ci.confidence == 0.75 and ci.requested == 0.95 and ci.short
    assert not stats.median_ci([3.0, 1.0, 2.0], confidence=0.75).short
    wide = stats.median_ci(np.arange(10.0), confidence=0.95)
    assert (wide.low, wide.high) == (1.0, 8.0) and not wide.short  # k = 2


def test_median_ci_agrees_with_scipy_quantile_test():
    rng = np.random.default_rng(11)
    for n in (5, 6, 7, 10, 15, 30):
        for confidence in (0.8, 0.9, 0.95):
            x = rng.lognormal(0.0, 0.5, n)
            ci = stats.median_ci(x, confidence)
            ref = scipy_stats.quantile_test(x, q=0.0, p=0.5).confidence_interval(confidence)
            if ci.short:
                assert math.isnan(ref.low)  # scipy gives up; we return [min, max] and say so
            else:
                assert (ci.low, ci.high) == (ref.low, ref.high)


def test_ratio_ci_of_medians_two_and_one():
    ci = stats.ratio_ci(lognormal(2.0, 30, seed=4, sigma=0.1), lognormal(1.0, 30, seed=5, sigma=0.1))
    ratio, low, high = ci
    assert ratio == pytest.approx(2.0, rel=0.05)
    assert low < 2.0 < high
    assert low > 1.0
    assert ci.confidence >= 0.95
    # the unpaired interval spends sqrt(c) per side: 7 vs 7 reach 0.984^2, 3 vs 3 only 0.75^2
    assert stats.ratio_ci(np.arange(1.0, 8), np.arange(1.0, 8)).confidence == pytest.approx(
        (1 - 2 / 2**7) ** 2)
    assert stats.ratio_ci([1.0, 2, 3], [1.0, 2, 3]).confidence == 0.5625


def test_degenerate_inputs_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ci = stats.median_ci([4.2])
        med, low, high = ci
        assert med == 4.2 and math.isnan(low) and math.isnan(high) and ci.confidence == 0.0
        assert stats.median_ci([3.0] * 5) == (3.0, 3.0, 3.0)
        assert stats.median_ci([3.0] * 5).confidence == 0.9375  # ties: a lower bound
        assert all(math.isnan(v) for v in stats.median_ci([]))
        assert stats.ratio_ci([6.0] * 4, [2.0] * 3) == (3.0, 3.0, 3.0)
        ratio, low, high = stats.ratio_ci([6.0], [1.5, 2.5])
        assert ratio == 3.0 and math.isnan(low) and math.isnan(high)
        ratio, low, high = stats.ratio_ci([6.0, 6.0, 6.0], [1.9, 2.0, 2.1])
        assert ratio == 3.0 and low <= 3.0 <= high
        assert all(math.isnan(v) for v in stats.ratio_ci([1.0, 2.0], [0.0, 1.0])[1:])
        assert math.isnan(stats.mann_whitney_p([1.0], [2.0, 3.0]))
        assert stats.mann_whitney_p([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0
        assert math.isnan(stats.noise_floor([1.0]))
        assert stats.noise_floor([2.0, 2.0, 2.0]) == 0.0
        assert math.isnan(stats.relative_iqr([1.0]))
        assert stats.iqr_flag([1.0]) is False


def test_iqr_flag_on_crafted_data():
    # quartiles 95 and 105 around a median of 100: IQR/median = 0.10 exactly (not above)
    tight = [90, 95, 100, 105, 110]
    assert stats.relative_iqr(tight) == pytest.approx(0.10)
    assert stats.iqr_flag(tight) is False
    assert stats.iqr_flag([98, 99, 100, 101, 102]) is False
    wide = [80, 90, 100, 115, 130]  # quartiles 90 and 115: 25%
    assert stats.relative_iqr(wide) == pytest.approx(0.25)
    assert stats.iqr_flag(wide) is True
    assert stats.iqr_flag(wide, threshold=0.30) is False


def test_mann_whitney_separated_vs_identical():
    assert stats.mann_whitney_p([1, 2, 3, 4, 5, 6], [11, 12, 13, 14, 15, 16]) < 0.01
    same = lognormal(1.0, 12, seed=8)
    assert stats.mann_whitney_p(same, same) > 0.9


def test_noise_floor_is_median_pairwise_relative_difference():
    # pairs: (100,110) 0.0952, (100,90) 0.1053, (110,90) 0.2
    assert stats.noise_floor([100.0, 110.0, 90.0]) == pytest.approx(2 / 19)
    assert stats.noise_floor(lognormal(1.0, 40, seed=9, sigma=0.01)) < 0.03


def tidy_table() -> pd.DataFrame:
    config = dict(workload="mlp", mode="eager", device="cpu", batch_size=128, threads=2)
    times = {"tensorflow": [20.0, 21.0, 20.5, 19.5, 20.2], "torch": [10.0, 10.4, 9.8, 10.1, 10.2]}
    rows = []
    for framework, values in times.items():
        for repeat, value in enumerate(values):
            trial = dict(config, trial_id=f"{framework}-{repeat}", framework=framework,
                         repeat=repeat, status="ok", error=None)
            rows.append(dict(trial, metric="step_time_ms_median", value=value, unit="ms"))
            rows.append(dict(trial, metric="peak_rss_mb", value=500.0 + repeat, unit="MiB"))
    rows.append(dict(config, trial_id="torch-9", framework="torch", repeat=9, status="failed",
                     error="boom", metric=None, value=float("nan"), unit=""))
    # a second configuration that torch does not have (TF-only mode), one noisy framework
    for repeat, value in enumerate([5.0, 8.0, 5.5, 9.0]):
        rows.append(dict(config, mode="graph", trial_id=f"graph-{repeat}", framework="tensorflow",
                         repeat=repeat, status="ok", error=None, metric="step_time_ms_median",
                         value=value, unit="ms"))
    return pd.DataFrame(rows)


def test_summarize_configurations_ignores_failed_and_other_metrics():
    summary = stats.summarize_configurations(tidy_table())
    assert len(summary) == 3
    eager = summary[summary["mode"] == "eager"].set_index("framework")
    assert eager.loc["torch", "n"] == 5  # the failed trial is not a sample
    assert eager.loc["torch", "median"] == 10.1
    assert eager.loc["tensorflow", "median"] == 20.2
    # five trials: [min, max] is the best interval, reaching 1 - 2/2^5 (short of 0.95)
    assert (eager.loc["torch", "ci_low"], eager.loc["torch", "ci_high"]) == (9.8, 10.4)
    assert eager.loc["torch", "confidence"] == 0.9375
    assert not eager["noisy"].any()
    graph = summary[summary["mode"] == "graph"].iloc[0]
    assert graph["noisy"] and graph["n"] == 4 and graph["confidence"] == 0.875
    assert summary.equals(stats.summarize_configurations(tidy_table()))


def test_compare_frameworks_ratio_and_verdict():
    table = tidy_table()
    comparison = stats.compare_frameworks(table).set_index("mode")
    eager = comparison.loc["eager"]
    assert eager["n_tensorflow"] == 5 and eager["n_torch"] == 5
    assert eager["blocks"] == 5 and eager["blocks_dropped"] == 0
    # per-block ratios 2.0, 2.019, 2.092, 1.931, 1.980: the ratio is their median
    assert eager["ratio"] == pytest.approx(2.0)
    assert eager["ratio_ci_low"] == pytest.approx(19.5 / 10.1)
    assert eager["ratio_ci_high"] == pytest.approx(20.5 / 9.8)
    assert eager["confidence"] == 0.9375
    # five blocks cannot back a 95% claim, however clear the data look
    assert eager["faster"] == "insufficient data"
    assert eager["p_value"] < 0.05
    assert eager["noise_floor_source"] == "repeats"  # no A-vs-A pair in this table
    assert not eager["within_noise"]
    at_90 = stats.compare_frameworks(table, confidence=0.90).set_index("mode").loc["eager"]
    assert at_90["faster"] == "torch"  # tensorflow's step time is twice torch's
    graph = comparison.loc["graph"]
    assert graph["n_torch"] == 0 and math.isnan(graph["ratio"]) and graph["blocks"] == 0
    assert graph["faster"] == "insufficient data" and graph["confidence"] == 0.0
    throughput = table[table["metric"] == "step_time_ms_median"].assign(
        metric="throughput_samples_per_s", value=lambda t: 1000.0 / t["value"])
    assert stats.compare_frameworks(throughput, metric="throughput_samples_per_s",
                                    confidence=0.90).set_index("mode").loc[
        "eager", "faster"] == "torch"
    # a sixth block reaches 0.969 >= 0.95, and the default confidence names the winner
    config = dict(workload="mlp", mode="eager", device="cpu", batch_size=128, threads=2)
    sixth = pd.DataFrame([dict(config, trial_id=f"{f}-5", framework=f, repeat=5, status="ok",
                               error=None, metric="step_time_ms_median", value=v, unit="ms")
                          for f, v in (("tensorflow", 20.3), ("torch", 10.0))])
    six = stats.compare_frameworks(pd.concat([table, sixth], ignore_index=True))
    six = six.set_index("mode").loc["eager"]
    assert six["blocks"] == 6 and six["confidence"] == 0.96875 and six["faster"] == "torch"


def test_compare_frameworks_no_clear_difference():
    table = tidy_table()
    tf = table["framework"] == "tensorflow"
    table.loc[tf & (table["mode"] == "eager"), "value"] = [10.3, 500, 9.9, 501, 10.0, 502,
                                                            10.2, 503, 9.7, 504]
    row = stats.compare_frameworks(table, confidence=0.90).set_index("mode").loc["eager"]
    assert row["ratio_ci_low"] < 1.0 < row["ratio_ci_high"]
    assert row["faster"] == "no clear difference"


def blocked_table(tf: list[list[float]], pt: list[list[float]], replica: bool = True) -> pd.DataFrame:
    """One configuration; tf[b] / pt[b] are the trials of block b (replicas 0, 1, ...)."""
    rows = []
    for framework, blocks in (("tensorflow", tf), ("torch", pt)):
        for repeat, values in enumerate(blocks):
            for rep, value in enumerate(values):
                rows.append(dict(workload="mlp", mode="eager", device="cpu", batch_size=32,
                                 threads=1, framework=framework, repeat=repeat, replica=rep,
                                 trial_id=f"{framework}-{repeat}-{rep}", status="ok",
                                 metric="step_time_ms_median", value=value))
    table = pd.DataFrame(rows)
    return table if replica else table.drop(columns="replica")


def test_compare_frameworks_pairs_blocks_and_drops_incomplete_ones():
    # the machine drifts 2x between blocks; inside a block TF is 10% slower, A-vs-A +-0.5%
    drift = [1.0, 1.3, 0.8, 2.0, 1.1, 1.6]
    tf = [[11 * s * 1.005, 11 * s / 1.005] for s in drift] + [[30.0, 30.0]]  # last: TF only
    pt = [[10 * s / 1.005, 10 * s * 1.005] for s in drift]
    row = stats.compare_frameworks(blocked_table(tf, pt)).iloc[0]
    assert row["blocks"] == 6 and row["blocks_dropped"] == 1
    assert row["ratio"] == pytest.approx(1.1)
    assert row["ratio_ci_low"] == pytest.approx(1.1) and row["ratio_ci_high"] == pytest.approx(1.1)
    assert row["noise_floor_source"] == "a-vs-a"
    assert row["noise_floor"] == pytest.approx(2 * math.log(1.005))
    assert row["faster"] == "torch" and not row["within_noise"]
    # unpaired, the drift swamps the 10%: the same trials' ratio_ci straddles 1
    flat = lambda blocks: [v for block in blocks[:6] for v in block]  # noqa: E731
    _, low, high = stats.ratio_ci(flat(tf), flat(pt))
    assert low < 1.0 < high


def test_compare_frameworks_effect_inside_the_noise_floor_is_no_winner():
    # TF 3% slower in every block (interval excludes 1) but A-vs-A replicas differ by 10%
    tf = [[10.3 * 1.05, 10.3 / 1.05] for _ in range(6)]
    pt = [[10.0 * 1.05, 10.0 / 1.05] for _ in range(6)]
    row = stats.compare_frameworks(blocked_table(tf, pt)).iloc[0]
    assert row["ratio_ci_low"] > 1.0 and row["confidence"] >= 0.95
    assert row["noise_floor"] == pytest.approx(2 * math.log(1.05))
    assert row["within_noise"] and row["faster"] == "no clear difference"
    # without the replica column the two trials of a block are not an A-vs-A pair
    no_replica = stats.compare_frameworks(blocked_table(tf, pt, replica=False)).iloc[0]
    assert no_replica["noise_floor_source"] == "repeats"


def test_a_vs_a_floor_pools_frameworks_with_few_pairs():
    rng = np.random.default_rng(5)
    for blocks, pooled in ((4, True), (stats.MIN_PAIRS_PER_FRAMEWORK - 1, True),
                           (stats.MIN_PAIRS_PER_FRAMEWORK, False)):
        tf = np.exp(rng.normal(0, 0.02, (blocks, 2))).tolist()
        pt = np.exp(rng.normal(0, 0.10, (blocks, 2))).tolist()
        row = stats.compare_frameworks(blocked_table(tf, pt)).iloc[0]
        pairs = [abs(math.log(a / b)) for a, b in tf], [abs(math.log(a / b)) for a, b in pt]
        expected = (np.quantile(pairs[0] + pairs[1], 0.9) if pooled
                    else max(np.quantile(pairs[0], 0.9), np.quantile(pairs[1], 0.9)))
        assert row["noise_floor"] == pytest.approx(expected)


# --- simulations: the intervals cover what they claim, on 10,000 seeded data sets each -----

N_SETS = 10_000
LN2 = math.log(2.0)
# name: (draw(rng, shape), true median)
DISTRIBUTIONS = {
    "normal": (lambda rng, shape: rng.normal(10.0, 2.0, shape), 10.0),
    "lognormal": (lambda rng, shape: rng.lognormal(math.log(10.0), 0.5, shape), 10.0),
    "exponential": (lambda rng, shape: rng.exponential(3.0, shape), 3.0 * LN2),
    "cauchy": (lambda rng, shape: 5.0 + rng.standard_cauchy(shape), 5.0),
}


def standard_error(p: float, n: int = N_SETS) -> float:
    return math.sqrt(p * (1 - p) / n)


def upper_bound(count: int, n: int = N_SETS) -> float:
    """99.7% Clopper-Pearson upper bound of a rate (3 sigma, one-sided 0.15%)."""
    return scipy_stats.binomtest(count, n).proportion_ci(0.997).high


def lower_bound(count: int, n: int = N_SETS) -> float:
    return scipy_stats.binomtest(count, n).proportion_ci(0.997).low


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_median_interval_covers_at_its_reached_confidence(name):
    """For continuous data the order-statistic interval's coverage is exactly its reached
    confidence, whatever the distribution: within 3 standard errors below (it must not
    overclaim) and 4 above (it must not be needlessly wide either)."""
    draw, truth = DISTRIBUTIONS[name]
    rng = np.random.default_rng(sorted(DISTRIBUTIONS).index(name))
    for n in (3, 5, 7, 10):
        samples = draw(rng, (N_SETS, n))
        for confidence in (0.95, 0.80):
            _, low, high, reached = stats.order_statistic_interval(samples, confidence)
            assert reached == stats.median_ci(samples[0], confidence).confidence
            for row in range(200):  # the vectorized core is what median_ci returns
                assert stats.median_ci(samples[row], confidence)[1:] == (low[row], high[row])
            coverage = np.mean((low <= truth) & (truth <= high))
            se = standard_error(reached)
            assert reached - 3 * se <= coverage <= reached + 4 * se, (name, n, confidence)


def test_unpaired_ratio_ci_covers_the_ratio_of_medians_across_shapes():
    """Lognormal over exponential (different shapes, so no shift model holds): the interval
    still covers median(a)/median(b) = 2 at least at its reached confidence."""
    rng = np.random.default_rng(7)
    for n in (3, 5, 7):
        a = rng.lognormal(math.log(2.0), 0.4, (N_SETS, n))
        b = rng.exponential(1.0 / LN2, (N_SETS, n))
        # ratio_ci's rule on all sets at once, checked against ratio_ci itself on 300
        each = math.sqrt(0.95)
        _, a_low, a_high, reach_a = stats.order_statistic_interval(a, each)
        _, b_low, b_high, reach_b = stats.order_statistic_interval(b, each)
        low, high, reached = a_low / b_high, a_high / b_low, reach_a * reach_b
        for row in range(300):
            ci = stats.ratio_ci(a[row], b[row])
            assert ci[1:] == (low[row], high[row]) and ci.confidence == reached
        hits = np.sum((low <= 2.0) & (2.0 <= high))
        assert hits / N_SETS >= reached - 3 * standard_error(reached), n


def simulate_blocks(rng, blocks: int, replicas: int, effect: float = 1.0, noise: str = "normal",
                    sigma: float = 0.05, block_sigma: float = 0.1) -> np.ndarray:
    """Log step times, shape (2 frameworks, N_SETS, blocks, replicas): a block effect shared
    by both frameworks (machine drift), TF slower by ``effect``, independent trial noise of
    scale ``sigma`` (normal, Student t with 3 dof, or a one-sided exponential tail)."""
    shape = (2, N_SETS, blocks, replicas)
    eps = {"normal": lambda: rng.standard_normal(shape),
           "t3": lambda: rng.standard_t(3, shape),
           "exponential": lambda: rng.exponential(1.0, shape)}[noise]()
    block = block_sigma * rng.standard_normal((1, N_SETS, blocks, 1))
    shift = np.array([math.log(effect), 0.0]).reshape(2, 1, 1, 1)
    return math.log(10.0) + block + shift + sigma * eps


def vectorized_compare(logs: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """compare_frameworks' rules on N_SETS configurations at once, from stats' own pieces
    (checked against compare_frameworks itself in ``check_against_compare_frameworks``)."""
    tf, pt = logs
    d = tf.mean(axis=-1) - pt.mean(axis=-1)  # per-block log ratio (geometric mean of replicas)
    median, low, high, reached = stats.order_statistic_interval(d, confidence)
    replicas = logs.shape[-1]
    if replicas >= 2:
        i, j = np.triu_indices(replicas, 1)
        pairs = np.abs(logs[..., i] - logs[..., j]).reshape(2, N_SETS, -1)
        if pairs.shape[-1] >= stats.MIN_PAIRS_PER_FRAMEWORK:
            floor = np.maximum(stats.noise_floor_aa(pairs[0]), stats.noise_floor_aa(pairs[1]))
        else:
            floor = stats.noise_floor_aa(np.concatenate([pairs[0], pairs[1]], axis=-1))
    else:
        x = logs[..., 0]
        i, j = np.triu_indices(x.shape[-1], 1)
        floor = np.median(np.abs(x[..., i] - x[..., j]), axis=-1).max(axis=0)
    faster = stats.verdicts(median, low, high, reached, confidence, floor)
    return dict(median=median, low=low, high=high, reached=reached, floor=floor, faster=faster)


def check_against_compare_frameworks(logs: np.ndarray, confidence: float, result: dict,
                                     sets: int = 30) -> None:
    frameworks, _, blocks, replicas = logs.shape
    f, s, b, r = np.meshgrid(range(frameworks), range(sets), range(blocks), range(replicas),
                             indexing="ij")
    table = pd.DataFrame({
        "workload": s.ravel(), "framework": np.array(stats.FRAMEWORKS)[f.ravel()],
        "repeat": b.ravel(), "replica": r.ravel(), "trial_id": np.arange(f.size),
        "status": "ok", "metric": "step_time_ms_median",
        "value": np.exp(logs[:, :sets]).ravel(),
    })
    if replicas == 1:
        table = table.drop(columns="replica")  # a missing column is replica 0
    got = stats.compare_frameworks(table, by=["workload"], confidence=confidence)
    assert list(got["faster"]) == list(result["faster"][:sets])
    np.testing.assert_allclose(got["ratio"], np.exp(result["median"][:sets]), rtol=1e-9)
    np.testing.assert_allclose(got["ratio_ci_low"], np.exp(result["low"][:sets]), rtol=1e-9)
    np.testing.assert_allclose(got["noise_floor"], result["floor"][:sets], rtol=1e-6, atol=1e-12)
    assert set(got["noise_floor_source"]) == {"a-vs-a" if replicas > 1 else "repeats"}


@pytest.mark.parametrize("noise", ["normal", "t3", "exponential"])
def test_a_vs_a_names_a_winner_at_most_5_percent_of_the_time(noise):
    """Both frameworks from one distribution, paired blocks with a shared block effect: any
    named winner is false. Its rate, with a 3-sigma upper bound, must stay under 5% at every
    block count and confidence the profiles use; 3 blocks can never back a claim."""
    rng = np.random.default_rng(["normal", "t3", "exponential"].index(noise) + 20)
    for blocks in (3, 5, 6, 10):
        for replicas in (1, 2):
            logs = simulate_blocks(rng, blocks, replicas, noise=noise)
            for confidence in (0.90, 0.95):
                result = vectorized_compare(logs, confidence)
                named = int(np.isin(result["faster"], stats.FRAMEWORKS).sum())
                assert upper_bound(named) <= 0.05, (noise, blocks, replicas, confidence, named)
                if blocks == 3:
                    assert set(result["faster"]) == {"insufficient data"}
                # the paired interval covers the true median log ratio (0) as it says
                covered = np.mean((result["low"] <= 0) & (0 <= result["high"]))
                reached = float(result["reached"])
                if reached:
                    assert covered >= reached - 3 * standard_error(reached)
            if blocks == 6:
                check_against_compare_frameworks(logs, 0.95, vectorized_compare(logs, 0.95))


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_a_real_20_percent_effect_is_found(noise):
    """TF 20% slower, 10% block drift, trial noise of scale 5% (normal; t3 is heavier: its sd
    is 8.7%): with 6 or more blocks (0.95 reached) the right winner in most cases (3-sigma
    lower bound >= 50%), the wrong one (practically) never, and the paired interval covers
    the true ratio 1.2 at its reached confidence. With normal noise and A-vs-A replicas the
    floor is ~2.3 sd of one trial's noise (0.116) against a median log ratio ~ N(0.182,
    0.05/sqrt(6)): the floor is crossed almost always, so >= 90% there."""
    rng = np.random.default_rng(["normal", "t3"].index(noise) + 40)
    for blocks in (6, 10):
        for replicas in (1, 2):
            logs = simulate_blocks(rng, blocks, replicas, effect=1.2, noise=noise)
            result = vectorized_compare(logs, 0.95)
            right = int((result["faster"] == "torch").sum())
            wrong = int((result["faster"] == "tensorflow").sum())
            assert lower_bound(right) >= 0.5, (noise, blocks, replicas, right)
            if noise == "normal" and replicas == 2:
                assert lower_bound(right) >= 0.9, (blocks, right)
            assert upper_bound(wrong) <= 0.001, (noise, blocks, replicas, wrong)
            truth = math.log(1.2)
            covered = np.mean((result["low"] <= truth) & (truth <= result["high"]))
            reached = float(result["reached"])
            assert covered >= reached - 3 * standard_error(reached)
            if blocks == 6:
                check_against_compare_frameworks(logs, 0.95, result)
