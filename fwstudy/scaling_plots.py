"""F3 figure: the sweeps and data-parallel scaling, drawn from the efficiency table of
``fwstudy.scaling`` (itself built from the tidy results only)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # as fwstudy.plots: files first; JupyterLab still shows the returned Figure
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fwstudy import plots  # noqa: E402

MODE_STYLES = {"eager": "-", "graph": ":", "compiled": "--", "fit": "-."}
SCALING_STYLES = {"strong": "-", "weak": "--"}
MARKERS = {"strong": "o", "weak": "s"}


def _variant(framework: str, mode: str) -> str:
    return f"{framework} {mode}"


def _palette(table: pd.DataFrame) -> dict[str, str]:
    variants = sorted({_variant(f, m) for f, m in zip(table["framework"], table["mode"], strict=True)},
                      key=lambda v: (v.split()[0], plots.MODE_ORDER.index(v.split()[1])))
    return plots.variant_palette(variants)


def _errors(rows: pd.DataFrame, column: str, low: str, high: str):
    if rows[low].isna().all():
        return None
    return [(rows[column] - rows[low]).fillna(0).clip(lower=0),
            (rows[high] - rows[column]).fillna(0).clip(lower=0)]


def _curve(ax: plt.Axes, rows: pd.DataFrame, column: str, colour: str, style: str, marker: str,
           label: str, err: tuple[str, str] | None = None) -> None:
    rows = rows.sort_values("x").dropna(subset=[column])
    if rows.empty:
        return
    yerr = _errors(rows, column, *err) if err else None
    ax.errorbar(rows["x"], rows[column], yerr=yerr, color=colour, linestyle=style, marker=marker,
                markersize=4, capsize=2, label=label)


def _log2_axis(ax: plt.Axes, xs: pd.Series) -> None:
    values = sorted({int(x) for x in xs.dropna()})
    if len(values) > 1 and values[-1] / values[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.minorticks_off()


def _log_if_wide(ax: plt.Axes, values: pd.Series) -> None:
    """Curves an order of magnitude apart stay readable on a log axis."""
    values = values.dropna()
    if len(values) and values.min() > 0 and values.max() / values.min() > 20:
        ax.set_yscale("log")


def _cores_line(ax: plt.Axes, x: float | None, text: str) -> None:
    if x is None or not math.isfinite(x):
        return
    left, right = ax.get_xlim()
    ax.set_xlim(min(left, x * 0.9), max(right, x * 1.1))  # keep the line in view
    ax.axvline(x, color="0.3", linestyle=":", linewidth=1)
    ax.annotate(text, (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                textcoords="offset points", fontsize=7, color="0.3")


def _empty(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def sweep_panels(axes: list[plt.Axes], eff: pd.DataFrame, sweep: str, palette: dict[str, str],
                 cores: int | None) -> None:
    """Throughput (top) and speedup or efficiency (bottom) along one sweep."""
    rows = eff[eff["sweep"] == sweep]
    top, bottom = axes
    if rows["throughput"].notna().sum() == 0:
        _empty(top, f"no successful {sweep} trials")
        _empty(bottom, "")
        return
    for (framework, mode), curve in rows.groupby(["framework", "mode"], sort=False):
        variant = _variant(framework, mode)
        style = MODE_STYLES.get(mode, "-")
        _curve(top, curve, "throughput", palette[variant], style, "o", variant,
               ("throughput_ci_low", "throughput_ci_high"))
        _curve(bottom, curve, "efficiency", palette[variant], style, "o", variant,
               ("efficiency_ci_low", "efficiency_ci_high"))
    label = rows["x_label"].iloc[0]
    _log_if_wide(top, rows["throughput"])
    top.set_title(f"throughput vs {label}", fontsize=9)
    top.set_ylabel("samples/s (median)")
    basis = rows["basis"].iloc[0]
    bottom.axhline(1.0, color="black", linewidth=0.8)
    if sweep == "threads":
        bottom.set_ylabel("efficiency = speedup / (t / t0)")
    elif basis == "achieved_gflops":
        bottom.set_ylabel("GFLOP/s relative to smallest")
    else:
        bottom.set_ylabel("throughput relative to smallest")
    bottom.set_xlabel(label)
    for ax in axes:
        _log2_axis(ax, rows["x"])
        if sweep == "threads":
            _cores_line(ax, cores, f"{cores} cores")


def data_parallel_panels(axes: list[plt.Axes], eff: pd.DataFrame, palette: dict[str, str],
                         cores: int | None, threads_per_worker: int) -> None:
    """Throughput and efficiency vs workers (strong solid, weak dashed), and the all-reduce
    times; the dotted line marks workers x threads = the machine's cores."""
    rows = eff[eff["sweep"].isin(["strong", "weak"])]
    throughput, efficiency, comm = axes
    if rows["throughput"].notna().sum() == 0:
        for ax in axes:
            _empty(ax, "no successful data-parallel trials")
        return
    for (sweep, framework, mode), curve in rows.groupby(["sweep", "framework", "mode"], sort=False):
        variant = _variant(framework, mode)
        label = f"{variant}, {sweep}"
        style, marker = SCALING_STYLES[sweep], MARKERS[sweep]
        _curve(throughput, curve, "throughput", palette[variant], style, marker, label,
               ("throughput_ci_low", "throughput_ci_high"))
        _curve(efficiency, curve, "efficiency", palette[variant], style, marker, label,
               ("efficiency_ci_low", "efficiency_ci_high"))
        multi = curve[curve["x"] > 1]
        _curve(comm, multi, "allreduce_isolated_ms", palette[variant], style, marker,
               f"{label}: all-reduce alone")
        _curve(comm, multi, "allreduce_ms", palette[variant], style, "x",
               f"{label}: in-step (DDP hook)")
    _log_if_wide(throughput, rows["throughput"])
    throughput.set_title("data parallel: global throughput vs workers", fontsize=9)
    throughput.set_ylabel("samples/s (median)")
    efficiency.set_title("scaling efficiency = throughput / (N x one worker's)", fontsize=9)
    efficiency.axhline(1.0, color="black", linewidth=0.8)
    efficiency.set_ylabel("efficiency")
    comm.set_title("gradient all-reduce time per step", fontsize=9)
    comm.set_ylabel("ms (median)")
    limit = cores / threads_per_worker if cores else None
    for ax in axes:
        ax.set_xlabel(f"workers ({threads_per_worker} thread(s) each)")
        _log2_axis(ax, rows["x"])
        _cores_line(ax, limit, f"workers x threads = {cores} cores")
    if not comm.lines:
        _empty(comm, "no multi-worker trial succeeded")


def scalability_figure(table: pd.DataFrame, eff: pd.DataFrame, cores: int | None,
                       threads_per_worker: int = 1) -> plt.Figure:
    """F3: throughput and efficiency along the batch, thread and width sweeps (per framework
    and mode), and data-parallel throughput, efficiency and all-reduce time vs workers."""
    palette = _palette(eff) if len(eff) else {}
    fig, axes = plt.subplots(3, 3, figsize=(15, 12), constrained_layout=True)
    for column, sweep in enumerate(("batch", "threads", "width")):
        sweep_panels([axes[0, column], axes[1, column]], eff, sweep, palette, cores)
    data_parallel_panels(list(axes[2]), eff, palette, cores, threads_per_worker)
    for ax in axes.flat:
        if ax.lines:
            ax.legend(fontsize=6, loc="best")
            ax.grid(True, alpha=0.3)
    fig.suptitle(
        "F3 · scalability: sweeps around the default mlp point, and data-parallel training\n"
        "points: median over trials · bars: 95% bootstrap CI (n > 1) · efficiency relative to "
        "each curve's smallest point\n" + plots.environment_caption(table),
        fontsize=9,
    )
    return fig


def summary_text(eff: pd.DataFrame, workers: int = 2) -> str:
    """One line per framework and mode: the scaling efficiency at ``workers`` workers."""
    rows = eff[eff["sweep"].isin(["strong", "weak"]) & (eff["x"] == workers)]
    lines = []
    for row in rows.itertuples():
        value = "failed" if np.isnan(row.efficiency) else f"{row.efficiency:.2f}"
        lines.append(f"{row.framework} {row.mode} {row.sweep} scaling, {workers} workers: "
                     f"efficiency {value}, {row.throughput:.0f} samples/s")
    return "\n".join(lines)
