"""F3 grids, efficiency math and figure, from profiles and synthetic records (fast)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fwstudy.config.profile import Profile, load_profile_file
from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput
from fwstudy.figures import scalability as scaling
from fwstudy.figures import scalability as scaling_plots
from fwstudy.harness.environment import code_version
from fwstudy.harness.record import make_record
from fwstudy.results.store import tidy_rows
from tests.conftest import PROJECT


def profile(**changes) -> Profile:
    base = dict(
        profile="t", frameworks=["tensorflow", "torch"], threads=2, steps=3, warmup=1,
        sweep_modes=["eager", "compiled"], sweep_batch_sizes=[16, 128, 512], sweep_threads=[1, 2],
        sweep_widths=[128, 512, 2048], dp_workers=[1, 2], dp_scalings=["strong", "weak"],
        dp_modes=["eager"], dp_threads_per_worker=1,
    )
    base.update(changes)
    return Profile(**base)


def record(config: TrialConfig, throughput: float, gflops: float = 1.0, status: str = "ok",
           **extra: float) -> dict:
    metrics = {
        "step_time_ms_median": 1e3 * config.batch_size / throughput,
        "throughput_samples_per_s": throughput, "achieved_gflops": gflops, **extra,
    } if status == "ok" else {}
    return make_record(
        config, trial_id=config.identity(code_version()), status=status,
        error=None if status == "ok" else "RuntimeError: injected", metrics=metrics,
        env={"code_version": code_version(), "cpu_model": "test", "logical_cores": 2},
    )


def table_of(records: list[dict]) -> pd.DataFrame:
    return pd.concat([tidy_rows(r) for r in records], ignore_index=True)


def test_sweeps_cover_both_frameworks_in_eager_and_their_best_compiled_mode():
    points = scaling.sweep_points(profile())
    combos = {(p.sweep, p.config.framework, p.config.mode) for p in points}
    for sweep in ("batch", "threads", "width"):
        for framework in ("tensorflow", "torch"):
            for mode in ("eager", "compiled"):
                assert (sweep, framework, mode) in combos
    widths = sorted({p.config.workload_params["hidden"] for p in points if p.sweep == "width"})
    assert widths == [128, 512, 2048]
    assert {p.config.batch_size for p in points if p.sweep == "batch"} == {16, 128, 512}
    assert {p.config.threads for p in points if p.sweep == "threads"} == {1, 2}
    # Around the default point: batch and width sweeps at all threads, others at default batch.
    assert all(p.config.threads == 2 for p in points if p.sweep != "threads")
    assert all(p.config.batch_size == 128 for p in points if p.sweep != "batch")


def test_the_default_point_is_measured_once_for_all_sweeps():
    prof = profile()
    configs = scaling.sweep_configs(prof)
    # per framework and mode: 3 batches + 1 extra thread count + 2 extra widths
    assert len(configs) == 2 * 2 * 6
    frame = scaling.points_frame(scaling.sweep_points(prof))
    shared = frame[(frame["framework"] == "torch") & (frame["mode"] == "eager")]
    base = shared[((shared["sweep"] == "batch") & (shared["x"] == 128))]["trial_id"].iloc[0]
    assert set(shared.loc[shared["trial_id"] == base, "sweep"]) == {"batch", "threads", "width"}


def test_modes_a_framework_lacks_are_skipped():
    points = scaling.sweep_points(profile(sweep_modes=["graph"]))
    assert points and all(p.config.framework == "tensorflow" for p in points)


def test_data_parallel_grid_strong_and_weak_share_the_one_worker_trial():
    prof = profile()
    points = scaling.data_parallel_points(prof)
    one = {p.config.identity("v") for p in points if p.x == 1 and p.config.framework == "torch"}
    assert len(one) == 1
    two = {p.sweep: p.config for p in points if p.x == 2 and p.config.framework == "torch"}
    assert two["strong"].workers == two["weak"].workers == 2
    assert two["strong"].threads == 2 and two["strong"].scaling == "strong"
    assert two["weak"].scaling == "weak"
    # one worker of the data-parallel curves is the 1-thread point of the thread sweep
    sweep = {c.identity("v") for c in scaling.sweep_configs(prof)}
    assert one <= sweep
    assert len(scaling.configs(prof)) == 24 + 2 * 2


def test_thread_counts_default_to_powers_of_two_and_all_cores():
    assert scaling.thread_counts(profile(sweep_threads=None), cores=6) == [1, 2, 4, 6]
    assert scaling.thread_counts(profile(sweep_threads=None), cores=1) == [1]
    assert scaling.thread_counts(profile(sweep_threads=[4, 1, 4], oversubscribe=True)) == [1, 4]


def synthetic_throughput(config: TrialConfig) -> tuple[float, float]:
    """(samples/s, GFLOP/s) of a made-up machine; the default point does 4000 samples/s."""
    hidden = config.workload_params["hidden"]
    if config.workers == 2:
        return 4500.0, 4.0
    if config.threads == 1:
        return 3000.0, 4.0
    if hidden != 512:
        return {128: (9000.0, 2.0), 2048: (500.0, 6.0)}[hidden]
    return {16: 1000.0, 128: 4000.0, 512: 5000.0}[config.batch_size], 4.0


def test_efficiency_is_speedup_over_ideal_against_the_smallest_point():
    prof = profile(frameworks=["torch"], sweep_modes=["eager"], dp_scalings=["strong"])
    points = [*scaling.sweep_points(prof), *scaling.data_parallel_points(prof)]
    records = []
    for config in scaling.unique_configs(points):
        comm = {"allreduce_ms_median": 3.0, "allreduce_isolated_ms_median": 2.0} if config.workers > 1 else {}
        records.append(record(config, *synthetic_throughput(config), **comm))
    eff = scaling.efficiency(table_of(records), points).set_index(["sweep", "x"])
    assert eff.loc[("batch", 512), "speedup"] == pytest.approx(5.0)
    assert eff.loc[("batch", 512), "efficiency"] == pytest.approx(5.0)  # ideal 1: same cores
    assert eff.loc[("threads", 2), "efficiency"] == pytest.approx(4000 / 3000 / 2)
    # width: achieved GFLOP/s relative to the narrowest, not samples/s
    assert eff.loc[("width", 2048), "efficiency"] == pytest.approx(3.0)
    assert eff.loc[("strong", 2), "efficiency"] == pytest.approx(4500 / 3000 / 2)
    assert eff.loc[("strong", 2), "allreduce_ms"] == 3.0
    assert eff.loc[("strong", 1), "baseline_x"] == 1
    vs = scaling.workers_vs_threads(eff.reset_index(), 1)
    assert vs["ratio"].iloc[0] == pytest.approx(4500 / 4000)


def test_efficiency_keeps_failed_points_and_takes_medians_over_repeats():
    prof = profile(frameworks=["torch"], sweep_modes=["eager"], sweep_batch_sizes=[16, 128],
                   sweep_widths=[512], sweep_threads=[2], dp_workers=[1], repeats=3)
    points = [p for p in scaling.sweep_points(prof) if p.sweep == "batch"]
    values = {16: [100.0, 110.0, 90.0], 128: [400.0, 440.0, None]}
    records = [
        record(p.config, values[p.x][p.config.repeat] or 1.0,
               status="ok" if values[p.x][p.config.repeat] else "failed")
        for p in points
    ]
    eff = scaling.efficiency(table_of(records), points).set_index("x")
    assert eff.loc[16, "n"] == 3 and eff.loc[16, "throughput"] == 100.0
    assert eff.loc[128, "n"] == 2 and eff.loc[128, "throughput"] == 420.0
    assert eff.loc[128, "speedup"] == pytest.approx(4.2)
    assert eff.loc[16, "throughput_ci_low"] <= 100.0 <= eff.loc[16, "throughput_ci_high"]
    failed = scaling.efficiency(table_of([record(points[0].config, 1.0, status="failed")]), points[:1])
    assert failed["n"].iloc[0] == 0 and math.isnan(failed["efficiency"].iloc[0])


def test_profile_rejects_bad_scaling_keys_in_one_line():
    for bad, match in (
        ({"sweep_modes": ["jit"]}, "valid sweep_modes"),
        ({"dp_scalings": ["medium"]}, "valid dp_scalings"),
        ({"sweep_batch_sizes": [0]}, "sweep_batch_sizes must be >= 1"),
        ({"dp_workers": []}, "dp_workers must be a non-empty list"),
        ({"scaling_steps": 2.5}, "scaling_steps must be an integer"),
    ):
        with pytest.raises(BadInput, match=match) as err:
            profile(**bad)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["smoke", "quick", "full"])
def test_every_profile_file_defines_the_f3_grid(name):
    prof = load_profile_file(PROJECT / "parameters" / f"{name}.yaml")
    assert scaling.sweep_configs(prof) and scaling.data_parallel_configs(prof)
    assert max(prof.dp_workers) >= 2


def test_quick_profile_keeps_f3_small():
    prof = load_profile_file(PROJECT / "parameters" / "quick.yaml")
    configs = [prof.isolate(c) for c in scaling.configs(prof)]
    fresh = [c for c in configs if c.isolation == "process"]
    # the data-parallel trials start a launcher and workers (about 8 s each on 2 cores): few of
    # them; the sweeps fork from warm servers (about 1 s each) in enough repeats for intervals
    assert all(c.workers > 1 for c in fresh) and len(fresh) <= 8
    assert len(configs) <= 120
    assert {c.repeat for c in configs if c.isolation == "fork"} == set(range(8))


def test_figure_draws_every_panel_and_the_core_count(tmp_path):
    prof = profile(frameworks=["torch", "tensorflow"], sweep_modes=["eager"])
    points = [*scaling.sweep_points(prof), *scaling.data_parallel_points(prof)]
    records, seen = [], set()
    for p in points:
        tid = p.config.identity(code_version())
        if tid not in seen:
            seen.add(tid)
            records.append(record(p.config, 1000.0 * p.x, allreduce_isolated_ms_median=1.0))
    table = table_of(records)
    eff = scaling.efficiency(table, points)
    assert scaling.machine_cores(table) == 2
    fig = scaling_plots.draw(table, eff, cores=2)
    assert len(fig.axes) == 9
    threads_ax = fig.axes[1]
    assert any(line.get_xdata()[0] == 2 and line.get_linestyle() == ":" for line in threads_ax.lines)
    from fwstudy.figures.common import save_figure

    paths = save_figure(fig, tmp_path, "scalability")
    assert all(p.stat().st_size > 1000 for p in paths)
    assert "2 workers: efficiency" in scaling_plots.summary_text(eff, 2)
