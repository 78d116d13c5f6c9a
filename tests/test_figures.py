"""Figures drawn from synthetic tidy tables (no framework, no trial): what a reader must see
on them whatever the data: the parity verdict, the confidence reached, each framework's best
mode, modes that were not really compiled, and labels clear of the whiskers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fwstudy.config.trial import TrialConfig  # noqa: E402
from fwstudy.figures import common, training_speed  # noqa: E402
from fwstudy.results.store import tidy_rows  # noqa: E402
from fwstudy.workloads import WORKLOADS  # noqa: E402
from tests.conftest import fake_record  # noqa: E402

# Two workloads from the registry (any two do: the data here are synthetic).
FIRST, SECOND = sorted(WORKLOADS)[:2]

STEP_MS = {("tensorflow", "eager"): 20.0, ("tensorflow", "graph"): 6.0, ("torch", "eager"): 5.0,
           ("torch", "compiled"): 7.0}


def table(workloads=(FIRST, SECOND), blocks=6, parity=None, graphs_zero=()) -> pd.DataFrame:
    gen = np.random.default_rng(0)
    frames = []
    for workload in workloads:
        for block in range(blocks):
            for (framework, mode), ms in STEP_MS.items():
                config = TrialConfig(workload=workload, framework=framework, mode=mode, repeat=block, threads=1)
                record = fake_record(config, ms * float(np.exp(gen.normal(0, 0.02))))
                if (workload, framework, mode) in graphs_zero:
                    record["metrics"]["graphs"] = 0
                frames.append(tidy_rows(record))
    out = pd.concat(frames, ignore_index=True)
    if parity is not None:
        out["parity_passed"] = out["workload"].map(parity)
    return out


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_a_workload_that_fails_the_parity_gate_is_flagged():
    fig = training_speed.draw(table(parity={FIRST: True, SECOND: False}))
    flagged = [t for t in titles(fig) if "PARITY GATE FAILED" in t]
    assert flagged == [f"{SECOND}\nPARITY GATE FAILED: not a comparison"]
    assert f"PARITY GATE FAILED for {SECOND}" in fig._suptitle.get_text()


def test_passing_and_unknown_parity_are_said_so():
    assert "parity gate passed" in common.environment_caption(table(parity={FIRST: True, SECOND: True}))
    assert "parity gate: not run" in common.environment_caption(table())


def test_best_mode_against_best_mode_names_the_modes_picked():
    ratios = common.ratio_table(table(), confidence=0.95, best=True)
    best = ratios[ratios["mode"] == "best"].set_index("workload")
    assert best.loc[FIRST, "picked"] == "TF graph / PT eager"
    assert best.loc[FIRST, "ratio"] == pytest.approx(6.0 / 5.0, rel=0.05)
    assert best.loc[FIRST, "confidence"] == pytest.approx(1 - 2 / 2**6)


def test_ratio_labels_sit_beside_their_rows_and_state_the_confidence():
    """The dot plot of ratios: one row per mode, its label level with it right of the axes
    (tests/test_figure_outputs.py checks nothing overlaps), the interval inside the x range."""
    fig = training_speed.draw(table(workloads=(FIRST,)), confidence=0.95)
    ratio_ax = fig.axes[1]
    ratios = common.ratio_table(table(workloads=(FIRST,)), confidence=0.95, best=True)
    labels = [t for t in ratio_ax.texts if "×" in t.get_text()]
    assert len(labels) == len(ratios)
    for i, (text, high) in enumerate(zip(labels, ratios["ratio_ci_high"], strict=True)):
        assert text.xy == (1.0, i)  # axes fraction 1 (the right edge), row i
        assert "97%" in text.get_text()  # 6 blocks reach 1 - 2/2^6 = 96.9%
        assert ratio_ax.get_xlim()[1] > high
    assert ratio_ax.get_xscale() == "log"


def test_a_compiled_mode_that_captured_nothing_is_not_drawn_as_compiled():
    fig = training_speed.draw(table(workloads=("lstm",), graphs_zero={("lstm", "torch", "compiled")}))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "torch compiled\n(not captured: eager)" in ticks
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 1


def test_two_environments_are_never_pooled():
    """Rule 8: a second machine's trials get their own rows, and the figure draws one
    environment and says what it left out."""
    from fwstudy.results import stats

    first = table(workloads=(FIRST,)).assign(fingerprint="host-a")
    second = table(workloads=(FIRST,), blocks=3).assign(fingerprint="host-b")
    second["trial_id"] = second["trial_id"] + "-b"
    both = pd.concat([first, second], ignore_index=True)
    compared = stats.compare_frameworks(both)
    assert sorted(compared["fingerprint"].unique()) == ["host-a", "host-b"]
    assert set(compared.groupby("fingerprint")["blocks"].max()) == {6, 3}
    summary = stats.summarize_configurations(both)
    assert set(summary.groupby("fingerprint")["n"].max()) == {6, 3}
    fig = training_speed.draw(both)
    assert "not pooled and not drawn" in fig._suptitle.get_text()


def test_f4_draws_traces_and_xla_compilations_with_or_without_compiled_trials():
    """Traces and XLA compilations side by side; a run without compiled trials (smoke) draws
    the traces alone."""
    from fwstudy.figures import graph_modes

    def retrace_rows(modes):
        rows = []
        for i, (framework, mode, variant, traces, xla) in enumerate(modes):
            for metric, value in (("traces", traces), ("xla_compilations", xla), ("sequence_total_s", 1.0),
                                  ("distinct_shapes", 4), ("shapes", 6)):
                if value is not None:
                    rows.append(dict(trial_id=f"t{i}", workload=FIRST, framework=framework, mode=mode,
                                     variant=variant, status="ok", metric=metric, value=value))
        return pd.DataFrame(rows)

    with_xla = retrace_rows([("tensorflow", "graph", "plain", 4, 0), ("tensorflow", "compiled", "input_signature", 1, 4),
                             ("torch", "compiled", "default", 2, None)])
    without = retrace_rows([("tensorflow", "eager", "plain", 0, 0), ("tensorflow", "graph", "plain", 3, 0),
                            ("torch", "eager", "default", 0, None)])
    for table, expected in ((with_xla, True), (without, False)):
        fig = graph_modes.draw(pd.DataFrame(), graph_modes.retrace_table(table), table)
        columns = [t.get_text() for t in fig.axes[2].get_xticklabels()]
        assert any("XLA" in c for c in columns) == expected
        assert any("traces" in c for c in columns)
