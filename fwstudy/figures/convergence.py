"""F8 · convergence: do the two frameworks reach the same accuracy, and how fast in wall-clock
time? Matched arm (identical initial weights, batches and Adam constants): a parity test of
training, where float32 trajectories drift apart. Idiomatic arm (each framework's own
initializers and Adam defaults): the comparison a user experiences."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.convergence import measures, runs
from fwstudy.convergence.plan import TrainRun
from fwstudy.figures import palette
from fwstudy.figures.common import environment_caption, forest, one_environment, plotted, wrap
from fwstudy.results import stats

NAME = "convergence"
# The loss difference whose first crossing the matched arm reports (acceptance of issue 13):
# ~1e4 float32 epsilons at a loss of ~1, far above one step's round-off, so a crossing is drift
# accumulated over steps, not the noise of one reduction order.
DRIFT_THRESHOLD = 1e-3
ARM_STYLES = palette.ARM_STYLES
CLAIMS = [
    "From identical weights and batches, TensorFlow and PyTorch train to the same accuracy "
    "(matched arm: a parity test of training).",
    "With each framework's own defaults, final accuracies agree within the seed-to-seed spread, "
    "and time-to-accuracy differs by the ratio shown (idiomatic arm).",
]


def configs(profile: Profile) -> list[TrainRun]:
    """F8's training runs: every workload, arm, mode, framework and seed of the profile."""
    return runs.train_configs(profile)


@dataclass
class Curves:
    """The store table of F8's runs and their per-step and per-epoch curves (one environment)."""

    table: pd.DataFrame
    steps: pd.DataFrame
    epochs: pd.DataFrame
    left_out: str = ""


def collect(profile: Profile, table: pd.DataFrame) -> Curves:
    """The curves of the ok runs of ``table``, from one environment (rule 8)."""
    table, left_out = one_environment(table)
    return Curves(table, runs.load_tables(profile, table, "steps"), runs.load_tables(profile, table, "epochs"), left_out)


def _final(curves: Curves) -> pd.DataFrame:
    rows = curves.table[(curves.table["status"] == "ok") & (curves.table["metric"] == "final_test_accuracy")]
    return rows.rename(columns={"variant": "arm", "repeat": "seed"})[
        ["trial_id", "workload", "framework", "mode", "arm", "seed", "value"]]


def analyse(curves: Curves, target_share: float = 0.95, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Numbers only: final accuracy with intervals, the target, time-to-accuracy and its TF/PT
    ratio per mode and arm, and where matched trajectories part."""
    final = _final(curves)
    out: dict[str, pd.DataFrame] = {}
    rows = []
    for key, group in final.groupby(["workload", "arm", "mode", "framework"], sort=True):
        ci = stats.median_ci(group["value"], confidence)
        rows.append({**dict(zip(["workload", "arm", "mode", "framework"], key, strict=True)), "n": len(group),
                     "median": ci.median, "ci_low": ci.low, "ci_high": ci.high, "confidence": ci.confidence,
                     "spread": float(group["value"].max() - group["value"].min())})
    out["final_accuracy"] = pd.DataFrame(rows)
    # The target: a share of the best final accuracy (median over seeds) of any framework, arm
    # and mode of the workload, so both arms and modes race to one line.
    targets = []
    for workload, group in out["final_accuracy"].groupby("workload") if rows else []:
        reference = float(group["median"].max())
        targets.append({"workload": workload, "reference": reference, "share": target_share,
                        "target": measures.target_accuracy([reference], target_share)})
    out["target"] = pd.DataFrame(targets, columns=["workload", "reference", "share", "target"])
    out["time_to_accuracy"], out["tta_ratio"] = _time_to_accuracy(curves, out["target"], confidence)
    out["drift"], out["loss_difference"] = _drift(curves)
    out["agreement"] = _agreement(out["final_accuracy"], out["drift"])
    return out


def _time_to_accuracy(curves: Curves, targets: pd.DataFrame, confidence: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    epochs = curves.epochs
    columns = ["workload", "arm", "mode", "framework", "seed", "target", "time_to_accuracy_s"]
    if epochs.empty or targets.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame()
    target = dict(zip(targets["workload"], targets["target"], strict=True))
    rows = []
    for key, group in epochs.groupby(["trial_id", "workload", "arm", "mode", "framework", "seed"], sort=True):
        group = group.sort_values("epoch")
        t = measures.time_to_accuracy(group["test_accuracy"], group["train_s"], target[key[1]])
        rows.append({**dict(zip(["trial_id", "workload", "arm", "mode", "framework", "seed"], key, strict=True)),
                     "target": target[key[1]], "time_to_accuracy_s": t,
                     "fingerprint": group["fingerprint"].iloc[0]})
    per_run = pd.DataFrame(rows)
    # The ratio over seeds, paired by seed (one seed = one batch order and one init, on both
    # sides): stats.compare_frameworks' sign-test interval over those pairs.
    tidy = per_run.assign(metric="time_to_accuracy_s", value=per_run["time_to_accuracy_s"], status="ok",
                          repeat=per_run["seed"], replica=0, variant=per_run["arm"])
    ratio = stats.compare_frameworks(tidy, metric="time_to_accuracy_s", by=("workload", "mode", "variant"),
                                     confidence=confidence)
    reached = per_run.groupby(["workload", "arm", "mode", "framework"])["time_to_accuracy_s"].agg(
        lambda v: f"{int(np.isfinite(v).sum())}/{len(v)}").rename("reached").reset_index()
    summary = []
    for key, group in per_run.groupby(["workload", "arm", "mode", "framework"], sort=True):
        ci = stats.median_ci(group["time_to_accuracy_s"].dropna(), confidence)
        summary.append({**dict(zip(["workload", "arm", "mode", "framework"], key, strict=True)),
                        "median_s": ci.median, "ci_low": ci.low, "ci_high": ci.high, "confidence": ci.confidence})
    summary = pd.DataFrame(summary).merge(reached, on=["workload", "arm", "mode", "framework"])
    return summary, ratio.rename(columns={"variant": "arm"})


def _drift(curves: Curves) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Matched arm: |loss_TF - loss_PT| per step, and the first step above DRIFT_THRESHOLD."""
    steps = curves.steps
    if steps.empty:
        return pd.DataFrame(), pd.DataFrame()
    matched = steps[steps["arm"] == "matched"]
    wide = matched.pivot_table(index=["workload", "mode", "seed", "step"], columns="framework", values="loss")
    if not {"tensorflow", "torch"} <= set(wide.columns):
        return pd.DataFrame(), pd.DataFrame()
    wide = wide.dropna().reset_index()
    wide["difference"] = (wide["tensorflow"] - wide["torch"]).abs()
    rows = []
    for key, group in wide.groupby(["workload", "mode", "seed"], sort=True):
        rows.append({**dict(zip(["workload", "mode", "seed"], key, strict=True)),
                     "first_step_above": measures.first_exceeding(group["step"], group["difference"], DRIFT_THRESHOLD),
                     "first_step_difference": float(group["difference"].iloc[0]),
                     "max_difference": float(group["difference"].max()), "steps": len(group)})
    return pd.DataFrame(rows), wide[["workload", "mode", "seed", "step", "difference"]]


def _agreement(final: pd.DataFrame, drift: pd.DataFrame) -> pd.DataFrame:
    """Does the drift matter? Per workload, arm and mode: |median final accuracy TF - PT|
    against the seed-to-seed spread (the larger framework's max - min over seeds)."""
    if final.empty:
        return pd.DataFrame()
    rows = []
    for key, group in final.groupby(["workload", "arm", "mode"], sort=True):
        sides = group.set_index("framework")
        if not {"tensorflow", "torch"} <= set(sides.index):
            continue
        gap = abs(float(sides.loc["tensorflow", "median"]) - float(sides.loc["torch", "median"]))
        spread = float(sides["spread"].max())
        seeds = int(sides["n"].min())
        rows.append({**dict(zip(["workload", "arm", "mode"], key, strict=True)), "accuracy_gap": gap,
                     "seed_spread": spread, "seeds": seeds,
                     "within_spread": bool(gap <= spread) if seeds >= 2 else None})
    return pd.DataFrame(rows)


def _colour(framework: str) -> str:
    return palette.colour(framework)


def draw(curves: Curves, numbers: dict[str, pd.DataFrame], confidence: float = 0.95) -> plt.Figure:
    """Per workload (columns): loss per step and test accuracy against wall-clock (both arms,
    every seed), the matched arm's |loss difference| per step (log scale), final accuracy
    with its interval over seeds, and the TF/PT time-to-accuracy ratio per mode and arm."""
    workloads = list(dict.fromkeys(curves.table.loc[curves.table["status"] == "ok", "workload"])) or ["(none)"]
    fig = plt.figure(constrained_layout=True, figsize=(max(8.0, 4.6 * len(workloads)), 17))
    # The ratio row is its own subfigure: its labels (right of the dot plot) do not narrow the
    # curves above it.
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.0, 1.0])
    axes = np.vstack([top.subplots(4, len(workloads), squeeze=False), bottom.subplots(1, len(workloads), squeeze=False)])
    for column, workload in enumerate(workloads):
        ax_loss, ax_acc, ax_diff, ax_final, ax_ratio = axes[:, column]
        steps = curves.steps[curves.steps["workload"] == workload] if not curves.steps.empty else curves.steps
        epochs = curves.epochs[curves.epochs["workload"] == workload] if not curves.epochs.empty else curves.epochs
        for (framework, arm, mode, seed), group in (steps.groupby(["framework", "arm", "mode", "seed"]) if len(steps) else []):
            ax_loss.plot(group["step"], group["loss"], ARM_STYLES[arm], color=_colour(framework), linewidth=0.7,
                         alpha=0.6, label=f"{framework} {arm} {mode}" if seed == 0 else None)
        if len(steps):
            plotted(ax_loss, steps, "training loss per step", ids=["workload", "framework", "arm", "mode", "seed", "step"],
                    values=["loss"])
        ax_loss.set_yscale("log")
        ax_loss.set(title=workload, xlabel="step", ylabel="training loss (per step)")
        ax_loss.legend(fontsize=6)
        for (framework, arm, mode, seed), group in (epochs.groupby(["framework", "arm", "mode", "seed"]) if len(epochs) else []):
            group = group.sort_values("epoch")
            ax_acc.plot(group["train_s"], group["test_accuracy"], ARM_STYLES[arm], marker=".", color=_colour(framework),
                        linewidth=0.8, alpha=0.7, label=f"{framework} {arm} {mode}" if seed == 0 else None)
        if len(epochs):
            plotted(ax_acc, epochs, "test accuracy against wall-clock",
                    ids=["workload", "framework", "arm", "mode", "seed", "epoch"], values=["train_s", "test_accuracy"])
        target = numbers["target"].set_index("workload")["target"].get(workload) if len(numbers["target"]) else None
        if target is not None and np.isfinite(target):
            ax_acc.axhline(target, color="black", linewidth=0.8, linestyle=":")
            ax_acc.annotate(f"target {target:.3f}", (0, target), xytext=(2, 2), textcoords="offset points", fontsize=6)
        ax_acc.set(xlabel="training wall-clock (s, evaluation excluded)", ylabel="test accuracy (per epoch)")
        ax_acc.legend(fontsize=6)
        _draw_difference(ax_diff, numbers, workload)
        _draw_final(ax_final, numbers["final_accuracy"], workload)
        _draw_ratio(ax_ratio, numbers, workload)
    caption = "\n".join(c for c in (environment_caption(curves.table), curves.left_out) if c)
    fig.suptitle(wrap(
        "F8 · convergence: matched arm (solid: identical init, batches and Adam constants) and idiomatic arm "
        "(dashed: each framework's defaults)\nintervals: distribution-free over seeds, reached confidence on each "
        f"(requested {confidence:.0%}); time-to-accuracy target = share of the best final accuracy\n{caption}", fig, 8),
        fontsize=8)
    return fig


def _draw_difference(ax: plt.Axes, numbers: dict[str, pd.DataFrame], workload: str) -> None:
    diff = numbers["loss_difference"]
    diff = diff[diff["workload"] == workload] if len(diff) else diff
    if diff.empty:
        ax.text(0.5, 0.5, "no matched pair", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    for (mode, seed), group in diff.groupby(["mode", "seed"]):
        ax.plot(group["step"], group["difference"].clip(lower=1e-12), linewidth=0.7, label=f"{mode} seed {seed}")
    ax.axhline(DRIFT_THRESHOLD, **palette.THRESHOLD_LINE)
    plotted(ax, diff, "matched |loss TF - loss PT|", ids=["workload", "mode", "seed", "step"], values=["difference"])
    drift = numbers["drift"][numbers["drift"]["workload"] == workload]
    first = drift["first_step_above"]
    text = ("first step above 1e-3: " + ", ".join("never" if not np.isfinite(v) else str(int(v)) for v in first))
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="matched |loss TF - loss PT|")
    ax.set_title(text, fontsize=7)
    ax.legend(fontsize=6)


def _draw_final(ax: plt.Axes, final: pd.DataFrame, workload: str) -> None:
    rows = final[final["workload"] == workload] if len(final) else final
    if rows.empty:
        ax.text(0.5, 0.5, "no runs", ha="center", transform=ax.transAxes)
        return
    rows = rows.sort_values(["arm", "mode", "framework"]).reset_index(drop=True)
    x = np.arange(len(rows))
    low = (rows["median"] - rows["ci_low"]).fillna(0).clip(lower=0)
    high = (rows["ci_high"] - rows["median"]).fillna(0).clip(lower=0)
    for i, row in rows.iterrows():  # matched solid, idiomatic hatched (as the curves' line styles)
        ax.bar(i, row["median"], color=_colour(row["framework"]), hatch=palette.ARM_HATCHES[row["arm"]],
               alpha=palette.ARM_ALPHA[row["arm"]])
    ax.errorbar(x, rows["median"], yerr=[low, high], fmt="none", ecolor="black", capsize=3)
    for i, row in rows.iterrows():  # above the upper whisker, never on it
        level = "no interval" if not row["confidence"] else f"interval {row['confidence']:.0%}"
        top = row["ci_high"] if np.isfinite(row["ci_high"]) else row["median"]
        ax.annotate(f"{row['median']:.3f}\nn = {row['n']} seeds\n{level}", (i, top), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=6)
    ax.set_xticks(x, [f"{r.framework}\n{r.arm} {r.mode}" for r in rows.itertuples()], fontsize=6)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("final test accuracy (median over seeds)")
    plotted(ax, rows, "final test accuracy", ids=["workload", "framework", "arm", "mode"],
            values=["median", "ci_low", "ci_high", "confidence", "n"])


def _draw_ratio(ax: plt.Axes, numbers: dict[str, pd.DataFrame], workload: str) -> None:
    ratio = numbers["tta_ratio"]
    ratio = ratio[(ratio["workload"] == workload) & ratio["ratio"].notna()] if len(ratio) else ratio
    if ratio.empty:
        ax.text(0.5, 0.5, "target not reached by both frameworks", ha="center", transform=ax.transAxes, fontsize=7)
        ax.set_axis_off()
        return
    ratio = ratio.reset_index(drop=True)
    texts = []
    for row in ratio.itertuples():
        interval = "" if not np.isfinite(row.ratio_ci_low) else f" [{row.ratio_ci_low:.2f}, {row.ratio_ci_high:.2f}] {row.confidence:.0%}"
        texts.append(f"{row.ratio:.2f}×{interval}\n{row.blocks} seeds")
    forest(ax, [f"{r.arm}\n{r.mode}" for r in ratio.itertuples()], ratio["ratio"], ratio["ratio_ci_low"],
           ratio["ratio_ci_high"], texts, [palette.RATIO] * len(ratio), "TF / PT time-to-accuracy (log, paired by seed)")
    plotted(ax, ratio, "time-to-accuracy TF / PT", ids=["workload", "arm", "mode"],
            values=["ratio", "ratio_ci_low", "ratio_ci_high", "confidence", "blocks"])
    target = numbers["target"].set_index("workload").loc[workload]
    ax.set_title(f"time-to-accuracy TF / PT (target {target['target']:.3f} = {target['share']:g} × {target['reference']:.3f})",
                 fontsize=7)
