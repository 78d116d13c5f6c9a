"""The measuring loop's quiet mode, throughput from summed step time, and the p99 interval's
coverage (fast: no framework)."""

import gc
import math
import time

import numpy as np
import pytest

from fwstudy.measure import collectors
from fwstudy.measure.timing import (
    StepSamples,
    latency_metrics,
    measure_steps,
    quantile_interval_ranks,
    summarize,
)


def test_quiet_mode_disables_gc_and_pauses_the_sampler_for_the_timed_steps_only():
    seen = {}

    with collectors.RssSampler(interval_s=0.001) as sampler:
        def step(i):
            time.sleep(0.005)
            seen[i] = (gc.isenabled(), sampler.paused, len(sampler.values))
            return 0.0

        assert gc.isenabled()
        samples = measure_steps(step, warmup=2, steps=5, quiet=True)
    assert samples.quiet
    assert gc.isenabled()  # restored
    # first call and warm-up: collector on, sampler running
    assert all(seen[i][0] and not seen[i][1] for i in range(3))
    # timed steps: collector off, sampler paused and taking no samples between them
    timed = [seen[i] for i in range(3, 8)]
    assert all(not enabled and paused for enabled, paused, _ in timed)
    assert len({count for _, _, count in timed}) == 1
    assert not sampler.paused and sampler.pauses == 1


def test_quiet_mode_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        measure_steps(lambda i: 0.0, warmup=0, steps=2, quiet=True)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_loud_mode_keeps_gc_and_sampling():
    states = []
    with collectors.RssSampler(interval_s=0.001) as sampler:
        measure_steps(lambda i: states.append((gc.isenabled(), sampler.paused)) or 0.0, warmup=0, steps=3)
    assert all(enabled and not paused for enabled, paused in states)
    assert sampler.pauses == 0


def test_the_first_call_is_labelled_for_the_samplers():
    with collectors.RssSampler(interval_s=0.002) as sampler:
        def step(i):
            if i == 0:
                block = np.ones(100 * 2**20 // 8)  # 100 MiB during the first call only
                time.sleep(0.05)
                del block
            return 0.0

        measure_steps(step, warmup=1, steps=3)
    phases = set(sampler.phases)
    assert {collectors.SETUP, collectors.FIRST_CALL, collectors.STEADY} <= phases
    compile_peak = sampler.anon_peak_mb(collectors.FIRST_CALL)
    steady_peak = sampler.anon_peak_mb(collectors.STEADY)
    assert compile_peak is not None and steady_peak is not None
    assert compile_peak - steady_peak > 60


def test_throughput_and_flops_come_from_the_summed_step_time():
    samples = StepSamples(compile_s=1.0, step_times_s=[0.1, 0.1, 0.4], losses=[1.0, 0.5])
    assert samples.total_s == pytest.approx(0.6)
    m = summarize(samples, batch_size=10, flops_per_step=3e9)
    assert m["throughput_samples_per_s"] == pytest.approx(30 / 0.6)  # not 10 / median = 100
    assert m["achieved_gflops"] == pytest.approx(9.0 / 0.6)
    assert m["step_time_ms_median"] == pytest.approx(100.0)  # the comparison statistic


def test_latency_metrics_report_calls_and_a_p99_interval_around_the_p99():
    rng = np.random.default_rng(1)
    times = rng.lognormal(-7, 0.3, size=2000)
    m = latency_metrics(times.tolist())
    assert m["latency_calls"] == 2000
    assert m["latency_ms_p99_ci_low"] <= m["latency_ms_p99"] <= m["latency_ms_p99_ci_high"]
    assert 0.95 <= m["latency_ms_p99_ci_confidence"] < 0.99
    lo, hi, _ = quantile_interval_ranks(2000, 0.99)
    ordered = np.sort(times) * 1e3
    assert m["latency_ms_p99_ci_low"] == ordered[lo - 1] and m["latency_ms_p99_ci_high"] == ordered[hi - 1]


def test_too_few_calls_say_how_short_the_p99_interval_falls():
    n = 30
    lo, hi, reached = quantile_interval_ranks(n, 0.99)
    assert hi == n  # the max: no higher rank exists
    exact = sum(math.comb(n, k) * 0.99**k * 0.01 ** (n - k) for k in range(lo, hi))  # P(lo <= B <= hi-1)
    assert reached == pytest.approx(exact, abs=1e-9)
    assert reached < 0.5


@pytest.mark.parametrize("n", [300, 2000])
def test_the_p99_interval_covers_the_true_p99_at_its_stated_level(n):
    """10,000 seeded sets from a skewed distribution: the interval's empirical coverage of the
    true p99 matches the coverage it states (binomial ranks are exact for any continuous law)."""
    sets = 10_000
    rng = np.random.default_rng(20240610 + n)
    true_p99 = -math.log(0.01)  # Exp(1)
    lo, hi, reached = quantile_interval_ranks(n, 0.99)
    data = rng.exponential(size=(sets, n))
    low = np.partition(data, lo - 1, axis=1)[:, lo - 1]
    high = np.partition(data, hi - 1, axis=1)[:, hi - 1]
    covered = float(np.mean((low <= true_p99) & (true_p99 <= high)))
    se = math.sqrt(reached * (1 - reached) / sets)
    assert abs(covered - reached) < 4 * se, (covered, reached)
    if n >= 2000:
        assert reached >= 0.95
