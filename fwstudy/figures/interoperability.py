"""F7 · interoperability: from one set of shared weights, do PyTorch, TensorFlow, both ONNX
exports run by onnxruntime, and the same Keras model on Keras' torch backend compute the same
function? The paper's "standardized format" future scope, tested: a heat map of pairwise max
abs differences of the logits per workload, judged by the parity gate's forward tolerance
(1e-4, rule 6), and what each exporter wrote (opset, nodes, op types)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.deployment import runs
from fwstudy.deployment.interop import FORWARD_TOLERANCE
from fwstudy.figures import palette
from fwstudy.figures.common import plotted

NAME = "interoperability"
CLAIMS = [
    "ONNX is a standardized format: both frameworks' exports compute the same function in a "
    "common runtime (paper V, future scope).",
    "Keras 3 runs one model on either backend with the same results.",
]


def configs(profile: Profile) -> list[dict]:
    return [{"workload": w} for w in profile.interop_workloads]


def measure(profile: Profile) -> list[dict]:
    return runs.measure_interop(profile)


def analyse(results: list[dict]) -> dict[str, pd.DataFrame]:
    """Numbers only: the pairwise matrix per workload (long form), each pair's verdict against
    the tolerance, the exporters' graph statistics, Keras' two backends, and what failed: a
    whole run, or one side of it (its row then missing from the matrix), with the reason."""
    pairs, graphs, keras, failed = [], [], [], []
    for result in results:
        workload = result["workload"]
        if result.get("status") != "ok":
            failed.append({"workload": workload, "side": "all", "status": result.get("status"),
                           "error": result.get("error")})
        else:
            for side, error in (result.get("side_errors") or {}).items():  # e.g. Keras on torch
                failed.append({"workload": workload, "side": side, "status": "failed", "error": error})
        for a, row in (result.get("matrix") or {}).items():
            for b, value in row.items():
                pairs.append({"workload": workload, "a": a, "b": b, "max_abs_diff": value,
                              "within_tolerance": value <= FORWARD_TOLERANCE, "logit_scale": result.get("logit_scale")})
        for exporter, stats in (result.get("graphs") or {}).items():
            if stats:
                graphs.append({"workload": workload, "exporter": exporter, "opset": stats["opset"],
                               "nodes": stats["nodes"], "size_kb": stats["size_bytes"] / 1024,
                               "op_types": ", ".join(f"{k}×{v}" for k, v in stats["op_types"].items()),
                               "producer": stats.get("producer")})
        for backend, info in (result.get("keras") or {}).items():
            keras.append({"workload": workload, "backend": backend, **(info or {})})
    pairs = pd.DataFrame(pairs, columns=["workload", "a", "b", "max_abs_diff", "within_tolerance", "logit_scale"])
    off = pairs[pairs["a"] < pairs["b"]]
    return {"pairs": pairs, "outside": off[~off["within_tolerance"]].reset_index(drop=True),
            "graphs": pd.DataFrame(graphs), "keras": pd.DataFrame(keras), "failed": pd.DataFrame(failed)}


def draw(numbers: dict[str, pd.DataFrame]) -> plt.Figure:
    """One heat map per workload (log10 of the max abs difference, each cell annotated; a cell
    above the tolerance in red), then the exporters' node counts."""
    pairs = numbers["pairs"]
    workloads = list(dict.fromkeys(pairs["workload"]))
    fig, axes = plt.subplots(1, len(workloads) + 1, figsize=(4.6 * len(workloads) + 4.5, 5.2),
                             gridspec_kw={"width_ratios": [1] * len(workloads) + [0.9]}, layout="constrained")
    axes = np.atleast_1d(axes)
    floor = 1e-9  # below every float32 logit difference worth reading; exact zeros drawn here
    image = None
    for ax, workload in zip(axes, workloads, strict=False):
        rows = pairs[pairs["workload"] == workload]
        names = list(dict.fromkeys(rows["a"]))
        grid = rows.pivot(index="a", columns="b", values="max_abs_diff").loc[names, names].to_numpy(float)
        image = ax.imshow(np.log10(np.maximum(grid, floor)), cmap=palette.SEQUENTIAL, vmin=-9, vmax=0)
        for i in range(len(names)):
            for j in range(len(names)):
                value = grid[i, j]
                text = "0" if value == 0 else f"{value:.0e}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color=palette.FAILED if value > FORWARD_TOLERANCE else "white")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        scale = rows["logit_scale"].dropna()
        ax.set_title(f"{workload}: max |logit| {scale.iloc[0]:.2g}" if len(scale) else workload, fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes[: len(workloads)].tolist(), shrink=0.7, label="log10 max abs difference")
    graphs = numbers["graphs"]
    ax = axes[-1]
    if len(graphs):
        labels = [f"{r.workload} · {r.exporter}" for r in graphs.itertuples()]
        colours = [palette.colour("torch" if r.exporter == "torch" else "tensorflow") for r in graphs.itertuples()]
        y = np.arange(len(graphs))
        ax.barh(y, graphs["nodes"], color=colours)
        for i, r in enumerate(graphs.itertuples()):
            top = ", ".join(r.op_types.split(", ")[:4]) + (", …" if r.op_types.count(",") >= 4 else "")
            ax.text(r.nodes, i, f" opset {r.opset}\n {top}", va="center", fontsize=6)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ONNX nodes written by the exporter")
        ax.set_xlim(0, max(graphs["nodes"]) * 2.2)
    ax.set_title("exporter graphs", fontsize=9)
    plotted(fig, pairs, "pairwise max abs logit difference", ids=["workload", "a", "b", "within_tolerance"],
            values=["max_abs_diff", "logit_scale"])
    if len(graphs):
        plotted(fig, graphs, "exporter graphs", ids=["workload", "exporter", "op_types"], values=["nodes", "opset"])
    outside = numbers["outside"]
    note = (f"every pair within {FORWARD_TOLERANCE:g}" if outside.empty else
            f"{len(outside)} pair(s) above {FORWARD_TOLERANCE:g} (red)")
    fig.suptitle(f"F7 · interoperability from shared weights: {note}; 0 = bit-identical logits",
                 x=0.01, ha="left", fontsize=11)
    return fig


