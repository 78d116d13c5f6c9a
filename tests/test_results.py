"""Results store: atomic writes, tidy rows, skip-if-measured and forcing, nothing lost."""

import os

import pandas as pd
import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.batch import run_batch
from fwstudy.results.atomic import atomic_write_text
from fwstudy.results.store import ResultStore, tidy_rows
from tests.conftest import fake_record


def configs(n=3):
    return [
        TrialConfig(workload="mlp", framework=fw, mode="eager", repeat=r, steps=2, threads=1)
        for r in range(n)
        for fw in ("tensorflow", "torch")
    ]


def test_atomic_write_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_tidy_rows_one_per_metric_with_units():
    config = configs(1)[0]
    frame = tidy_rows(fake_record(config, 12.5))
    assert set(frame["metric"]) >= {"step_time_ms_median", "throughput_samples_per_s", "compile_s"}
    row = frame.set_index("metric").loc["step_time_ms_median"]
    assert row["value"] == 12.5 and row["unit"] == "ms"
    assert (frame["framework"] == "tensorflow").all() and (frame["status"] == "ok").all()


def test_tidy_rows_carry_the_environment_and_units_of_the_new_metrics():
    from fwstudy.harness.environment import base_environment

    record = fake_record(configs(1)[0], 12.5)
    record["env"] = base_environment()
    record["metrics"].update(peak_anon_above_import_mb=50.0, mfu_own=0.1, fxgraph_cache_hit=2,
                             latency_ms_p99_ci_confidence=0.95, cpu_s_per_sample=1e-3)
    frame = tidy_rows(record)
    for column in ("host", "torch_version", "tensorflow_version", "keras_version", "numpy_version", "fingerprint"):
        assert frame[column].notna().all(), column
    assert (frame["host"] == record["env"]["hostname"]).all()
    units = frame.set_index("metric")["unit"]
    assert units["peak_anon_above_import_mb"] == "MiB" and units["mfu_own"] == "fraction"
    assert units["fxgraph_cache_hit"] == "count" and units["cpu_s_per_sample"] == "s/sample"
    assert units["latency_ms_p99_ci_confidence"] == "probability"


def test_a_failed_trial_still_has_a_row_with_its_reason():
    frame = tidy_rows(fake_record(configs(1)[0], status="failed"))
    assert len(frame) == 1
    assert frame.iloc[0]["status"] == "failed"
    assert frame.iloc[0]["error"] == "RuntimeError: injected"
    assert pd.isna(frame.iloc[0]["value"])


def test_store_round_trip(tmp_path):
    store = ResultStore(tmp_path)
    record = fake_record(configs(1)[0])
    store.save(record)
    assert store.has(record["trial_id"])
    assert store.record(record["trial_id"])["metrics"] == record["metrics"]
    table = store.table()
    assert table["trial_id"].nunique() == 1


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, config):
        self.calls += 1
        return fake_record(config, 10.0 + config.repeat)


def test_second_run_reuses_and_force_remeasures(tmp_path, monkeypatch):
    monkeypatch.delenv("FWSTUDY_RUN_ID", raising=False)  # `make` exports one for its run
    store = ResultStore(tmp_path)
    run = Counter()
    lines = []
    first = run_batch(configs(), store, run=run, progress=lines.append)
    assert run.calls == 6 and first["trial_id"].nunique() == 6
    second = run_batch(configs(), store, run=run, progress=lines.append)
    assert run.calls == 6, "a second run must measure nothing"
    assert "6 already measured, 0 to measure" in lines[-1]
    pd.testing.assert_frame_equal(first.sort_values(["trial_id", "metric"]).reset_index(drop=True),
                                  second.sort_values(["trial_id", "metric"]).reset_index(drop=True))
    run_batch(configs(), store, run=run, force=True, progress=lines.append)
    assert run.calls == 12


def test_an_interrupted_batch_keeps_what_it_measured(tmp_path):
    store = ResultStore(tmp_path)

    def run(config):
        if config.repeat == 1:
            raise KeyboardInterrupt
        return fake_record(config)

    with pytest.raises(KeyboardInterrupt):
        run_batch(configs(), store, run=run, progress=lambda line: None)
    assert store.table()["trial_id"].nunique() == 2  # both frameworks of repeat 0


def test_failed_trials_are_kept_and_the_batch_goes_on(tmp_path):
    store = ResultStore(tmp_path)

    def run(config):
        return fake_record(config, status="failed" if config.repeat == 0 else "ok")

    table = run_batch(configs(), store, run=run, progress=lambda line: None)
    statuses = table.drop_duplicates("trial_id")["status"].value_counts().to_dict()
    assert statuses == {"failed": 2, "ok": 4}


def test_identity_depends_on_what_is_measured_only():
    a = TrialConfig(workload="mlp", framework="torch", mode="eager", threads=2)
    assert a.identity("v1") == TrialConfig(workload="mlp", framework="torch", mode="eager", threads=2).identity("v1")
    assert a.identity("v1") != a.identity("v2")
    assert a.identity("v1") != TrialConfig(workload="mlp", framework="torch", mode="eager", threads=2, steps=31).identity("v1")
    assert a.identity("v1") == TrialConfig(
        workload="mlp", framework="torch", mode="eager", threads=2, timeout_s=5
    ).identity("v1")


def test_force_measures_shared_trials_once_per_run(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    run = Counter()
    run_batch(configs(1), store, run=run, progress=lambda line: None)
    monkeypatch.setenv("FWSTUDY_RUN_ID", "run-2")
    run_batch(configs(1), store, run=run, force=True, progress=lambda line: None)
    run_batch(configs(1), store, run=run, force=True, progress=lambda line: None)  # next notebook
    assert run.calls == 4
    monkeypatch.setenv("FWSTUDY_RUN_ID", "run-3")
    run_batch(configs(1), store, run=run, force=True, progress=lambda line: None)
    assert run.calls == 6


def test_retrace_fields_are_validated():
    from fwstudy.errors import BadInput

    base = dict(workload="lstm", framework="torch", mode="compiled", task="retrace")
    good = TrialConfig(**base, variant="dynamic", batch_sequence=[8, 16], length_sequence=[10, 50])
    assert good.batch_sequence == (8, 16)
    for bad, message in [
        (dict(variant="reduce_retracing", batch_sequence=[8]), "valid variants: default, dynamic"),
        (dict(variant="dynamic"), "needs a non-empty batch_sequence"),
        (dict(variant="dynamic", batch_sequence=[8, 16], length_sequence=[10]), "as long as"),
        (dict(variant="dynamic", batch_sequence=[8], length_sequence=[500]), "exceeds"),
        (dict(variant="dynamic", batch_sequence=[0]), "batch_sequence must be >= 1"),
    ]:
        with pytest.raises(BadInput, match=message):
            TrialConfig(**base, **bad)
    with pytest.raises(BadInput, match="belong to task 'retrace'"):
        TrialConfig(workload="mlp", framework="torch", mode="eager", variant="dynamic")
    with pytest.raises(BadInput, match="no sequence length"):
        TrialConfig(workload="mlp", framework="torch", mode="compiled", task="retrace",
                    variant="dynamic", batch_sequence=[8], length_sequence=[8])
