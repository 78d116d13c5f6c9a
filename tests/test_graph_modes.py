"""F4: compile trials carry cold and warm compile times; retrace trials count traces (slow),
and the speedup/break-even arithmetic (fast)."""

import math

import pandas as pd
import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.figures.graph_modes import speedup_table
from fwstudy.harness.runner import run_trial


def rows(trials):
    out = []
    for i, (framework, mode, metric, value) in enumerate(trials):
        out.append({"trial_id": f"t{i}", "workload": "mlp", "framework": framework, "mode": mode,
                    "status": "ok", "metric": metric, "value": value})
    return pd.DataFrame(out)


def test_speedup_and_break_even():
    eager = pd.concat([
        rows([("tensorflow", "eager", "step_time_ms_median", v) for v in (60.0, 62.0, 58.0)]),
        rows([("tensorflow", "eager", "compile_s", v) for v in (0.1, 0.12, 0.08)]).assign(trial_id=lambda f: f["trial_id"] + "e"),
    ])
    compiled = pd.concat([
        rows([("tensorflow", "graph", "step_time_ms_median", v) for v in (10.0, 10.5, 9.5)]),
        rows([("tensorflow", "graph", "compile_cold_s", 0.5)]).assign(trial_id="c"),
        rows([("tensorflow", "graph", "compile_warm_s", 0.3)]).assign(trial_id="c"),
    ])
    table = speedup_table(eager, compiled)
    row = table.iloc[0]
    assert row["speedup"] == pytest.approx(6.0)
    assert row["speedup_ci_low"] <= 6.0 <= row["speedup_ci_high"]
    # (cold first call 0.5 s - eager's first call 0.1 s) / 50 ms saved per step = 8 steps
    assert row["break_even_steps"] == pytest.approx((0.5 - 0.1) / 0.050)
    assert 0 < row["speedup_confidence"] < 1
    assert row["compile_warm_s"] == 0.3


def test_a_slower_mode_never_breaks_even():
    eager = rows([("torch", "eager", "step_time_ms_median", 10.0)])
    compiled = rows([("torch", "compiled", "step_time_ms_median", 12.0)])
    assert math.isinf(speedup_table(eager, compiled).iloc[0]["break_even_steps"])


@pytest.mark.slow
def test_compile_trial_reports_cold_and_warm_compile():
    config = TrialConfig(workload="mlp", framework="tensorflow", mode="compiled", task="compile",
                         steps=3, warmup=1, threads=2)
    record = run_trial(config, gemm_size=256)
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert m["compile_cold_s"] == m["compile_s"] > 0
    assert m["compile_warm_s"] > 0
    assert record["env"]["compile_warm_probe"]["status"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "traces"), [("plain", 3), ("input_signature", 1)])
def test_retrace_counts_tf_traces(variant, traces):
    config = TrialConfig(workload="mlp", framework="tensorflow", mode="graph", task="retrace",
                         variant=variant, batch_sequence=(8, 16, 8, 24), threads=2)
    record = run_trial(config, gemm_size=256)
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["traces"] == traces
    assert record["metrics"]["distinct_shapes"] == 3
    assert len(record["samples"]["shape_time_ms"]) == 4
