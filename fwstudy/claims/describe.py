"""Words for a verdict, generated from its numbers: the rule as a sentence, the deciding
numbers in one line, the conditions, and a one-paragraph reading. Nothing here is typed per
claim: a reading changes when the measurements do."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.claims.evaluate import MULTIPLICITY, Claim, Verdict

SHORT_CONDITIONS = {"device": "device", "threads": "threads", "torch_version": "torch",
                    "tensorflow_version": "TensorFlow", "keras_version": "Keras",
                    "cpu_model": "CPU", "host": "host", "code_version": "code"}


def arm_label(arm: Mapping[str, Any]) -> str:
    return " ".join(f"{v} threads" if k == "threads" else f"eps={v}" if k == "epsilon" else str(v)
                    for k, v in arm.items())


def quantity(claim: Claim) -> str:
    """What the estimate is, e.g. ``step_time_ms_median, torch eager / tensorflow graph``."""
    metric = claim.metric
    name = metric["metric"] + (f" - {metric['minus']}" if metric.get("minus") else "")
    if claim.rule["kind"] == "threshold":
        return name
    a, b = arm_label(metric["arms"]["a"]), arm_label(metric["arms"]["b"])
    sign = " / " if metric.get("scale", "log") == "log" else " - "
    return f"{name}, {a}{sign}{b}"


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3g}"


def rule_text(claim: Claim, confidence: float) -> str:
    """The rule as a sentence (from the ledger's fields, so it cannot drift from the code)."""
    rule, metric = claim.rule, claim.metric
    deterministic = metric.get("pairing") == "deterministic"
    log = metric.get("scale", "log") == "log"
    quorum = float(rule.get("quorum", 0.5))
    level = "as measured (deterministic: no interval)" if deterministic else (
        f"with its {confidence:.0%} interval, BH-adjusted p <= {1 - confidence:.2g}")
    if rule["kind"] == "threshold":
        limit = rule.get("threshold", f"the trial's own {rule.get('threshold_metric')}")
        body = f"{quantity(claim)} {rule['expect']} {limit} {level}"
    elif rule["expect"] == "equivalent":
        body = (f"{quantity(claim)} within [1/{rule['margin']}, {rule['margin']}] {level}"
                if log else f"{quantity(claim)} within +/-{rule['margin']} {level}")
    else:
        effect = rule.get("min_effect", 1.0 if log else 0.0)
        parity = "1" if log else "0"
        direction = {"lower": "below", "higher": "above", "differ": "away from"}[rule["expect"]]
        body = (f"{quantity(claim)} {direction} {parity} {level}, the effect beyond both the "
                f"noise floor and {effect}" + (" (ratio)" if log else ""))
        if rule["expect"] == "differ":
            body += (f"; against it when the whole interval lies within {effect}"
                     + (" (ratio) of parity" if log else " of parity"))
    return (f"Per configuration: {body}. Supported when at least {quorum:.0%} of the "
            f"configurations with an interval back it and none goes against; contradicted the "
            f"other way round; mixed when both occur; not measured without data.")


def numbers(verdict: Verdict) -> str:
    """The deciding numbers in one line: outcome counts, the range of estimates and of the
    intervals of the configurations that have one, and the confidence they reach."""
    groups = verdict.groups
    if groups.empty:
        return "no data"
    c = verdict.counts
    parts = [f"{c['for']} for, {c['against']} against, {c['undecided']} undecided"
             + (f", {c['no interval']} without an interval" if c["no interval"] else "")
             + f" of {len(groups)} configurations"]
    est = groups["estimate"].to_numpy(float)
    est = est[np.isfinite(est)]
    if est.size:
        span = _num(est.min()) if est.min() == est.max() else f"{_num(est.min())} to {_num(est.max())}"
        parts.append(f"{quantity(verdict.claim)} = {span}")
    lows, highs = groups["low"].to_numpy(float), groups["high"].to_numpy(float)
    ok = np.isfinite(lows) & np.isfinite(highs)
    if ok.any():
        reached = groups.loc[ok, "reached"].min()
        parts.append(f"intervals within [{_num(lows[ok].min())}, {_num(highs[ok].max())}], "
                     f"each reaching >= {reached:.1%}")
    if "threshold" in groups and groups["threshold"].notna().any():
        parts.append(f"threshold {_num(float(groups['threshold'].median()))}")
    return "; ".join(parts)


def conditions(verdict: Verdict) -> str:
    return " · ".join(f"{SHORT_CONDITIONS.get(k, k)} {', '.join(v)}"
                      for k, v in verdict.conditions.items() if k != "code_version")


def reading(verdict: Verdict, profile: str) -> str:
    """One paragraph that says what the numbers show, in the order a reader asks: was it
    measured, how much of it can carry a verdict, which way it points, how big, and so what."""
    claim, groups = verdict.claim, verdict.groups
    query = claim.metric.get("task", claim.metric.get("source", "results"))
    if groups.empty:
        return (f"Not measured: no stored result of profile '{profile}' answers the query "
                f"({query}: {claim.metric['metric']}). Notebook {claim.notebook} measures it "
                f"(make figures PROFILE={profile}); until then the paper's claim stands untested here.")
    c = verdict.counts
    n = len(groups)
    deterministic = claim.metric.get("pairing") == "deterministic"
    text = [f"{n} configuration{'s' if n != 1 else ''} answer{'s' if n == 1 else ''} the query."]
    if c["no interval"]:
        reached = groups.loc[groups["outcome"] == "no interval", "reached"].max()
        text.append(f"{c['no interval']} of them cannot carry a verdict: their interval reaches "
                    f"at most {reached:.0%}, short of the {verdict.confidence:.0%} asked "
                    f"(more trials, blocks or seeds are needed).")
    if c["for"] or c["against"] or c["undecided"]:
        text.append(f"{c['for']} back the claim, {c['against']} go against it and "
                    f"{c['undecided']} are undecided"
                    + ("" if deterministic else " (interval includes parity, effect inside the noise "
                       "floor or min_effect, or not significant after the correction)") + ".")
    for label, key in (("backing", "for"), ("against", "against")):
        rows = groups[groups["outcome"] == key]
        if len(rows):
            shown = ", ".join(f"{r.configuration}: {_num(r.estimate)}" for r in rows.head(4).itertuples())
            more = f" and {len(rows) - 4} more" if len(rows) > 4 else ""
            text.append(f"{label.capitalize()}: {shown}{more} ({quantity(claim)}).")
    if not deterministic:
        text.append(f"p-values are corrected with {MULTIPLICITY.split(' (')[0]} across every test of this report.")
    text.append(f"Verdict: {verdict.verdict}.")
    return " ".join(text)
