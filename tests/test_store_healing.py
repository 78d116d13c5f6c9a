"""The store heals itself (issue 11): one Parquet schema, bad files quarantined and measured
again, caches rebuilt, failed trials retried when their cause may have changed, an unwritable
folder refused before anything is measured, one run at a time per store, strict JSON.

No framework runs here: trials, GEMM peaks and the parity gate are stand-ins."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput
from fwstudy.harness import batch, peak
from fwstudy.harness.batch import run_batch
from fwstudy.results.store import ResultStore
from tests.conftest import PROJECT, fake_record


@pytest.fixture(autouse=True)
def _no_run_env(monkeypatch):
    """`make` exports a run id, and a user may have RETRY_FAILED or a lock wait set."""
    for name in ("FWSTUDY_RUN_ID", "RETRY_FAILED", "FWSTUDY_LOCK_WAIT"):
        monkeypatch.delenv(name, raising=False)


def configs(n=2, **kw):
    return [
        TrialConfig(workload="mlp", framework=fw, mode="eager", repeat=r, steps=2, threads=1, **kw)
        for r in range(n)
        for fw in ("tensorflow", "torch")
    ]


class Run:
    """A stand-in for run_trial: counts its calls; trials of repeat 0 end with ``status``."""

    def __init__(self, status="ok"):
        self.status = status
        self.calls: list[TrialConfig] = []

    def __call__(self, config):
        self.calls.append(config)
        return fake_record(config, 10.0, status=self.status if config.repeat == 0 else "ok")


def quiet(line):
    pass


# --- item 4: one explicit Parquet schema -------------------------------------------------------


def test_failed_and_ok_trials_load_with_one_read_parquet(tmp_path):
    # A failed trial has `error` set and `metric` null; an ok one the other way round: without
    # one schema, whichever file pyarrow reads first types a column null and the other fails.
    run_batch(configs(2), ResultStore(tmp_path), run=Run("failed"), progress=quiet)
    table = pd.read_parquet(tmp_path / "trials")
    assert table["trial_id"].nunique() == 4
    assert table.drop_duplicates("trial_id")["status"].value_counts().to_dict() == {"ok": 2, "failed": 2}
    assert table["value"].dtype == "float64" and table["batch_size"].dtype == "int64"

    from fwstudy.results import load

    loaded = load("ignored", results_dir=tmp_path)
    key = ["trial_id", "metric"]
    pd.testing.assert_frame_equal(
        loaded.sort_values(key, na_position="first").reset_index(drop=True),
        table.sort_values(key, na_position="first").reset_index(drop=True),
        check_dtype=False,
    )
    with pytest.raises(BadInput, match="no results"):
        load("ignored", results_dir=tmp_path / "nothing-here")


def test_loading_the_results_package_imports_no_framework_and_no_pandas():
    code = ("import sys, fwstudy.results, fwstudy.results.atomic; "
            "assert 'pandas' not in sys.modules and 'torch' not in sys.modules; "
            "from fwstudy.results import load; import fwstudy.results.store; "
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert result.returncode == 0, result.stderr


# --- items 3 and 5: bad files quarantined, trials measured again ------------------------------


def test_bad_files_are_quarantined_and_their_trials_measured_again(tmp_path, capsys):
    store = ResultStore(tmp_path)
    run = Run()
    run_batch(configs(2), store, run=run, progress=quiet)
    assert len(run.calls) == 4
    ids = sorted(p.stem for p in (tmp_path / "trials").glob("*.parquet"))
    empty, truncated, bad_record = (tmp_path / "trials" / f"{ids[0]}.parquet",
                                    tmp_path / "trials" / f"{ids[1]}.parquet",
                                    tmp_path / "records" / f"{ids[2]}.json")
    empty.write_bytes(b"")
    truncated.write_bytes(truncated.read_bytes()[:-40])
    bad_record.write_text(bad_record.read_text()[:50])

    lines = []
    table = run_batch(configs(2), store, run=run, progress=lines.append)
    assert len(run.calls) == 7, "exactly the three trials with a bad file are measured again"
    assert "3 bad files quarantined" in lines[0]
    assert table["trial_id"].nunique() == 4 and set(table["trial_id"]) == set(ids)
    kept = sorted(p.name for p in (tmp_path / "quarantine").iterdir())
    assert len(kept) == 3 and {name.split(".")[0] for name in kept} == set(ids[:3])
    assert (tmp_path / "quarantine").joinpath(next(n for n in kept if n.startswith(ids[1]))).stat().st_size > 0
    warnings = capsys.readouterr().err.splitlines()
    for path, why in ((empty, "empty file"), (truncated, "Parquet"), (bad_record, "not valid JSON")):
        assert any(str(path) in line and why in line for line in warnings), (path, warnings)
    assert len(run_batch(configs(2), store, run=run, progress=quiet)) and len(run.calls) == 7  # healed


def test_the_table_never_fails_on_a_bad_file(tmp_path):
    store = ResultStore(tmp_path)
    run_batch(configs(2), store, run=Run(), progress=quiet)
    victim = sorted((tmp_path / "trials").glob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 not really")
    (tmp_path / "trials" / "wrong-columns.parquet").write_bytes(pd.DataFrame({"x": [1]}).to_parquet())
    table = store.table()
    assert table["trial_id"].nunique() == 3 and victim.stem not in set(table["trial_id"])
    assert len(list((tmp_path / "quarantine").iterdir())) == 2
    pd.read_parquet(tmp_path / "trials")  # what is left loads in one line


def test_force_survives_a_truncated_record(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    run = Run()
    run_batch(configs(1), store, run=run, progress=quiet)
    record = sorted((tmp_path / "records").glob("*.json"))[0]
    record.write_text('{"trial_id": "')
    monkeypatch.setenv("FWSTUDY_RUN_ID", "run-2")
    run_batch(configs(1), store, run=run, force=True, progress=quiet)
    assert len(run.calls) == 4
    assert store.record(record.stem)["run_id"] == "run-2"
    assert json.loads(record.read_text())["trial_id"] == record.stem


# --- item 5: caches validated on read and rebuilt ------------------------------------------


BAD_CACHES = ["", '{"gemm_peak_gflops": 12', "[]", '{"gemm_peak_gflops": null}', '{"other": 1}']


@pytest.mark.parametrize("content", BAD_CACHES, ids=["empty", "truncated", "list", "null", "no-key"])
def test_a_bad_gemm_peak_cache_is_rebuilt(tmp_path, monkeypatch, capsys, content):
    monkeypatch.setenv("FWSTUDY_CACHE_DIR", str(tmp_path))
    measured = []

    def run_job(job, **kw):
        measured.append(job["framework"])
        return None, {"gemm_size": job["size"], "gemm_repeats": 3, "gemm_peak_gflops": 40.0 + len(measured)}

    monkeypatch.setattr(peak.process, "run_job", run_job)
    paths = [tmp_path / "gemm_peaks" / peak.cache_key(source, 1, "cpu", 64) for source in peak.PEAK_SOURCES]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    result = peak.machine_peak(1, "cpu", 64)  # what the runner calls after a trial was measured
    assert sorted(measured) == sorted(peak.PEAK_SOURCES)
    assert result["gemm_peak_gflops"] == 43.0
    assert all(json.loads(path.read_text())["gemm_peak_gflops"] > 40 for path in paths)
    err = capsys.readouterr().err
    assert all(str(path) in err for path in paths) and "GEMM-peak cache" in err
    peak.machine_peak(1, "cpu", 64)
    assert len(measured) == 3, "the rebuilt cache is reused"


@pytest.mark.parametrize("content", ["", '{"workload": "mlp", "pass', '{"workload": "cnn", "passed": true}',
                                     '{"workload": "mlp"}'], ids=["empty", "truncated", "other-workload", "no-verdict"])
def test_a_bad_parity_verdict_cache_is_rebuilt(tmp_path, monkeypatch, capsys, content):
    from fwstudy.parity import verdict

    monkeypatch.setenv("FWSTUDY_CACHE_DIR", str(tmp_path))
    calls = []

    def run_parity(request):
        calls.append(request.workload)
        return {"workload": request.workload, "passed": True, "error": None, "checks": {"forward_float32": True},
                "max_abs_diff": float("nan")}

    monkeypatch.setattr("fwstudy.parity.gate.run_parity", run_parity)
    path = verdict.verdict_path("mlp")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    result = verdict.workload_verdict("mlp", progress=quiet)
    assert calls == ["mlp"] and result["passed"] is True
    assert str(path) in capsys.readouterr().err
    assert json.loads(path.read_text())["max_abs_diff"] is None  # strict JSON: NaN is null
    verdict.workload_verdict("mlp", progress=quiet)
    assert calls == ["mlp"], "the rebuilt cache is reused"


# --- item 2: failed trials measured again when their cause may have changed ---------------------


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_retry_failed_remeasures_the_failed_trials_only(tmp_path, monkeypatch, value):
    store = ResultStore(tmp_path)
    run = Run("failed")
    run_batch(configs(2), store, run=run, progress=quiet)
    run_batch(configs(2), store, run=run, progress=quiet)
    assert len(run.calls) == 4, "without RETRY_FAILED a failed trial is reused"
    monkeypatch.setenv("RETRY_FAILED", value)
    lines = []
    run_batch(configs(2), store, run=run, progress=lines.append)
    assert len(run.calls) == 6 and all(c.repeat == 0 for c in run.calls[4:])
    assert "2 to measure" in lines[0] and "2 not-ok retried (RETRY_FAILED)" in lines[0]


def test_a_changed_timeout_remeasures_the_timed_out_trials_only(tmp_path):
    store = ResultStore(tmp_path)
    run = Run("timeout")
    run_batch(configs(2, timeout_s=5), store, run=run, progress=quiet)
    run_batch(configs(2, timeout_s=5), store, run=run, progress=quiet)
    assert len(run.calls) == 4
    lines = []
    table = run_batch(configs(2, timeout_s=50), store, run=run, progress=lines.append)
    assert len(run.calls) == 6, "the ok trials are reused whatever their timeout"
    assert all(c.repeat == 0 and c.timeout_s == 50 for c in run.calls[4:])
    assert "2 not-ok retried (timeout changed)" in lines[0]
    assert table["trial_id"].nunique() == 4
    run_batch(configs(2, timeout_s=50), store, run=run, progress=quiet)
    assert len(run.calls) == 6, "re-measured with the new timeout, the trial is then reused"


# --- item 7: an unwritable results folder is refused before anything is measured ---------------


def test_an_unwritable_results_folder_is_one_line_before_any_trial(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = Run()
    with pytest.raises(BadInput) as caught:
        run_batch(configs(1), ResultStore(blocker / "results"), run=run, progress=quiet)
    assert run.calls == [] and str(blocker / "results") in str(caught.value) and "\n" not in str(caught.value)

    measured = []
    monkeypatch.setattr(batch, "run_trial", lambda config, **kw: measured.append(config) or fake_record(config))
    monkeypatch.setattr("fwstudy.parity.gate.run_parity", lambda request: pytest.fail("the gate ran first"))
    profile = Profile(profile="t", workloads=["mlp"], threads=1, results_dir=str(blocker / "results"))
    with pytest.raises(BadInput, match="not writable"):
        batch.measure(profile, configs(1))
    assert measured == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_read_only_results_folder_is_refused(tmp_path):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials").chmod(0o500)
    run = Run()
    try:
        with pytest.raises(BadInput, match="trials"):
            run_batch(configs(1), ResultStore(tmp_path), run=run, progress=quiet)
    finally:
        (tmp_path / "trials").chmod(0o700)
    assert run.calls == []


# --- Build item 5: one run at a time per store ------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys, time
    from fwstudy.results.store import ResultStore
    with ResultStore(sys.argv[1]).lock():
        print("held", flush=True)
        time.sleep(120)
""")


def test_a_held_lock_names_its_holder_and_a_dead_holders_lock_is_taken_over(tmp_path, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=PROJECT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
        run = Run()
        monkeypatch.setenv("FWSTUDY_LOCK_WAIT", "0")
        with pytest.raises(BadInput) as caught:
            run_batch(configs(1), ResultStore(tmp_path), run=run, progress=quiet)
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "\n" not in message and run.calls == []
        monkeypatch.setenv("FWSTUDY_LOCK_WAIT", "0.3")
        with pytest.raises(BadInput, match=f"still locked by pid {holder.pid}"):
            run_batch(configs(1), ResultStore(tmp_path), run=run, progress=quiet)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    monkeypatch.setenv("FWSTUDY_LOCK_WAIT", "0")  # the kernel released the dead holder's lock
    run_batch(configs(1), ResultStore(tmp_path), run=run, progress=quiet)
    assert len(run.calls) == 2
    assert (tmp_path / ".lock").read_text() == "", "a free lock names nobody"


def test_the_lock_is_reentrant_and_taken_again_by_the_same_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FWSTUDY_LOCK_WAIT", "0")  # a self-deadlock fails instead of hanging
    store = ResultStore(tmp_path)
    run = Run()
    with store.lock():
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        run_batch(configs(1), store, run=run, progress=quiet)
    run_batch(configs(1), store, run=run, force=True, progress=quiet)
    monkeypatch.setattr(batch, "run_trial", lambda config, **kw: fake_record(config))
    profile = Profile(profile="t", workloads=["mlp"], threads=1, results_dir=str(tmp_path), parity_gate=False)
    batch.measure(profile, configs(1))
    batch.measure(profile, configs(1))  # a notebook measuring twice
    assert len(run.calls) == 4


# --- strict JSON, and measure's temporary folders ---------------------------------------------


def test_strict_json_turns_every_non_finite_float_into_null(tmp_path):
    from fwstudy.results.atomic import strict_json

    obj = {"a": [1.5, math.nan, {"b": math.inf, "c": [-math.inf, (math.nan, 2)]}], "d": "NaN", "e": None}
    text = strict_json(obj, indent=1, sort_keys=True)
    assert json.loads(text, parse_constant=lambda token: pytest.fail(token)) == {
        "a": [1.5, None, {"b": None, "c": [None, [None, 2]]}], "d": "NaN", "e": None}
    assert strict_json({"x": object()}, default=lambda value: math.nan) == '{"x": null}'

    record = fake_record(configs(1)[0])
    record["metrics"]["loss_last"] = math.nan
    record["samples"]["loss"] = [1.0, math.inf]
    ResultStore(tmp_path).save(record)
    stored = (tmp_path / "records" / f"{record['trial_id']}.json").read_text()
    parsed = json.loads(stored, parse_constant=lambda token: pytest.fail(f"{token} in a stored record"))
    assert parsed["metrics"]["loss_last"] is None and parsed["samples"]["loss"] == [1.0, None]


def test_measure_sweeps_stale_folders_and_owns_its_compile_cache(tmp_path, monkeypatch):
    from fwstudy.harness import lifeline

    swept, caches = [], []
    monkeypatch.setattr(lifeline, "sweep_stale", lambda *a: swept.append(1) or [])
    monkeypatch.setattr(batch, "run_trial", lambda config, **kw: caches.append(kw["cache_dir"]) or fake_record(config))
    profile = Profile(profile="t", workloads=["mlp"], threads=1, results_dir=str(tmp_path), parity_gate=False)
    batch.measure(profile, configs(1))
    assert swept == [1] and len(caches) == 2 and len(set(caches)) == 1
    assert Path(caches[0]).name.startswith(f"fwstudy-compile-cache.{os.getpid()}.")
    assert not Path(caches[0]).exists(), "removed when measure returns"
