"""The claims ledger: every rule flips its verdict across its threshold on synthetic results,
missing data reads "not measured", the correction for multiplicity bites, and the paired
estimate is the one ``stats.compare_frameworks`` gives."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from fwstudy.claims import describe
from fwstudy.claims.evaluate import (
    FIGURES,
    Claim,
    compare_group,
    evaluate,
    load_ledger,
    newest_code,
)
from fwstudy.errors import BadInput
from fwstudy.report.build import FIGURES as REPORT_FIGURES
from fwstudy.results import stats

CONFIDENCE = 0.90
BLOCKS = 6  # a sign-test interval over 6 blocks reaches 1 - 2/2^6 = 96.9% >= 90%
_ids = itertools.count()
DEFAULTS = {"workload": "mlp", "framework": "tensorflow", "mode": "eager", "variant": None,
            "device": "cpu", "precision": "fp32", "batch_size": 64.0, "threads": 2, "fingerprint": "fp",
            "workload_params": "{}", "torch_version": "2.x", "tensorflow_version": "2.y",
            "code_version": "c1", "timestamp": "2026-01-01T00:00:00"}
LEDGER = load_ledger()


def _first(value):
    return value[0] if isinstance(value, list) else value


def _trial(claim: Claim, columns: dict, value: float, block: int, replica: int = 0) -> list[dict]:
    metric = claim.metric
    base = {**DEFAULTS, "task": metric.get("task", "t"), "status": "ok",
            "trial_id": f"t{next(_ids)}", "repeat": block, "replica": replica}
    base.update({k: _first(v) for k, v in (metric.get("where") or {}).items()})
    base.update(columns)
    rows = [{**base, "metric": metric["metric"], "value": value}]
    if metric.get("minus"):  # the subtracted metric is 0: the value is the difference itself
        rows.append({**base, "metric": metric["minus"], "value": 0.0})
    if "threshold_metric" in claim.rule:
        rows.append({**base, "metric": claim.rule["threshold_metric"], "value": 1e-4})
    return rows


def _arm(claim: Claim, arm: str) -> dict:
    columns = dict(claim.metric["arms"][arm])
    if columns.get("threads") in ("max", "min"):
        columns["threads"] = 8 if columns["threads"] == "max" else 1
    return columns


def _noise(block: int) -> float:
    return 1.0 + 0.002 * ((block % 3) - 1)  # +-0.2%: far inside any rule's effect


def synthetic(claim: Claim, side: str) -> pd.DataFrame:
    """Results that put ``claim`` on the ``side`` ("for" or "against") of its rule."""
    rule, metric = claim.rule, claim.metric
    deterministic = metric.get("pairing") == "deterministic"
    log = metric.get("scale", "log") == "log"
    blocks = [0] if deterministic else range(BLOCKS)
    rows: list[dict] = []
    if rule["kind"] == "threshold":
        t = rule.get("threshold", 1e-4)
        spread = max(abs(t), 1e-3)
        wanted_above = rule["expect"] == "above"
        above = (side == "for") == wanted_above
        value = t + spread if above else t - spread
        for block in blocks:
            rows += _trial(claim, {}, value * (1 if deterministic else _noise(block)), block)
        return pd.DataFrame(rows)
    expect = rule["expect"]
    if expect == "equivalent":
        effect = 1.0 if side == "for" else float(rule["margin"]) ** 4
    elif expect == "differ":
        effect = float(rule.get("min_effect", 1.0)) ** 2 * 1.5 if side == "for" else 1.0
    else:
        higher = (expect == "higher") == (side == "for")
        size = float(rule.get("min_effect", 1.0)) * 2 if log else 2 * float(rule.get("min_effect", 0)) + 1
        effect = size if higher else (1 / size if log else -size)
    base = 10.0
    a_value = base * effect if log else base + (effect if expect in ("lower", "higher") else 0)
    for block in blocks:
        noise = 1.0 if deterministic else _noise(block)
        rows += _trial(claim, _arm(claim, "b"), base * noise, block)
        rows += _trial(claim, _arm(claim, "a"), a_value * noise, block)
        if block == 0 and not deterministic:  # A-vs-A replicas: a small noise floor
            rows += _trial(claim, _arm(claim, "b"), base * 1.001, block, replica=1)
            rows += _trial(claim, _arm(claim, "a"), a_value * 1.001, block, replica=1)
    return pd.DataFrame(rows)


def _verdict(claim: Claim, table: pd.DataFrame) -> str:
    source = claim.metric.get("source", "results")
    if source == "results":
        return evaluate(table, [claim], CONFIDENCE)[0].verdict
    return evaluate(pd.DataFrame(), [claim], CONFIDENCE, sources={source: table})[0].verdict


def test_ledger_covers_every_figure_and_the_issue_topics():
    figures = {c.figure for c in LEDGER}
    assert figures == set(FIGURES) == set(REPORT_FIGURES)
    text = " ".join(f"{c.id} {c.claim}" for c in LEDGER).lower()
    for topic in ("speed", "graph", "memory", "scale", "deploy", "edge", "move models between",
                  "simpler", "debugging", "accuracy", "adversarial", "import", "hardware"):
        assert topic in text, topic
    for claim in LEDGER:  # the figure and notebook each claim links exist under those names
        assert REPORT_FIGURES[claim.figure][2] == claim.figure_name
        assert REPORT_FIGURES[claim.figure][3] == claim.notebook


@pytest.mark.parametrize("claim", LEDGER, ids=[c.id for c in LEDGER])
def test_each_rule_flips_across_its_threshold(claim):
    """The same claim, fed results on each side of its threshold, changes its verdict; no
    data at all is "not measured"."""
    backing, opposing = synthetic(claim, "for"), synthetic(claim, "against")
    assert _verdict(claim, backing) == "supported"
    assert _verdict(claim, opposing) == "contradicted"
    assert _verdict(claim, backing.iloc[0:0]) == "not measured"
    assert _verdict(claim, pd.DataFrame()) == "not measured"


def _speed_claim(**rule) -> Claim:
    return Claim(id="x", figure="F1", section="III", claim="TF is faster", figure_name="training_speed",
                 notebook="01_training_speed",
                 metric={"task": "train", "metric": "step_time_ms_median",
                         "arms": {"a": {"framework": "tensorflow"}, "b": {"framework": "torch"}}},
                 rule={"kind": "compare", "expect": "lower", **rule})


def _paired(ratio: float, aa_noise: float, workload: str = "mlp", blocks: int = BLOCKS,
            spread: float = 0.002) -> list[dict]:
    claim = _speed_claim()
    rows = []
    for block in range(blocks):
        noise = 1.0 + spread * ((block % 3) - 1)
        rows += _trial(claim, {"framework": "torch", "workload": workload}, 10.0, block)
        rows += _trial(claim, {"framework": "tensorflow", "workload": workload}, 10.0 * ratio * noise, block)
        if block == 0:
            for framework, value in (("torch", 10.0), ("tensorflow", 10.0 * ratio)):
                rows += _trial(claim, {"framework": framework, "workload": workload},
                               value * (1 + aa_noise), block, replica=1)
    return rows


def test_an_effect_inside_the_noise_floor_names_no_winner():
    """A 10% difference with a 30% A-vs-A floor: the interval excludes 1 but the effect is
    noise-sized, so the configuration is undecided and the claim inconclusive."""
    claim = _speed_claim()
    assert _verdict(claim, pd.DataFrame(_paired(0.9, aa_noise=0.0005))) == "supported"
    noisy = evaluate(pd.DataFrame(_paired(0.9, aa_noise=0.35)), [claim], CONFIDENCE)[0]
    assert noisy.groups["noise_floor"].iloc[0] > abs(math.log(0.9))
    assert noisy.verdict == "inconclusive"
    # "differ": inside the noise floor is no evidence of a tie either (only an interval within
    # min_effect of parity contradicts a claimed difference)
    differ = Claim(**{**_speed_claim().__dict__, "rule": {"kind": "compare", "expect": "differ", "min_effect": 1.05}})
    assert _verdict(differ, pd.DataFrame(_paired(0.9, aa_noise=0.35))) == "inconclusive"
    assert _verdict(differ, pd.DataFrame(_paired(1.0, aa_noise=0.35))) == "contradicted"
    # min_effect: a 10% effect does not meet a 1.25 minimum either
    assert _verdict(_speed_claim(min_effect=1.25), pd.DataFrame(_paired(0.9, 0.0005))) == "inconclusive"


def test_too_few_blocks_reach_no_interval():
    """3 blocks reach 75%, short of the 90% asked: no verdict from them, whatever the ratio."""
    result = evaluate(pd.DataFrame(_paired(0.5, 0.0005, blocks=3)), [_speed_claim()], CONFIDENCE)[0]
    assert result.groups["outcome"].tolist() == ["no interval"]
    assert result.verdict == "inconclusive"


def test_benjamini_hochberg_over_the_report_bites():
    """One configuration with a sign-test p of 1/32 is decided alone; beside nine ties it is
    not (BH-adjusted p = 10/32 > 0.10), although its interval and effect are unchanged."""
    claim = _speed_claim(quorum=0.05)
    alone = evaluate(pd.DataFrame(_paired(0.5, 0.0005)), [claim], CONFIDENCE)[0]
    assert alone.groups["p"].iloc[0] == pytest.approx(2 / 2**BLOCKS)
    assert alone.verdict == "supported"
    rows = _paired(0.5, 0.0005)
    for i in range(9):  # ties: every block's ratio alternates around 1, p = 1
        rows += _paired(1.0, 0.0005, workload=f"w{i}", spread=0.05)
    crowd = evaluate(pd.DataFrame(rows), [claim], CONFIDENCE)[0]
    strong = crowd.groups[crowd.groups["configuration"].str.contains("workload=mlp")].iloc[0]
    assert strong["p"] == pytest.approx(2 / 2**BLOCKS)
    assert strong["p_adjusted"] == pytest.approx(10 * 2 / 2**BLOCKS)
    assert strong["outcome"] == "undecided"


def test_paired_estimate_matches_compare_frameworks():
    rng = np.random.default_rng(3)
    rows = []
    claim = _speed_claim()
    for block in range(7):
        for framework, scale in (("tensorflow", 8.0), ("torch", 10.0)):
            for replica in (0, 1) if block < 2 else (0,):
                rows += _trial(claim, {"framework": framework}, scale * rng.lognormal(0, 0.05), block, replica)
    table = pd.DataFrame(rows)
    ours = compare_group(table[table["framework"] == "tensorflow"], table[table["framework"] == "torch"],
                         "blocks", "log", 0.95)
    theirs = stats.compare_frameworks(table, confidence=0.95).iloc[0]
    assert ours["estimate"] == pytest.approx(theirs["ratio"])
    assert ours["low"] == pytest.approx(theirs["ratio_ci_low"])
    assert ours["high"] == pytest.approx(theirs["ratio_ci_high"])
    assert ours["reached"] == pytest.approx(theirs["confidence"])
    assert ours["noise_floor"] == pytest.approx(theirs["noise_floor"])


def test_older_code_versions_are_not_pooled():
    rows = _paired(0.5, 0.0005)
    stale = [{**r, "code_version": "c0", "timestamp": "2025-01-01", "trial_id": r["trial_id"] + "old",
              "value": r["value"] * 100} for r in rows]
    table = pd.DataFrame(rows + stale)
    assert set(newest_code(table)["code_version"]) == {"c1"}
    assert _verdict(_speed_claim(), table) == "supported"


def test_reading_and_numbers_come_from_the_numbers():
    claim = _speed_claim()
    result = evaluate(pd.DataFrame(_paired(0.5, 0.0005)), [claim], CONFIDENCE)[0]
    text = describe.reading(result, "quick")
    assert "1 back the claim" in text and "Verdict: supported" in text and "0.5" in text
    assert "0.5" in describe.numbers(result)
    assert "torch 2.x" in describe.conditions(result) and "device cpu" in describe.conditions(result)
    missing = evaluate(pd.DataFrame(), [claim], CONFIDENCE)[0]
    assert "Not measured" in describe.reading(missing, "quick")


def test_a_bad_ledger_entry_is_one_line_naming_the_choices(tmp_path):
    bad = tmp_path / "ledger.yaml"
    bad.write_text("claims:\n  - {id: x, figure: F1, section: s, claim: c, figure_name: f, notebook: n,\n"
                   "     metric: {metric: m, arms: {a: {}, b: {}}}, rule: {kind: compare, expect: faster}}\n")
    with pytest.raises(BadInput, match="expect 'faster' is not one of lower, higher, differ, equivalent"):
        load_ledger(bad)
    bad.write_text("claims:\n  - {id: x}\n")
    with pytest.raises(BadInput, match="lacks figure"):
        load_ledger(bad)
