"""F4 analysis: what a static graph buys over eager, what it costs to build, and when it pays.

Speedups compare a framework's mode with the same framework's eager mode (never across
frameworks), from independent trials, with a bootstrap CI on the ratio of medians.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fwstudy import stats

KEYS = ["workload", "framework", "mode"]


def _values(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = table[(table["metric"] == metric) & (table["status"] == "ok")]
    return rows[["trial_id", *KEYS, "value"]]


def speedup_table(eager: pd.DataFrame, compiled: pd.DataFrame) -> pd.DataFrame:
    """One row per workload × framework × non-eager mode: speedup over eager (eager median /
    mode median, CI), compile cost cold and warm, and break-even steps = cold compile /
    (eager step − mode step): the number of steps after which compiling has paid for itself
    (infinite when the mode is not faster)."""
    eager_steps = _values(eager, "step_time_ms_median")
    mode_steps = _values(compiled, "step_time_ms_median")
    cold = _values(compiled, "compile_cold_s").groupby(KEYS)["value"].median()
    warm = _values(compiled, "compile_warm_s").groupby(KEYS)["value"].median()
    rows = []
    for (workload, framework, mode), group in mode_steps.groupby(KEYS):
        base = eager_steps[(eager_steps["workload"] == workload) & (eager_steps["framework"] == framework)]
        eager_ms, mode_ms = base["value"].to_numpy(float), group["value"].to_numpy(float)
        speedup, low, high = stats.ratio_ci(eager_ms, mode_ms)
        cold_s = cold.get((workload, framework, mode), np.nan)
        gain_ms = (np.median(eager_ms) - np.median(mode_ms)) if eager_ms.size else np.nan
        rows.append({
            "workload": workload, "framework": framework, "mode": mode,
            "n_eager": eager_ms.size, "n_mode": mode_ms.size,
            "eager_ms": float(np.median(eager_ms)) if eager_ms.size else np.nan,
            "mode_ms": float(np.median(mode_ms)),
            "speedup": speedup, "speedup_ci_low": low, "speedup_ci_high": high,
            "compile_cold_s": cold_s, "compile_warm_s": warm.get((workload, framework, mode), np.nan),
            "break_even_steps": cold_s / (gain_ms / 1e3) if gain_ms and gain_ms > 0 else np.inf,
        })
    return pd.DataFrame(rows)


def retrace_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per workload × framework × mode × variant: traces (TF tracing count, torch frames
    compiled), graph breaks (torch), and the time of the whole changing-shape sequence."""
    ok = table[(table["status"] == "ok") & table["metric"].isin(
        ["traces", "graph_breaks", "sequence_total_s", "distinct_shapes", "shapes"])]
    wide = ok.pivot_table(index=[*KEYS, "variant", "trial_id"], columns="metric", values="value")
    summary = wide.groupby(level=[0, 1, 2, 3]).median().reset_index()
    failed = table[table["status"] != "ok"].drop_duplicates("trial_id")
    if len(failed):
        notes = failed[[*KEYS, "variant", "error"]]
        summary = pd.concat([summary, notes], ignore_index=True)
    return summary


CONTROL_FLOW_WORKLOAD = "adaptive"


def control_flow_report(profile, workload: str = CONTROL_FLOW_WORKLOAD) -> dict:
    """The data-dependent control-flow workload checked in every mode against eager, from
    the same weights (``fwstudy parity --modes``), plus its cross-framework gate. Stored with
    the profile's results and reused for the same code version unless forced."""
    import json

    from fwstudy import paths
    from fwstudy.config import default_threads
    from fwstudy.environment import code_version
    from fwstudy.parity import ParityRequest, run_parity
    from fwstudy.results import atomic_write_text

    path = paths.results_dir(profile.profile, profile.results_dir) / "parity" / f"{workload}-modes-{code_version()}.json"
    if path.exists() and not profile.force:
        return json.loads(path.read_text())
    threads = profile.threads or default_threads()
    report = run_parity(ParityRequest(workload=workload, modes=True, threads=threads, timeout_s=profile.trial_timeout_s))
    atomic_write_text(path, json.dumps(report, default=str, indent=1))
    return report
