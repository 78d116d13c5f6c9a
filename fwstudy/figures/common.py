"""What every figure shares: the caption, the per-workload panels, the record of the numbers
each panel plots, and saving. Figures are built from the tidy results table only (never from
live measurements); each figure's own module (``figures/<name>.py``) says what it measures and
draws, and ``palette`` holds the colours all of them use.

Saving writes three files with one stem: the PNG (its metadata names the profile, the commit
and the date), the SVG, and a CSV of the numbers drawn. The CSV is not recomputed from the
analysis: each panel records what it hands to matplotlib (``plotted``), so the file holds what
a reader sees, in one tidy long table (one row per number: panel, what identifies it,
``quantity``, ``value``)."""

from __future__ import annotations

import datetime
import functools
import subprocess
import textwrap
import weakref
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns  # noqa: F401  (style and palettes)

from fwstudy.figures import palette
from fwstudy.figures.palette import FRAMEWORK_COLOURS, MODE_ORDER, variant_palette  # noqa: F401  (re-exported)
from fwstudy.results import stats


def metric(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of one metric from trials that succeeded."""
    return table[(table["metric"] == name) & (table["status"] == "ok")].copy()


def fp32_only(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The fp32 trials, and a caption line naming the precisions left out: the bar and ratio
    panels compare the frameworks at one precision (rule 3); the precision axis (bf16, TF32)
    has its own table, ``figures.hardware.precision_table``."""
    if "precision" not in table:
        return table, ""
    precision = table["precision"].fillna("fp32")
    others = sorted(set(precision) - {"fp32"})
    if not others:
        return table, ""
    return table[precision == "fp32"], (
        f"fp32 trials only; {', '.join(others)} trials are in the precision table (notebook 11)"
    )


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
    colours = variant_palette(order)
    summary = summary.set_index("variant").loc[order]
    eager_really = {f"{f} {m}" for w, f, m in not_captured(table) if w == workload}
    x = range(len(order))
    err_low = (summary["median"] - summary["ci_low"]).fillna(0).clip(lower=0)
    err_high = (summary["ci_high"] - summary["median"]).fillna(0).clip(lower=0)
    bars = ax.bar(x, summary["median"], color=[colours[v] for v in order], alpha=0.9)
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
    drawn = summary.reset_index()[["framework", "mode", "median", "ci_low", "ci_high", "confidence", "n"]]
    plotted(ax, drawn.assign(metric=name, workload=workload,
                             captured=[v not in eager_really for v in order]),
            f"{name} per mode", ids=["workload", "metric", "framework", "mode", "captured"],
            values=["median", "ci_low", "ci_high", "confidence", "n"])
    trials = rows[["trial_id", "framework", "mode", "value"]].rename(columns={"value": "trial"})
    plotted(ax, trials.assign(metric=name, workload=workload), f"{name} per mode",
            ids=["workload", "metric", "framework", "mode", "trial_id"], values=["trial"])
    return True


def forest(ax: plt.Axes, labels: list[str], ratio: Iterable[float], low: Iterable[float],
           high: Iterable[float], texts: list[str], colours: list[str], xlabel: str) -> None:
    """A dot plot of ratios on a log axis, one row each: the dot at the ratio, whiskers at its
    interval, the line at 1. Each row's label (numbers, verdict) is written in a column right of
    the axes, level with its row: it can never sit on a whisker, the line at 1 or another label,
    however wide an interval is. A log axis keeps 0.5x and 2x equally far from 1."""
    ratio, low, high = (np.asarray(list(v), float) for v in (ratio, low, high))
    y = np.arange(len(labels))
    err = [np.nan_to_num(np.clip(ratio - low, 0, None)), np.nan_to_num(np.clip(high - ratio, 0, None))]
    ax.errorbar(ratio, y, xerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=2)
    ax.scatter(ratio, y, c=colours, s=36, zorder=3, edgecolors="black", linewidths=0.5)
    ax.axvline(1.0, **palette.REFERENCE_LINE, zorder=1)
    ax.set_xscale("log")
    span = np.concatenate([ratio, low, high, [1.0]])
    span = span[np.isfinite(span) & (span > 0)]
    ax.set_xlim(span.min() / 1.35, span.max() * 1.35)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel, fontsize=7)
    ax.grid(axis="x", which="major", alpha=0.3)
    for i, text in enumerate(texts):
        ax.annotate(text, (1.0, i), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", ha="left", va="center", fontsize=6, annotation_clip=False)


def ratio_panel(ax: plt.Axes, table: pd.DataFrame, name: str, workload: str, ylabel: str,
                confidence: float = 0.95, best: bool = True) -> None:
    """TF/PT ratio per shared mode (and best mode against best mode) as a dot plot on a log
    axis (``forest``): the ratio of the paired blocks and its interval; the numbers, confidence
    reached and verdict in a column beside each row, never on a whisker."""
    ratios = ratio_table(table, name, confidence, best=best)
    ratios = ratios[ratios["workload"] == workload].reset_index(drop=True)
    if ratios.empty:
        ax.text(0.5, 0.5, "no mode in both frameworks", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    texts = []
    for row in ratios.itertuples():
        interval = "" if pd.isna(row.ratio_ci_low) else f" [{row.ratio_ci_low:.2f}, {row.ratio_ci_high:.2f}] {_percent(row.confidence)}"
        texts.append(f"{row.ratio:.2f}×{interval}\n{row.faster}")
    labels = [f"best:\n{p}" if m == "best" else m for m, p in zip(ratios["mode"], ratios["picked"], strict=True)]
    colours = [palette.RATIO_BEST if m == "best" else palette.RATIO for m in ratios["mode"]]
    forest(ax, labels, ratios["ratio"], ratios["ratio_ci_low"], ratios["ratio_ci_high"], texts, colours,
           f"{ylabel} (log; < 1: TensorFlow lower)")
    plotted(ax, ratios.assign(metric=name, verdict=ratios["faster"]), f"TF/PT ratio of {name}",
            ids=["workload", "metric", "mode", "picked", "verdict"],
            values=["ratio", "ratio_ci_low", "ratio_ci_high", "confidence", "blocks"])


def wrap(text: str, fig: plt.Figure, fontsize: float) -> str:
    """Each line of ``text`` wrapped to the figure's width at ``fontsize`` (a character is
    about 0.55 em wide): a caption never runs off the saved figure."""
    width = max(40, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, width) if line else line for line in text.split("\n"))


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
    table, other_precisions = fp32_only(table)
    caption = "\n".join(c for c in (caption, left_out, other_precisions) if c)
    panels = [p for p in panels if not metric(table, p[1]).empty] or panels[:1]
    workloads = list(dict.fromkeys(metric(table, panels[0][1])["workload"])) or ["(none)"]
    failed = set(failed_parity(table))
    heights = [2.0 if kind == "ratio" else 3 for kind, _, _ in panels]
    fig = plt.figure(constrained_layout=True, figsize=(max(9.0, 3.6 * len(workloads) + 2.0), 1.4 * sum(heights) + 2.0))
    # One subfigure per row: a ratio row's labels (right of each dot plot) widen its own
    # columns only, not the bar panels above it.
    rows = np.atleast_1d(fig.subfigures(len(panels), 1, height_ratios=heights))
    for row, (kind, name, ylabel) in enumerate(panels):
        axes = np.atleast_1d(rows[row].subplots(1, len(workloads)))
        for column, workload in enumerate(workloads):
            ax = axes[column]
            if kind == "ratio":
                ratio_panel(ax, table, name, workload, ylabel, confidence)
            else:
                variant_panel(ax, table, name, workload, ylabel if column == 0 else "", confidence)
            if row == 0:
                if workload in failed:
                    ax.set_title(f"{workload}\nPARITY GATE FAILED: not a comparison", color=palette.FAILED, fontsize=9)
                else:
                    ax.set_title(workload)
    text = (
        f"{title}\nbars: median over trials · whiskers: distribution-free interval (sign test; "
        f"requested {_percent(confidence)}, reached level on each bar) · dots: trials · ratios over "
        f"paired blocks; a winner only when the interval excludes 1 and the effect exceeds the "
        f"A-vs-A noise floor\n" + environment_caption(table) + (f"\n{caption}" if caption else "")
    )
    fig.suptitle(wrap(text, fig, 8), fontsize=8)
    return fig


def grouped_bars(ax: plt.Axes, frame: pd.DataFrame, group: str, hue: str, value: str,
                  low: str | None = None, high: str | None = None, panel: str | None = None) -> None:
    """Bars of ``value`` per ``group`` on the x axis, one bar per ``hue``, optional CI;
    ``panel`` names them in the figure's CSV."""
    groups = list(dict.fromkeys(frame[group]))
    hues = list(dict.fromkeys(frame[hue]))
    width = 0.8 / max(1, len(hues))
    colours = variant_palette(hues) if all(h.split()[0] in FRAMEWORK_COLOURS for h in hues) else {}
    for i, name in enumerate(hues):
        mine = frame[frame[hue] == name].set_index(group).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(hues) - 1) / 2) * width
        ax.bar(x, mine[value], width, label=name, color=colours.get(name))
        if low and high:
            err = [(mine[value] - mine[low]).clip(lower=0).fillna(0), (mine[high] - mine[value]).clip(lower=0).fillna(0)]
            ax.errorbar(x, mine[value], yerr=err, fmt="none", ecolor="black", capsize=2)
    ax.set_xticks(np.arange(len(groups)), groups, fontsize=8)
    ax.legend(fontsize=7)
    ids = [group, hue, *(c for c in ("framework", "mode") if c in frame)]
    drawn = frame[[*dict.fromkeys(ids), value, *(c for c in (low, high) if c)]].dropna(subset=[value])
    plotted(ax, drawn, panel or value, ids=ids, values=[value, *(c for c in (low, high) if c)])


# --- what a figure plotted, and saving -----------------------------------------------------------

# Figure -> the long tables of the numbers its panels drew (weak: a closed figure takes its
# numbers with it).
_PLOTTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plotted(target: plt.Figure | plt.Axes, frame: pd.DataFrame, panel: str, ids: list[str],
            values: list[str]) -> None:
    """Record the numbers a panel draws, for the figure's CSV: one row per number, with the
    panel, the columns that identify it (``ids``), ``quantity`` (the column it came from) and
    ``value``. Call it where the numbers go to matplotlib, with what went there."""
    fig = target.get_figure(root=True)  # a figure is its own root; an axes' is its figure's
    ids = [c for c in dict.fromkeys(ids) if c in frame]
    values = [c for c in values if c in frame]
    if frame.empty or not values:
        return
    long = frame[ids + values].melt(id_vars=ids, value_vars=values, var_name="quantity", value_name="_value")
    long = long.rename(columns={"_value": "value"})
    long.insert(0, "panel", panel)
    _PLOTTED.setdefault(fig, []).append(long)


def plotted_numbers(fig: plt.Figure) -> pd.DataFrame:
    """Every number ``fig``'s panels recorded, as one long table: ``panel``, the identifying
    columns in the order panels first named them, ``quantity``, ``value``."""
    parts = _PLOTTED.get(fig, [])
    if not parts:
        return pd.DataFrame(columns=["panel", "quantity", "value"])
    numbers = pd.concat(parts, ignore_index=True)
    ids = [c for c in numbers.columns if c not in ("panel", "quantity", "value")]
    return numbers[["panel", *ids, "quantity", "value"]]


@functools.cache
def _git_describe() -> str:
    """``git describe`` of the checkout that drew the figure ("-dirty" when it has changes),
    or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always",
                               "--dirty", "--tags"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def provenance(name: str, profile: str) -> dict[str, str]:
    """What a saved figure says about itself: its profile, the commit of the code that drew it
    and the measuring code's version (``environment.code_version``, the one trial ids carry),
    and when it was drawn (UTC)."""
    from fwstudy.harness.environment import code_version

    return {
        "Title": name,
        "Profile": profile,
        "Commit": _git_describe(),
        "Code-Version": code_version(),
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Software": f"fwstudy figures, matplotlib {matplotlib.__version__}",
        "Numbers": f"{name}.csv",
    }


def read_png_metadata(path: Path | str) -> dict[str, str]:
    """The text chunks of a saved PNG (what ``provenance`` wrote)."""
    from PIL import Image

    with Image.open(path) as image:
        return dict(image.text)


def save_figure(fig: plt.Figure, directory: Path | str, name: str, profile: str | None = None) -> list[Path]:
    """``<name>.png``, ``<name>.svg`` and ``<name>.csv`` (the numbers drawn, ``plotted_numbers``)
    under ``directory``. The PNG's metadata names the profile (``profile``, else the folder's
    name: figures are saved under ``figures/<profile>/``), the commit and the date; the SVG's
    the same in its Dublin Core fields. A figure that drew no numbers (every trial of it
    failed: its panels say so) gets a CSV of the header alone, and its metadata says so."""
    directory = Path(directory)
    numbers = plotted_numbers(fig)
    directory.mkdir(parents=True, exist_ok=True)
    meta = provenance(name, profile or directory.name)
    if numbers.empty:
        meta["Numbers"] = f"{name}.csv: none drawn"
    paths = [directory / f"{name}.png", directory / f"{name}.svg", directory / f"{name}.csv"]
    fig.savefig(paths[0], dpi=150, metadata=meta)
    description = " · ".join(f"{k}: {v}" for k, v in meta.items() if k not in ("Title", "Date"))
    fig.savefig(paths[1], metadata={"Title": name, "Date": meta["Date"], "Description": description,
                                    "Creator": meta["Software"]})
    numbers.to_csv(paths[2], index=False)
    return paths
