"""Figures, built from the tidy results table only (never from live measurements)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files first; JupyterLab still displays the returned Figure
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

FRAMEWORK_COLOURS = {"tensorflow": ("#e8710a", "#f4a259", "#b94e00", "#ffd3a8"),
                     "torch": ("#1f5aa6", "#6fa3e0", "#0c2d5a", "#b9d4f5")}
MODE_ORDER = ("eager", "graph", "compiled", "fit")


def metric(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of one metric from trials that succeeded."""
    return table[(table["metric"] == name) & (table["status"] == "ok")].copy()


def environment_caption(table: pd.DataFrame) -> str:
    ok = table[table["status"] == "ok"]
    source = ok if len(ok) else table
    if source.empty:
        return "no trials"
    first = source.iloc[0]
    trials = table["trial_id"].nunique()
    failed = table.loc[table["status"] != "ok", "trial_id"].nunique()
    return (
        f"n = {trials} trials ({failed} failed) · {first['cpu_model']} · "
        f"{int(first['threads'])} threads · {first['device']} · torch {first['torch_version']} · "
        f"TF {first['tensorflow_version']} · code {first['code_version']}"
    )


def variant_palette(variants: list[str]) -> dict[str, str]:
    palette = {}
    for framework, colours in FRAMEWORK_COLOURS.items():
        mine = [v for v in variants if v.startswith(framework)]
        palette.update({v: colours[i % len(colours)] for i, v in enumerate(mine)})
    return palette


def ratio_table(table: pd.DataFrame, name: str = "step_time_ms_median") -> pd.DataFrame:
    """TF/PT ratio of the median metric per workload and shared mode (>1: TF slower)."""
    rows = metric(table, name)
    medians = rows.groupby(["workload", "mode", "framework"])["value"].median().unstack("framework")
    if not {"tensorflow", "torch"} <= set(medians.columns):
        return pd.DataFrame(columns=["workload", "mode", "ratio"])
    medians = medians.dropna(subset=["tensorflow", "torch"])
    out = (medians["tensorflow"] / medians["torch"]).rename("ratio").reset_index()
    return out


def training_speed_figure(table: pd.DataFrame) -> plt.Figure:
    """F1: steady-state step time per workload, framework and mode, and the TF/PT ratio.

    One panel per workload with its own linear axis: step times differ by orders of magnitude
    between workloads, and a log-scaled bar hides the differences the figure is about.
    """
    rows = metric(table, "step_time_ms_median")
    rows["variant"] = rows["framework"] + " " + rows["mode"]
    order = [
        f"{fw} {mode}" for fw in FRAMEWORK_COLOURS for mode in MODE_ORDER
        if f"{fw} {mode}" in set(rows["variant"])
    ]
    palette = variant_palette(order)
    workloads = list(dict.fromkeys(rows["workload"])) or ["(none)"]
    ratios = ratio_table(table)
    fig, axes = plt.subplots(
        2, len(workloads), figsize=(max(9.0, 3.2 * len(workloads) + 2.5), 7.5), squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.3]}, constrained_layout=True,
    )
    for column, workload in enumerate(workloads):
        top, bottom = axes[0, column], axes[1, column]
        mine = rows[rows["workload"] == workload]
        if mine.empty:
            top.text(0.5, 0.5, "no successful trials", ha="center", transform=top.transAxes)
        else:
            sns.barplot(
                data=mine, x="variant", y="value", order=[v for v in order if v in set(mine["variant"])],
                hue="variant", palette=palette, estimator="median", errorbar=("ci", 95),
                n_boot=2000, seed=0, ax=top, legend=False,
            )
            sns.stripplot(data=mine, x="variant", y="value", color="black", size=3, ax=top)
            top.tick_params(axis="x", rotation=60)
        top.set_title(workload)
        top.set_xlabel("")
        top.set_ylabel("step time, median (ms)" if column == 0 else "")
        theirs = ratios[ratios["workload"] == workload]
        if theirs.empty:
            bottom.text(0.5, 0.5, "no shared mode", ha="center", transform=bottom.transAxes)
            bottom.set_axis_off()
            continue
        sns.barplot(data=theirs, x="mode", y="ratio", color="0.6", ax=bottom)
        bottom.axhline(1.0, color="black", linewidth=0.8)
        bottom.set_ylim(0, max(1.0, float(theirs["ratio"].max())) * 1.25)
        for container in bottom.containers:
            bottom.bar_label(container, fmt="%.2f×", fontsize=8)
        bottom.set_xlabel("")
        bottom.set_ylabel("TF / PyTorch time" if column == 0 else "")
    fig.suptitle(
        "F1 · training speed, lower is faster\n"
        "bars: median over trials · whiskers: 95% bootstrap CI when n > 1 · dots: trials\n"
        + environment_caption(table),
        fontsize=9,
    )
    return fig


def save_figure(fig: plt.Figure, directory: Path | str, name: str) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths
