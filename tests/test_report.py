"""``make report`` on a small fixture: the verdict table first, verdicts computed from the
stored trials, figures and notebooks copied and linked relatively, what is missing shown as
missing, bad input as one line and exit 2, and no framework imported by the parent."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import PROJECT
from tests.report_fixture import make_project

BUILD = """
import sys
from fwstudy.report.build import build_report
index = build_report({profile!r}, {root!r})
loaded = sorted(m for m in ("torch", "tensorflow", "keras", "jax") if m in sys.modules)
print(index)
print("frameworks imported:", loaded)
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    profile = make_project(root)
    run = subprocess.run([sys.executable, "-c", BUILD.format(profile=profile, root=str(root))],
                         capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert run.returncode == 0, run.stderr
    return root, profile, run.stdout


def test_the_parent_imports_no_framework(report):
    _, _, stdout = report
    assert "frameworks imported: []" in stdout


def test_verdict_table_first_and_computed(report):
    root, profile, _ = report
    out = root / "build" / profile / "report"
    page = (out / "index.html").read_text()
    assert page.index('id="verdict-table"') < page.index('id="F1"') < page.index('id="environment"')
    verdicts = pd.read_csv(out / "verdicts.csv").set_index("id")["verdict"]
    # the fixture's step times: TF graph 5 ms, torch eager 10 ms, TF eager 20 ms, 6 blocks
    assert verdicts["F4-tf-graph"] == "supported"
    assert verdicts["F1-dynamic-overhead"] == "supported"
    assert verdicts["F1-training-speed"] == "supported"
    assert verdicts["F5-serving-latency"] == "not measured"
    assert verdicts["F11-gpu"] == "not measured"
    assert "Benjamini-Hochberg" in page
    assert "threads 2" in page  # the conditions of each verdict
    table = pd.read_csv(out / "claims" / "F4-tf-graph.csv")
    assert table["estimate"].iloc[0] == pytest.approx(0.25, rel=0.01)


def test_figures_and_notebooks_copied_linked_and_missing_shown(report):
    root, profile, _ = report
    out = root / "build" / profile / "report"
    page = (out / "index.html").read_text()
    assert (out / "figures" / "training_speed.png").read_bytes() == \
        (root / "figures" / profile / "training_speed.png").read_bytes()
    assert 'src="figures/training_speed.png"' in page and 'href="figures/training_speed.csv"' in page
    assert "no CSV of its numbers beside it" in page  # ease_of_use.png has none
    assert "missing: figures/mini/resource_usage.png has not been drawn" in page
    assert 'href="notebooks/01_training_speed.html"' in page
    notebook = (out / "notebooks" / "01_training_speed.html").read_text()
    assert "step times" in notebook and "data:image/png;base64" in notebook
    assert "not run: build/mini/notebooks/02_resource_usage.ipynb does not exist" in page
    assert "could not render 03_scalability.ipynb" in page
    # every link and image is relative to the report folder (it can be zipped) and exists
    for target in re.findall(r'(?:src|href)="([^"#][^"]*)"', page):
        assert not target.startswith(("/", "file:", "http")), target
        assert (out / target).is_file(), target


@pytest.mark.parametrize("profile, message", [
    ("../x", "is not a plain name"),
    ("nope", "unknown profile 'nope'; valid profiles:"),
])
def test_bad_profile_is_one_line_and_exit_2(tmp_path, profile, message):
    make_project(tmp_path)
    run = subprocess.run([sys.executable, "-m", "fwstudy.report", "--profile", profile, "--root", str(tmp_path)],
                         capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr
