"""F12 (fwstudy.usability.footprint, fwstudy.figures.footprint): install sizes and dependencies
read from this environment's metadata, the -X importtime parser, the page-cache probe, the jobs
a profile asks for, and the analysis on synthetic runs; one real import run (slow)."""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os

import pandas as pd
import pytest
from packaging.utils import canonicalize_name

from fwstudy import frameworks
from fwstudy.config.profile import Profile
from fwstudy.figures import footprint as figure
from fwstudy.usability import footprint, runs
from fwstudy.usability.catalog import API_LEVELS


@pytest.mark.parametrize("framework", frameworks.NAMES)
def test_closure_and_exclusive_dependencies_follow_the_metadata(framework):
    name = footprint.distribution_of(framework)
    assert name is not None
    mine = footprint.closure(name)
    direct = set(footprint.requirements(name)) & set(footprint.installed())
    assert direct <= mine and name not in mine
    for dep in mine:  # closed under requirements
        assert set(footprint.requirements(dep)) & set(footprint.installed()) <= mine | {name}
    only = footprint.exclusive(name)
    assert only <= mine
    # nothing installed outside the framework's closure (and not built on it) needs an exclusive dep
    for other in footprint.installed():
        if other != name and other not in mine and name not in footprint.closure(other):
            assert not (set(footprint.requirements(other)) & only), other
    # NumPy is everyone's: never exclusive to one framework
    assert canonicalize_name("numpy") not in only


def test_record_sizes_are_the_installed_files_sizes():
    dist = md.distribution("radon")
    listed = [f for f in dist.files if f.size]
    on_disk = sum(os.path.getsize(dist.locate_file(f)) for f in listed)
    assert footprint.record_bytes("radon") == on_disk > 0


def test_rows_name_the_variant_measured():
    rows = {r["framework"]: r for r in footprint.install_table(list(frameworks.NAMES))}
    torch = rows["torch"]
    assert torch["own_mb"] > 0 and torch["transitive_deps"] == len(footprint.closure(torch["distribution"]))
    if torch["version"].endswith("+cpu"):
        assert "CPU wheel" in torch["variant"] and "CUDA" in torch["variant"]
    tf = rows["tensorflow"]
    if tf["distribution"] == "tensorflow-cpu":
        assert tf["cuda_requirements"] == " ".join(footprint.cuda_requirements("tensorflow-cpu"))
        assert all(n.startswith("nvidia-") for n in tf["cuda_requirements"].split())


IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      3000 |       3000 |     torch._C
import time:      1000 |       5000 |   torch.nn
import time:     20000 |      26000 | torch
import time:       500 |        500 | numpy.core
garbage line
"""


def test_importtime_is_parsed_and_summed_per_package():
    rows = footprint.parse_importtime(IMPORTTIME)
    assert [r["module"] for r in rows] == ["_io", "torch._C", "torch.nn", "torch", "numpy.core"]
    assert rows[3]["cumulative_s"] == pytest.approx(0.026) and rows[1]["depth"] == 2
    top = footprint.top_costs(rows)
    assert top[0] == {"package": "torch", "self_s": pytest.approx(0.024), "modules": 3}
    assert [t["package"] for t in top] == ["torch", "numpy", "_io"]


def test_page_cache_probe_sees_a_file_just_written(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(1 << 20))
    path.read_bytes()
    assert footprint.resident_fraction(path) == pytest.approx(1.0, abs=0.1)
    assert footprint.resident_fraction(tmp_path / "missing") is None


def test_jobs_follow_the_profile():
    profile = Profile(profile="t", footprint_repeats=2, footprint_cold_import=True,
                      footprint_levels=["tf_gradient_tape", "torch_loop"])
    jobs = runs.footprint_jobs(profile)
    imports = [j for j in jobs if j["task"] == "import"]
    assert len(imports) == 2 * 2 * 2  # conditions x repeats x frameworks
    assert {tuple(j["modules"]) for j in imports} == {("tensorflow", "keras"), ("torch",)}
    cold = [j for j in jobs if j["task"] == "cold_start"]
    assert sorted((j["level"], j["target"]) for j in cold if j["repeat"] == 0) == [
        ("tf_gradient_tape", "predict"), ("tf_gradient_tape", "train"), ("torch_loop", "predict"), ("torch_loop", "train")]
    with_lightning = dataclasses.replace(profile, footprint_levels=list(API_LEVELS), footprint_cold_import=False)
    assert ("torch", "lightning") in {tuple(j["modules"]) for j in runs.footprint_jobs(with_lightning) if j["task"] == "import"}


def _import_row(framework, condition, seconds, status="ok"):
    steps = [{"module": framework, "import_s": seconds, "rss_mb": 300.0}]
    return {"task": "import", "framework": framework, "condition": condition, "status": status, "steps": steps,
            "rss_before_mb": 10.0, "page_cache_resident_before": 0.5, "page_cache_library": "/x/lib.so",
            "top_costs": [{"package": framework, "self_s": seconds / 2, "modules": 3}], "error": None}


def test_analysis_takes_medians_and_keeps_failures():
    imports = pd.DataFrame([_import_row("torch", "warm", s) for s in (1.0, 3.0, 2.0)]
                           + [_import_row("torch", "cold", 9.0), {**_import_row("torch", "cold", 0), "status": "failed",
                                                                    "steps": None, "error": "killed"}])
    summary = figure.import_summary(imports).set_index("condition")
    assert summary.loc["warm", "import_s_median"] == 2.0 and summary.loc["warm", "n"] == 3
    assert summary.loc["cold", "n"] == 1 and summary.loc["cold", "failed"] == 1
    top = figure.top_import_costs(imports, "warm")
    assert top.iloc[0]["self_s"] == 1.0
    cold = pd.DataFrame([{"task": "cold_start", "framework": "torch", "level": "torch_loop", "target": "train",
                          "status": "ok", "child_start_s": 0.1, "imported_s": 2.0, "built_s": 2.1,
                          "first_result_s": 2.5, "import_s": 1.9, "rss_after_import_mb": 300.0, "error": None}])
    row = figure.cold_start_summary(cold).iloc[0]
    assert row["first_result_s"] == 2.5 and row["n"] == 1


@pytest.mark.slow
def test_a_real_import_run(tmp_path):
    profile = Profile(profile="t", results_dir=str(tmp_path))
    result = runs.import_run({"task": "import", "framework": "torch", "condition": "warm", "repeat": 0,
                              "modules": ["torch"]}, profile)
    assert result["status"] == "ok", result
    step = result["steps"][0]
    assert step["module"] == "torch" and step["import_s"] > 0 and step["rss_mb"] > result["rss_before_mb"]
    assert result["top_costs"] and result["importtime_modules"] > 100
    assert 0 <= result["page_cache_resident_before"] <= 1


def test_a_missing_high_level_api_is_recorded_not_fatal(tmp_path):
    """Lightning absent: the import run keeps the framework's numbers and says why it stopped."""
    import json
    import subprocess
    import sys

    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", footprint.IMPORT_CODE, str(out), str(err),
                           "json", "fwstudy_no_such_module"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    steps = json.loads(out.read_text())["steps"]
    assert steps[0]["module"] == "json" and steps[0]["import_s"] > 0
    assert steps[1] == {"module": "fwstudy_no_such_module",
                        "error": "ModuleNotFoundError: No module named 'fwstudy_no_such_module'"}
    row = _import_row("torch", "warm", 2.0)
    row["steps"] = [*row["steps"], {"module": "lightning", "error": "ModuleNotFoundError: No module named 'lightning'"}]
    summary = figure.import_summary(pd.DataFrame([row])).iloc[0]
    assert summary["import_s_median"] == 2.0 and "lightning" in summary["high_level_error"]
