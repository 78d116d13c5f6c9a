"""Nothing outlives its parent: children, their grandchildren and their temporary folders go
when the process that started them ends, however it ends (SIGKILL included); Ctrl-C is one
line and exit status 130; frameworks' own temporary files stay inside the trial's folder.

Processes are found by the temporary folder they were given (``TMPDIR`` points into
``tmp_path``), so tests running beside each other never see each other's processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from fwstudy.config.trial import default_threads

PROJECT = Path(__file__).resolve().parent.parent
PY = sys.executable
GONE_WITHIN_S = 5.0


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or TMPDIR names ``folder`` (zombies have exited)."""
    key = str(folder)
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid == os.getpid() or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if key in " ".join(p.cmdline()) or p.environ().get("TMPDIR", "").startswith(key):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def fwstudy_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("fwstudy-"))


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def env_with_tmp(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(PROJECT)}


# --- the mechanism, without a framework ---------------------------------------------------------

# The parent: an owned folder, one guarded child that starts a grandchild in a session of its
# own (as torchrun does), then waits to be killed.
PARENT = textwrap.dedent(
    """
    import json, sys, time
    from fwstudy.harness import lifeline
    CHILD = '''
    import os, subprocess, sys, time
    from fwstudy.harness import lifeline
    lifeline.guard()
    grand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    open(sys.argv[1], "w").write(f"{os.getpid()} {grand.pid}")
    time.sleep(600)
    '''
    with lifeline.owned_tempdir("test") as owned:
        child = lifeline.spawn([sys.executable, "-c", CHILD, sys.argv[1]], workdir=owned)
        print(json.dumps({"owned": str(owned)}), flush=True)
        if sys.argv[2] == "release":
            import os
            while not (os.path.exists(sys.argv[1]) and open(sys.argv[1]).read()):
                time.sleep(0.05)
            child.end()
            print("ended", flush=True)
        time.sleep(600)
    """
)


def start_parent(tmp_path: Path, how: str) -> tuple[subprocess.Popen, Path, list[int]]:
    pids_file = tmp_path / "pids"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    parent = subprocess.Popen(
        [PY, "-c", PARENT, str(pids_file), how], env=env_with_tmp(tmp), stdout=subprocess.PIPE, text=True
    )
    owned = Path(json.loads(parent.stdout.readline())["owned"])
    assert wait_for(lambda: pids_file.exists() and pids_file.read_text(), 30), "the child never started"
    return parent, owned, [int(p) for p in pids_file.read_text().split()]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkilled_parent_takes_child_grandchild_and_its_folder_along(tmp_path):
    """SIGKILL leaves the parent no chance to clean up: the lifeline's watchdog does it. The
    grandchild left the group (setsid), so only the subreaper tree finds it."""
    parent, owned, (child, grand) = start_parent(tmp_path, "kill")
    assert owned.is_dir() and alive(child) and alive(grand)
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not alive(child) and not alive(grand), GONE_WITHIN_S), "child or grandchild outlived the parent"
    assert wait_for(lambda: not owned.exists(), GONE_WITHIN_S), "the parent's temporary folder was left behind"
    assert processes_under(tmp_path) == []


def test_a_released_child_leaves_the_parent_folders_alone(tmp_path):
    """Ending a child on purpose kills its tree but does not remove the parent's folders: the
    parent still uses them (a batch's compile cache outlives each trial)."""
    parent, owned, (child, grand) = start_parent(tmp_path, "release")
    assert parent.stdout.readline().strip() == "ended"
    assert not alive(child) and not alive(grand)
    time.sleep(0.5)
    assert owned.is_dir(), "the watchdog removed folders of a parent that is alive"
    parent.kill()
    parent.wait()


def test_guard_without_a_lifeline_is_a_no_op(tmp_path):
    """Run by hand, or by a launcher that closed the pipe: a number naming another file is
    not taken for a lifeline (nothing is forked, nothing is killed)."""
    from fwstudy.harness import lifeline

    script = "import os; from fwstudy.harness import lifeline; lifeline.guard(); print(lifeline._watchdog)"
    env = {**env_with_tmp(tmp_path), lifeline.LIFELINE_VARIABLE: "0:12345"}
    out = subprocess.run([PY, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "None", out.stderr


def test_sweep_removes_only_folders_of_dead_owners(tmp_path):
    from fwstudy.harness import lifeline

    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"fwstudy-trial.{dead.pid}.abc123"
    live = tmp_path / f"fwstudy-trial.{os.getpid()}.def456"
    other = tmp_path / "fwstudy-notours"
    for path in (stale, live, other):
        path.mkdir()
    assert lifeline.sweep_stale(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


# --- the command line and papermill, with a real trial ------------------------------------------

LONG_RUN = ["-m", "fwstudy", "run", "--workload", "mlp", "--framework", "torch", "--mode", "eager",
            "--steps", "1000000", "--timeout", "300"]


def trial_children(tmp: Path) -> list[psutil.Process]:
    """The trial child and its watchdog (the parent names ``tmp`` in its TMPDIR too)."""
    found = []
    for p in processes_under(tmp):
        with contextlib.suppress(psutil.Error):
            if "fwstudy.harness.child" in " ".join(p.cmdline()):
                found.append(p)
    return found


def wait_for_trial(tmp: Path, proc: subprocess.Popen) -> None:
    """Until the trial child and its watchdog run, plus a moment: the signal lands mid-trial."""
    started = wait_for(lambda: len(trial_children(tmp)) >= 2 or proc.poll() is not None, 120)
    assert started and proc.poll() is None, "the trial child never started"
    time.sleep(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_fwstudy_run_leaves_nothing_when_signalled(tmp_path, sig):
    # A shell starts background jobs (CI's, say) with SIGINT ignored, and Python then never
    # turns Ctrl-C into KeyboardInterrupt: give the command the default a terminal gives it.
    proc = subprocess.Popen([PY, *LONG_RUN], cwd=PROJECT, env=env_with_tmp(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_trial(tmp_path, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert wait_for(lambda: processes_under(tmp_path) == [], GONE_WITHIN_S), processes_under(tmp_path)
    assert wait_for(lambda: not any(tmp_path.iterdir()), GONE_WITHIN_S), list(tmp_path.iterdir())
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    # Ctrl-C: 130; SIGTERM: 143. One line after the start line, and no traceback.
    assert proc.returncode == 128 + sig, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 2 and sig.name in lines[1], err


NOTEBOOK_CELL = (
    "from fwstudy.config.trial import TrialConfig\n"
    "from fwstudy.harness.runner import run_trial\n"
    "run_trial(TrialConfig(workload='mlp', framework='torch', mode='eager', steps=1000000, timeout_s=300))"
)


@pytest.mark.slow
def test_sigkilled_papermill_leaves_no_trial_behind(tmp_path):
    """papermill dies, its kernel notices (ipykernel's parent poller) and exits without clean-up;
    the trial's lifeline then ends the trial and removes its folder. Left in TMPDIR: only the
    kernel connection file jupyter_client made there, which is papermill's, not the study's."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "long.ipynb"
    nbformat.write(nb, path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**env_with_tmp(tmp), "PATH": f"{Path(PY).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([PY, "-m", "papermill", str(path), str(tmp_path / "out.ipynb")], cwd=PROJECT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = wait_for(lambda: trial_children(tmp) != [], 180)
    assert started, "the trial never started in the kernel"
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    # The kernel's poller looks once a second; then the watchdog needs a moment.
    assert wait_for(lambda: processes_under(tmp) == [], GONE_WITHIN_S + 1), processes_under(tmp)
    assert wait_for(lambda: fwstudy_entries(tmp) == [], GONE_WITHIN_S), fwstudy_entries(tmp)


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        # TensorFlow graph mode writes __autograph_generated_file*.py into TMPDIR.
        ["--framework", "tensorflow", "--mode", "graph"],
        # torchrun (torch.distributed.elastic) makes torchelastic_* folders in TMPDIR.
        ["--framework", "torch", "--mode", "eager", "--workers", "2", "--threads", "2", "--oversubscribe"],
    ],
    ids=["tf-graph-autograph", "torch-workers-torchelastic"],
)
def test_trials_leave_no_temporary_files(tmp_path, argv):
    out = subprocess.run(
        [PY, "-m", "fwstudy", "run", "--workload", "mlp", "--steps", "2", "--warmup", "1", *argv],
        cwd=PROJECT, env=env_with_tmp(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []


def test_more_threads_than_cores_needs_oversubscribe():
    from fwstudy.cli import build_parser, config_from_args
    from fwstudy.errors import BadInput

    cores = default_threads()
    base = ["run", "--workload", "mlp", "--framework", "torch", "--mode", "eager"]
    too_many_threads = [*base, "--threads", str(cores + 1)]
    too_many_workers = [*base, "--workers", str(cores + 1), "--batch-size", str(128 * (cores + 1)), "--threads", "1"]
    for argv in (too_many_threads, too_many_workers):
        with pytest.raises(BadInput, match="oversubscribe"):
            config_from_args(build_parser().parse_args(argv))
        config_from_args(build_parser().parse_args([*argv, "--oversubscribe"]))  # asked for: allowed
