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
from fwstudy.figures import palette, trials
from fwstudy.figures.common import environment_caption, failed_parity, grouped_bars, plotted, wrap
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


def _compile_panel(ax: plt.Axes, frame: pd.DataFrame) -> None:
    """Speedup against first-call time, cold (filled) and warm cache (open); each cold point
    numbered, its break-even in the table under the axes (labels beside the points collide)."""
    frame = frame.reset_index(drop=True)
    for framework, marker in (("tensorflow", "o"), ("torch", "s")):
        mine = frame[frame["framework"] == framework]
        ax.scatter(mine["compile_cold_s"], mine["speedup"], marker=marker, label=f"{palette.LABELS[framework]} cold",
                   color=palette.colour(framework))
        ax.scatter(mine["compile_warm_s"], mine["speedup"], marker=marker, facecolors="none",
                   edgecolors=palette.colour(framework), label=f"{palette.LABELS[framework]} warm cache")
    lines = []
    for i, row in enumerate(frame.itertuples(), 1):
        ax.annotate(str(i), (row.compile_cold_s, row.speedup), fontsize=6.5, xytext=(4, 2), textcoords="offset points")
        steps = "never" if not np.isfinite(row.break_even_steps) else f"{row.break_even_steps:.0f} steps"
        lines.append(f"{i}: {row.workload} {palette.SHORT[row.framework]} {row.mode}, pays after {steps}")
    ax.set_xscale("log")
    ax.axhline(1.0, **palette.REFERENCE_LINE)
    ax.set_xlabel("first-call (trace/compile) time, s (log)")
    ax.set_ylabel("speedup over eager")
    ax.set_title("compile cost vs speedup\nbreak-even = (first call − eager first call) / step time saved", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    columns = 2 if len(lines) > 6 else 1
    per = -(-len(lines) // columns)
    ax.text(1.02, 0.0, "\n".join(lines[:per]), transform=ax.transAxes, fontsize=6, va="bottom", ha="left")
    if columns > 1:
        ax.text(1.02, -0.02, "\n".join(lines[per:]), transform=ax.transAxes, fontsize=6, va="top", ha="left")
    plotted(ax, frame.assign(point=range(1, len(frame) + 1)), "compile cost vs speedup",
            ids=["point", "workload", "framework", "mode"],
            values=["compile_cold_s", "compile_warm_s", "eager_first_call_s", "speedup", "break_even_steps"])


def retrace_cells(retraces: pd.DataFrame) -> pd.DataFrame:
    """One row per workload × framework × mode × variant of the retrace trials: traces (TF) or
    compiles (torch), XLA compilations (TF compiled), and the time of the whole sequence."""
    frame = retraces.dropna(subset=["traces"]).copy()
    if "xla_compilations" not in frame:
        frame["xla_compilations"] = np.nan
    frame.loc[frame["mode"] != "compiled", "xla_compilations"] = np.nan
    order = {m: i for i, m in enumerate(palette.MODE_ORDER)}
    frame["_fw"] = frame["framework"].map({f: i for i, f in enumerate(palette.FRAMEWORKS)})
    frame["_mode"] = frame["mode"].map(order)
    from fwstudy.config.trial import RETRACE_VARIANTS

    rank = {(f, v): i for f, names in RETRACE_VARIANTS.items() for i, v in enumerate(names)}
    frame["_variant"] = [rank.get((f, v), len(rank)) for f, v in zip(frame["framework"], frame["variant"], strict=True)]
    frame = frame.sort_values(["workload", "_fw", "_mode", "_variant", "variant"]).drop(columns=["_fw", "_mode", "_variant"])
    frame["case"] = [f"{r.workload} · {palette.SHORT[r.framework]} {r.mode} · {r.variant}" for r in frame.itertuples()]
    return frame.reset_index(drop=True)


def _retrace_heatmap(ax: plt.Axes, cells: pd.DataFrame) -> None:
    """Rows: workload, framework, mode and tracing variant; columns: traces (TF) or compiles
    (torch), and XLA compilations. A cell's colour and number are the count (median over
    repeats); a blank cell is a count that does not apply (no XLA outside TF compiled)."""
    columns = [("traces", "traces (TF) /\ncompiles (PT)")]
    if cells["xla_compilations"].notna().any():
        columns.append(("xla_compilations", "XLA\ncompilations"))
    grid = cells[[c for c, _ in columns]].to_numpy(float)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=palette.SEQUENTIAL, aspect="auto", vmin=0,
                      vmax=max(1.0, float(np.nanmax(grid))) if np.isfinite(grid).any() else 1.0)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            bright = image.norm(value) > 0.6
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=7, color="black" if bright else "white")
    ax.set_xticks(range(len(columns)), [label for _, label in columns], fontsize=7)
    ax.xaxis.tick_top()
    _case_ticks(ax, cells)
    plotted(ax, cells, "retracing counts", ids=["workload", "framework", "mode", "variant"],
            values=["traces", "xla_compilations"])


def _case_ticks(ax: plt.Axes, cells: pd.DataFrame) -> None:
    ax.set_yticks(range(len(cells)), cells["case"], fontsize=6.5)
    for label, framework in zip(ax.get_yticklabels(), cells["framework"], strict=True):
        label.set_color(palette.colour(framework, 2))
    ax.set_ylim(len(cells) - 0.5, -0.5)


def _sequence_dots(ax: plt.Axes, cells: pd.DataFrame) -> None:
    """The time of the whole shape sequence per row of the heat map, a dot per case."""
    y = np.arange(len(cells))
    colours = [palette.mode_colour(f, m) for f, m in zip(cells["framework"], cells["mode"], strict=True)]
    ax.hlines(y, 0, cells["sequence_total_s"], colors="0.8", linewidth=1)
    ax.scatter(cells["sequence_total_s"], y, c=colours, s=30, zorder=3, edgecolors="black", linewidths=0.4)
    for i, value in enumerate(cells["sequence_total_s"]):
        if np.isfinite(value):
            ax.annotate(f"{value:.2f} s", (value, i), xytext=(5, 0), textcoords="offset points", va="center", fontsize=6)
    ax.set_xlim(0, float(np.nanmax(cells["sequence_total_s"])) * 1.25 if cells["sequence_total_s"].notna().any() else 1)
    ax.set_ylim(len(cells) - 0.5, -0.5)
    ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel("time for the whole shape sequence, s (first calls included)")
    ax.grid(axis="x", alpha=0.3)
    plotted(ax, cells, "cost of the shape sequence", ids=["workload", "framework", "mode", "variant"],
            values=["sequence_total_s"])


def draw(speedups: pd.DataFrame, retraces: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """F4: speedup over eager, compile cost against speedup (break-even steps), and what a
    changing input shape costs in traces/recompiles and time: a heat map of the counts and a
    dot plot of the time, one row per workload, framework, mode and tracing variant (most
    variants belong to one framework only: grouped bars left most slots empty)."""
    cells = retrace_cells(retraces) if len(retraces) and "traces" in retraces else pd.DataFrame()
    rows = max(len(cells), 8)
    fig = plt.figure(figsize=(14, 5.0 + 0.24 * rows), constrained_layout=True)
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.6, 0.4 + 0.24 * rows])
    a, b = top.subplots(1, 2, width_ratios=[1.0, 1.15])
    c, d = bottom.subplots(1, 2, width_ratios=[0.5, 1.0])
    if len(speedups):
        frame = speedups.assign(variant=speedups["framework"] + " " + speedups["mode"])
        grouped_bars(a, frame, "workload", "variant", "speedup", "speedup_ci_low", "speedup_ci_high",
                     panel="steady-state speedup over eager")
        a.axhline(1.0, **palette.REFERENCE_LINE)
        a.set_ylabel("speedup over the same framework's eager")
        a.set_title("steady-state speedup\n(ratio of medians, distribution-free interval)", fontsize=9)
        _compile_panel(b, frame)
    else:
        for ax in (a, b):
            ax.text(0.5, 0.5, "no compile trials", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
    if len(cells):
        _retrace_heatmap(c, cells)
        _sequence_dots(d, cells)
        distinct = int(cells["distinct_shapes"].max()) if "distinct_shapes" in cells else None
        bottom.suptitle(f"retracing under changing shapes ({distinct} distinct shapes): counts over the sequence "
                        "(median over repeats) and its time", fontsize=9)
    else:
        for ax in (c, d):
            ax.text(0.5, 0.5, "no retrace trials", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
    failed = failed_parity(table)
    warning = f"\nPARITY GATE FAILED for {', '.join(failed)}: not a comparison" if failed else ""
    fig.suptitle(
        wrap("F4 · static vs dynamic graphs" + warning + "\ncompile trials start from empty caches; inductor "
             "compiles in the trial's process (TORCHINDUCTOR_COMPILE_THREADS=1), as XLA does\n"
             + environment_caption(table), fig, 9), fontsize=9, color=palette.FAILED if failed else "black",
    )
    return fig
