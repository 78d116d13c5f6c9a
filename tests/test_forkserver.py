"""Fork servers: one framework import serves many trials, each its own process; a trial that
crashes or hangs is a record and the server serves the next one; nothing outlives the batch."""

import os
import signal
import time

import psutil
import pytest

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput
from fwstudy.harness.forkserver import FAULT_VARIABLE, ForkServers
from fwstudy.harness.lifeline import owned_tempdir
from fwstudy.harness.runner import run_trial
from tests.test_isolation import wait_gone as gone

FORKED = dict(workload="mlp", framework="torch", mode="eager", steps=2, warmup=1, threads=1, isolation="fork")


@pytest.fixture
def servers():
    with owned_tempdir("test-cache") as cache, ForkServers() as pool:
        yield lambda config: run_trial(config, cache_dir=str(cache), servers=pool)


def test_trials_fork_from_one_server_and_measure_in_their_own_process(servers):
    first = servers(TrialConfig(**FORKED, repeat=0))
    second = servers(TrialConfig(**FORKED, repeat=1))
    for record in (first, second):
        assert record["status"] == "ok", record["error"]
        assert record["metrics"]["step_time_ms_median"] > 0
        assert record["metrics"]["anon_after_import_mb"] > 0  # the baseline read in the trial's process
        assert "pandas" not in record["env"]["modules_before_framework_import"]
    a, b = first["env"]["isolation"], second["env"]["isolation"]
    assert a["level"] == b["level"] == "fork"
    assert a["server_pid"] == b["server_pid"] and (a["trials_served_before"], b["trials_served_before"]) == (0, 1)
    # the import is the server's, once: both records carry the same measurement and say so
    assert first["metrics"]["import_s"] == second["metrics"]["import_s"] == a["server_import_s"]


def test_a_trial_killed_or_hung_is_a_record_and_the_server_goes_on(servers, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "kill")
    killed = servers(TrialConfig(**FORKED))
    assert killed["status"] == "failed" and killed["error"].startswith("killed by SIGKILL")
    monkeypatch.setenv(FAULT_VARIABLE, "hang")
    start = time.monotonic()
    hung = servers(TrialConfig(**FORKED, timeout_s=2))
    assert time.monotonic() - start < 30
    assert hung["status"] == "timeout" and hung["error"].startswith("timed out after 2 s")
    assert "hanging on purpose" in hung["error"]
    monkeypatch.delenv(FAULT_VARIABLE)
    ok = servers(TrialConfig(**FORKED, repeat=1))
    assert ok["status"] == "ok", ok["error"]


def test_a_server_killed_between_trials_is_replaced_and_none_is_left_behind(servers):
    first = servers(TrialConfig(**FORKED))
    server = first["env"]["isolation"]["server_pid"]
    os.kill(server, signal.SIGKILL)
    assert gone(server)
    second = servers(TrialConfig(**FORKED, repeat=1))
    assert second["status"] == "ok", second["error"]
    assert second["env"]["isolation"]["server_pid"] != server


def test_closing_the_servers_ends_them():
    with owned_tempdir("test-cache") as cache, ForkServers() as pool:
        record = run_trial(TrialConfig(**FORKED), cache_dir=str(cache), servers=pool)
        pid = record["env"]["isolation"]["server_pid"]
        assert psutil.pid_exists(pid)
    assert gone(pid)


def test_only_steady_state_single_process_trials_may_fork():
    with pytest.raises(BadInput, match="needs isolation 'process'"):
        TrialConfig(**{**FORKED, "task": "compile"})
    with pytest.raises(BadInput, match="valid isolations: process, fork"):
        TrialConfig(**{**FORKED, "isolation": "thread"})
    profile = Profile(profile="t", isolation="fork")
    train = TrialConfig(workload="mlp", framework="torch", mode="eager")
    compile_ = TrialConfig(workload="mlp", framework="torch", mode="compiled", task="compile")
    assert profile.isolate(train).isolation == "fork"
    assert profile.isolate(compile_) is compile_  # compile cost: always a fresh process
    assert Profile(profile="t").isolate(train) is train
    # a forked trial is another trial: its own id, its own label
    assert profile.isolate(train).identity("v") != train.identity("v")
    assert profile.isolate(train).label().endswith("(fork)")
