"""F6 · deployment and edge: what each export path costs (size, cold start, latency) and
whether its artifact computes the same function (drift against its framework's eager model,
int8 top-1 accuracy against fp32 from the same trained weights).

Latency here is this host's x86 CPU, not a phone: size and int8 accuracy carry over to an edge
device, latency and cold start do not (the caption says so)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.deployment import catalog, runs
from fwstudy.figures import palette
from fwstudy.figures.common import plotted

NAME = "deployment"
CLAIMS = [
    "TensorFlow is stronger for production and edge deployment (paper I, IV): its paths against "
    "PyTorch's, in artifact size, cold start, latency and int8 accuracy.",
    "An exported artifact computes the same function as the eager model it came from (drift).",
]
COLUMNS = ["workload", "path", "what", "framework", "runtime", "precision", "status", "error", "size_mb", "export_s",
           "runtime_import_s", "load_s", "first_prediction_s", "cold_start_s", "latency_ms_p50", "latency_ms_p99",
           "latency_calls", "throughput_samples_per_s", "large_batch", "drift_max_abs", "reference_max_abs", "accuracy",
           "eager_accuracy", "fp32_accuracy", "accuracy_delta", "frameworks_loaded"]


def configs(profile: Profile) -> list[dict]:
    """The export jobs this figure needs (training runs come first, one per workload)."""
    return [{"workload": w, "path": p} for w in profile.deployment_workloads for p in profile.deployment_paths
            if catalog.PATHS[p].framework in profile.frameworks]


def measure(profile: Profile) -> pd.DataFrame:
    return runs.measure_deployment(profile)


def analyse(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Numbers only: one row per workload × path (every column of ``COLUMNS``), the training
    runs, and the failed paths with their reasons. An int8 path's ``fp32_accuracy`` is that of
    its fp32 counterpart's artifact when measured, else its eager model's (same weights)."""
    exports = table[table["task"] == "deployment_export"].copy() if len(table) else table.copy()
    train = table[table["task"] == "deployment_train"].copy() if len(table) else table.copy()
    for column in COLUMNS:
        if column not in exports:
            exports[column] = np.nan
    exports["what"] = exports["path"].map(lambda p: catalog.PATHS[p].what)
    exports["runtime"] = exports["path"].map(lambda p: catalog.PATHS[p].runtime)
    exports["precision"] = exports["path"].map(lambda p: catalog.PATHS[p].precision)
    accuracy = {(r.workload, r.path): r.accuracy for r in exports.itertuples() if r.status == "ok"}

    def fp32(row) -> float:
        base = catalog.PATHS[row.path].fp32
        if base is None:
            return row.accuracy
        return accuracy.get((row.workload, base), row.eager_accuracy)

    exports["fp32_accuracy"] = [fp32(r) for r in exports.itertuples()]
    exports["accuracy_delta"] = exports["accuracy"] - exports["fp32_accuracy"]
    order = {name: i for i, name in enumerate(catalog.PATHS)}
    exports = exports.sort_values(["workload", "path"], key=lambda s: s.map(order) if s.name == "path" else s)
    paths = exports[COLUMNS].reset_index(drop=True)
    failed = paths[paths["status"] != "ok"][["workload", "path", "status", "error"]].reset_index(drop=True)
    keep = [c for c in ("workload", "status", "error", "test_accuracy", "train_s", "epochs", "dataset") if c in train]
    return {"paths": paths, "train": train[keep].reset_index(drop=True), "failed": failed,
            "environment": _environment(table)}


def _environment(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in ("host", "cpu_model", "threads", "torch_version", "tensorflow_version", "code_version") if c in table]
    return table[keep].drop_duplicates().reset_index(drop=True) if keep else pd.DataFrame()


def caption(numbers: dict[str, pd.DataFrame]) -> str:
    env = numbers["environment"]
    first = env.iloc[0] if len(env) else {}
    paths = numbers["paths"]
    ok = int((paths["status"] == "ok").sum())
    return (f"{ok}/{len(paths)} paths ok; latency and cold start on this host's x86 CPU "
            f"({first.get('cpu_model', '?')}, {first.get('threads', '?')} threads), not a phone: size and "
            f"int8 accuracy carry over to an edge device, latency does not. torch {first.get('torch_version', '?')}, "
            f"tensorflow {first.get('tensorflow_version', '?')}, code {first.get('code_version', '?')}; "
            f"n = {int(paths['latency_calls'].max()) if 'latency_calls' in paths and paths['latency_calls'].notna().any() else '?'} "
            "batch-1 calls per artifact. " + COLD_START_NOTE)


# Measured for issue 12 (cProfile of aoti_load_package, and interleaved threads=1/2 blocks):
# what a reader must know to read two of the bars.
COLD_START_NOTE = (
    "AOTInductor's 10-13 s cold start is torch's CPU-feature check on load (it compiles and runs ~10 "
    "test programs with g++, cached per inductor cache folder, fresh in every child); extracting the "
    "package and loading its .so takes ~8 ms. PyTorch-runtime latencies at 2 threads (torch.export, "
    "PT2E) stall on a loaded host (an OpenMP barrier waits for a preempted thread); onnxruntime, "
    "LiteRT and AOTI stay flat."
)


def _labels(rows: pd.DataFrame, workloads: int) -> list[str]:
    return [f"{r.workload} · {r.path}" if workloads > 1 else r.path for r in rows.itertuples()]


def draw(numbers: dict[str, pd.DataFrame]) -> plt.Figure:
    """Four panels over the paths that succeeded (one row each, coloured by framework, int8
    hatched): size on disk, cold start (runtime import, load, first prediction), batch-1 p50
    with p99, and top-1 accuracy of each artifact beside its fp32 counterpart's."""
    paths = numbers["paths"]
    rows = paths[paths["status"] == "ok"].reset_index(drop=True)
    height = max(3.5, 0.32 * len(rows) + 1.8)
    fig, axes = plt.subplots(1, 4, figsize=(17, height), sharey=True)
    y = np.arange(len(rows))
    colours = [palette.colour(f) for f in rows["framework"]]
    hatches = [palette.PRECISION_HATCHES.get(p, "") for p in rows["precision"]]

    def bars(ax, values, left=None, colour=None, label=None, alpha=1.0):
        handles = ax.barh(y, values, left=left, color=colour if colour is not None else colours,
                          edgecolor="white", alpha=alpha, label=label)
        for bar, hatch in zip(handles, hatches, strict=True):
            bar.set_hatch(hatch)
        return handles

    bars(axes[0], rows["size_mb"])
    axes[0].set_xlabel("artifact size on disk (MiB)")
    left = np.zeros(len(rows))
    for column, alpha in (("runtime_import_s", 0.35), ("load_s", 0.65), ("first_prediction_s", 1.0)):
        values = rows[column].fillna(0).to_numpy(float)
        bars(axes[1], values, left=left, alpha=alpha)
        left = left + values
    axes[1].set_xlabel("cold start in a fresh process (s):\nruntime import (light), load, first prediction (dark)")
    axes[2].scatter(rows["latency_ms_p50"], y, c=colours, marker="o", zorder=3, label="p50")
    axes[2].scatter(rows["latency_ms_p99"], y, c=colours, marker="|", s=120, zorder=3, label="p99")
    axes[2].hlines(y, rows["latency_ms_p50"], rows["latency_ms_p99"], colors=colours, linewidth=1)
    axes[2].set_xscale("log")
    axes[2].set_xlabel("batch-1 latency (ms, log): p50 ● to p99 |")
    axes[3].scatter(rows["fp32_accuracy"], y, facecolors="none", edgecolors=colours, s=60)
    axes[3].scatter(rows["accuracy"], y, c=colours, marker="x")
    axes[3].set_xlabel("top-1 accuracy, held-out digits:\nthis artifact ×, its fp32 counterpart ○")
    axes[3].xaxis.set_major_locator(plt.MaxNLocator(4))  # accuracies close together: long tick labels
    axes[0].set_yticks(y, _labels(rows, rows["workload"].nunique()))
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette.colour(f)) for f in palette.FRAMEWORKS]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="grey", hatch="//"))
    fig.legend(handles, ["TensorFlow paths", "PyTorch paths", "int8"], loc="upper right", ncol=3, frameon=False)
    fig.suptitle("F6 · deployment: export paths, size, cold start, latency and int8 accuracy", x=0.01, ha="left")
    fig.text(0.01, 0.005, caption(numbers), fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    plotted(fig, rows, "export paths that succeeded", ids=["workload", "path", "framework", "runtime", "precision"],
            values=["size_mb", "runtime_import_s", "load_s", "first_prediction_s", "latency_ms_p50", "latency_ms_p99",
                    "accuracy", "fp32_accuracy"])
    return fig
