"""Scale-out on Dask: a real ``dask scheduler`` and two ``dask worker`` processes on localhost
run real trials (slow). Plumbing, not timing: both workers share this host, so every record is
flagged ``shared_host`` and left out of the tables figures read.

The trials are torch retrace trials on mlp: a fresh child process that imports torch and
trains over a two-shape sequence, the shortest real trial (no GEMM peak is needed for it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.results.store import ResultStore

DASK = str(Path(sys.executable).parent / "dask")
CHILD = "fwstudy.harness.child"


def retrace(repeat: int) -> TrialConfig:
    return TrialConfig(workload="mlp", framework="torch", mode="eager", task="retrace", variant="default",
                       batch_sequence=(8, 16), threads=1, repeat=repeat, timeout_s=120)


def start(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """End a process this test started, and its session (a worker's nanny and worker)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def trial_children(pid: int) -> list[psutil.Process]:
    """The trial child processes under ``pid`` (at any depth)."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for proc in below:
        try:
            if CHILD in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def cluster(tmp_path):
    file = tmp_path / "scheduler.json"
    procs = [start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for name in ("w1", "w2"):
            procs.append(start([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                "--resources", "machine=1", "--name", name, "--no-dashboard",
                                "--local-directory", str(tmp_path / name)], tmp_path / f"{name}.log"))
        yield address, procs
    finally:
        for proc in reversed(procs):
            stop(proc)


@pytest.mark.slow
def test_trials_run_on_both_workers_and_survive_a_killed_worker(cluster, tmp_path, monkeypatch):
    from distributed import Client

    from fwstudy.cluster.client import Cluster
    from fwstudy.harness.batch import run_batch

    address, procs = cluster
    monkeypatch.setenv("FWSTUDY_WORKER_WAIT", "60")
    with Client(address, set_as_default=False) as probe:
        probe.wait_for_workers(2, timeout=60)
    store = ResultStore(tmp_path / "results")
    lines: list[str] = []

    with Cluster(address) as client:
        assert len(client.fingerprints) == 1  # one host
        # Two trials, two workers each advertising machine=1: one trial on each at once.
        table = run_batch([retrace(0), retrace(1)], store, progress=lines.append,
                          execute=lambda todo: client.run(todo, gemm_size=64),
                          fingerprints=client.fingerprints)
        records = [json.loads(p.read_text()) for p in sorted((store.root / "records").glob("*.json"))]
        assert [r["status"] for r in records] == ["ok", "ok"], [r["error"] for r in records]
        assert len({r["dask"]["worker"] for r in records}) == 2, lines
        for record in records:
            assert record["env"]["hostname"] == socket.gethostname()
            assert record["shared_host"] is True and record["env"]["shared_host"] is True
        assert table.empty  # shared-host trials are left out of what figures read ...
        assert set(store.table(shared_hosts=True)["trial_id"]) == {r["trial_id"] for r in records}

        # A third trial; its worker process is SIGKILLed while the trial's child runs.
        killed: dict[str, list[int]] = {}

        def execute(todo):
            results = client.run(todo, gemm_size=64)
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                for nanny in procs[1:]:
                    children = trial_children(nanny.pid)
                    pids = {c.pid for c in children}
                    top = [c for c in children if c.ppid() not in pids]  # the child, not its watchdog
                    if top:
                        worker = top[0].parent()
                        killed["worker"] = [worker.pid]
                        killed["children"] = sorted(pids)
                        worker.send_signal(signal.SIGKILL)
                        break
                time.sleep(0.1)
            yield from results

        run_batch([retrace(0), retrace(1), retrace(2)], store, progress=lines.append, execute=execute,
                  fingerprints=client.fingerprints)
    assert killed, "no trial child appeared under a worker"
    assert "2 already measured, 1 to measure" in "\n".join(lines)  # resumed: nothing measured twice
    records = {json.loads(p.read_text())["repeat"]: json.loads(p.read_text())
               for p in (store.root / "records").glob("*.json")}
    third = records[2]
    if third["status"] == "ok":
        assert third["dask"]["lost_workers"] >= 1  # run again on a worker that lived
    else:
        assert "worker death" in third["error"] or "KilledWorker" in third["error"], third["error"]
    # No process is left behind: the killed worker's trial child died with it (its lifeline).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in killed["children"]):
        time.sleep(0.2)
    alive = []
    for pid in killed["children"]:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"trial children {alive} outlived their killed worker"
