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


def _present(source: pd.DataFrame, column: str) -> str:
    """Every value of a column, not only the first: records from two environments in one
    figure must be visible as such (rule 8)."""
    if column not in source:
        return "?"
    values = [str(v) for v in dict.fromkeys(source[column].dropna())]
    return " + ".join(values) if values else "?"


def failed_parity(table: pd.DataFrame) -> list[str]:
    """Workloads whose twins failed the parity gate (rule 6): their bars are no comparison."""
    if "parity_passed" not in table or table["parity_passed"].isna().all():
        return []
    rows = table.dropna(subset=["parity_passed"])
    return sorted(set(rows.loc[~rows["parity_passed"].astype(bool), "workload"]))


def parity_caption(table: pd.DataFrame) -> str:
    if "parity_passed" not in table or table["parity_passed"].isna().all():
        return "parity gate: not run"
    failed = failed_parity(table)
    if failed:
        return f"PARITY GATE FAILED for {', '.join(failed)}: those twins differ, their bars are not a comparison"
    return "parity gate passed (both precisions, every mode) for every workload shown"


def one_environment(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The trials of the environment that measured most of them, and a note on the others.

    Records from different environments are never pooled (rule 8): a figure draws one, and
    says how many trials of other environments it left out (the analysis tables keep them,
    one row per environment)."""
    column = stats.ENVIRONMENT_COLUMN
    if column not in table or table[column].nunique(dropna=False) <= 1:
        return table, ""
    key = table[column].fillna("unknown")
    counts = table.groupby(key)["trial_id"].nunique()
    keep = counts.idxmax()
    others = counts.drop(keep)
    note = (f"{int(others.sum())} trials from {len(others)} other environment(s) not pooled and not drawn "
            f"(see the analysis tables, one row per environment)")
    return table[key == keep], note


def environment_caption(table: pd.DataFrame) -> str:
    ok = table[table["status"] == "ok"]
    source = ok if len(ok) else table
    if source.empty:
        return "no trials"
    trials = table["trial_id"].nunique()
    failed = table.loc[table["status"] != "ok", "trial_id"].nunique()
    return (
        f"n = {trials} trials ({failed} failed) · {_present(source, 'cpu_model')} · "
        f"{_present(source, 'threads')} threads · {_present(source, 'device')} · "
        f"torch {_present(source, 'torch_version')} · TF {_present(source, 'tensorflow_version')} · "
        f"code {_present(source, 'code_version')}\n{parity_caption(table)}"
    )


def variant_palette(variants: list[str]) -> dict[str, str]:
    palette = {}
    for framework, colours in FRAMEWORK_COLOURS.items():
        mine = [v for v in variants if v.startswith(framework)]
        palette.update({v: colours[i % len(colours)] for i, v in enumerate(mine)})
    return palette


def not_captured(table: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(workload, framework, mode) whose compiler captured no graph (torch.compile skips
    ``nn.LSTM``): those trials ran eagerly, and a figure must not draw them as compiled."""
    rows = metric(table, "graphs")
    rows = rows[(rows["value"] == 0) & (rows["mode"] == "compiled")]
    return set(zip(rows["workload"], rows["framework"], rows["mode"], strict=True))


def best_modes(table: pd.DataFrame, name: str) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Each framework's best mode per workload (lowest median of ``name``, or highest for a
    higher-is-better metric), relabelled mode ``best``: the comparison a user who picks the
    fastest option of each framework sees. Picking the best of several modes on the same
    data favours the framework with more modes slightly (a max of noisy medians); the label
    names the modes picked so a reader can look at their own bars."""
    rows = metric(table, name)
    if rows.empty:
        return rows, {}
    higher = name in stats.HIGHER_IS_BETTER
    medians = rows.groupby(["workload", "framework", "mode"])["value"].median().reset_index()
    pick = medians.loc[medians.groupby(["workload", "framework"])["value"].idxmax() if higher
                       else medians.groupby(["workload", "framework"])["value"].idxmin()]
    chosen = set(zip(pick["workload"], pick["framework"], pick["mode"], strict=True))
    keep = [(w, f, m) in chosen for w, f, m in zip(rows["workload"], rows["framework"], rows["mode"], strict=True)]
    picked = {(w, f): m for w, f, m in chosen}
    return rows[keep].assign(mode="best"), picked


def ratio_table(table: pd.DataFrame, name: str = "step_time_ms_median", confidence: float = 0.95,
                best: bool = False) -> pd.DataFrame:
    """TF/PT ratio of the metric per workload and shared mode over paired blocks, with its
    distribution-free interval and the confidence it reaches; with ``best``, also each
    framework's best mode against the other's (mode ``best``, ``picked`` names them)."""
    compared = stats.compare_frameworks(table, metric=name, confidence=confidence)
    compared["picked"] = ""
    if best:
        chosen, picked = best_modes(table, name)
        if not chosen.empty:
            extra = stats.compare_frameworks(chosen, metric=name, confidence=confidence)
            extra["picked"] = [f"TF {picked.get((w, 'tensorflow'), '?')} / PT {picked.get((w, 'torch'), '?')}"
                               for w in extra["workload"]]
            compared = pd.concat([compared, extra], ignore_index=True)
    return compared.dropna(subset=["ratio"]).reset_index(drop=True)


def _variants(rows: pd.DataFrame) -> list[str]:
    present = set(rows["framework"] + " " + rows["mode"])
    return [f"{fw} {mode}" for fw in FRAMEWORK_COLOURS for mode in MODE_ORDER if f"{fw} {mode}" in present]


def _percent(confidence: float) -> str:
    return "–" if pd.isna(confidence) or confidence <= 0 else f"{100 * confidence:.0f}%"


def variant_panel(ax: plt.Axes, table: pd.DataFrame, name: str, workload: str, ylabel: str,
                  confidence: float = 0.95) -> bool:
    """Bars at the median over trials, whiskers at its distribution-free (order-statistic)
    interval, labelled with n and the confidence that interval reaches; dots at the trials.
    A compiled mode whose compiler captured nothing is hatched and labelled as eager."""
    rows = metric(table, name)
    rows = rows[rows["workload"] == workload]
    if rows.empty:
        ax.text(0.5, 0.5, "no successful trials", ha="center", transform=ax.transAxes)
        ax.set_xticks([])
        return False
    summary = stats.summarize_configurations(rows, metric=name, confidence=confidence)
    summary["variant"] = summary["framework"] + " " + summary["mode"]
    order = [v for v in _variants(rows) if v in set(summary["variant"])]
    palette = variant_palette(order)
    summary = summary.set_index("variant").loc[order]
    eager_really = {f"{f} {m}" for w, f, m in not_captured(table) if w == workload}
    x = range(len(order))
    err_low = (summary["median"] - summary["ci_low"]).fillna(0).clip(lower=0)
    err_high = (summary["ci_high"] - summary["median"]).fillna(0).clip(lower=0)
    bars = ax.bar(x, summary["median"], color=[palette[v] for v in order], alpha=0.9)
    for bar, variant in zip(bars, order, strict=True):
        if variant in eager_really:
            bar.set_hatch("//")
            bar.set_alpha(0.4)
    ax.errorbar(x, summary["median"], yerr=[err_low, err_high], fmt="none", ecolor="black", capsize=3)
    rows = rows.assign(variant=rows["framework"] + " " + rows["mode"])
    for i, variant in enumerate(order):
        values = rows.loc[rows["variant"] == variant, "value"]
        ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        row = summary.loc[variant]
        ax.annotate(f"n={int(row['n'])}\n{_percent(row['confidence'])}", (i, 0), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6, color="white")
    labels = [f"{v}\n(not captured: eager)" if v in eager_really else v for v in order]
    ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    return True


def ratio_panel(ax: plt.Axes, table: pd.DataFrame, name: str, workload: str, ylabel: str,
                confidence: float = 0.95, best: bool = True) -> None:
    """TF/PT ratio per shared mode (and best mode against best mode): bar at the ratio of the
    paired blocks, whiskers at its interval; the label (ratio, interval, confidence reached,
    verdict) sits above the upper whisker, never on it."""
    ratios = ratio_table(table, name, confidence, best=best)
    ratios = ratios[ratios["workload"] == workload].reset_index(drop=True)
    if ratios.empty:
        ax.text(0.5, 0.5, "no mode in both frameworks", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    x = np.arange(len(ratios))
    low = (ratios["ratio"] - ratios["ratio_ci_low"]).fillna(0).clip(lower=0)
    high = (ratios["ratio_ci_high"] - ratios["ratio"]).fillna(0).clip(lower=0)
    colours = ["0.45" if m == "best" else "0.7" for m in ratios["mode"]]
    ax.bar(x, ratios["ratio"], color=colours)
    ax.errorbar(x, ratios["ratio"], yerr=[low, high], fmt="none", ecolor="black", capsize=3)
    top = ratios["ratio_ci_high"].fillna(ratios["ratio"]).to_numpy(float)
    for i, row in ratios.iterrows():
        interval = "" if pd.isna(row["ratio_ci_low"]) else f"\n[{row['ratio_ci_low']:.2f}, {row['ratio_ci_high']:.2f}] {_percent(row['confidence'])}"
        ax.annotate(f"{row['ratio']:.2f}×{interval}\n{row['faster']}", (i, top[i]), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6)
    ax.set_ylim(0, max(1.0, float(np.nanmax(top))) * 1.9)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ticks = [f"best\n{p}" if m == "best" else m for m, p in zip(ratios["mode"], ratios["picked"], strict=True)]
    ax.set_xticks(list(x), ticks, fontsize=7)
    ax.set_ylabel(ylabel)


def per_workload_figure(
    table: pd.DataFrame,
    panels: list[tuple[str, str, str]],
    title: str,
    caption: str = "",
    confidence: float = 0.95,
) -> plt.Figure:
    """One column per workload, one row per panel ``(kind, metric, ylabel)`` where kind is
    "variants" (bars per framework and mode) or "ratio" (TF/PT ratio of the metric).

    Each workload has its own linear axis: workloads differ by orders of magnitude, and a
    log-scaled bar hides the differences the figures are about. Panels whose metric no trial
    has (GPU memory on a CPU run) are left out rather than drawn empty. A workload whose
    twins failed the parity gate keeps its column, titled as failed (rule 6).
    """
    table, left_out = one_environment(table)
    caption = "\n".join(c for c in (caption, left_out) if c)
    panels = [p for p in panels if not metric(table, p[1]).empty] or panels[:1]
    workloads = list(dict.fromkeys(metric(table, panels[0][1])["workload"])) or ["(none)"]
    failed = set(failed_parity(table))
    heights = [1.9 if kind == "ratio" else 3 for kind, _, _ in panels]
    fig, axes = plt.subplots(
        len(panels), len(workloads), squeeze=False, constrained_layout=True,
        figsize=(max(9.0, 3.4 * len(workloads) + 2.5), 1.4 * sum(heights) + 1.6),
        gridspec_kw={"height_ratios": heights},
    )
    for column, workload in enumerate(workloads):
        for row, (kind, name, ylabel) in enumerate(panels):
            ax = axes[row, column]
            if kind == "ratio":
                ratio_panel(ax, table, name, workload, ylabel if column == 0 else "", confidence)
            else:
                variant_panel(ax, table, name, workload, ylabel if column == 0 else "", confidence)
            if row == 0:
                if workload in failed:
                    ax.set_title(f"{workload}\nPARITY GATE FAILED: not a comparison", color="red", fontsize=9)
                else:
                    ax.set_title(workload)
    fig.suptitle(
        f"{title}\nbars: median over trials · whiskers: distribution-free interval (sign test; "
        f"requested {_percent(confidence)}, reached level on each bar) · dots: trials · ratios over "
        f"paired blocks; a winner only when the interval excludes 1 and the effect exceeds the "
        f"A-vs-A noise floor\n" + environment_caption(table) + (f"\n{caption}" if caption else ""),
        fontsize=8,
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
