"""F10 · adversarial robustness and explainability: FGSM/PGD accuracy against epsilon, and how
far the two frameworks' saliency and Integrated Gradients maps agree.

Matched arm: both frameworks evaluate the same trained weights (PyTorch's matched-arm
weights), so equal accuracies, equal FGSM examples and agreement near 1 are an implementation
check. Idiomatic arm: each framework evaluates its own model trained with its own defaults, so
accuracy under attack and agreement are findings: do two equally accurate models explain the
same digits the same way?"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.convergence import measures, runs
from fwstudy.convergence.plan import RobustnessRun
from fwstudy.figures import palette
from fwstudy.figures.common import environment_caption, one_environment, plotted
from fwstudy.results import stats

NAME = "robustness"
METHODS = ("saliency", "integrated_gradients")
ATTACK_MARKERS = palette.ATTACK_MARKERS
ARM_STYLES = palette.ARM_STYLES
CLAIMS = [
    "From the same weights, both frameworks' FGSM/PGD accuracies and attributions agree "
    "(implementation check).",
    "Models trained with each framework's defaults are equally robust and explain digits alike "
    "(finding, idiomatic arm).",
]


def configs(profile: Profile) -> list[RobustnessRun]:
    """F10's evaluations (their training runs are measured first where missing)."""
    return runs.robustness_configs(profile)


@dataclass
class Maps:
    """The store table of F10's evaluations and their tables (one environment)."""

    table: pd.DataFrame
    attacks: pd.DataFrame
    attributions: pd.DataFrame
    completeness: pd.DataFrame
    timings: pd.DataFrame
    left_out: str = ""


def collect(profile: Profile, table: pd.DataFrame) -> Maps:
    table = table[table["task"] == "robustness"] if "task" in table else table
    table, left_out = one_environment(table)
    load = lambda kind: runs.load_tables(profile, table, kind)  # noqa: E731
    return Maps(table, load("attacks"), load("attributions"), load("completeness"), load("timings"), left_out)


def analyse(maps: Maps, top_k: int = 50, confidence: float = 0.95, ig_steps: int | None = None) -> dict[str, pd.DataFrame]:
    """Numbers only: accuracy per epsilon with intervals over seeds, the largest matched-arm
    disagreement, FGSM sign agreement, attribution agreement per sample, IG completeness and
    the time to explain a batch.

    Completeness is reported as measured, and (with ``ig_steps``) also after dividing the
    summed attributions by the rule's weight sum, 1 - 1/ig_steps (``measures.ig_rule``): what
    is left is the quadrature's and the arithmetic's own error, not captum's weighting."""
    out: dict[str, pd.DataFrame] = {}
    rows = []
    attacks = maps.attacks
    for key, group in (attacks.groupby(["workload", "arm", "framework", "attack", "epsilon"], sort=True) if len(attacks) else []):
        ci = stats.median_ci(group["accuracy"], confidence)
        rows.append({**dict(zip(["workload", "arm", "framework", "attack", "epsilon"], key, strict=True)),
                     "n": len(group), "median": ci.median, "ci_low": ci.low, "ci_high": ci.high,
                     "confidence": ci.confidence})
    out["accuracy"] = pd.DataFrame(rows)
    out["matched_disagreement"] = _matched_disagreement(attacks)
    agreement = _agreement(maps.attributions, top_k)
    out["agreement"] = agreement
    out["fgsm_agreement"] = agreement[agreement["method"] == "fgsm_sign"] if len(agreement) else agreement
    if len(agreement):
        summary = (agreement[agreement["method"] != "fgsm_sign"]
                   .groupby(["workload", "arm", "method", "measure"])["value"]
                   .agg(median="median", n="size").reset_index())
    else:
        summary = pd.DataFrame()
    out["agreement_median"] = summary
    comp = maps.completeness
    if len(comp):
        weight_sum = float(measures.ig_rule(ig_steps)[1].sum()) if ig_steps else 1.0
        comp = comp.assign(error=measures.completeness_error(comp["attribution_sum"], comp["logit_difference"]),
                           absolute_error=(comp["attribution_sum"] - comp["logit_difference"]).abs(),
                           rescaled_error=measures.completeness_error(comp["attribution_sum"] / weight_sum,
                                                                      comp["logit_difference"]))
        out["completeness"] = (comp.groupby(["workload", "arm", "framework"])
                               .agg(median_relative_error=("error", "median"), max_relative_error=("error", "max"),
                                    median_absolute_error=("absolute_error", "median"),
                                    median_rescaled_error=("rescaled_error", "median"), samples=("error", "size"))
                               .reset_index())
    else:
        out["completeness"] = pd.DataFrame()
    timings = maps.timings
    out["timings"] = (timings.groupby(["workload", "arm", "framework", "method"])
                      .agg(median_s=("seconds", "median"), samples=("samples", "first"), seeds=("seconds", "size"))
                      .reset_index()) if len(timings) else pd.DataFrame()
    return out


def _matched_disagreement(attacks: pd.DataFrame) -> pd.DataFrame:
    """Matched arm: |accuracy TF - accuracy PT| per workload, attack, epsilon and seed (same
    weights on both sides), in percentage points."""
    if attacks.empty:
        return pd.DataFrame()
    matched = attacks[attacks["arm"] == "matched"]
    wide = matched.pivot_table(index=["workload", "attack", "epsilon", "seed"], columns="framework", values="accuracy")
    if not {"tensorflow", "torch"} <= set(wide.columns):
        return pd.DataFrame()
    wide = wide.reset_index()
    wide["points"] = 100 * (wide["tensorflow"] - wide["torch"]).abs()
    return wide


def _agreement(attributions: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Per workload, arm, method, seed and sample: every agreement measure between the TF and
    PT maps (the same seed: the same weights in the matched arm, the same init seed and batch
    order in the idiomatic one). For FGSM's sign map, the share of equal signs (= equal FGSM
    examples) is its only measure."""
    if attributions.empty:
        return pd.DataFrame(columns=["workload", "arm", "method", "seed", "sample", "measure", "value"])
    rows = []
    for (workload, arm, method, seed), group in attributions.groupby(["workload", "arm", "method", "seed"], sort=True):
        sides = {}
        for framework, part in group.groupby("framework"):
            wide = part.pivot_table(index="sample", columns="feature", values="value").sort_index()
            sides[framework] = wide
        if set(sides) != {"tensorflow", "torch"}:
            continue
        a, b = sides["tensorflow"].to_numpy(), sides["torch"].to_numpy()
        if method == "fgsm_sign":
            values = {"sign_equal": (a == b).mean(axis=1)}
        else:
            values = measures.agreement(a, b, top_k)
        for measure, per_sample in values.items():
            for sample, value in zip(sides["torch"].index, per_sample, strict=True):
                rows.append({"workload": workload, "arm": arm, "method": method, "seed": seed, "sample": sample,
                             "measure": measure, "value": float(value)})
    return pd.DataFrame(rows)


def draw(maps: Maps, numbers: dict[str, pd.DataFrame], confidence: float = 0.95) -> plt.Figure:
    """Per workload (columns): accuracy against epsilon (both arms, both attacks, intervals
    over seeds), agreement distributions per measure, method and arm, and a grid of digits
    with both frameworks' Integrated Gradients maps side by side (idiomatic arm, first seed)."""
    workloads = list(dict.fromkeys(maps.table.loc[maps.table["status"] == "ok", "workload"])) or ["(none)"]
    samples = 3
    fig = plt.figure(constrained_layout=True, figsize=(max(9.0, 5.2 * len(workloads)), 15))
    grid = fig.add_gridspec(3, len(workloads), height_ratios=[1.0, 1.0, 1.3])
    for column, workload in enumerate(workloads):
        _draw_accuracy(fig.add_subplot(grid[0, column]), numbers["accuracy"], workload)
        _draw_agreement(fig.add_subplot(grid[1, column]), numbers["agreement"], workload)
        inner = grid[2, column].subgridspec(samples, 3)
        _draw_maps(fig, inner, maps.attributions, workload, samples)
    completeness = numbers["completeness"]
    comp_text = "\n".join(
        f"{workload}: " + "; ".join(f"{r.arm} {r.framework} {r.median_relative_error:.2%}"
                                   for r in completeness[completeness["workload"] == workload].itertuples())
        for workload in dict.fromkeys(completeness["workload"])) if len(completeness) else "none"
    caption = "\n".join(c for c in (environment_caption(maps.table), maps.left_out) if c)
    fig.suptitle(
        "F10 · adversarial robustness (L∞ FGSM, PGD) and explainability (gradient × input, Integrated Gradients "
        "with captum's riemann_trapezoid on both sides)\nmatched: both frameworks evaluate the same weights; "
        f"idiomatic: each its own model · intervals over seeds (requested {confidence:.0%}, reached on each)\n"
        f"IG completeness error (median relative; captum's weights sum to 1 - 1/steps):\n{comp_text}\n{caption}", fontsize=7)
    return fig


def _draw_accuracy(ax: plt.Axes, accuracy: pd.DataFrame, workload: str) -> None:
    rows = accuracy[accuracy["workload"] == workload] if len(accuracy) else accuracy
    if rows.empty:
        ax.text(0.5, 0.5, "no evaluations", ha="center", transform=ax.transAxes)
        return
    for (arm, framework, attack), group in rows.groupby(["arm", "framework", "attack"]):
        group = group.sort_values("epsilon")
        low = (group["median"] - group["ci_low"]).fillna(0).clip(lower=0)
        high = (group["ci_high"] - group["median"]).fillna(0).clip(lower=0)
        ax.errorbar(group["epsilon"], group["median"], yerr=[low, high], linestyle=ARM_STYLES[arm],
                    marker=ATTACK_MARKERS[attack], color=palette.colour(framework, 0 if attack == "fgsm" else 2),
                    capsize=2, linewidth=0.9, markersize=3, label=f"{framework} {arm} {attack}")
    plotted(ax, rows, "accuracy under attack", ids=["workload", "arm", "framework", "attack", "epsilon"],
            values=["median", "ci_low", "ci_high", "confidence", "n"])
    n = int(rows["n"].min())
    level = rows["confidence"].min()
    interval = f"interval reaches ≥ {level:.0%}" if n >= 2 else "one seed: no interval"
    ax.set(xlabel="ε (L∞, pixels in [0, 1])", ylabel="test accuracy", ylim=(0, 1.02))
    ax.set_title(f"{workload}: accuracy under attack\n(n = {n} seeds, {interval})", fontsize=9)
    ax.legend(fontsize=6)


def _draw_agreement(ax: plt.Axes, agreement: pd.DataFrame, workload: str) -> None:
    rows = agreement[(agreement["workload"] == workload) & (agreement["method"] != "fgsm_sign")] if len(agreement) else agreement
    if rows.empty:
        ax.text(0.5, 0.5, "no attribution pairs", ha="center", transform=ax.transAxes)
        return
    # One group of boxes per measure (its name the only tick label), one box per method and
    # arm inside it, told apart by colour (legend): sixteen rotated two-line labels were
    # unreadable at the figure's size.
    combos = [(method, arm) for method in METHODS for arm in ("matched", "idiomatic")]
    groups, positions, colours, centres, names, drawn = [], [], [], [], [], []
    for m, measure in enumerate(measures.MEASURES):
        mine = []
        for k, (method, arm) in enumerate(combos):
            part = rows[(rows["measure"] == measure) & (rows["method"] == method) & (rows["arm"] == arm)]
            if part.empty:
                continue
            groups.append(part["value"].dropna().to_numpy())
            positions.append(m * (len(combos) + 1) + k)
            colours.append(palette.METHOD_COLOURS[(method, arm)])
            mine.append(positions[-1])
            drawn.append(part)
        if mine:
            centres.append(float(np.mean(mine)))
            names.append(measure)
    parts = ax.boxplot(groups, positions=positions, patch_artist=True, widths=0.7,
                       medianprops={"color": "black"}, flierprops={"markersize": 3})
    for patch, colour in zip(parts["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
    ax.set_xticks(centres, names, fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette.METHOD_COLOURS[c]) for c in combos]
    ax.legend(handles, [f"{'IG' if method != 'saliency' else 'saliency'}, {arm}" for method, arm in combos],
              fontsize=6.5, loc="lower left", ncol=2)
    ax.set_ylabel("TF vs PT agreement per digit")
    plotted(ax, pd.concat(drawn).rename(columns={"value": "agreement"}), "attribution agreement per digit",
            ids=["workload", "arm", "method", "measure", "seed", "sample"], values=["agreement"])
    ax.set_title("attribution agreement\n(Pearson, Spearman, top-k, sign)", fontsize=9)
    ax.set_ylim(-0.05 if min(np.nanmin(g) for g in groups if g.size) >= 0 else -1.05, 1.05)


def _draw_maps(fig: plt.Figure, inner, attributions: pd.DataFrame, workload: str, samples: int) -> None:
    rows = attributions[(attributions["workload"] == workload) & (attributions["method"] == "integrated_gradients")] \
        if len(attributions) else attributions
    arm = "idiomatic" if len(rows) and (rows["arm"] == "idiomatic").any() else "matched"
    rows = rows[(rows["arm"] == arm)] if len(rows) else rows
    seed = rows["seed"].min() if len(rows) else 0
    images = None
    if len(rows):
        from fwstudy.convergence.plan import dataset_for, task_of

        task, params = task_of(workload)
        images = dataset_for(task, params).x_test
    for i in range(samples):
        for j, title in enumerate(("digit", "TensorFlow IG", "PyTorch IG")):
            ax = fig.add_subplot(inner[i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{title}\n({arm}, seed {seed})" if j else f"{workload} test digit", fontsize=6)
            if rows.empty:
                continue
            if j == 0:
                side = int(round(np.sqrt(images[i].size)))
                ax.imshow(images[i].reshape(side, side), cmap=palette.GREYS, vmin=0, vmax=1)
                continue
            framework = "tensorflow" if j == 1 else "torch"
            maps = {}
            for name in ("tensorflow", "torch"):
                part = rows[(rows["framework"] == name) & (rows["seed"] == seed) & (rows["sample"] == i)]
                maps[name] = part.sort_values("feature")["value"].to_numpy()
            values = maps[framework]
            side = int(round(np.sqrt(values.size))) if values.size else 0
            if not side or side * side != values.size:
                continue
            # One colour scale for both frameworks' maps of a digit: equal colours, equal values.
            scale = max(float(np.abs(v).max()) for v in maps.values() if v.size) or 1.0
            ax.imshow(values.reshape(side, side), cmap=palette.DIVERGING, vmin=-scale, vmax=scale)
            part = rows[(rows["framework"] == framework) & (rows["seed"] == seed) & (rows["sample"] == i)]
            plotted(ax, part.rename(columns={"value": "attribution"}), "Integrated Gradients maps",
                    ids=["workload", "arm", "framework", "seed", "sample", "feature"], values=["attribution"])
