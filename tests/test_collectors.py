"""Collectors: the RSS sampler sees an allocation, the high-water reset scopes the peak, and
the CPU and latency summaries compute what their names say."""

import time

import numpy as np
import pytest

from fwstudy.harness.peak import summarize_gemm, theoretical_peak_gflops
from fwstudy.measure import collectors
from fwstudy.measure.timing import StepSamples, cpu_metrics, latency_metrics, measure_steps


def test_sampler_and_high_water_see_an_allocation_after_the_reset():
    assert collectors.reset_high_water()
    before = collectors.high_water_mb()
    with collectors.RssSampler(interval_s=0.01) as sampler:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        time.sleep(0.1)
        del block
    assert collectors.high_water_mb() - before > 150
    assert sampler.peak_mb - sampler.values[0] > 150
    assert sampler.sampler_cpu_s < 0.5
    assert len(sampler.curve()["t_s"]) == len(sampler.curve()["rss_mb"]) > 3
    assert sampler.anon_peak_mb() - sampler.anon[0] > 150  # anonymous memory sees it too


def test_pause_sampling_stops_every_running_sampler():
    with collectors.RssSampler(interval_s=0.001) as a, collectors.RssSampler(interval_s=0.001) as b:
        time.sleep(0.02)
        with collectors.pause_sampling():
            counts = (len(a.values), len(b.values))
            time.sleep(0.05)
            assert (len(a.values), len(b.values)) == counts
            assert a.paused and b.paused
        time.sleep(0.02)
    assert len(a.values) > counts[0] + 1 and not a.paused
    assert collectors._ACTIVE == []


def test_cpu_metrics_divide_by_threads():
    samples = StepSamples(compile_s=0, step_times_s=[0.1], cpu_s=3.0, wall_s=2.0)
    assert cpu_metrics(samples, threads=2) == {"cpu_cores_busy": 1.5, "cpu_utilization": 0.75}
    assert cpu_metrics(StepSamples(compile_s=0, step_times_s=[0.1]), threads=2) == {}


def test_latency_percentiles():
    metrics = latency_metrics([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert metrics["latency_ms_p50"] == pytest.approx(50.5)
    assert metrics["latency_ms_p99"] == pytest.approx(99.01)


def test_measure_steps_keeps_the_first_call_apart():
    calls = []

    def step(i):
        calls.append(i)
        time.sleep(0.05 if i == 0 else 0.001)
        return float(i)

    samples = measure_steps(step, warmup=2, steps=5)
    assert calls == list(range(8))
    assert samples.compile_s >= 0.05 and max(samples.step_times_s) < 0.05
    assert len(samples.step_times_s) == 5 and samples.losses[-1] == 7.0
    assert samples.cpu_s is not None and samples.wall_s >= sum(samples.step_times_s)


def test_gemm_summary_and_theoretical_peak():
    summary = summarize_gemm([0.5, 1.0, 2.0], size=1000)
    assert summary["gemm_peak_gflops"] == pytest.approx(4.0)
    assert summary["gemm_median_gflops"] == pytest.approx(2.0)
    peak = theoretical_peak_gflops(2)
    assert peak["theoretical_gflops"] is None or peak["theoretical_gflops"] > 0
