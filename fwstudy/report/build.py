"""``make report``: one static HTML report per profile, ``build/<profile>/report/index.html``.

The verdict table of the claims ledger first, then one section per figure (the paper's
section, the figure and the CSV of its numbers, each claim's deciding numbers and a reading
generated from them, a link to the executed notebook rendered as HTML), then the environment
and how to reproduce it. Everything the page shows is copied into the report folder and linked
relatively, so the folder can be zipped and opened anywhere.

The report only reads: stored results, figures and executed notebooks. It measures nothing and
imports no framework (the parent never does); whatever is missing is shown as missing.
"""

from __future__ import annotations

import datetime
import html
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

from fwstudy import paths
from fwstudy.claims import describe
from fwstudy.claims.evaluate import MULTIPLICITY, VERDICTS, Verdict, evaluate, load_ledger
from fwstudy.errors import BadInput

TEMPLATE = "report.html.j2"
# STUDY.md's figure table: number -> (question, paper section, figure file, notebook)
FIGURES: dict[str, tuple[str, str, str, str]] = {
    "F1": ("Training speed", "III", "training_speed", "01_training_speed"),
    "F2": ("Resource utilization", "III", "resource_usage", "02_resource_usage"),
    "F3": ("Scalability", "III, V", "scalability", "03_scalability"),
    "F4": ("Static vs dynamic graphs", "II", "graph_modes", "04_graph_modes"),
    "F5": ("Inference", "I", "inference", "05_inference"),
    "F6": ("Deployment and edge", "I, IV", "deployment", "06_deployment"),
    "F7": ("Interoperability", "V", "interoperability", "07_interoperability"),
    "F8": ("Convergence", "VI", "convergence", "08_convergence"),
    "F9": ("Ease of use and debugging", "II", "ease_of_use", "09_ease_of_use"),
    "F10": ("Robustness and explainability", "IV, V", "robustness", "10_robustness"),
    "F11": ("Hardware (MFU)", "III", "hardware", "11_hardware"),
    "F12": ("Ecosystem footprint", "II", "footprint", "12_footprint"),
}
ENVIRONMENT_COLUMNS = ("host", "cpu_model", "device", "threads", "torch_version",
                       "tensorflow_version", "keras_version", "numpy_version", "git_commit",
                       "code_version")


@dataclass
class Section:
    number: str
    title: str
    paper: str
    figure: str | None  # relative link, None when missing
    figure_csv: str | None
    figure_missing: str
    notebook: str | None
    notebook_missing: str
    verdicts: list[dict[str, Any]]


def _confidence(root: Path, profile: str) -> float:
    """The profile's confidence (what its intervals are asked to reach), else 0.95."""
    try:
        data = yaml.safe_load((root / "parameters" / f"{profile}.yaml").read_text(encoding="utf-8"))
        value = float(data.get("confidence", 0.95))
        return value if 0 < value < 1 else 0.95
    except (OSError, AttributeError, TypeError, ValueError, yaml.YAMLError):
        return 0.95


def _results(root: Path, profile: str) -> tuple[pd.DataFrame, str]:
    from fwstudy.results import load

    try:
        return load(profile, root / "results" / profile), ""
    except BadInput as exc:
        return pd.DataFrame(), str(exc)


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def render_notebook(source: Path, target: Path) -> str:
    """The executed notebook as a standalone HTML page (nbconvert, outputs as they were run);
    '' when done, else the reason it could not be rendered."""
    import nbconvert
    import nbformat

    try:
        notebook = nbformat.read(source, as_version=4)
        body, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(notebook)
    except Exception as exc:  # a broken notebook is reported on its section, never a crash
        return f"could not render {source.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return ""


def _copy(source: Path, target_dir: Path) -> str | None:
    if not source.is_file():
        return None
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target_dir / source.name)
    return f"{target_dir.name}/{source.name}"


def _verdict_row(v: Verdict, profile: str, out: Path) -> dict[str, Any]:
    csv = None
    if len(v.groups):
        (out / "claims").mkdir(parents=True, exist_ok=True)
        table = v.groups.assign(trial_ids=v.groups["trial_ids"].map(" ".join))
        table.to_csv(out / "claims" / f"{v.claim.id}.csv", index=False)
        csv = f"claims/{v.claim.id}.csv"
    columns = [c for c in ("configuration", "n_a", "n_b", "median_a", "median_b", "estimate", "low",
                           "high", "reached", "threshold", "noise_floor", "p", "p_adjusted",
                           "method", "outcome") if c in v.groups]
    groups = v.groups[columns] if len(v.groups) else pd.DataFrame()
    return {
        "id": v.claim.id, "figure": v.claim.figure, "section": v.claim.section,
        "claim": v.claim.claim, "verdict": v.verdict, "css": v.verdict.replace(" ", "-"),
        "numbers": describe.numbers(v), "conditions": describe.conditions(v),
        "rule": describe.rule_text(v.claim, v.confidence), "reading": describe.reading(v, profile),
        "quantity": describe.quantity(v.claim), "csv": csv, "note": v.claim.note,
        "table": groups.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="",
                                classes="numbers", border=0) if len(groups) else "",
    }


def _environment(table: pd.DataFrame, root: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for column in ENVIRONMENT_COLUMNS:
        if column in table and table[column].notna().any():
            rows.append((column, ", ".join(sorted({str(v) for v in table[column].dropna()}))))
    if "timestamp" in table and table["timestamp"].notna().any():
        rows.append(("trials measured", f"{table['timestamp'].min()} to {table['timestamp'].max()}"))
    if "trial_id" in table:
        rows.append(("trials stored", str(table["trial_id"].nunique())))
    rows += [("report written", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")),
             ("report's checkout", _git(root, "rev-parse", "HEAD") or "not a git checkout"),
             ("report's Python", f"{platform.python_version()} on {platform.platform()}")]
    return rows


def build_report(profile: str, root: str | Path | None = None, out: str | Path | None = None,
                 ledger: str | Path | None = None) -> Path:
    """Write ``build/<profile>/report/`` under ``root`` (default: the project) and return the
    path of its index.html."""
    paths.check_profile_name(profile)
    root = Path(root) if root is not None else paths.project_root()
    known = sorted({p.stem for p in (root / "parameters").glob("*.yaml")}
                   | {p.name for p in (root / "results").glob("*") if (p / "trials").is_dir()})
    if profile not in known:
        raise BadInput(f"unknown profile {profile!r}; valid profiles: {', '.join(known) or 'none'} "
                       f"(parameters/<profile>.yaml or results/<profile>/ under {root})")
    out = Path(out) if out is not None else root / "build" / profile / "report"
    if out.exists():
        shutil.rmtree(out)  # a stale figure or notebook from an earlier report must not linger
    out.mkdir(parents=True)
    confidence = _confidence(root, profile)
    table, missing_results = _results(root, profile)
    claims = load_ledger(ledger) if ledger else load_ledger()
    verdicts = evaluate(table, claims, confidence, results_root=root / "results" / profile)
    rows = [_verdict_row(v, profile, out) for v in verdicts]
    pd.DataFrame([{k: r[k] for k in ("id", "figure", "verdict", "numbers", "conditions", "claim")}
                  for r in rows]).to_csv(out / "verdicts.csv", index=False)

    figures_dir = root / "figures" / profile
    notebooks_dir = root / "build" / profile / "notebooks"
    sections = []
    for number, (title, paper, figure, notebook) in FIGURES.items():
        png = _copy(figures_dir / f"{figure}.png", out / "figures")
        csv = _copy(figures_dir / f"{figure}.csv", out / "figures")
        executed = notebooks_dir / f"{notebook}.ipynb"
        link, why = None, f"not run: {executed.relative_to(root)} does not exist"
        if executed.is_file():
            why = render_notebook(executed, out / "notebooks" / f"{notebook}.html")
            link = None if why else f"notebooks/{notebook}.html"
        sections.append(Section(
            number, title, paper, png, csv,
            f"missing: {(figures_dir / f'{figure}.png').relative_to(root)} has not been drawn "
            f"(make figures PROFILE={profile})",
            link, why, [r for r in rows if r["figure"] == number]))

    counts = {name: sum(r["verdict"] == name for r in rows) for name in VERDICTS}
    environment = _environment(table, root)
    env = jinja2.Environment(loader=jinja2.PackageLoader("fwstudy.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    page = env.get_template(TEMPLATE).render(
        profile=profile, rows=rows, sections=sections, counts=counts, confidence=confidence,
        multiplicity=MULTIPLICITY, missing_results=missing_results, environment=environment,
        alpha=1 - confidence, python=html.escape(sys.executable),
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fwstudy.report", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", help="the profile whose results, figures and notebooks to report")
    parser.add_argument("--root", default=None, help="the project folder (default: $FWSTUDY_ROOT or this checkout)")
    args = parser.parse_args(argv)
    try:
        index = build_report(args.profile, args.root)
    except BadInput as exc:
        print(f"make report: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {os.path.relpath(index)}")
    return 0
