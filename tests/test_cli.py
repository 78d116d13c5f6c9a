"""Bad input ends in one line naming the valid choices, exit status 2, and no traceback."""

import pytest

from tests.conftest import run_cli

BASE = ["run", "--workload", "mlp", "--framework", "torch", "--mode", "eager"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--workload", "nope", "--framework", "torch", "--mode", "eager"], "valid workloads: "),
        (["run", "--workload", "mlp", "--framework", "jax", "--mode", "eager"], "valid frameworks: tensorflow, torch"),
        (["run", "--workload", "mlp", "--framework", "torch", "--mode", "turbo"], "valid modes: eager, graph, compiled, fit"),
        (["run", "--workload", "mlp", "--framework", "torch", "--mode", "graph"], "torch modes: eager, compiled"),
        (["run", "--workload", "mlp", "--framework", "torch", "--mode", "fit"], "torch modes: eager, compiled"),
        ([*BASE, "--batch-size", "-4"], "batch_size must be >= 1"),
        ([*BASE, "--batch-size", "0"], "batch_size must be >= 1"),
        ([*BASE, "--steps", "ten"], "expected an integer"),
        ([*BASE, "--threads", "0"], "threads must be >= 1"),
        ([*BASE, "--device", "tpu"], "valid devices: cpu, gpu"),
        ([*BASE, "--timeout", "-1"], "timeout_s must be > 0"),
        ([*BASE, "--param", "width=3"], "valid parameters: "),
        ([*BASE, "--param", "hidden=wide"], "must be int"),
        ([*BASE, "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "--workload", "mlp"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, expected):
    done = run_cli(*args, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert lines[0].startswith("fwstudy: error: ")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unknown_workload_names_every_valid_workload():
    from fwstudy.workloads import WORKLOADS

    done = run_cli("run", "--workload", "nope", "--framework", "torch", "--mode", "eager")
    for name in WORKLOADS:
        assert name in done.stderr


def test_list_shows_every_workload():
    from fwstudy.workloads import WORKLOADS

    done = run_cli("list")
    assert done.returncode == 0
    for name in WORKLOADS:
        assert name in done.stdout


def test_check_profile_accepts_the_shipped_profiles():
    for name in ("smoke", "quick", "full"):
        done = run_cli("check-profile", f"parameters/{name}.yaml")
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("profile: x\nstepz: 3\n", "unknown parameter 'stepz'"),
        ("profile: x\nsteps: ten\n", "steps must be an integer"),
        ("profile: x\nsteps: 0\n", "steps must be >= 1"),
        ("profile: x\nworkloads: [mlp, nope]\n", "valid workloads: "),
        ("profile: x\nmodes: eager\n", "modes must be a non-empty list"),
        ("steps: 3\n", "must name its profile"),
        ("profile: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_parameter_file_is_one_line_and_exit_2(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    done = run_cli("check-profile", str(path), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_missing_parameter_file_is_bad_input(tmp_path):
    done = run_cli("check-profile", str(tmp_path / "absent.yaml"), timeout=60)
    assert done.returncode == 2
    assert "cannot read parameter file" in done.stderr
