"""Data-parallel trials: the layout, the launch options, process supervision, and real 2-worker
trials of both frameworks (slow): ok records, loss parity with one process, and a worker
killed mid-run that fails the trial and leaves no process behind."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput
from fwstudy.harness.distributed import cli_options, processes
from fwstudy.harness.distributed.collect import torchrun_root_cause
from fwstudy.harness.distributed.plan import (
    LaunchOptions,
    free_ports,
    make_plan,
    shard,
    tf_cluster,
    tf_config,
    torchrun_arguments,
)
from fwstudy.harness.distributed.worker import FAULT_AFTER_VARIABLE, FAULT_RANK_VARIABLE
from fwstudy.harness.runner import run_trial

TORCHRUN_FAILURE = """
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
=======================================================
Failures:
[1]:
  time      : 2026-11-26_05:14:08
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 11165)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 11165
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-26_05:14:08
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 11166)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 11166
=======================================================
"""


def config(**changes) -> TrialConfig:
    base = dict(workload="mlp", framework="torch", mode="eager", workers=2, threads=2, steps=3, warmup=1)
    base.update(changes)
    return TrialConfig(**base)


# --- layout -----------------------------------------------------------------------------------


def test_strong_scaling_splits_the_global_batch_and_weak_scaling_multiplies_it():
    strong = make_plan(config(batch_size=128, workers=4, threads=8), LaunchOptions())
    assert (strong.global_batch, strong.per_worker_batch, strong.threads_per_worker) == (128, 32, 2)
    weak = make_plan(config(batch_size=128, scaling="weak"), LaunchOptions())
    assert (weak.global_batch, weak.per_worker_batch) == (256, 128)
    assert make_plan(config(threads=1), LaunchOptions()).threads_per_worker == 1  # at least one
    assert make_plan(config(), LaunchOptions()).backend == "gloo"
    assert make_plan(config(framework="tensorflow"), LaunchOptions()).backend == "ring (gRPC)"
    assert make_plan(config(device="gpu"), LaunchOptions()).backend == "nccl"


def test_shards_tile_the_global_batch():
    rows = [i for rank in range(4) for i in range(128)[shard(rank, 32)]]
    assert rows == list(range(128))


def test_strong_scaling_needs_a_batch_the_workers_divide():
    with pytest.raises(BadInput, match="multiple of workers"):
        config(batch_size=100, workers=3)
    with pytest.raises(BadInput, match="valid scalings: strong, weak"):
        config(scaling="linear")
    config(batch_size=100, workers=3, scaling="weak")


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(4)
    assert len(set(ports)) == 4
    for port in ports:
        with socket.socket() as s:
            s.bind(("", port))


def test_multi_host_layout_is_the_same_on_every_host():
    plans = [
        make_plan(config(workers=4), LaunchOptions(hosts=("h1", "h2"), node_rank=k, master_port=29500))
        for k in (0, 1)
    ]
    assert [p.local_workers for p in plans] == [2, 2]
    assert [p.global_rank(1) for p in plans] == [1, 3]
    cluster = tf_cluster(plans[1])
    assert cluster == tf_cluster(plans[0]) == ["h1:29500", "h1:29501", "h2:29500", "h2:29501"]
    assert tf_config(cluster, 3)["task"] == {"type": "worker", "index": 3}
    args = torchrun_arguments(plans[1])
    assert args[:10] == ["--nnodes", "2", "--node-rank", "1", "--master-addr", "h1",
                         "--master-port", "29500", "--nproc-per-node", "2"]
    assert "--standalone" in torchrun_arguments(make_plan(config(), LaunchOptions()))


def test_launch_options_round_trip_through_the_environment_and_validate():
    options = LaunchOptions(hosts=("a", "b"), node_rank=1, master_port=29400)
    assert LaunchOptions.from_environment(options.to_environment()) == options
    assert LaunchOptions.from_environment({}) == LaunchOptions()
    for bad, match in (
        (dict(hosts=("a", "b")), "needs --master-port"),
        (dict(hosts=("a", "b"), node_rank=2, master_port=1), "node_rank must be in 0..1"),
        (dict(hosts=("a:1",)), "bare host names"),
    ):
        with pytest.raises(BadInput, match=match):
            LaunchOptions(**bad)
    with pytest.raises(BadInput, match="multiple of the number of hosts"):
        make_plan(config(workers=3, batch_size=129), LaunchOptions(hosts=("a", "b"), master_port=1))


def test_cli_options_fill_the_trial_keywords_and_publish_the_launch(monkeypatch):
    for name in LaunchOptions(master_port=1).to_environment():
        monkeypatch.setenv(name, "")  # restored (unset) after the test: apply() writes os.environ
        monkeypatch.delenv(name)
    parser = argparse.ArgumentParser()
    cli_options.add_arguments(parser)
    options: dict = {}
    cli_options.apply(parser.parse_args(["--workers", "2", "--scaling", "weak"]), options)
    assert options == {"workers": 2, "scaling": "weak"}
    assert LaunchOptions.from_environment() == LaunchOptions()
    args = parser.parse_args(["--workers", "4", "--hosts", "n1,n2", "--node-rank", "1", "--master-port", "29500"])
    cli_options.apply(args, options)
    assert LaunchOptions.from_environment() == LaunchOptions(("n1", "n2"), 1, 29500)
    with pytest.raises(BadInput, match="need --workers 2 or more"):
        cli_options.apply(parser.parse_args(["--hosts", "n1,n2", "--master-port", "1"]), {})
    with pytest.raises(BadInput, match="multiple of the number of hosts"):
        cli_options.apply(parser.parse_args(["--workers", "3", "--hosts", "a,b", "--master-port", "1"]), {})


def test_torchrun_root_cause_names_the_first_failed_rank():
    assert torchrun_root_cause(TORCHRUN_FAILURE) == {
        "rank": 1, "exitcode": -9, "traceback": "Signal 9 (SIGKILL) received by PID 11166"
    }
    assert torchrun_root_cause("all fine") is None


def test_a_fit_or_inference_trial_is_a_failed_record_without_a_launch():
    record = run_trial(config(framework="tensorflow", mode="fit"))
    assert record["status"] == "failed" and "custom loop" in record["error"]
    record = run_trial(config(task="inference"))
    assert record["status"] == "failed" and "task 'train'" in record["error"]


def test_a_port_taken_between_choice_and_launch_is_retried_once(fake_python):
    taken = fake_python('echo "E tensorflow: Could not start gRPC server: Address already in use"; exit 1')
    record = run_trial(config(framework="tensorflow"), python=taken)
    assert record["status"] == "failed"
    assert record["env"]["distributed"]["launch"]["attempts"] == 2
    assert "exited with status 1" in record["error"] and "Address already in use" in record["error"]


# --- supervision (plain processes, no framework) ----------------------------------------------

TREE = """
import subprocess, sys, time
# a grandchild in a session of its own, as torchrun starts its workers
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
time.sleep(300)
"""


def _alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_timeout_kills_the_whole_tree_even_processes_in_other_sessions(tmp_path):
    launched = processes.start("tree", [sys.executable, "-c", TREE], dict(os.environ), tmp_path / "log")
    time.sleep(1.0)
    tree = [p.pid for p in psutil.Process(launched.proc.pid).children(recursive=True)]
    assert tree, "the grandchild should be running"
    outcome = processes.supervise([launched], timeout_s=0.5)
    assert outcome.timed_out and outcome.first_failure is None
    assert set(tree) <= set(outcome.killed) and outcome.survivors == []
    assert _alive([launched.proc.pid, *tree]) == []


def test_the_first_failure_ends_the_others_after_a_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "GRACE_S", 0.5)
    env = dict(os.environ)
    sleeper = processes.start("rank 0", [sys.executable, "-c", "import time; time.sleep(300)"], env, tmp_path / "a")
    crasher = processes.start("rank 1", [sys.executable, "-c", "import os; os.abort()"], env, tmp_path / "b")
    start = time.monotonic()
    outcome = processes.supervise([sleeper, crasher], timeout_s=60)
    assert time.monotonic() - start < 10
    assert not outcome.timed_out and outcome.first_failure is crasher
    assert processes.describe_exit(crasher.returncode) == "killed by SIGABRT"
    assert _alive([sleeper.proc.pid]) == []


# --- real trials (slow) -------------------------------------------------------------------------


def _no_process_left(record: dict) -> None:
    dist = record["env"]["distributed"]
    pids = [w["pid"] for w in dist["workers"]] + dist["processes_killed_at_end"]
    assert dist["workers"], "workers report their pids"
    assert dist["processes_surviving"] == []
    assert _alive(pids) == []
    assert _alive(p.pid for p in psutil.Process().children(recursive=True)) == []


@pytest.fixture(scope="module")
def two_workers():
    return {
        fw: run_trial(config(framework=fw, steps=3, warmup=1, threads=2), gemm_size=128)
        for fw in ("torch", "tensorflow")
    }


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_two_workers_train_ok_with_the_contract_fields(two_workers, framework):
    record = two_workers[framework]
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    for name in ("step_time_ms_median", "throughput_samples_per_s", "compile_s", "peak_rss_mb",
                 "params", "flops_per_step", "achieved_gflops", "allreduce_isolated_ms_median"):
        assert m[name] > 0, name
    assert m["params"] == m["params_analytic"] == 669706
    assert m["world_size"] == 2 and m["global_batch_size"] == 128 and m["per_worker_batch_size"] == 64
    # Throughput is what a user gets: samples over the summed step time (not batch / median).
    steps = record["config"]["steps"]
    assert m["throughput_samples_per_s"] == pytest.approx(128 * steps / sum(record["samples"]["step_time_ms"]) * 1e3)
    if framework == "torch":
        assert m["allreduce_ms_median"] > 0
    dist = record["env"]["distributed"]
    assert dist["world_size"] == 2 and dist["threads_per_worker"] == 1
    assert dist["launch"]["method"] == ("torchrun" if framework == "torch" else "one process per worker, TF_CONFIG each")
    other = {"torch": "tensorflow", "tensorflow": "torch"}[framework]
    for worker in dist["workers"]:
        assert worker["status"] == "ok" and worker["threads"] == 1
        assert worker["frameworks_loaded"] == {framework: True, other: False}  # rule 1
    assert len(record["samples"]["loss"]) == 1 + 1 + 3
    _no_process_left(record)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_two_workers_match_one_process_loss_within_1e_4(two_workers, framework):
    """Same seed, same global batches: after k = 5 steps the global mean loss of 2 workers is
    the single-process trial's (the existing backend) within 1e-4 relative."""
    single = run_trial(config(framework=framework, workers=1), gemm_size=128)
    assert single["status"] == "ok", single["error"]
    dist = two_workers[framework]["metrics"]
    for name in ("loss_first", "loss_last"):
        assert dist[name] == pytest.approx(single["metrics"][name], rel=1e-4), name
    assert dist["loss_last"] < dist["loss_first"]  # five Adam steps on four batches learn


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_a_worker_killed_mid_run_fails_the_trial_and_nothing_survives(framework, monkeypatch):
    monkeypatch.setenv(FAULT_RANK_VARIABLE, "1")
    monkeypatch.setenv(FAULT_AFTER_VARIABLE, "3")
    record = run_trial(config(framework=framework, steps=50, warmup=1))
    assert record["status"] == "failed"
    # Which worker's report arrives first is a race: the killed rank's own line, or a
    # survivor's follow-on gloo error whose output names the killed rank and its signal.
    assert "SIGKILL" in record["error"] and "rank" in record["error"], record["error"]
    assert record["env"]["distributed"]["fault_injection"] == {FAULT_RANK_VARIABLE: "1", FAULT_AFTER_VARIABLE: "3"}
    _no_process_left(record)


@pytest.mark.slow
def test_a_timeout_kills_every_worker():
    record = run_trial(config(framework="torch", steps=10_000, timeout_s=8))
    assert record["status"] == "timeout"
    assert record["error"].startswith("timed out after 8 s")
    assert record["wall_s"] < 30
    _no_process_left(record)


def test_a_worker_process_dies_with_its_launcher(tmp_path):
    """die_with_parent: a worker whose launcher is SIGKILLed is killed by the kernel."""
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'from fwstudy.harness.distributed.worker import "
        "die_with_parent; die_with_parent(); import time; time.sleep(300)'])\n"
        "print(child.pid, flush=True); time.sleep(300)\n"
    )
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(launcher.stdout.readline())
    time.sleep(1.0)
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    while _alive([pid]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive([pid]) == []
