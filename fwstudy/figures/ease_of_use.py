"""F9 · ease of use (paper section II), measured rather than asserted.

* F9a: code metrics of the paired implementations at each API level (TF GradientTape loop,
  Keras ``fit``, plain PyTorch loop, PyTorch Lightning), parsed from the project's own source
  (``fwstudy/usability/code_metrics.py``): logical lines, cyclomatic complexity, framework API
  symbols and the namespaces they come from. These are the study's twins, written by one team
  to match layer for layer, not a sample of users' code: the figure says so.
* F9b: planted bugs (``usability.catalog.BUGS``) in each framework and mode, each in its own
  child, with what the user sees (``fwstudy/usability/planted.py``).
* F9c: a custom-gradient layer in both frameworks (``torch.autograd.Function`` and
  ``tf.custom_gradient``), checked with the parity gate's criteria and costed in every mode
  against the framework's own autodiff of the same forward (``usability/custom_gradient.py``).
"""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from fwstudy.config.profile import Profile
from fwstudy.figures import palette
from fwstudy.figures.common import plotted
from fwstudy.usability import runs
from fwstudy.usability.catalog import API_LEVELS, BUGS, DEBUG_MODES
from fwstudy.usability.code_metrics import code_metrics

NAME = "ease_of_use"
CLAIMS = [
    "PyTorch is more Pythonic: less code and fewer concepts for the same model (F9a)",
    "Keras' high-level API lowers the learning curve (F9a: the fit level against the loops)",
    "PyTorch is easier to debug thanks to dynamic graphs (F9b)",
    "both frameworks are extensible with custom operations and gradients (F9c)",
]
LEVEL_COLOURS = palette.API_LEVEL_COLOURS
# Column labels of the F9a heat maps (the legend under F9c gives the full names).
LEVEL_SHORT = {"tf_gradient_tape": "TF\ntape", "keras_fit": "Keras\nfit", "torch_loop": "PT\nloop",
               "lightning": "Light-\nning"}
# Debugging outcomes, in the order of the matrix's colour scale.
OUTCOMES = ("error names the bug's line", "error, bug's line not shown", "no error (silent)",
            "print/hook every step", "print/hook at trace only", "run failed")
OUTCOME_COLOURS = palette.OUTCOME_COLOURS


def configs(profile: Profile) -> dict[str, list[dict[str, Any]]]:
    """The child runs F9 needs: planted bugs (F9b) and custom-gradient runs (F9c)."""
    return {"debugging": runs.debugging_jobs(profile), "custom_gradient": runs.custom_gradient_jobs(profile)}


def measure(profile: Profile) -> dict[str, Any]:
    """Parse the code metrics (all workloads), run what is not stored yet, return everything."""
    metrics = code_metrics()
    debugging = runs.measure_debugging(profile)
    costs, parity = runs.measure_custom_gradient(profile)
    return {"code_metrics": metrics, "debugging": debugging, "custom_gradient": costs, "parity": parity}


# --- analysis (numbers only) --------------------------------------------------------------------


def metrics_table(metrics: pd.DataFrame, part: str = "script") -> pd.DataFrame:
    """One row per workload, one column per (metric, API level), for one part."""
    rows = metrics[metrics["part"] == part]
    wide = rows.pivot_table(index="workload", columns="level",
                            values=["lloc", "cc_total", "api_symbols", "namespaces", "methods"], aggfunc="first")
    return wide.reindex(columns=list(API_LEVELS), level=1)


def outcome(row: pd.Series) -> str:
    """The debugging matrix's category of one run (``OUTCOMES``)."""
    if row.get("status") != "ok":
        return "run failed"
    if row["bug"] == "print_hook":
        prints = list(row.get("prints_per_step") or [])
        return "print/hook every step" if prints and all(p > 0 for p in prints) else "print/hook at trace only"
    if not row.get("raised"):
        return "no error (silent)"
    if row.get("traceback_names_site") or row.get("message_names_site"):
        return "error names the bug's line"
    return "error, bug's line not shown"


def compiler_note(row: pd.Series) -> str:
    """What the compiler did in a graph or compiled cell: dynamo's graph breaks, tf.function's traces."""
    bits = []
    if pd.notna(row.get("graph_breaks", np.nan)):
        bits.append(f"{int(row['graph_breaks'])} graph breaks, {int(row.get('graphs') or 0)} graphs")
    if pd.notna(row.get("traces", np.nan)):
        bits.append(f"{int(row['traces'])} traces")
    return ("\n" + ", ".join(bits)) if bits else ""


def finding(row: pd.Series) -> str:
    """The short text of one matrix cell: what the user saw."""
    return _finding(row) + compiler_note(row)


def _finding(row: pd.Series) -> str:
    if row.get("status") != "ok":
        return "run failed:\n" + textwrap.shorten(str(row.get("error")), 60)
    if row["bug"] == "print_hook":
        prints = "/".join(str(p) for p in row.get("prints_per_step") or [])
        hooks = "/".join(str(h) for h in row.get("hooks_per_step") or [])
        seen = f"{int(row.get('hook_concrete_calls') or 0)} with values, {int(row.get('hook_symbolic_calls') or 0)} symbolic"
        return f"print per step {prints}\nhook per step {hooks}\n({seen})"
    if not row.get("raised"):
        nan = row.get("first_nonfinite_step")
        if row["bug"] not in ("nan", "nan_checked"):
            return "no error"
        return "no error\n" + (f"loss NaN from step {int(nan)}" if pd.notna(nan) else "loss finite:\nthe NaN vanished before the loss")
    where = "site in traceback" if row.get("traceback_names_site") else (
        f"traceback stops at line {int(row['deepest_user_line'])}" if pd.notna(row.get("deepest_user_line")) else "no user frame")
    message = "message names site" if row.get("message_names_site") else (
        "message names user line" if row.get("message_names_user_line") else "message: no user line")
    warned = "\nwarning names site" if row.get("warnings_name_site") else ""
    return (f"{row['error_type']} at step {int(row['raised_at_step'])}\n{where}\n{message}{warned}\n"
            f"{int(row['traceback_frames'])} frames, {100 * row['traceback_user_share']:.0f}% user\n"
            f"{1e3 * row['time_to_error_s']:.0f} ms to error")


def debugging_matrix(debugging: pd.DataFrame) -> pd.DataFrame:
    """Bug × (framework, mode): the outcome category and the finding of each cell."""
    if debugging.empty:
        return pd.DataFrame(columns=["bug", "framework", "mode", "outcome", "finding"])
    out = debugging.copy()
    out["outcome"] = out.apply(outcome, axis=1)
    out["finding"] = out.apply(finding, axis=1)
    keep = ["bug", "framework", "mode", "outcome", "finding", "status", "raised", "raised_at_step", "error_type",
            "traceback_frames", "traceback_user_frames", "traceback_user_share", "traceback_names_site",
            "message_names_site", "message_names_user_line", "deepest_user_line", "site_line", "time_to_error_s",
            "first_nonfinite_step", "prints_per_step", "hooks_per_step", "hook_concrete_calls",
            "hook_symbolic_calls", "warnings_name_site", "graph_breaks", "traces", "error"]
    return out[[c for c in keep if c in out]]


def custom_gradient_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """Per framework and mode: step time with the custom gradient and with autodiff's, their
    ratio, first-call times, and what the compiler did (graph breaks, XLA compilations)."""
    if costs.empty:
        return pd.DataFrame()
    rows = []
    order = {(f, m): i for i, (f, m) in enumerate((f, m) for f in DEBUG_MODES for m in DEBUG_MODES[f])}
    costs = costs.assign(_order=[order.get((f, m), 99) for f, m in zip(costs["framework"], costs["mode"], strict=True)])
    for (framework, mode), group in costs.sort_values("_order").groupby(["framework", "mode"], sort=False):
        by = {r.variant: r for r in group.itertuples()}
        custom, builtin = by.get("custom"), by.get("builtin")
        ok = all(r is not None and r.status == "ok" for r in (custom, builtin))
        row = {"framework": framework, "mode": mode,
               "custom_status": getattr(custom, "status", "missing"), "custom_error": getattr(custom, "error", None),
               "builtin_status": getattr(builtin, "status", "missing")}
        if ok:
            row.update(custom_step_ms=custom.step_ms_median, builtin_step_ms=builtin.step_ms_median,
                       ratio=custom.step_ms_median / builtin.step_ms_median,
                       custom_first_call_s=custom.first_call_s, builtin_first_call_s=builtin.first_call_s)
        for name in ("graph_breaks", "graphs", "xla_compilations", "traces"):
            for variant, r in (("custom", custom), ("builtin", builtin)):
                value = getattr(r, name, None) if r is not None else None
                if value is not None and not (isinstance(value, float) and np.isnan(value)):
                    row[f"{variant}_{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def analyse(data: dict[str, Any]) -> dict[str, Any]:
    metrics = data["code_metrics"]
    return {
        "script": metrics_table(metrics, "script"),
        "step": metrics_table(metrics, "step"),
        "model": metrics[metrics["part"] == "model"].drop_duplicates(["workload", "framework"])[
            ["workload", "framework", "lloc", "cc_total", "api_symbols", "namespaces", "symbol_names"]],
        "layer": metrics[metrics["part"] == "layer"],
        "code_metrics": metrics,
        "debugging": debugging_matrix(data["debugging"]),
        "custom_gradient": custom_gradient_costs(data["custom_gradient"]),
        "parity": data["parity"],
        "environment": environment_line(data["debugging"], data["custom_gradient"]),
    }


def environment_line(*tables: pd.DataFrame) -> str:
    rows = pd.concat([t for t in tables if not t.empty], ignore_index=True) if any(not t.empty for t in tables) else pd.DataFrame()
    if rows.empty:
        return "no child runs"

    def values(column: str) -> str:
        return " + ".join(str(v) for v in dict.fromkeys(rows[column].dropna())) if column in rows else "?"

    failed = int((rows["status"] != "ok").sum())
    return (f"{len(rows)} child runs ({failed} failed) · {values('cpu_model')} · {values('threads')} threads · "
            f"torch {values('torch_version')} · TF {values('tensorflow_version')} · code {values('code_version')}"
            f"{load_note(rows)}")


def load_note(rows: pd.DataFrame) -> str:
    """The 1-minute load average at the runs' starts: a busy machine slows every timing here."""
    if "load_average_1m" not in rows or rows["load_average_1m"].isna().all():
        return ""
    load = rows["load_average_1m"].dropna()
    return f" · load average at start {load.min():.1f}–{load.max():.1f}"


# --- drawing -----------------------------------------------------------------------------------


def _metric_panel(ax: plt.Axes, table: pd.DataFrame, metric: str, ylabel: str) -> None:
    """A heat map, workloads × API levels, each cell its count: four bars per workload left
    their value labels colliding; a grid of numbers reads at any size. Column labels take the
    API level's colour (its framework's shade)."""
    levels = [level for level in API_LEVELS if (metric, level) in table]
    workloads = list(table.index)
    grid = np.array([table[(metric, level)].to_numpy(float) for level in levels]).T.reshape(len(workloads), len(levels))
    finite = grid[np.isfinite(grid)]
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=palette.SEQUENTIAL, aspect="auto",
                      vmin=0, vmax=float(finite.max()) if finite.size else 1.0)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if image.norm(value) > 0.6 else "white")
    ax.set_xticks(range(len(levels)), [LEVEL_SHORT.get(level, level) for level in levels], fontsize=7)
    for label, level in zip(ax.get_xticklabels(), levels, strict=True):
        label.set_color(LEVEL_COLOURS[level])
    ax.set_yticks(range(len(workloads)), workloads, fontsize=7)
    ax.set_title(ylabel, fontsize=8)
    drawn = pd.DataFrame([{"workload": w, "level": level, "metric": metric, "count": grid[i, j]}
                          for i, w in enumerate(workloads) for j, level in enumerate(levels)])
    plotted(ax, drawn, "F9a full training script", ids=["workload", "level", "metric"], values=["count"])


def _matrix_panel(ax: plt.Axes, matrix: pd.DataFrame) -> None:
    if matrix.empty:
        ax.text(0.5, 0.5, "no planted-bug runs", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    columns = [(f, m) for f in DEBUG_MODES for m in DEBUG_MODES[f]
               if ((matrix["framework"] == f) & (matrix["mode"] == m)).any()]
    bugs = [b for b in BUGS if (matrix["bug"] == b).any()]
    codes = np.full((len(bugs), len(columns)), np.nan)
    for row in matrix.itertuples():
        i, j = bugs.index(row.bug), columns.index((row.framework, row.mode))
        codes[i, j] = OUTCOMES.index(row.outcome)
        ax.text(j, i, row.finding, ha="center", va="center", fontsize=6.5)
    ax.imshow(codes, cmap=ListedColormap(OUTCOME_COLOURS), vmin=-0.5, vmax=len(OUTCOMES) - 0.5, aspect="auto", alpha=0.55)
    shown = matrix.assign(outcome_code=[OUTCOMES.index(o) for o in matrix["outcome"]])
    plotted(ax, shown, "F9b planted bugs", ids=["bug", "framework", "mode", "outcome"],
            values=["outcome_code", "raised_at_step", "traceback_frames", "traceback_user_share", "time_to_error_s",
                    "first_nonfinite_step", "graph_breaks", "traces"])
    ax.set_xticks(range(len(columns)), [f"{'TF' if f == 'tensorflow' else 'PyTorch'} {m}" for f, m in columns], fontsize=8)
    ax.set_yticks(range(len(bugs)), [textwrap.fill(f"{b}: {BUGS[b]}", 34) for b in bugs], fontsize=6.5)
    ax.set_xticks(np.arange(-0.5, len(columns)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(bugs)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.55) for c in OUTCOME_COLOURS]
    ax.legend(handles, OUTCOMES, fontsize=6.5, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    ax.set_title("F9b · planted bugs: what the user sees (traceback as printed, framework filtering on; "
                 "'user' = frames in the project's code)", fontsize=9)


def _custom_panel(ax: plt.Axes, costs: pd.DataFrame, parity: dict[str, Any] | None, layer: pd.DataFrame) -> None:
    verdict = "parity not checked (needs both frameworks' eager runs)" if parity is None else (
        f"parity {'passed' if parity['passed'] else 'FAILED: ' + ', '.join(k for k, v in parity['checks'].items() if not v)}"
        f" (fp32 forward {parity['forward_max_abs_diff_float32']:.1e}, gradients {parity['gradient_norm_rel_max_float32']:.1e}; "
        f"custom vs autodiff {parity['custom_vs_autodiff_norm_rel_torch']:.2f})")
    if costs.empty or "ratio" not in costs:
        ax.text(0.5, 0.5, "no custom-gradient runs succeeded", ha="center", transform=ax.transAxes)
        ax.set_title(f"F9c · custom gradient: {verdict}", fontsize=8)
        return
    labels, values, colours, notes = [], [], [], []
    for row in costs.itertuples():
        labels.append(f"{'TF' if row.framework == 'tensorflow' else 'PyTorch'}\n{row.mode}")
        values.append(getattr(row, "ratio", np.nan))
        shade = {"eager": 0, "graph": 1, "compiled": 2}[row.mode]
        colours.append(palette.colour(row.framework, shade))
        bits = []
        if pd.notna(getattr(row, "custom_graph_breaks", np.nan)):
            bits.append(f"breaks {int(row.custom_graph_breaks)} (builtin {int(getattr(row, 'builtin_graph_breaks', 0))})")
        if pd.notna(getattr(row, "custom_xla_compilations", np.nan)):
            bits.append(f"XLA compiled ×{int(row.custom_xla_compilations)}")
        if row.custom_status != "ok":
            bits.append("custom FAILED: " + textwrap.shorten(str(row.custom_error), 40))
        notes.append("\n".join(bits))
    x = np.arange(len(labels))
    bars = ax.bar(x, values, color=colours)
    for bar, value, note in zip(bars, values, notes, strict=True):
        text = "failed" if np.isnan(value) else f"{value:.2f}×"
        ax.annotate(f"{text}\n{note}".strip(), (bar.get_x() + bar.get_width() / 2, 0 if np.isnan(value) else value),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=5.5)
    ax.axhline(1.0, **palette.REFERENCE_LINE)
    ax.set_ylim(0, max(1.5, np.nanmax(values) * 1.6) if not np.all(np.isnan(values)) else 2)
    plotted(ax, costs, "F9c custom gradient", ids=["framework", "mode", "custom_status"],
            values=["ratio", "custom_step_ms", "builtin_step_ms", "custom_first_call_s", "builtin_first_call_s",
                    "custom_graph_breaks", "custom_xla_compilations"])
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("step time, custom / autodiff", fontsize=8)
    sizes = "; ".join(f"{'TF' if r.framework == 'tensorflow' else 'PyTorch'} {r.lloc} lines, CC {r.cc_total}, "
                      f"{r.api_symbols} API symbols" for r in layer.itertuples())
    ax.set_title(textwrap.fill(f"F9c · straight-through clamp, custom gradient: {verdict}. Layer code: {sizes}", 95),
                 fontsize=7)


def draw(numbers: dict[str, Any]) -> plt.Figure:
    fig = plt.figure(figsize=(15, 15), constrained_layout=True)
    grid = fig.add_gridspec(3, 4, height_ratios=[1.0, 2.2, 1.1])
    for column, (metric, label) in enumerate((("lloc", "logical lines"), ("cc_total", "cyclomatic complexity (sum)"),
                                               ("api_symbols", "distinct framework API symbols"),
                                               ("namespaces", "framework namespaces used"))):
        ax = fig.add_subplot(grid[0, column])
        _metric_panel(ax, numbers["script"], metric, label)
    handles = [plt.Rectangle((0, 0), 1, 1, color=LEVEL_COLOURS[level]) for level in API_LEVELS]
    labels = [API_LEVELS[level]["label"] for level in API_LEVELS]
    _matrix_panel(fig.add_subplot(grid[1, :]), numbers["debugging"])
    _custom_panel(fig.add_subplot(grid[2, :2]), numbers["custom_gradient"], numbers["parity"], numbers["layer"])
    step = numbers["step"]
    ax = fig.add_subplot(grid[2, 2:])
    ax.set_axis_off()
    lines = ["F9a · training step alone (lines / CC / API symbols / methods), same for every workload:"]
    first = step.index[0] if len(step.index) else None
    for level, info in API_LEVELS.items():
        if first is not None and ("lloc", level) in step:
            lines.append(f"  {info['label']}: {int(step.loc[first, ('lloc', level)])} / {int(step.loc[first, ('cc_total', level)])}"
                         f" / {int(step.loc[first, ('api_symbols', level)])} / {int(step.loc[first, ('methods', level)])}")
    lines += ["", textwrap.fill("These are the study's own twins, written by one team to match layer for layer; they measure "
                                "what this code needs, not what every user writes. 'methods' are calls on framework objects "
                                "(loss.backward()) whose namespace a parser cannot resolve.", 80)]
    ax.text(0, 1, "\n".join(lines), va="top", fontsize=7.5, family="monospace")
    ax.legend(handles, labels, loc="lower left", fontsize=7.5, frameon=False,
              title="F9a (top row): full training script = the twin + the API level's loop, parsed from this repository",
              title_fontsize=7.5)
    fig.suptitle("F9 · ease of use, measured: code size (a), debugging (b), extensibility (c)\n" + numbers["environment"],
                 fontsize=10)
    return fig
