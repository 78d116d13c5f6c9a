"""Verdicts for the ledger's claims, computed from the results table (never typed).

Each claim names a query (``metric``: source table, task, metric, filters, the two arms it
compares) and a rule (``rule``: compare two arms, or hold a value against a threshold). The
query is cut into configurations (workload, mode, threads, batch, environment fingerprint...:
never pooled, rule 8), each configuration gets an estimate with its interval, noise floor and
p-value, and the rule turns the configurations into one verdict:

    supported     at least ``quorum`` of the configurations that have an interval back the
                  claim, and none goes against it
    contradicted  the same, the other way
    mixed         some configurations back it, some go against it
    inconclusive  measured, but no interval excludes parity beyond the noise floor (too few
                  trials for the confidence asked, or a real tie)
    not measured  no row of the results answers the query

A configuration backs a difference only when its interval reaches the requested confidence,
excludes parity, its effect exceeds both the A-vs-A noise floor and the claim's ``min_effect``
(rule 7), and its p-value survives the Benjamini-Hochberg correction over every test of the
report (``MULTIPLICITY``): dozens of configurations from one data set would otherwise hand
out "winners" by chance. Deterministic quantities (artifact sizes, counts, code metrics,
numeric drift) have no sampling noise: they are compared as they are and enter no test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from fwstudy.errors import BadInput
from fwstudy.results import stats

LEDGER = Path(__file__).with_name("ledger.yaml")
VERDICTS = ("supported", "contradicted", "mixed", "inconclusive", "not measured")
MULTIPLICITY = "Benjamini-Hochberg (false discovery rate, scipy.stats.false_discovery_control)"
SOURCES = ("results", "attacks", "code_metrics")
RULE_KINDS = ("compare", "threshold")
EXPECT = {"compare": ("lower", "higher", "differ", "equivalent"), "threshold": ("below", "above")}
PAIRINGS = ("blocks", "unpaired", "deterministic")
SCALES = ("log", "difference")
FIGURES = tuple(f"F{i}" for i in range(1, 13))
REQUIRED = ("id", "figure", "section", "claim", "figure_name", "notebook", "metric", "rule")
# A configuration is never pooled across these (rule 8: environments apart); the arms' own
# columns are dropped from it (they are what the claim compares).
GROUP_COLUMNS = ("workload", "framework", "mode", "variant", "attack", "epsilon", "device", "precision", "isolation",
                 "batch_size", "threads", "workload_params", "fingerprint")
# The conditions a verdict states: under what the numbers were measured.
CONDITION_COLUMNS = ("device", "threads", "cpu_model", "host", "torch_version",
                     "tensorflow_version", "keras_version", "code_version")
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Claim:
    """One ledger entry (see ``ledger.yaml`` for the fields)."""

    id: str
    figure: str
    section: str
    claim: str
    figure_name: str
    notebook: str
    metric: Mapping[str, Any]
    rule: Mapping[str, Any]
    note: str = ""


@dataclass
class Verdict:
    """A claim's verdict with the numbers behind it: one row per configuration in ``groups``."""

    claim: Claim
    verdict: str
    groups: pd.DataFrame
    conditions: dict[str, list[str]] = field(default_factory=dict)
    confidence: float = 0.95

    @property
    def counts(self) -> dict[str, int]:
        outcomes = self.groups["outcome"] if len(self.groups) else pd.Series(dtype=str)
        return {k: int((outcomes == k).sum()) for k in ("for", "against", "undecided", "no interval")}


def _choice(name: str, value: Any, valid: Iterable[str], where: str) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise BadInput(f"{where}: {name} {value!r} is not one of {', '.join(map(str, valid))}")


def _check(entry: Mapping[str, Any], position: int) -> Claim:
    where = f"claims ledger entry {entry.get('id', position)!r}"
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise BadInput(f"{where} lacks {', '.join(missing)}; every entry has {', '.join(REQUIRED)}")
    unknown = sorted(set(entry) - {*REQUIRED, "note"})
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join((*REQUIRED, 'note'))}")
    _choice("figure", entry["figure"], FIGURES, where)
    metric, rule = entry["metric"], entry["rule"]
    _choice("metric.source", metric.get("source", "results"), SOURCES, where)
    if "metric" not in metric:
        raise BadInput(f"{where}: metric needs 'metric' (the metric column's name)")
    _choice("rule.kind", rule.get("kind"), RULE_KINDS, where)
    _choice("rule.expect", rule.get("expect"), EXPECT[rule["kind"]], where)
    _choice("metric.pairing", metric.get("pairing", "blocks"), PAIRINGS, where)
    _choice("metric.scale", metric.get("scale", "log"), SCALES, where)
    if rule["kind"] == "compare" and set(metric.get("arms", {})) != {"a", "b"}:
        raise BadInput(f"{where}: a compare rule needs metric.arms with 'a' and 'b'")
    if rule["expect"] == "equivalent" and "margin" not in rule:
        raise BadInput(f"{where}: an 'equivalent' rule needs margin (a ratio, e.g. 1.02)")
    if rule["kind"] == "threshold" and ("threshold" in rule) == ("threshold_metric" in rule):
        raise BadInput(f"{where}: a threshold rule needs exactly one of threshold, threshold_metric")
    return Claim(**{k: entry[k] for k in (*REQUIRED, "note") if k in entry})


def load_ledger(path: str | Path = LEDGER) -> list[Claim]:
    """The ledger's claims, checked: a bad entry is a one-line error naming the valid choices."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read the claims ledger {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise BadInput(f"{path}: expected a mapping with a 'claims' list")
    claims = [_check(entry, i) for i, entry in enumerate(data["claims"])]
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: duplicate claim id {next(i for i in ids if ids.count(i) > 1)!r}")
    return claims


# --- the tables a query reads -------------------------------------------------------------------


def attacks_table(results: pd.DataFrame, results_root: Path | None) -> pd.DataFrame:
    """F10's attack accuracies (``results/<profile>/convergence/<id>.attacks.parquet``) in the
    results table's long form: one row per run × attack × epsilon, metric ``accuracy``, the
    seed as the block (both frameworks train seed s from the same weights)."""
    if results_root is None or results.empty or "task" not in results:
        return pd.DataFrame()
    from fwstudy.convergence.runs import load_tables_at

    runs = results[results["task"] == "robustness"]
    if runs.empty:
        return pd.DataFrame()
    attacks = load_tables_at(results_root, runs, "attacks")
    if attacks.empty:
        return attacks
    keep = [c for c in ("trial_id", *CONDITION_COLUMNS, "fingerprint") if c in runs]
    conditions = runs[keep].drop_duplicates("trial_id").drop(columns=["fingerprint"], errors="ignore")
    frame = attacks.merge(conditions, on="trial_id", how="left")
    return frame.assign(task="robustness", variant=frame["arm"], repeat=frame["seed"], replica=0,
                        status="ok", metric="accuracy", value=frame["accuracy"].astype(float))


def code_metrics_table() -> pd.DataFrame:
    """F9a's code metrics of the paired implementations (parsed from source, never run) in
    long form: ``variant`` is the API level, ``mode`` the part (model, step, script)."""
    from fwstudy.usability.code_metrics import code_metrics

    wide = code_metrics()
    numeric = [c for c in ("lloc", "cc_total", "cc_max", "api_symbols", "namespaces", "methods") if c in wide]
    long = wide.melt(id_vars=["workload", "framework", "level", "part"], value_vars=numeric,
                     var_name="metric", value_name="value")
    return long.assign(variant=long["level"], mode=long["part"], task="code", status="ok",
                       repeat=0, replica=0, device="source", value=long["value"].astype(float))


def _matches(frame: pd.DataFrame, column: str, wanted: Any) -> pd.Series:
    if column not in frame:
        return pd.Series(False, index=frame.index)
    values = wanted if isinstance(wanted, list) else [wanted]
    return frame[column].isin(values)


def select(table: pd.DataFrame, metric: Mapping[str, Any]) -> pd.DataFrame:
    """The ok rows the query reads: its task, metric and filters; a ``minus`` metric of the
    same trial is subtracted (e.g. int8 accuracy minus the eager model's)."""
    if table is None or table.empty or "metric" not in table:
        return pd.DataFrame()
    rows = table[table["status"] == "ok"] if "status" in table else table
    if "task" in metric:
        rows = rows[_matches(rows, "task", metric["task"])]
    rows = newest_code(rows)
    for column, wanted in (metric.get("where") or {}).items():
        rows = rows[_matches(rows, column, wanted)]
    chosen = rows[rows["metric"] == metric["metric"]]
    if metric.get("minus"):
        other = rows[rows["metric"] == metric["minus"]][["trial_id", "value"]]
        other = other.drop_duplicates("trial_id").rename(columns={"value": "_minus"})
        chosen = chosen.merge(other, on="trial_id", how="inner")
        chosen = chosen.assign(value=chosen["value"] - chosen["_minus"]).drop(columns="_minus")
    chosen = chosen[chosen["value"].notna()]
    return chosen.reset_index(drop=True)


def newest_code(rows: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (task, framework, mode, variant, workload, shape, threads, device,
    environment), only the trials of its newest code version (that of its latest trial): a
    store keeps what an older version of the measuring code wrote, and that is never pooled
    with the current trials. Per configuration, not per task: a change to one framework's
    code gives only that framework's trials a new version."""
    if rows.empty or not {"code_version", "timestamp"} <= set(rows):
        return rows
    if rows["code_version"].nunique(dropna=False) < 2:
        return rows
    keys = [c for c in ("task", *GROUP_COLUMNS) if c in rows]
    identity = rows[keys].map(str).agg("|".join, axis=1)
    latest = rows.assign(_id=identity).sort_values("timestamp").groupby("_id")["code_version"].last()
    return rows[rows["code_version"].to_numpy() == identity.map(latest).to_numpy()]


# --- one configuration --------------------------------------------------------------------------


def _arm_rows(group: pd.DataFrame, arm: Mapping[str, Any]) -> pd.DataFrame:
    rows = group
    for column, wanted in arm.items():
        if column not in rows:
            return rows.iloc[0:0]
        if wanted in ("max", "min"):  # e.g. the most and fewest threads of a sweep
            values = pd.to_numeric(group[column], errors="coerce")
            if values.nunique() < 2:
                return rows.iloc[0:0]
            target = values.max() if wanted == "max" else values.min()
            rows = rows[pd.to_numeric(rows[column], errors="coerce") == target]
        else:
            rows = rows[_matches(rows, column, wanted)]
    return rows


def _transform(values: np.ndarray, scale: str) -> np.ndarray:
    if scale == "difference":
        return values.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log(values.astype(float)), np.nan)


def _floor(arms: list[pd.DataFrame], scale: str) -> tuple[float, str]:
    """The noise floor in the scale's units: the 90th percentile of |a - a'| over A-vs-A
    pairs (two replicas of one arm in one block), else the larger arm's median |a - a'| over
    its trials ("repeats", which also carries drift between blocks), else NaN."""
    pairs, floors = [], []
    for rows in arms:
        t = _transform(rows["value"].to_numpy(), scale)
        blocks = rows["repeat"].to_numpy() if "repeat" in rows else np.zeros(len(rows))
        replicas = rows["replica"].fillna(0).to_numpy() if "replica" in rows else np.zeros(len(rows))
        for i in range(len(t)):
            for j in range(i + 1, len(t)):
                if blocks[i] == blocks[j] and replicas[i] != replicas[j] and np.isfinite(t[i] - t[j]):
                    pairs.append(abs(t[i] - t[j]))
        finite = t[np.isfinite(t)]
        if finite.size >= 2:
            upper = np.triu_indices(finite.size, 1)
            floors.append(float(np.median(np.abs(finite[:, None] - finite[None, :])[upper])))
    if pairs:
        return float(stats.noise_floor_aa(pairs)), "a-vs-a"
    if floors:
        return max(floors), "repeats"
    return math.nan, "none"


def _sign_p(d: np.ndarray, centre: float = 0.0) -> float:
    """Two-sided exact sign test of median(d) = centre: the test whose interval the study's
    order-statistic intervals invert (``stats.order_statistic_interval``)."""
    d = d[np.isfinite(d)] - centre
    d = d[d != 0]
    if d.size == 0:
        return math.nan
    return float(sps.binomtest(int((d > 0).sum()), int(d.size), 0.5).pvalue)


def compare_group(a: pd.DataFrame, b: pd.DataFrame, pairing: str, scale: str,
                  confidence: float) -> dict[str, Any]:
    """Estimate of arm a against arm b (ratio a/b on the log scale, a - b on the difference
    scale) with its interval, the confidence it reaches, the noise floor and a raw p-value.

    ``blocks``: trials of one block (``repeat``) enter as their mean (in the scale's units),
    d_b = a_b - b_b over complete blocks, the order-statistic interval of median d_b and the
    sign test: the paired design of ``stats.compare_frameworks``, whose numbers it gives for
    the framework arms. Fewer than two complete blocks fall back to ``unpaired``:
    ``stats.ratio_ci`` and the Mann-Whitney p. ``deterministic``: the medians, no interval."""
    va, vb = a["value"].to_numpy(float), b["value"].to_numpy(float)
    out = {"n_a": int(va.size), "n_b": int(vb.size),
           "median_a": float(np.median(va)) if va.size else math.nan,
           "median_b": float(np.median(vb)) if vb.size else math.nan,
           "estimate": math.nan, "low": math.nan, "high": math.nan, "reached": 0.0,
           "blocks": 0, "noise_floor": math.nan, "floor_source": "none", "p": math.nan,
           "method": pairing}
    if not (va.size and vb.size):
        return out

    def to_estimate(x: float) -> float:
        return float(np.exp(x)) if scale == "log" else float(x)

    centre = _transform(np.array([out["median_a"]]), scale)[0] - _transform(np.array([out["median_b"]]), scale)[0]
    out["estimate"] = to_estimate(centre)
    if pairing == "deterministic":
        out.update(noise_floor=0.0, floor_source="deterministic")
        return out
    floor, source = _floor([a, b], scale)
    out.update(noise_floor=floor, floor_source=source)
    if pairing == "blocks" and "repeat" in a and "repeat" in b:
        ta = a.assign(t=_transform(va, scale)).groupby("repeat")["t"].mean()
        tb = b.assign(t=_transform(vb, scale)).groupby("repeat")["t"].mean()
        both = pd.concat([ta, tb], axis=1, keys=["a", "b"]).dropna()
        d = (both["a"] - both["b"]).to_numpy(float)
        d = d[np.isfinite(d)]
        if d.size >= 2:
            median, low, high, reached = stats.order_statistic_interval(d, confidence)
            out.update(estimate=to_estimate(float(median)), low=to_estimate(float(low)),
                       high=to_estimate(float(high)), reached=float(reached), blocks=int(d.size),
                       p=_sign_p(d), method="paired blocks, sign test")
            return out
    out["method"] = "unpaired, Mann-Whitney"
    out["p"] = stats.mann_whitney_p(va, vb)
    if scale == "log":
        interval = stats.ratio_ci(va, vb, confidence)
        out.update(low=interval.low, high=interval.high, reached=interval.confidence)
    return out


def threshold_group(rows: pd.DataFrame, threshold: float, deterministic: bool,
                    confidence: float) -> dict[str, Any]:
    """The configuration's median with its order-statistic interval (none when
    deterministic) and the sign test of median = threshold."""
    values = rows["value"].to_numpy(float)
    out = {"n_a": int(values.size), "estimate": float(np.median(values)) if values.size else math.nan,
           "low": math.nan, "high": math.nan, "reached": 0.0, "threshold": threshold,
           "p": math.nan, "method": "deterministic" if deterministic else "median, sign test",
           "noise_floor": 0.0 if deterministic else math.nan}
    if values.size and not deterministic:
        interval = stats.median_ci(values, confidence)
        out.update(low=interval.low, high=interval.high, reached=interval.confidence,
                   p=_sign_p(values, threshold))
    return out


def _group_keys(rows: pd.DataFrame, metric: Mapping[str, Any]) -> list[str]:
    if "by" in metric:
        return [c for c in metric["by"] if c in rows]
    arm_columns = {c for arm in (metric.get("arms") or {}).values() for c in arm}
    return [c for c in GROUP_COLUMNS if c in rows and c not in arm_columns
            and rows[c].notna().any()]


def _label(key: tuple, keys: list[str], varying: set[str]) -> str:
    """The configuration's name: the keys that differ between the query's configurations (the
    rest are the same for all and stated once, as conditions); the workload always."""
    parts = []
    for name, value in zip(keys, key, strict=True):
        if name not in varying and name != "workload":
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        label = {"fingerprint": "environment", "workload_params": "shape"}.get(name, name)
        parts.append(f"{label}={value}")
    return ", ".join(parts) or "all"


def configurations(claim: Claim, rows: pd.DataFrame, confidence: float,
                   table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per configuration of the query: its estimate, interval and raw p. ``table`` is
    the source table (a ``threshold_metric`` is read from the same trials there)."""
    metric, rule = claim.metric, claim.rule
    if rows.empty:
        return pd.DataFrame()
    keys = _group_keys(rows, metric)
    pairing = metric.get("pairing", "blocks")
    scale = metric.get("scale", "log")
    # a key varies when one workload has several values of it (each workload's own default
    # batch or shape is not a difference between configurations worth naming)
    within = rows.groupby("workload", dropna=False) if "workload" in rows else None
    varying = {k for k in keys if (within[k].nunique(dropna=False).max() if within is not None
                                   else rows[k].nunique(dropna=False)) > 1}
    records = []
    grouped = rows.groupby(keys, dropna=False, sort=True) if keys else [((), rows)]
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        if rule["kind"] == "compare":
            a = _arm_rows(group, metric["arms"]["a"])
            b = _arm_rows(group, metric["arms"]["b"])
            if a.empty or b.empty:
                continue
            numbers = compare_group(a, b, pairing, scale, confidence)
            used = pd.concat([a, b])
        else:
            if "threshold_metric" in rule:
                limit = rule_threshold(claim, group, rows if table is None else table)
                if math.isnan(limit):
                    continue
            else:
                limit = float(rule["threshold"])
            numbers = threshold_group(group, limit, pairing == "deterministic", confidence)
            used = group
        records.append({"configuration": _label(key, keys, varying), **numbers,
                        "trial_ids": sorted(set(used["trial_id"])) if "trial_id" in used else []})
    return pd.DataFrame(records)


def rule_threshold(claim: Claim, group: pd.DataFrame, table: pd.DataFrame) -> float:
    """A threshold read from the same trials (``threshold_metric``, e.g. the tolerance the
    interop run itself applied): its median over the group's trials."""
    if "trial_id" not in group or "trial_id" not in table:
        return math.nan
    rows = table[(table["metric"] == claim.rule["threshold_metric"])
                 & table["trial_id"].isin(set(group["trial_id"]))]
    return float(rows["value"].median()) if len(rows) else math.nan


# --- from configurations to a verdict -----------------------------------------------------------


def _margin(rule: Mapping[str, Any], scale: str, floor: float) -> float:
    """How far from parity an effect must be: the larger of the noise floor and the claim's
    ``min_effect`` (a ratio on the log scale, an amount on the difference scale); NaN when the
    floor is unknown (no claim of a difference can then be made, as in ``stats.verdicts``)."""
    effect = float(rule.get("min_effect", 1.0 if scale == "log" else 0.0))
    effect = math.log(effect) if scale == "log" else effect
    return max(floor, effect) if not math.isnan(floor) else math.nan


def outcome(row: Mapping[str, Any], claim: Claim, confidence: float, alpha: float) -> str:
    """'for', 'against', 'undecided' or 'no interval' for one configuration."""
    rule, metric = claim.rule, claim.metric
    deterministic = metric.get("pairing") == "deterministic"
    scale = metric.get("scale", "log")
    if not deterministic and (math.isnan(row["low"]) or math.isnan(row["high"])
                              or row["reached"] + _TOLERANCE < confidence):
        return "no interval"
    significant = deterministic or (not math.isnan(row["p_adjusted"]) and row["p_adjusted"] <= alpha)
    if rule["kind"] == "threshold":
        t = row["threshold"]
        low, high = (row["estimate"], row["estimate"]) if deterministic else (row["low"], row["high"])
        below, above = high < t and significant, low > t and significant
        wanted, other = (below, above) if rule["expect"] == "below" else (above, below)
        return "for" if wanted else "against" if other else "undecided"

    def to_scale(x: float) -> float:
        return (math.log(x) if x > 0 else math.nan) if scale == "log" else x

    est = to_scale(row["estimate"])
    low, high = (est, est) if deterministic else (to_scale(row["low"]), to_scale(row["high"]))
    if rule["expect"] == "equivalent":
        m = to_scale(float(rule["margin"])) if scale == "log" else float(rule["margin"])
        if -m <= low and high <= m:
            return "for"
        return "against" if (low > m or high < -m) and significant else "undecided"
    margin = _margin(rule, scale, row["noise_floor"])
    if math.isnan(margin) or math.isnan(est):
        return "undecided"
    a_higher = low > 0 and est > margin and significant
    a_lower = high < 0 and est < -margin and significant
    if rule["expect"] == "lower":
        return "for" if a_lower else "against" if a_higher else "undecided"
    if rule["expect"] == "higher":
        return "for" if a_higher else "against" if a_lower else "undecided"
    # differ: against only when the whole interval shows the effect smaller than the claim's
    # min_effect (a demonstrated tie); inside the noise floor alone is no evidence of a tie
    tie = _margin(rule, scale, 0.0)
    inside = tie > 0 and -tie <= low and high <= tie
    return "for" if (a_higher or a_lower) else "against" if inside else "undecided"


def decide(groups: pd.DataFrame, quorum: float) -> str:
    """The claim's verdict from its configurations' outcomes (see the module docstring)."""
    if groups.empty:
        return "not measured"
    counts = groups["outcome"].value_counts()
    backing, opposing = int(counts.get("for", 0)), int(counts.get("against", 0))
    eligible = int(len(groups) - counts.get("no interval", 0))
    if backing and opposing:
        return "mixed"
    if eligible and backing >= quorum * eligible:
        return "supported"
    if eligible and opposing >= quorum * eligible:
        return "contradicted"
    return "inconclusive"


def conditions_of(rows: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct device, threads, CPU, host and versions of the rows a verdict read."""
    out = {}
    for column in CONDITION_COLUMNS:
        if column in rows and rows[column].notna().any():
            out[column] = sorted({str(v) for v in rows[column].dropna()})
    return out


def evaluate(
    results: pd.DataFrame | None,
    claims: list[Claim] | None = None,
    confidence: float = 0.95,
    results_root: str | Path | None = None,
    sources: Mapping[str, pd.DataFrame] | None = None,
) -> list[Verdict]:
    """Every claim's verdict from ``results`` (the tidy table of ``fwstudy.results.load``).

    ``results_root`` (``results/<profile>/``) lets F10 read its attack tables; ``sources``
    overrides a source table by name (``attacks``, ``code_metrics``: tests feed synthetic
    ones). The significance level is 1 - ``confidence``; every p-value of every claim enters
    one Benjamini-Hochberg correction."""
    claims = load_ledger() if claims is None else claims
    results = results if results is not None else pd.DataFrame()
    sources = dict(sources or {})
    tables: dict[str, pd.DataFrame] = {"results": results}

    def source(name: str) -> pd.DataFrame:
        if name not in tables:
            if name in sources:
                tables[name] = sources[name]
            elif name == "attacks":
                root = Path(results_root) if results_root is not None else None
                tables[name] = attacks_table(results, root)
            else:
                tables[name] = code_metrics_table()
        return tables[name]

    per_claim = []
    for claim in claims:
        table = source(claim.metric.get("source", "results"))
        rows = select(table, claim.metric)
        groups = configurations(claim, rows, confidence, table)
        per_claim.append((claim, rows, groups))

    p_values = [g["p"].to_numpy(float) for _, _, g in per_claim if len(g)]
    flat = np.concatenate(p_values) if p_values else np.array([])
    finite = np.isfinite(flat)
    adjusted = np.full(flat.shape, np.nan)
    if finite.any():
        adjusted[finite] = sps.false_discovery_control(flat[finite], method="bh")
    alpha = 1.0 - confidence
    verdicts, offset = [], 0
    for claim, rows, groups in per_claim:
        if len(groups):
            groups = groups.assign(p_adjusted=adjusted[offset:offset + len(groups)])
            offset += len(groups)
            groups["outcome"] = [outcome(r, claim, confidence, alpha) for r in groups.to_dict("records")]
        verdict = decide(groups, float(claim.rule.get("quorum", 0.5)))
        used = set().union(*groups["trial_ids"]) if len(groups) else set()
        measured = rows[rows["trial_id"].isin(used)] if "trial_id" in rows else rows.iloc[0:0]
        if len(groups) and "trial_id" not in rows:
            measured = rows
        verdicts.append(Verdict(claim, verdict, groups, conditions_of(measured), confidence))
    return verdicts
