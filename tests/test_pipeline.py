"""Batch runs: skip-unchanged digests, resuming an interrupted batch, ``fwstudy plan``, and bad
input to ``batch`` and ``plan``. Unit tests (no framework) except the one marked slow, which
executes a tiny notebook with papermill."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fwstudy.config.profile import load_profile_file
from fwstudy.config.trial import TrialConfig
from fwstudy.harness.batch import run_batch
from fwstudy.harness.environment import code_version
from fwstudy.pipeline import digest
from fwstudy.results.store import READS_VARIABLE, ResultStore
from tests.conftest import PROJECT, fake_record, run_cli

SMOKE = PROJECT / "parameters" / "smoke.yaml"


def config(repeat: int, framework: str = "torch") -> TrialConfig:
    return TrialConfig(workload="mlp", framework=framework, mode="eager", steps=3, warmup=1, repeat=repeat)


# --- skip-unchanged ----------------------------------------------------------------------------


@pytest.fixture
def ran(tmp_path):
    """A notebook, its executed output, and a digest listing one result file read."""
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    output = tmp_path / "build" / "nb.ipynb"
    output.parent.mkdir()
    output.write_text("{}")
    store = ResultStore(tmp_path / "results")
    record = fake_record(config(0), status="failed")
    store.save(record)
    read = [str(store.root / "trials" / f"{record['trial_id']}.parquet")]
    profile = load_profile_file(SMOKE)
    digest.write(output, notebook, profile, read, seconds=1.0)
    return notebook, output, profile, store, record


def test_unchanged_inputs_skip_the_notebook(ran):
    notebook, output, profile, _, _ = ran
    assert digest.changed(output, notebook, profile) is None


def test_each_input_change_runs_it_again(ran):
    notebook, output, profile, store, record = ran
    # How to run is not an input; what to compute is.
    assert digest.changed(output, notebook, dataclasses.replace(profile, force=True)) is None
    assert digest.changed(output, notebook, dataclasses.replace(profile, steps=6)) == "profile changed"
    # A failed trial it read: run again under RETRY_FAILED (the record is found beside the table).
    assert digest.changed(output, notebook, profile, retry_failed=True).startswith("RETRY_FAILED")
    # A result re-measured (rewritten) since.
    store.save({**record, "status": "ok", "error": None})
    assert digest.changed(output, notebook, profile).startswith("results changed")
    digest.write(output, notebook, profile, [str(store.root / "trials" / f"{record['trial_id']}.parquet")], 1.0)
    assert digest.changed(output, notebook, profile, retry_failed=True) is None
    notebook.write_text('{"cells": []}')
    assert digest.changed(output, notebook, profile) == "notebook changed"
    digest.forget(output)
    assert digest.changed(output, notebook, profile) == "no record of its inputs"
    output.unlink()
    assert digest.changed(output, notebook, profile) == "never run"


def test_the_store_lists_what_it_reads(tmp_path, monkeypatch):
    log = tmp_path / "reads"
    monkeypatch.setenv(READS_VARIABLE, str(log))
    store = ResultStore(tmp_path / "results")
    record = fake_record(config(0))
    store.save(record)
    assert store.measured(record["trial_id"]) is not None
    store.table()
    names = digest.read_log(log)
    assert sorted(Path(n).name for n in names) == sorted(f"{record['trial_id']}.{s}" for s in ("json", "parquet"))


# --- resume ------------------------------------------------------------------------------------


def test_an_interrupted_batch_resumes_without_measuring_anything_twice(tmp_path):
    store = ResultStore(tmp_path / "results")
    configs = [config(r, f) for r in range(3) for f in ("torch", "tensorflow")]
    measured: list[TrialConfig] = []

    def interrupted_at_4(c: TrialConfig) -> dict:
        if len(measured) == 3:
            raise KeyboardInterrupt
        measured.append(c)
        return fake_record(c)

    with pytest.raises(KeyboardInterrupt):
        run_batch(configs, store, run=interrupted_at_4, progress=lambda line: None)
    assert len(list((store.root / "records").glob("*.json"))) == 3  # each saved as it ended
    done = list(measured)
    measured.clear()
    lines: list[str] = []
    table = run_batch(configs, store, run=lambda c: measured.append(c) or fake_record(c), progress=lines.append)
    assert measured == configs[3:]  # the rest, and not one of the three already measured
    assert "6 trials: 3 already measured, 3 to measure" in lines[0]
    assert set(table["trial_id"]) == {c.identity(code_version()) for c in done + measured}


def test_shared_host_records_are_left_out_and_measured_again_locally(tmp_path):
    store = ResultStore(tmp_path / "results")
    record = fake_record(config(0))
    record["env"]["shared_host"] = True
    store.save(record)
    assert store.table().empty and len(store.table(shared_hosts=True))
    again: list[TrialConfig] = []
    lines: list[str] = []
    run_batch([config(0)], store, run=lambda c: again.append(c) or fake_record(c), progress=lines.append)
    assert again == [config(0)] and "1 measured on a shared host" in lines[0]
    assert len(store.table()) > 0


# --- plan --------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A project root of its own (FWSTUDY_ROOT) with the smoke profile."""
    (tmp_path / "parameters").mkdir()
    shutil.copy(SMOKE, tmp_path / "parameters" / "smoke.yaml")
    monkeypatch.setenv("FWSTUDY_ROOT", str(tmp_path))
    return tmp_path


def test_plan_lists_what_is_not_stored_with_estimates_from_comparable_records(root):
    from fwstudy.pipeline import plan

    profile = load_profile_file(SMOKE)
    trials = plan.trial_configs("01_training_speed", profile)
    target = next(c for c in trials if c.framework == "torch")  # F3's thread sweep has its kind too
    store = ResultStore(root / "results" / "smoke")
    first = fake_record(target)
    first["wall_s"] = 6.0
    store.save(first)
    for steps, wall in ((98, 7.0), (99, 5.0)):  # comparable: same task, workload, framework, mode
        old = fake_record(dataclasses.replace(target, steps=steps))
        old["wall_s"] = wall
        store.save(old)
    _, items = plan.plan("smoke")
    assert first["trial_id"] not in {i.trial_id for i in items}  # stored: not listed
    listed = [i for i in items if i.notebook == "01_training_speed"]
    assert len(listed) == len(trials) - 1
    key = (target.task, target.workload, target.framework, target.mode)
    same = [i for i in items if i.key == key]
    assert same and all(i.estimate_s == 6.0 for i in same)  # the median of 5, 6 and 7
    others = [i for i in listed if i.key != key]
    assert others and all(i.estimate_s is None for i in others)
    lines: list[str] = []
    plan.report("smoke", out=lines.append)
    assert any("[~6 s]" in line for line in lines) and any("[no estimate]" in line for line in lines)
    assert {"08_convergence", "09_ease_of_use", "12_footprint", "06_deployment"} <= {i.notebook for i in items}


def test_plan_imports_no_framework(root):
    code = ("import sys; from fwstudy.pipeline import plan; plan.report('smoke', out=lambda line: None); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FWSTUDY_ROOT": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_plan_lists_the_calls_each_notebook_makes():
    from fwstudy.pipeline.plan import TRIAL_NOTEBOOKS

    for name, (module, functions) in TRIAL_NOTEBOOKS.items():
        notebook = nbformat.read(PROJECT / "notebooks" / f"{name}.ipynb", as_version=4)
        source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        for function in functions:
            assert f"{module}.{function}(" in source, (name, function)
        assert "measure(" in source


@pytest.mark.parametrize(("args", "expected"), [
    (["plan", "--profile", "nope"], "valid profiles: "),
    (["batch", "--params", "nope"], "valid profiles: "),
    (["batch", "--params", "smoke", "--notebooks", "99_nothing"], "valid notebooks: 01_training_speed"),
    (["batch", "--params", "smoke", "smoke"], "both name profile 'smoke'"),
    (["batch", "--params", "smoke", "--scheduler", "localhost"], "tcp://host:8786"),
])
def test_bad_batch_and_plan_input_is_one_line_and_exit_2(args, expected):
    done = run_cli(*args, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_a_bad_scheduler_in_a_profile_is_bad_input(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(SMOKE.read_text() + "\nscheduler: not-an-address\n")
    done = run_cli("check-profile", str(path), timeout=60)
    assert done.returncode == 2 and "scheduler must be an address" in done.stderr


# --- a real notebook, executed, skipped, executed again ---------------------------------------


@pytest.mark.slow
def test_batch_skips_a_notebook_whose_inputs_are_unchanged(root, tmp_path):
    """A two-cell notebook reading the store: run, skipped, run again once a result changes."""
    from fwstudy.pipeline import execute

    store = ResultStore(root / "results" / "smoke")
    record = fake_record(config(0))
    store.save(record)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from fwstudy import paths\nfrom fwstudy.config.profile import resolve_profile_path, load_profile_file\n"
            "from fwstudy.results.store import ResultStore\n"
            "p = load_profile_file(resolve_profile_path(profile))\n"
            "print(len(ResultStore(paths.results_dir(p.profile)).table()))"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    lines: list[str] = []
    assert execute.run(["smoke"], [str(path)], progress=lines.append) == 0
    output = root / "build" / "smoke" / "notebooks" / "tiny.ipynb"
    reads = json.loads(digest.sidecar_of(output).read_text())["reads"]
    assert any(record["trial_id"] in name for name in reads)
    lines.clear()
    assert execute.run(["smoke"], [str(path)], progress=lines.append) == 0
    assert "smoke/tiny: inputs unchanged, not executed again" in lines
    store.save({**record, "metrics": {**record["metrics"], "step_time_ms_median": 11.0}})  # re-measured
    lines.clear()
    assert execute.run(["smoke"], [str(path)], progress=lines.append) == 0
    assert not any("not executed again" in line for line in lines) and any("executed 1 of 1" in line for line in lines)
