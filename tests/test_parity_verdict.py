"""Rule 6 gates timings: a workload's verdict is computed once per code version, carried by
every record measured, and by the table every figure is drawn from (no framework here: the
gate and the trials are stand-ins)."""

from __future__ import annotations

import json

from fwstudy.config.profile import Profile
from fwstudy.harness import batch
from fwstudy.parity import verdict
from fwstudy.workloads import WORKLOADS
from tests.conftest import fake_record

GOOD, BAD = sorted(WORKLOADS)[:2]


def fake_gate(calls, failing=()):
    def run_parity(request):
        calls.append(request.workload)
        passed = request.workload not in failing
        assert request.modes, "the verdict that gates timings checks every mode"
        return {"workload": request.workload, "passed": passed, "error": None,
                "checks": {"forward_float32": True, "modes": passed}}
    return run_parity


def test_verdict_is_cached_per_code_version(tmp_path, monkeypatch):
    monkeypatch.setenv("FWSTUDY_CACHE_DIR", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr("fwstudy.parity.gate.run_parity", fake_gate(calls, failing={"cnn"}))
    first = verdict.workload_verdict("cnn", progress=lambda s: None)
    again = verdict.workload_verdict("cnn", progress=lambda s: None)
    assert calls == ["cnn"]
    assert first == again and first["passed"] is False and first["failed_checks"] == ["modes"]
    assert json.loads(verdict.verdict_path("cnn").read_text())["workload"] == "cnn"
    monkeypatch.setattr(verdict, "gate_version", lambda: "another")
    verdict.workload_verdict("cnn", progress=lambda s: None)
    assert calls == ["cnn", "cnn"], "a new code version gets a new verdict"


def test_measured_records_and_the_table_carry_the_verdict(tmp_path, monkeypatch):
    monkeypatch.setenv("FWSTUDY_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr("fwstudy.parity.gate.run_parity", fake_gate(calls, failing={BAD}))
    monkeypatch.setattr(batch, "run_trial", lambda config, **kw: fake_record(config))
    profile = Profile(profile="t", workloads=[GOOD, BAD], threads=1, results_dir=str(tmp_path / "r"))
    from fwstudy.figures import trials

    table = batch.measure(profile, trials.training_configs(profile))
    assert sorted(calls) == sorted([GOOD, BAD])
    passed = table.drop_duplicates("workload").set_index("workload")["parity_passed"]
    assert bool(passed[GOOD]) is True and bool(passed[BAD]) is False
    records = [json.loads(p.read_text()) for p in (tmp_path / "r" / "records").glob("*.json")]
    assert records and all(r["parity"]["passed"] == (r["workload"] == GOOD) for r in records)


def test_the_gate_can_be_turned_off_and_then_says_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "run_trial", lambda config, **kw: fake_record(config))
    monkeypatch.setattr("fwstudy.parity.gate.run_parity", lambda request: (_ for _ in ()).throw(AssertionError))
    profile = Profile(profile="t", threads=1, parity_gate=False, results_dir=str(tmp_path / "r"))
    from fwstudy.figures import common, trials

    table = batch.measure(profile, trials.training_configs(profile))
    assert table["parity_passed"].isna().all()
    assert "parity gate: not run" in common.environment_caption(table)


def test_the_gates_of_several_workloads_run_side_by_side(tmp_path, monkeypatch):
    """The gates time nothing: two workloads' gates overlap (each waits for the other at a
    barrier, which a one-after-the-other run would never pass), one per core at most."""
    import threading

    from fwstudy.config import trial as trial_module
    from fwstudy.config.trial import TrialConfig

    monkeypatch.setenv("FWSTUDY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(trial_module, "default_threads", lambda: 2)
    barrier = threading.Barrier(2, timeout=30)

    def run_parity(request):
        barrier.wait()
        return {"workload": request.workload, "passed": True, "error": None, "checks": {"modes": True}}

    monkeypatch.setattr("fwstudy.parity.gate.run_parity", run_parity)
    configs = [TrialConfig(workload=w, framework="torch", mode="eager") for w in (GOOD, BAD, GOOD)]
    found = batch.parity_verdicts(Profile(profile="t", workloads=[GOOD, BAD]), configs)
    assert list(found) == [GOOD, BAD] and all(v["passed"] for v in found.values())
    assert batch.parity_verdicts(Profile(profile="t", parity_gate=False), configs) == {}
