"""F4 · static vs dynamic graphs (paper section II): what a static graph buys over eager, what
it costs to build, and when it pays.

Speedups compare a framework's mode with the same framework's eager mode (never across
frameworks), from independent trials, with a distribution-free interval on the ratio of
medians (``stats.ratio_ci``) and the confidence it reaches.
"""

from __future__ import annotations

import random

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig, modes_for
from fwstudy.figures import trials
from fwstudy.figures.common import (
    FRAMEWORK_COLOURS,
    environment_caption,
    failed_parity,
    grouped_bars,
)
from fwstudy.results import stats

NAME = "graph_modes"
KEYS = ["workload", "framework", "mode"]


def _values(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = table[(table["metric"] == metric) & (table["status"] == "ok")]
    return rows[["trial_id", *KEYS, "value"]]


def speedup_table(eager: pd.DataFrame, compiled: pd.DataFrame) -> pd.DataFrame:
    """One row per workload × framework × non-eager mode: speedup over eager (eager median /
    mode median, interval and the confidence it reaches), compile cost cold and warm, and

        break-even steps = (first call of the mode − first call of eager)
                           / (eager step − mode step)

    the number of steps after which compiling has paid for itself against simply running
    eagerly, whose own first call (allocations, kernel selection) is not free either
    (infinite when the mode is not faster)."""
    eager_steps = _values(eager, "step_time_ms_median")
    eager_first = _values(eager, "compile_s").groupby(["workload", "framework"])["value"].median()
    mode_steps = _values(compiled, "step_time_ms_median")
    cold = _values(compiled, "compile_cold_s").groupby(KEYS)["value"].median()
    warm = _values(compiled, "compile_warm_s").groupby(KEYS)["value"].median()
    rows = []
    for (workload, framework, mode), group in mode_steps.groupby(KEYS):
        base = eager_steps[(eager_steps["workload"] == workload) & (eager_steps["framework"] == framework)]
        eager_ms, mode_ms = base["value"].to_numpy(float), group["value"].to_numpy(float)
        interval = stats.ratio_ci(eager_ms, mode_ms)
        speedup, low, high = interval
        cold_s = cold.get((workload, framework, mode), np.nan)
        first_eager_s = eager_first.get((workload, framework), 0.0)
        gain_ms = (np.median(eager_ms) - np.median(mode_ms)) if eager_ms.size else np.nan
        extra_s = max(cold_s - first_eager_s, 0.0) if np.isfinite(cold_s) else np.nan
        rows.append({
            "workload": workload, "framework": framework, "mode": mode,
            "n_eager": eager_ms.size, "n_mode": mode_ms.size,
            "eager_ms": float(np.median(eager_ms)) if eager_ms.size else np.nan,
            "mode_ms": float(np.median(mode_ms)),
            "speedup": speedup, "speedup_ci_low": low, "speedup_ci_high": high,
            "speedup_confidence": getattr(interval, "confidence", np.nan),
            "compile_cold_s": cold_s, "compile_warm_s": warm.get((workload, framework, mode), np.nan),
            "eager_first_call_s": first_eager_s,
            "break_even_steps": extra_s / (gain_ms / 1e3) if gain_ms and gain_ms > 0 else np.inf,
        })
    return pd.DataFrame(rows)


def retrace_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per workload × framework × mode × variant: traces (TF tracing count, torch frames
    compiled), graph breaks (torch), and the time of the whole changing-shape sequence."""
    ok = table[(table["status"] == "ok") & table["metric"].isin(
        ["traces", "xla_compilations", "compiles", "graph_breaks", "sequence_total_s", "distinct_shapes", "shapes"])]
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
    the same weights (``fwstudy parity --modes``), plus its cross-framework gate: the very
    report of the verdict that gates its timings (``parity.verdict``, cached per version of
    the trial code and of the gate)."""
    import json

    from fwstudy.parity.verdict import workload_verdict

    verdict = workload_verdict(workload, threads=profile.threads, timeout_s=profile.trial_timeout_s)
    return json.loads(open(verdict["report"]).read())


def compile_configs(profile: Profile) -> list[TrialConfig]:
    """F4 compile cost: every non-eager mode as a ``compile`` trial (a cold process with its
    full measurement, then a warm-cache process for the warm compile)."""
    threads = trials.threads_of(profile)
    workloads = profile.graph_workloads or profile.workloads
    grid = trials.narrowed(profile, workloads=workloads, repeats=profile.compile_repeats, aa_blocks=0)
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, task="compile", steps=profile.steps,
            warmup=profile.warmup, threads=threads, device=profile.device, repeat=repeat,
            timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework, replica in trials.grid(grid)
        if mode != "eager"
    ]


def eager_configs(profile: Profile) -> list[TrialConfig]:
    """The eager trials of the F4 workloads, the baseline every speedup is relative to: the
    same trials as F1's where the workloads overlap (shared, not measured twice)."""
    workloads = profile.graph_workloads or profile.workloads
    return trials.training_configs(trials.narrowed(profile, workloads=workloads, modes=["eager"]))


def retrace_configs(profile: Profile) -> list[TrialConfig]:
    """F4 retracing: the profile's shape sequence in every tracing variant of each framework;
    sequence lengths change too for workloads that have one. Eager is the no-trace baseline."""
    from fwstudy.config.trial import RETRACE_VARIANTS
    from fwstudy.workloads import get_workload

    threads = trials.threads_of(profile)
    configs = []
    for repeat in range(profile.retrace_repeats):
        block = []
        for workload in profile.retrace_workloads:
            spec = get_workload(workload)
            lengths = tuple(profile.retrace_lengths) if "length" in spec.defaults else ()
            params = {"length": max(lengths)} if lengths else {}
            for framework in profile.frameworks:
                for mode in modes_for(framework, workload):
                    if mode == "fit" or mode not in profile.modes:
                        continue
                    variants = RETRACE_VARIANTS[framework]
                    for variant in variants[:1] if mode == "eager" else variants:
                        block.append(TrialConfig(
                            workload=workload, framework=framework, mode=mode, task="retrace",
                            variant=variant, batch_sequence=tuple(profile.retrace_batches),
                            length_sequence=lengths, workload_params=params, threads=threads,
                            device=profile.device, repeat=repeat, timeout_s=profile.trial_timeout_s,
                        ))
        # Rule 7: a random order per block, as in every grid (``trials.grid``).
        random.Random(f"{profile.profile}/retrace/{repeat}").shuffle(block)
        configs += block
    return configs


def configs(profile: Profile) -> list[TrialConfig]:
    """Every F4 trial: the eager baseline, the compile trials and the retrace trials. The
    notebook measures the three groups apart, since each has its own table."""
    return [*eager_configs(profile), *compile_configs(profile), *retrace_configs(profile)]


def draw(speedups: pd.DataFrame, retraces: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """F4: speedup over eager, compile cost against speedup (break-even steps), and what a
    changing input shape costs in traces/recompiles and time."""
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5), constrained_layout=True)
    a, b, c, d = axes.ravel()
    if len(speedups):
        frame = speedups.assign(variant=speedups["framework"] + " " + speedups["mode"])
        grouped_bars(a, frame, "workload", "variant", "speedup", "speedup_ci_low", "speedup_ci_high")
        a.axhline(1.0, color="black", linewidth=0.8)
        a.set_ylabel("speedup over the same framework's eager")
        a.set_title("steady-state speedup (ratio of medians, distribution-free interval)")
        for framework, marker in (("tensorflow", "o"), ("torch", "s")):
            mine = frame[frame["framework"] == framework]
            b.scatter(mine["compile_cold_s"], mine["speedup"], marker=marker, label=f"{framework} cold",
                      color=FRAMEWORK_COLOURS[framework][0])
            b.scatter(mine["compile_warm_s"], mine["speedup"], marker=marker, facecolors="none",
                      edgecolors=FRAMEWORK_COLOURS[framework][0], label=f"{framework} warm cache")
            for row in mine.itertuples():
                steps = "never" if not np.isfinite(row.break_even_steps) else f"{row.break_even_steps:.0f}"
                b.annotate(f"{row.workload} {row.mode}: pays after {steps} steps", (row.compile_cold_s, row.speedup),
                           fontsize=6, xytext=(3, 3), textcoords="offset points")
        b.set_xscale("log")
        b.axhline(1.0, color="black", linewidth=0.8)
        b.set_xlabel("first-call (trace/compile) time, s (log)")
        b.set_ylabel("speedup over eager")
        b.set_title("compile cost vs speedup; break-even = (first call − eager first call) / step time saved")
        b.legend(fontsize=7)
    if len(retraces) and "traces" in retraces:
        frame = retraces.dropna(subset=["traces"]).copy()
        frame["case"] = frame["workload"] + " " + frame["framework"] + " " + frame["mode"]
        # TF: tf.function traces and XLA compilations apart (XLA compiles once per concrete
        # shape even when an input signature keeps TF at one trace); torch: dynamo's compiles.
        if "xla_compilations" in frame:
            counts = frame.assign(variant=frame["variant"] + " traces")
            xla = frame[(frame["mode"] == "compiled") & frame["xla_compilations"].notna()]
            xla = xla.assign(variant=xla["variant"] + " XLA compiles", traces=xla["xla_compilations"])
            frame_c = pd.concat([counts, xla], ignore_index=True)
        else:
            frame_c = frame
        grouped_bars(c, frame_c, "case", "variant", "traces")
        c.set_ylabel("traces (TF), XLA compilations,\ncompiles (torch) over the sequence")
        distinct = int(frame["distinct_shapes"].max()) if "distinct_shapes" in frame else None
        c.set_title(f"retracing under changing shapes ({distinct} distinct shapes)")
        c.tick_params(axis="x", rotation=30)
        grouped_bars(d, frame, "case", "variant", "sequence_total_s")
        d.set_ylabel("time for the whole shape sequence, s")
        d.set_title("cost of the shape sequence (first calls included)")
        d.tick_params(axis="x", rotation=30)
    failed = failed_parity(table)
    warning = f"\nPARITY GATE FAILED for {', '.join(failed)}: not a comparison" if failed else ""
    fig.suptitle(
        "F4 · static vs dynamic graphs" + warning + "\ncompile trials start from empty caches; inductor "
        "compiles in the trial's process (TORCHINDUCTOR_COMPILE_THREADS=1), as XLA does\n"
        + environment_caption(table), fontsize=9, color="red" if failed else "black",
    )
    return fig
