"""What every figure shares: the framework colours, the caption, the per-workload panels and
saving. Figures are built from the tidy results table only (never from live measurements);
each figure's own module (``figures/<name>.py``) says what it measures and draws."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns  # noqa: F401  (style and palettes)

from fwstudy.results import stats

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
    """TF/PT ratio of the metric per workload and shared mode, with its bootstrap CI."""
    compared = stats.compare_frameworks(table, metric=name)
    return compared.dropna(subset=["ratio"]).reset_index(drop=True)


def _variants(rows: pd.DataFrame) -> list[str]:
    present = set(rows["framework"] + " " + rows["mode"])
    return [f"{fw} {mode}" for fw in FRAMEWORK_COLOURS for mode in MODE_ORDER if f"{fw} {mode}" in present]


def variant_panel(ax: plt.Axes, table: pd.DataFrame, name: str, workload: str, ylabel: str) -> bool:
    """Bars at the median over trials, whiskers at its 95% bootstrap CI, dots at the trials."""
    rows = metric(table, name)
    rows = rows[rows["workload"] == workload]
    if rows.empty:
        ax.text(0.5, 0.5, "no successful trials", ha="center", transform=ax.transAxes)
        ax.set_xticks([])
        return False
    summary = stats.summarize_configurations(rows, metric=name)
    summary["variant"] = summary["framework"] + " " + summary["mode"]
    order = [v for v in _variants(rows) if v in set(summary["variant"])]
    palette = variant_palette(order)
    summary = summary.set_index("variant").loc[order]
    x = range(len(order))
    err_low = (summary["median"] - summary["ci_low"]).fillna(0).clip(lower=0)
    err_high = (summary["ci_high"] - summary["median"]).fillna(0).clip(lower=0)
    ax.bar(x, summary["median"], color=[palette[v] for v in order], alpha=0.9)
    ax.errorbar(x, summary["median"], yerr=[err_low, err_high], fmt="none", ecolor="black", capsize=3)
    rows = rows.assign(variant=rows["framework"] + " " + rows["mode"])
    for i, variant in enumerate(order):
        values = rows.loc[rows["variant"] == variant, "value"]
        ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        ax.annotate(f"n={int(summary.loc[variant, 'n'])}", (i, 0), xytext=(0, 2),
                    textcoords="offset points", ha="center", fontsize=7, color="white")
    ax.set_xticks(list(x), order, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    return True


def ratio_panel(ax: plt.Axes, table: pd.DataFrame, name: str, workload: str, ylabel: str) -> None:
    ratios = ratio_table(table, name)
    ratios = ratios[ratios["workload"] == workload]
    if ratios.empty:
        ax.text(0.5, 0.5, "no mode in both frameworks", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    x = range(len(ratios))
    low = (ratios["ratio"] - ratios["ratio_ci_low"]).fillna(0).clip(lower=0)
    high = (ratios["ratio_ci_high"] - ratios["ratio"]).fillna(0).clip(lower=0)
    bars = ax.bar(x, ratios["ratio"], color="0.65")
    ax.errorbar(x, ratios["ratio"], yerr=[low, high], fmt="none", ecolor="black", capsize=3)
    labels = [f"{r:.2f}×" + ("" if pd.isna(lo) else f"\n[{lo:.2f}, {hi:.2f}]")
              for r, lo, hi in zip(ratios["ratio"], ratios["ratio_ci_low"], ratios["ratio_ci_high"], strict=True)]
    ax.bar_label(bars, labels, fontsize=7, label_type="center")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), ratios["mode"], fontsize=8)
    ax.set_ylabel(ylabel)


def per_workload_figure(
    table: pd.DataFrame,
    panels: list[tuple[str, str, str]],
    title: str,
    caption: str = "",
) -> plt.Figure:
    """One column per workload, one row per panel ``(kind, metric, ylabel)`` where kind is
    "variants" (bars per framework and mode) or "ratio" (TF/PT ratio of the metric).

    Each workload has its own linear axis: workloads differ by orders of magnitude, and a
    log-scaled bar hides the differences the figures are about. Panels whose metric no trial
    has (GPU memory on a CPU run) are left out rather than drawn empty.
    """
    panels = [p for p in panels if not metric(table, p[1]).empty] or panels[:1]
    workloads = list(dict.fromkeys(metric(table, panels[0][1])["workload"])) or ["(none)"]
    heights = [1.4 if kind == "ratio" else 3 for kind, _, _ in panels]
    fig, axes = plt.subplots(
        len(panels), len(workloads), squeeze=False, constrained_layout=True,
        figsize=(max(9.0, 3.2 * len(workloads) + 2.5), 1.4 * sum(heights) + 1.2),
        gridspec_kw={"height_ratios": heights},
    )
    for column, workload in enumerate(workloads):
        for row, (kind, name, ylabel) in enumerate(panels):
            ax = axes[row, column]
            draw = ratio_panel if kind == "ratio" else variant_panel
            draw(ax, table, name, workload, ylabel if column == 0 else "")
            if row == 0:
                ax.set_title(workload)
    fig.suptitle(
        f"{title}\nbars: median over trials · whiskers: 95% bootstrap CI (n > 1) · dots: trials\n"
        + environment_caption(table) + (f"\n{caption}" if caption else ""),
        fontsize=9,
    )
    return fig


def grouped_bars(ax: plt.Axes, frame: pd.DataFrame, group: str, hue: str, value: str,
                  low: str | None = None, high: str | None = None) -> None:
    """Bars of ``value`` per ``group`` on the x axis, one bar per ``hue``, optional CI."""
    groups = list(dict.fromkeys(frame[group]))
    hues = list(dict.fromkeys(frame[hue]))
    width = 0.8 / max(1, len(hues))
    palette = variant_palette(hues) if all(h.split()[0] in FRAMEWORK_COLOURS for h in hues) else {}
    for i, name in enumerate(hues):
        mine = frame[frame[hue] == name].set_index(group).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(hues) - 1) / 2) * width
        ax.bar(x, mine[value], width, label=name, color=palette.get(name))
        if low and high:
            err = [(mine[value] - mine[low]).clip(lower=0).fillna(0), (mine[high] - mine[value]).clip(lower=0).fillna(0)]
            ax.errorbar(x, mine[value], yerr=err, fmt="none", ecolor="black", capsize=2)
    ax.set_xticks(np.arange(len(groups)), groups, fontsize=8)
    ax.legend(fontsize=7)


def save_figure(fig: plt.Figure, directory: Path | str, name: str) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths
