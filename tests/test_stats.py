"""Known-data tests of fwstudy.results.stats: intervals cover known truths, flags fire where they must."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fwstudy.results import stats


def lognormal(median: float, n: int, seed: int, sigma: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(median), sigma, n)


def test_median_ci_covers_known_median_and_narrows_with_more_samples():
    med, low, high = stats.median_ci(lognormal(10.0, 50, seed=1))
    assert low < 10.0 < high
    assert low <= med <= high
    _, low_big, high_big = stats.median_ci(lognormal(10.0, 2000, seed=2))
    assert low_big < 10.0 < high_big
    assert high_big - low_big < (high - low) / 3


def test_median_ci_is_deterministic_and_seeded():
    x = lognormal(5.0, 20, seed=3)
    assert stats.median_ci(x) == stats.median_ci(x)
    assert stats.ratio_ci(x, x[::-1] + 1) == stats.ratio_ci(x, x[::-1] + 1)


def test_ratio_ci_of_medians_two_and_one():
    ratio, low, high = stats.ratio_ci(lognormal(2.0, 30, seed=4, sigma=0.1),
                                      lognormal(1.0, 30, seed=5, sigma=0.1))
    assert ratio == pytest.approx(2.0, rel=0.05)
    assert low < 2.0 < high
    assert low > 1.0


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    """One draw may miss (5% do); over many draws both intervals must cover near 95%."""
    draws = 100
    median_hits = ratio_hits = 0
    for i in range(draws):
        a, b = lognormal(3.0, 10, seed=100 + i), lognormal(3.0, 10, seed=500 + i)
        _, low, high = stats.median_ci(a, n_resamples=1000)
        median_hits += low <= 3.0 <= high
        ratio, low, high = stats.ratio_ci(a, b, n_resamples=1000)
        ratio_hits += low <= 1.0 <= high  # equal distributions: the ratio CI contains 1
        assert low <= ratio <= high
    assert median_hits >= 0.88 * draws
    assert ratio_hits >= 0.88 * draws


def test_degenerate_inputs_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        med, low, high = stats.median_ci([4.2])
        assert med == 4.2 and math.isnan(low) and math.isnan(high)
        assert stats.median_ci([3.0] * 5) == (3.0, 3.0, 3.0)
        assert all(math.isnan(v) for v in stats.median_ci([]))
        assert stats.ratio_ci([6.0] * 4, [2.0] * 3) == (3.0, 3.0, 3.0)
        ratio, low, high = stats.ratio_ci([6.0], [1.5, 2.5])
        assert ratio == 3.0 and math.isnan(low) and math.isnan(high)
        ratio, low, high = stats.ratio_ci([6.0, 6.0, 6.0], [1.9, 2.0, 2.1])
        assert ratio == 3.0 and low <= 3.0 <= high
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
    assert eager.loc["torch", "ci_low"] <= 10.1 <= eager.loc["torch", "ci_high"]
    assert not eager["noisy"].any()
    graph = summary[summary["mode"] == "graph"].iloc[0]
    assert graph["noisy"] and graph["n"] == 4
    assert summary.equals(stats.summarize_configurations(tidy_table()))


def test_compare_frameworks_ratio_and_verdict():
    table = tidy_table()
    comparison = stats.compare_frameworks(table).set_index("mode")
    eager = comparison.loc["eager"]
    assert eager["n_tensorflow"] == 5 and eager["n_torch"] == 5
    assert eager["ratio"] == pytest.approx(20.2 / 10.1)
    assert eager["ratio_ci_low"] > 1.0
    assert eager["faster"] == "torch"  # tensorflow's step time is twice torch's
    assert eager["p_value"] < 0.05
    assert not eager["within_noise"]
    graph = comparison.loc["graph"]
    assert graph["n_torch"] == 0 and math.isnan(graph["ratio"])
    assert graph["faster"] == "insufficient data"
    throughput = table[table["metric"] == "step_time_ms_median"].assign(
        metric="throughput_samples_per_s", value=lambda t: 1000.0 / t["value"])
    assert stats.compare_frameworks(throughput, metric="throughput_samples_per_s").set_index(
        "mode").loc["eager", "faster"] == "torch"


def test_compare_frameworks_no_clear_difference():
    table = tidy_table()
    tf = table["framework"] == "tensorflow"
    table.loc[tf & (table["mode"] == "eager"), "value"] = [10.3, 500, 9.9, 501, 10.0, 502,
                                                            10.2, 503, 9.7, 504]
    row = stats.compare_frameworks(table).set_index("mode").loc["eager"]
    assert row["ratio_ci_low"] < 1.0 < row["ratio_ci_high"]
    assert row["faster"] == "no clear difference"
