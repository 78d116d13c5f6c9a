"""F12 · ecosystem footprint (paper section II): install size, dependencies, import time and
cold start, measured from this environment (``fwstudy/usability/footprint.py`` says how).

Community size (stars, downloads, papers) cannot be measured offline and is not shown: the
paper's argument from it stays an assertion here, and the figure says so."""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.figures import palette
from fwstudy.figures.common import plotted
from fwstudy.figures.ease_of_use import load_note
from fwstudy.figures.palette import FRAMEWORK_COLOURS
from fwstudy.usability import runs
from fwstudy.usability.catalog import API_LEVELS

NAME = "footprint"
CLAIMS = [
    "PyTorch is lighter to install and to start than TensorFlow (install size, dependencies, import, cold start)",
    "the ecosystems' sizes differ (community: not measurable offline, not shown)",
]
LABELS = palette.LABELS
NOT_MEASURED = ("Community size (stars, downloads, papers) is not measured here and not shown: "
                "it cannot be measured offline.")


def configs(profile: Profile) -> list[dict[str, Any]]:
    """The child runs F12 needs: import runs (warm, cold) and cold starts."""
    return runs.footprint_jobs(profile)


def measure(profile: Profile) -> dict[str, Any]:
    return runs.measure_footprint(profile)


def import_summary(imports: pd.DataFrame) -> pd.DataFrame:
    """Per framework and bytecode condition: median import time of the framework alone and
    with its high-level API, RSS after import, the page-cache residency before, n."""
    if imports.empty:
        return pd.DataFrame()
    rows = []
    for (framework, condition), group in imports.groupby(["framework", "condition"], sort=False):
        ok = group[group["status"] == "ok"]
        first = [s[0] for s in ok["steps"]]
        whole = [[x for x in s if "import_s" in x][-1] for s in ok["steps"]]
        missing = sorted({f"{x['module']}: {x['error']}" for s in ok["steps"] for x in s if "error" in x})
        rows.append({
            "framework": framework, "condition": condition, "n": len(ok), "failed": len(group) - len(ok),
            "module": first[0]["module"] if first else None,
            "import_s_median": float(np.median([s["import_s"] for s in first])) if first else np.nan,
            "import_s_all": [round(s["import_s"], 3) for s in first],
            "high_level": whole[0]["module"] if whole and whole[0]["module"] != first[0]["module"] else None,
            "high_level_import_s_median": float(np.median([sum(x.get("import_s", 0.0) for x in s) for s in ok["steps"]])) if first else np.nan,
            "high_level_error": "; ".join(missing) or None,
            "rss_after_import_mb": float(np.median([s["rss_mb"] for s in first])) if first else np.nan,
            "rss_after_all_mb": float(np.median([s["rss_mb"] for s in whole])) if whole else np.nan,
            "rss_before_mb": float(np.median(ok["rss_before_mb"])) if len(ok) else np.nan,
            "page_cache_resident_before": ", ".join(f"{v:.0%}" for v in ok["page_cache_resident_before"] if pd.notna(v)) or "unknown",
            "page_cache_library": (str(ok["page_cache_library"].iloc[0]).rsplit("/", 1)[-1] if len(ok) else None),
        })
    order = {f: i for i, f in enumerate(LABELS)}
    return pd.DataFrame(rows).sort_values(
        ["framework", "condition"], key=lambda c: c.map(order) if c.name == "framework" else c.map({"warm": 0, "cold": 1}),
    ).reset_index(drop=True)


def top_import_costs(imports: pd.DataFrame, condition: str = "warm", n: int = 8) -> pd.DataFrame:
    """Self time per top-level package from ``-X importtime``, median over the runs."""
    rows = imports[(imports["status"] == "ok") & (imports["condition"] == condition)] if not imports.empty else imports
    out = []
    for framework, group in rows.groupby("framework", sort=False) if not rows.empty else []:
        per = pd.DataFrame([c for costs in group["top_costs"] for c in costs])
        ranked = per.groupby("package")["self_s"].median().sort_values(ascending=False).head(n)
        out += [{"framework": framework, "condition": condition, "package": p, "self_s": v} for p, v in ranked.items()]
    return pd.DataFrame(out)


def cold_start_summary(cold: pd.DataFrame) -> pd.DataFrame:
    """Per API level and target: median seconds from spawn to imported, built and first result."""
    if cold.empty:
        return pd.DataFrame()
    rows = []
    for (framework, level, target), group in cold.groupby(["framework", "level", "target"], sort=False):
        ok = group[group["status"] == "ok"]
        row = {"framework": framework, "level": level, "target": target, "n": len(ok), "failed": len(group) - len(ok),
               "error": None if len(ok) else str(group["error"].iloc[0]).splitlines()[0]}
        for column in ("child_start_s", "imported_s", "built_s", "first_result_s", "import_s", "rss_after_import_mb"):
            row[column] = float(np.median(ok[column])) if len(ok) else np.nan
        rows.append(row)
    rank = {level: i for i, level in enumerate(API_LEVELS)}
    out = pd.DataFrame(rows)
    out["_rank"] = [rank[lv] + (0.5 if t == "predict" else 0) for lv, t in zip(out["level"], out["target"], strict=True)]
    return out.sort_values("_rank").drop(columns="_rank").reset_index(drop=True)


def analyse(data: dict[str, Any]) -> dict[str, Any]:
    imports, cold = data["imports"], data["cold_start"]
    rows = pd.concat([imports, cold], ignore_index=True)

    def values(column: str) -> str:
        return " + ".join(str(v) for v in dict.fromkeys(rows[column].dropna())) if column in rows else "?"

    failed = int((rows["status"] != "ok").sum()) if not rows.empty else 0
    return {
        "install": data["install"],
        "imports": import_summary(imports),
        "top_warm": top_import_costs(imports, "warm"),
        "top_cold": top_import_costs(imports, "cold"),
        "cold_start": cold_start_summary(cold),
        "environment": (f"{len(rows)} fresh processes ({failed} failed) · {values('cpu_model')} · {values('threads')} threads · "
                        f"torch {values('torch_version')} · TF {values('tensorflow_version')} · code {values('code_version')}"
                        f"{load_note(rows)}"),
    }


def _install_panel(ax: plt.Axes, install: pd.DataFrame) -> None:
    install = install[install["distribution"].notna()]
    x = np.arange(len(install))
    own = install["own_mb"].to_numpy(float)
    only = install["exclusive_deps_mb"].to_numpy(float)
    shared = (install["transitive_deps_mb"] - install["exclusive_deps_mb"]).to_numpy(float)
    colours = [FRAMEWORK_COLOURS[f] for f in install["framework"]]
    ax.bar(x, own, color=[c[0] for c in colours], label="the framework's own wheel")
    ax.bar(x, only, bottom=own, color=[c[1] for c in colours], label="exclusive dependencies")
    ax.bar(x, shared, bottom=own + only, color="white", edgecolor=[c[0] for c in colours], hatch="//",
           label="shared dependencies (NumPy, ...)")
    for i, row in enumerate(install.itertuples()):
        ax.annotate(f"{row.own_mb + row.exclusive_deps_mb:.0f} MiB\n{row.transitive_deps} deps "
                    f"({row.exclusive_deps} exclusive)", (i, own[i] + only[i] + shared[i]), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [f"{LABELS[r.framework]}\n{r.distribution} {r.version}" for r in install.itertuples()], fontsize=7)
    ax.set_ylabel("installed size (MiB, RECORD)", fontsize=8)
    plotted(ax, install.assign(shared_deps_mb=shared), "install size", ids=["framework", "distribution", "version"],
            values=["own_mb", "exclusive_deps_mb", "shared_deps_mb", "transitive_deps", "exclusive_deps"])
    ax.margins(y=0.25)
    ax.legend(fontsize=6, loc="upper right")
    ax.set_title("install size (CPU builds) and transitive dependencies", fontsize=8)


def _import_panel(ax: plt.Axes, summary: pd.DataFrame, imports: pd.DataFrame) -> None:
    if summary.empty:
        ax.text(0.5, 0.5, "no import runs", ha="center", transform=ax.transAxes)
        return
    labels, x = [], 0
    for row in summary.itertuples():
        colour = FRAMEWORK_COLOURS[row.framework][0 if row.condition == "warm" else 2]
        ax.bar(x, row.import_s_median, color=colour)
        if row.high_level and pd.notna(row.high_level_import_s_median):
            ax.bar(x, row.high_level_import_s_median - row.import_s_median, bottom=row.import_s_median,
                   color=FRAMEWORK_COLOURS[row.framework][3], edgecolor=colour)
        ax.scatter([x] * len(row.import_s_all), row.import_s_all, color="black", s=6, zorder=3)
        top = row.high_level_import_s_median if row.high_level and pd.notna(row.high_level_import_s_median) else row.import_s_median
        top = max([top, *row.import_s_all])  # above the trials' dots, never on them
        extra = f"\n+{row.high_level}: {row.high_level_import_s_median:.1f} s" if row.high_level else ""
        if row.high_level_error:
            extra += "\n" + textwrap.shorten(f"not imported: {row.high_level_error}", 50)
        ax.annotate(f"{row.import_s_median:.2f} s (n={row.n}){extra}\nRSS {row.rss_after_import_mb:.0f} MiB\n"
                    f"page cache {row.page_cache_resident_before}", (x, top), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=5.5)
        labels.append(f"{LABELS[row.framework]}\n{row.condition} bytecode")
        x += 1
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("import time (s), median", fontsize=8)
    plotted(ax, summary, "import in a fresh process", ids=["framework", "condition", "module", "high_level"],
            values=["import_s_median", "high_level_import_s_median", "rss_after_import_mb", "n"])
    trials = summary[["framework", "condition", "import_s_all"]].explode("import_s_all")
    plotted(ax, trials.rename(columns={"import_s_all": "import_s"}), "import in a fresh process",
            ids=["framework", "condition"], values=["import_s"])
    ax.margins(y=0.45)
    ax.set_title("import in a fresh process, warm bytecode cache vs none (cold)\n"
                 "light: its high-level API on top; page cache: largest library's share resident before",
                 fontsize=7)


def _top_panel(ax: plt.Axes, top: pd.DataFrame, condition: str) -> None:
    if top.empty:
        ax.text(0.5, 0.5, f"no {condition} import runs", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    labels = [f"{LABELS[r.framework]}: {r.package}" for r in top.itertuples()]
    y = np.arange(len(top))[::-1]
    ax.barh(y, top["self_s"], color=[FRAMEWORK_COLOURS[f][0] for f in top["framework"]])
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.set_xlabel("self time summed per package (s, -X importtime)", fontsize=7)
    ax.set_title(f"top import costs, {condition} bytecode cache", fontsize=8)
    plotted(ax, top, f"top import costs, {condition}", ids=["framework", "condition", "package"], values=["self_s"])


def _cold_panel(ax: plt.Axes, cold: pd.DataFrame) -> None:
    if cold.empty:
        ax.text(0.5, 0.5, "no cold-start runs", ha="center", transform=ax.transAxes)
        return
    labels = []
    for i, row in enumerate(cold.itertuples()):
        colours = FRAMEWORK_COLOURS[row.framework]
        if row.n == 0:
            ax.annotate("failed:\n" + textwrap.fill(str(row.error), 28), (i, 0), ha="center", va="bottom", fontsize=5)
        else:
            parts = [(row.child_start_s, "interpreter + job", palette.NEUTRAL), (row.imported_s - row.child_start_s, "import", colours[0]),
                     (row.built_s - row.imported_s, "build model", colours[1]),
                     (row.first_result_s - row.built_s, "first step / prediction", colours[2])]
            bottom = 0.0
            for value, name, colour in parts:
                ax.bar(i, value, bottom=bottom, color=colour, label=name if i == 0 else None)
                bottom += value
            ax.annotate(f"{row.first_result_s:.1f} s\n(n={row.n})", (i, bottom), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6)
        target = "first step" if row.target == "train" else "first prediction"
        labels.append(f"{API_LEVELS[row.level]['label']}\n{target}" if row.target == "train" else f"{LABELS[row.framework]}\n{target}")
    ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=35, ha="right")
    ax.set_ylabel("seconds from spawn, median", fontsize=8)
    plotted(ax, cold, "cold start", ids=["framework", "level", "target"],
            values=["child_start_s", "imported_s", "built_s", "first_result_s", "n"])
    ax.margins(y=0.2)
    ax.legend(fontsize=6, loc="upper right")
    ax.margins(y=0.3)
    ax.set_title("cold start, fresh process (warm bytecode):\nto the first training step and the first prediction", fontsize=8)


def draw(numbers: dict[str, Any]) -> plt.Figure:
    fig = plt.figure(figsize=(15, 10), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    _install_panel(fig.add_subplot(grid[0, 0]), numbers["install"])
    _import_panel(fig.add_subplot(grid[0, 1]), numbers["imports"], None)
    _cold_panel(fig.add_subplot(grid[0, 2]), numbers["cold_start"])
    _top_panel(fig.add_subplot(grid[1, 0]), numbers["top_warm"], "warm")
    _top_panel(fig.add_subplot(grid[1, 1]), numbers["top_cold"], "cold")
    ax = fig.add_subplot(grid[1, 2])
    ax.set_axis_off()
    install = numbers["install"]
    notes = [f"{LABELS[r.framework]}: {r.variant}" for r in install.itertuples() if r.distribution]
    notes += [f"{LABELS[r.framework]}'s high-level API {r.high_level}: "
              + ("part of its dependencies" if r.high_level_in_closure else
                 f"{r.high_level_mb:.1f} MiB, {r.high_level_extra_deps} more dependencies" if r.high_level_installed
                 else "not installed") for r in install.itertuples() if r.distribution]
    cuda = [r for r in install.itertuples() if r.distribution and r.cuda_requirements]
    notes += [f"{LABELS[r.framework]}'s GPU extra lists {len(r.cuda_requirements.split())} NVIDIA wheels "
              f"({r.cuda_requirements.split()[0]} ...)" for r in cuda]
    notes += ["Sizes are RECORD sums (wheel files as installed; bytecode compiled later is not in RECORD). "
              "Exclusive dependencies: those uninstalling the framework would orphan.",
              "The OS page cache was not dropped (root only, and the machine is shared): its state before each "
              "import is measured and printed instead.", NOT_MEASURED]
    ax.text(0, 1, "\n\n".join(textwrap.fill(n, 70) for n in notes), va="top", fontsize=7)
    fig.suptitle("F12 · ecosystem footprint, measured in this environment\n" + numbers["environment"], fontsize=10)
    return fig
