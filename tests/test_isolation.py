"""The runner's failure paths: crash, signal, timeout, each a record; no process left behind."""

import sys
import time

import psutil

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.process import ChildOutcome, run_child
from fwstudy.harness.runner import run_trial

PY = sys.executable


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_crash_reports_status_and_output():
    outcome = run_child([PY, "-c", "import sys; print('boom here'); sys.exit(3)"], timeout_s=30)
    assert outcome.returncode == 3 and not outcome.timed_out
    assert outcome.describe() == "exited with status 3"
    assert "boom here" in outcome.output_tail


def test_stored_error_names_phase_limit_and_last_output():
    """One wording for every run kind's failed row: phase, why, the limit run past, the tail."""
    crashed = ChildOutcome(returncode=3, timed_out=False, output_tail="Traceback\nValueError: x\n", wall_s=1.0)
    assert crashed.status == "failed"
    assert crashed.error(phase="export", timeout_s=60) == "export: exited with status 3; last output:\nTraceback\nValueError: x"
    hung = ChildOutcome(returncode=None, timed_out=True, output_tail="  ", wall_s=60.0)
    assert hung.status == "timeout"
    assert hung.error(timeout_s=60) == "timed out after 60 s"  # a blank tail adds nothing
    assert hung.error() == "timed out"


def test_signal_is_named():
    outcome = run_child([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], timeout_s=30)
    assert outcome.returncode == -9
    assert outcome.describe() == "killed by SIGKILL"


def test_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    start = time.monotonic()
    outcome = run_child([PY, "-c", script], timeout_s=2)
    assert outcome.timed_out and outcome.describe() == "timed out"
    assert time.monotonic() - start < 30
    assert wait_gone(int(pidfile.read_text()))


def test_helpers_left_running_after_a_normal_exit_are_killed(tmp_path):
    pidfile = tmp_path / "helper.pid"
    script = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
    )
    outcome = run_child([PY, "-c", script], timeout_s=30)
    assert outcome.returncode == 0
    assert wait_gone(int(pidfile.read_text()))


CONFIG = dict(workload="mlp", framework="torch", mode="eager", steps=2, warmup=0, threads=1)


def test_trial_killed_by_signal_is_a_failed_record(fake_python):
    record = run_trial(TrialConfig(**CONFIG), python=fake_python("echo loading >&2; kill -KILL $$"))
    assert record["status"] == "failed"
    assert record["error"].startswith("killed by SIGKILL")
    assert "loading" in record["error"]
    assert record["metrics"] == {} and record["env"]["cpu_model"]


def test_trial_that_crashes_is_a_failed_record_with_its_output(fake_python):
    record = run_trial(TrialConfig(**CONFIG), python=fake_python("echo 'MemoryError: out of memory' >&2; exit 3"))
    assert record["status"] == "failed"
    assert "exited with status 3" in record["error"]
    assert "MemoryError: out of memory" in record["error"]


def test_trial_that_hangs_is_a_timeout_record(fake_python):
    config = TrialConfig(**{**CONFIG, "timeout_s": 1})
    start = time.monotonic()
    record = run_trial(config, python=fake_python("echo started; sleep 60"))
    assert time.monotonic() - start < 20
    assert record["status"] == "timeout"
    assert record["error"].startswith("timed out after 1 s")
    assert record["workload"] == "mlp" and record["framework"] == "torch"
