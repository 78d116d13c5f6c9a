"""F3: the trials of the scalability figure, derived from a profile, and their efficiency table.

Sweeps vary one thing around the workload's default point (its default batch, all the
profile's threads, its default width) so that every curve crosses the others at that point:
batch size, thread count, and the ``mlp`` hidden width. Data-parallel scaling runs 1..N
workers with a fixed number of threads each, so that N workers hold N times the cores of one
and the ideal is N times the throughput; past the machine's core count the workers share cores,
and the figure draws that line.

Efficiency is relative to the smallest point of each curve: speedup = metric(x) / metric(x0),
efficiency = speedup / ideal, where the ideal is x / x0 for threads and workers (more cores),
1 for batch size (same cores: a larger batch is free throughput or nothing) and 1 for width
measured in achieved GFLOP/s (a wider layer is more work per sample, so samples/s must drop;
FLOP/s need not).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig, default_threads, modes_for
from fwstudy.figures import common, palette, trials
from fwstudy.results import stats

NAME = "scalability"
WORKLOAD = "mlp"  # the width sweep varies the mlp's hidden size
WIDTH_PARAMETER = "hidden"
SWEEPS = ("batch", "threads", "width")
DATA_PARALLEL = ("strong", "weak")
# sweep -> (label of x, metric whose ratio is the speedup, ideal grows with x)
BASIS: dict[str, tuple[str, str, bool]] = {
    "batch": ("batch size", "throughput_samples_per_s", False),
    "threads": ("threads", "throughput_samples_per_s", True),
    "width": ("mlp hidden width", "achieved_gflops", False),
    "strong": ("workers", "throughput_samples_per_s", True),
    "weak": ("workers", "throughput_samples_per_s", True),
}


@dataclass(frozen=True)
class Point:
    """One trial's place in F3: which curve (``sweep``) and where on it (``x``)."""

    sweep: str
    x: int
    config: TrialConfig


def thread_counts(profile: Profile, cores: int | None = None) -> list[int]:
    """The profile's list, else 1, 2, 4, ... below all cores, and all cores."""
    if profile.sweep_threads:
        return sorted(set(profile.sweep_threads))
    cores = cores or profile.threads or default_threads()
    counts = [1]
    while counts[-1] * 2 < cores:
        counts.append(counts[-1] * 2)
    return sorted({*counts, cores})


def _modes(profile: Profile, names: list[str], framework: str) -> list[str]:
    return [m for m in names if m in modes_for(framework, WORKLOAD)]


def _base(profile: Profile, framework: str, mode: str, repeat: int, **changes) -> TrialConfig:
    fields = dict(
        workload=WORKLOAD, framework=framework, mode=mode,
        steps=profile.scaling_steps or profile.steps, warmup=profile.warmup,
        threads=profile.threads or default_threads(), device=profile.device, repeat=repeat,
        timeout_s=profile.trial_timeout_s,
    )
    # The sweeps cross at the profile's size of the workload (workload_sizes; a GPU's is larger).
    size = trials.sized(profile, WORKLOAD)
    changes = {**changes, "workload_params": {**size["workload_params"], **changes.get("workload_params", {})}}
    changes.setdefault("batch_size", size["batch_size"])
    fields.update(changes)
    return TrialConfig(**fields)


def sweep_points(profile: Profile) -> list[Point]:
    """Batch, thread and width sweeps for each framework in each of ``sweep_modes`` it has.

    Repeats outermost and the frameworks adjacent (rule 7), as in ``fwstudy.figures.study``."""
    points = []
    for repeat in range(profile.scaling_repeats or profile.repeats):
        for sweep, values in (
            ("batch", sorted(set(profile.sweep_batch_sizes))),
            ("threads", thread_counts(profile)),
            ("width", sorted(set(profile.sweep_widths))),
        ):
            for x in values:
                for mode in profile.sweep_modes:
                    for framework in profile.frameworks:
                        if mode not in _modes(profile, profile.sweep_modes, framework):
                            continue
                        change = {
                            "batch": {"batch_size": x},
                            "threads": {"threads": x},
                            "width": {"workload_params": {WIDTH_PARAMETER: x}},
                        }[sweep]
                        points.append(Point(sweep, x, _base(profile, framework, mode, repeat, **change)))
    return points


def data_parallel_points(profile: Profile) -> list[Point]:
    """1..N workers with ``dp_threads_per_worker`` threads each, strong and weak.

    The batch is the workload's default: the global batch under strong scaling, each
    worker's under weak scaling, so that one worker is the same trial for both curves (and
    the same trial as the thread sweep's point at that thread count)."""
    points = []
    per_worker = profile.dp_threads_per_worker
    for repeat in range(profile.dp_repeats or profile.scaling_repeats or profile.repeats):
        for scaling in profile.dp_scalings:
            for workers in sorted(set(profile.dp_workers)):
                for mode in profile.dp_modes:
                    for framework in profile.frameworks:
                        if mode not in _modes(profile, profile.dp_modes, framework):
                            continue
                        config = _base(
                            profile, framework, mode, repeat, threads=per_worker * workers,
                            workers=workers, scaling=scaling if workers > 1 else "strong",
                        )
                        points.append(Point(scaling, workers, config))
    return points


def unique_configs(points: Iterable[Point]) -> list[TrialConfig]:
    """Each trial once, in first-seen order: a point shared by several curves (the default
    point of every sweep, one worker of both scalings) is measured once."""
    unique: dict[str, TrialConfig] = {}
    for p in points:
        unique.setdefault(json.dumps(p.config.to_dict(), sort_keys=True, default=list), p.config)
    return list(unique.values())


def sweep_configs(profile: Profile) -> list[TrialConfig]:
    return unique_configs(sweep_points(profile))


def data_parallel_configs(profile: Profile) -> list[TrialConfig]:
    return unique_configs(data_parallel_points(profile))


def configs(profile: Profile) -> list[TrialConfig]:
    """Every F3 trial once: the sweeps, then data-parallel scaling."""
    return unique_configs([*sweep_points(profile), *data_parallel_points(profile)])


def points_frame(points: Iterable[Point]) -> pd.DataFrame:
    """One row per (curve, point, trial): joins the tidy results table on ``trial_id``."""
    from fwstudy.harness.environment import code_version

    version = code_version()
    rows = [
        {
            "sweep": p.sweep, "x": p.x, "framework": p.config.framework, "mode": p.config.mode,
            "workers": p.config.workers, "threads": p.config.threads,
            "threads_per_worker": max(1, p.config.threads // p.config.workers),
            "repeat": p.config.repeat, "trial_id": p.config.identity(version),
        }
        for p in points
    ]
    return pd.DataFrame(rows).drop_duplicates(["sweep", "x", "trial_id"])


def _values(table: pd.DataFrame, trial_ids: Iterable[str], metric: str) -> pd.Series:
    rows = table[(table["metric"] == metric) & (table["status"] == "ok")]
    return rows.loc[rows["trial_id"].isin(set(trial_ids)), "value"].dropna()


def efficiency(table: pd.DataFrame, points: Iterable[Point]) -> pd.DataFrame:
    """Per curve (sweep, framework, mode) and point: throughput (median over repeats, 95%
    distribution-free interval), speedup vs the curve's smallest successful point and efficiency =
    speedup / ideal, each with a distribution-free interval (``stats.ratio_ci``); data-parallel points also
    carry their communication times. Failed points stay as rows with n = 0."""
    frame = points_frame(points)
    rows = []
    for (sweep, framework, mode), curve in frame.groupby(["sweep", "framework", "mode"], sort=False):
        label, basis, scales = BASIS[sweep]
        ids = {x: group["trial_id"].tolist() for x, group in curve.groupby("x")}
        ok = [x for x in sorted(ids) if len(_values(table, ids[x], basis))]
        x0 = ok[0] if ok else None
        base_values = _values(table, ids[x0], basis) if x0 is not None else pd.Series(dtype=float)
        for x in sorted(ids):
            throughput = _values(table, ids[x], "throughput_samples_per_s")
            values = _values(table, ids[x], basis)
            median, low, high = stats.median_ci(throughput)
            ideal = (x / x0 if scales else 1.0) if x0 else float("nan")
            speedup, s_low, s_high = stats.ratio_ci(values, base_values)
            rows.append({
                "sweep": sweep, "x_label": label, "framework": framework, "mode": mode, "x": x,
                "n": len(throughput), "throughput": median, "throughput_ci_low": low,
                "throughput_ci_high": high, "basis": basis, "baseline_x": x0,
                "speedup": speedup, "ideal": ideal, "efficiency": speedup / ideal,
                "efficiency_ci_low": s_low / ideal, "efficiency_ci_high": s_high / ideal,
                "achieved_gflops": _values(table, ids[x], "achieved_gflops").median(),
                "allreduce_ms": _values(table, ids[x], "allreduce_ms_median").median(),
                "allreduce_isolated_ms": _values(table, ids[x], "allreduce_isolated_ms_median").median(),
            })
    columns = ["sweep", "x_label", "framework", "mode", "x", "n", "throughput", "throughput_ci_low",
               "throughput_ci_high", "basis", "baseline_x", "speedup", "ideal", "efficiency",
               "efficiency_ci_low", "efficiency_ci_high", "achieved_gflops", "allreduce_ms",
               "allreduce_isolated_ms"]
    return pd.DataFrame(rows, columns=columns)


def machine_cores(table: pd.DataFrame) -> int | None:
    """The logical cores of the machine that measured the table (from a record's env)."""
    ok = table[table["status"] == "ok"]
    for env in ok.get("env", pd.Series(dtype=object)).dropna():
        cores = json.loads(env).get("logical_cores")
        if cores:
            return int(cores)
    return None



def workers_vs_threads(eff: pd.DataFrame, threads_per_worker: int) -> pd.DataFrame:
    """Strong scaling on one host against the thread sweep: N workers of t threads each
    against one process with N x t threads, on the same global batch and the same cores. A
    ratio below 1 means the cores do more as threads of one process than as workers."""
    strong = eff[eff["sweep"] == "strong"]
    threads = eff[eff["sweep"] == "threads"].set_index(["framework", "mode", "x"])["throughput"]
    rows = []
    for row in strong.itertuples():
        key = (row.framework, row.mode, row.x * threads_per_worker)
        if row.x > 1 and key in threads.index:
            single = threads.loc[key]
            rows.append({"framework": row.framework, "mode": row.mode, "workers": row.x,
                         "threads_total": key[2], "workers_throughput": row.throughput,
                         "one_process_throughput": single, "ratio": row.throughput / single})
    return pd.DataFrame(rows, columns=["framework", "mode", "workers", "threads_total",
                                       "workers_throughput", "one_process_throughput", "ratio"])


# Drawing: from the efficiency table above (itself built from the tidy results only).

MODE_STYLES = palette.MODE_STYLES
SCALING_STYLES = palette.SCALING_STYLES
MARKERS = palette.SCALING_MARKERS


def _variant(framework: str, mode: str) -> str:
    return f"{framework} {mode}"


def _palette(table: pd.DataFrame) -> dict[str, str]:
    variants = sorted({_variant(f, m) for f, m in zip(table["framework"], table["mode"], strict=True)},
                      key=lambda v: (v.split()[0], common.MODE_ORDER.index(v.split()[1])))
    return palette.variant_palette(variants)


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
    common.plotted(ax, rows.assign(curve=label), column, ids=["sweep", "x_label", "curve", "framework", "mode", "x"],
                   values=[column, *(err or ())])


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
    # Left of the line, inside the axes: the line sits at the right end of most sweeps, and a
    # label right of it ran into the next panel.
    ax.annotate(text, (x, 1), xycoords=("data", "axes fraction"), xytext=(-3, -10),
                textcoords="offset points", fontsize=7, color="0.3", ha="right")


def _empty(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def sweep_panels(axes: list[plt.Axes], eff: pd.DataFrame, sweep: str, colours: dict[str, str],
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
        _curve(top, curve, "throughput", colours[variant], style, "o", variant,
               ("throughput_ci_low", "throughput_ci_high"))
        _curve(bottom, curve, "efficiency", colours[variant], style, "o", variant,
               ("efficiency_ci_low", "efficiency_ci_high"))
    label = rows["x_label"].iloc[0]
    _log_if_wide(top, rows["throughput"])
    top.set_title(f"throughput vs {label}", fontsize=9)
    top.set_ylabel("samples/s (median)")
    basis = rows["basis"].iloc[0]
    bottom.axhline(1.0, **palette.REFERENCE_LINE)
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


def data_parallel_panels(axes: list[plt.Axes], eff: pd.DataFrame, colours: dict[str, str],
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
        _curve(throughput, curve, "throughput", colours[variant], style, marker, label,
               ("throughput_ci_low", "throughput_ci_high"))
        _curve(efficiency, curve, "efficiency", colours[variant], style, marker, label,
               ("efficiency_ci_low", "efficiency_ci_high"))
        multi = curve[curve["x"] > 1]
        _curve(comm, multi, "allreduce_isolated_ms", colours[variant], style, marker,
               f"{label}: all-reduce alone")
        _curve(comm, multi, "allreduce_ms", colours[variant], style, "x",
               f"{label}: in-step (DDP hook)")
    _log_if_wide(throughput, rows["throughput"])
    throughput.set_title("data parallel: global throughput vs workers", fontsize=9)
    throughput.set_ylabel("samples/s (median)")
    efficiency.set_title("scaling efficiency = throughput / (N x one worker's)", fontsize=9)
    efficiency.axhline(1.0, **palette.REFERENCE_LINE)
    efficiency.set_ylabel("efficiency")
    comm.set_title("gradient all-reduce time per step\n(alone: same method both sides; in-step: PyTorch only,\n"
                   "TensorFlow exposes no in-step communication time)", fontsize=8)
    comm.set_ylabel("ms (median)")
    limit = cores / threads_per_worker if cores else None
    for ax in axes:
        ax.set_xlabel(f"workers ({threads_per_worker} thread(s) each)")
        _log2_axis(ax, rows["x"])
        _cores_line(ax, limit, f"workers x threads = {cores} cores")
    if not comm.lines:
        _empty(comm, "no multi-worker trial succeeded")


def draw(table: pd.DataFrame, eff: pd.DataFrame, cores: int | None,
                       threads_per_worker: int = 1) -> plt.Figure:
    """F3: throughput and efficiency along the batch, thread and width sweeps (per framework
    and mode), and data-parallel throughput, efficiency and all-reduce time vs workers."""
    colours = _palette(eff) if len(eff) else {}
    fig, axes = plt.subplots(3, 3, figsize=(15, 12), constrained_layout=True)
    for column, sweep in enumerate(("batch", "threads", "width")):
        sweep_panels([axes[0, column], axes[1, column]], eff, sweep, colours, cores)
    data_parallel_panels(list(axes[2]), eff, colours, cores, threads_per_worker)
    for ax in axes.flat:
        if ax.lines:
            ax.legend(fontsize=6, loc="best")
            ax.grid(True, alpha=0.3)
    fig.suptitle(
        "F3 · scalability: sweeps around the default mlp point, and data-parallel training\n"
        "points: median over trials · bars: distribution-free interval (n > 1; its confidence grows with n) · efficiency relative to "
        "each curve's smallest point\n" + common.environment_caption(table),
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
