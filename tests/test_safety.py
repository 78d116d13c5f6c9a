"""Inputs that used to get past validation: profile names that are paths, non-UTF-8 profiles,
NaN and infinite numbers, JSON output with NaN in it, more threads than cores. Each is a
one-line error with exit status 2 (or, for JSON, strict output)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fwstudy import cli, paths
from fwstudy.config.profile import Profile, load_profile_file, profile_from_notebook
from fwstudy.config.trial import TrialConfig, default_threads
from fwstudy.errors import BadInput

PROJECT = Path(__file__).resolve().parent.parent


def fwstudy(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fwstudy", *argv], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120)


def assert_one_line_exit_2(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


# --- profile names are plain names --------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../x", "/some/absolute/path", "a/b", "..", ".hidden", "", "x y", "quick\n"])
def test_profile_names_that_are_paths_are_rejected(name, tmp_path):
    with pytest.raises(BadInput, match="plain name"):
        Profile(profile=name)
    with pytest.raises(BadInput, match="plain name"):
        paths.results_dir(name)
    with pytest.raises(BadInput, match="plain name"):
        paths.figures_dir(name)
    with pytest.raises(BadInput, match="plain name"):
        paths.build_dir(name)
    file = tmp_path / "p.yaml"
    file.write_text(json.dumps({"profile": name}))
    assert_one_line_exit_2(fwstudy("check-profile", str(file)), "plain name")


def test_plain_names_and_explicit_folders_are_accepted(tmp_path):
    for name in ("quick", "my-gpu_box2"):
        assert paths.results_dir(name).parent == paths.project_root() / "results"
    # An explicitly given folder is the user's choice, anywhere.
    assert paths.results_dir("quick", tmp_path) == tmp_path
    profile = profile_from_notebook({"profile": "smoke", "results_dir": str(tmp_path)})
    assert profile.results_dir == str(tmp_path)


# --- encodings ----------------------------------------------------------------------------------

def test_non_utf8_profile_is_one_line(tmp_path):
    file = tmp_path / "latin1.yaml"
    file.write_bytes("profile: smoke\n# caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(BadInput, match="not UTF-8"):
        load_profile_file(file)
    assert_one_line_exit_2(fwstudy("check-profile", str(file)), "not UTF-8")


# --- finite numbers -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_profile_numbers_are_rejected(tmp_path, value):
    for key in ("trial_timeout_s", "confidence"):
        file = tmp_path / f"{key}.yaml"
        file.write_text(f"profile: x\n{key}: {value}\n")
        with pytest.raises(BadInput):
            load_profile_file(file)
        assert_one_line_exit_2(fwstudy("check-profile", str(file)), key)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_command_line_numbers_are_rejected(text):
    out = fwstudy("run", "--workload", "mlp", "--framework", "torch", "--mode", "eager", f"--timeout={text}")
    assert_one_line_exit_2(out, "finite")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_non_finite_workload_params_are_rejected(text):
    with pytest.raises(BadInput, match="finite"):
        cli.parse_param(f"hidden={text}")


def test_trial_config_rejects_a_nan_timeout():
    with pytest.raises(BadInput, match="finite"):
        TrialConfig(workload="mlp", framework="torch", mode="eager", timeout_s=float("nan"))


def test_json_output_is_strict(monkeypatch, capsys):
    """A metric that is NaN (a diverged loss, an empty latency series) prints as null: the
    output of --json is JSON every parser reads, not Python's NaN extension."""
    import fwstudy.harness.runner as runner

    def fake_run(config, **kwargs):
        return {"status": "ok", "metrics": {"loss_last": float("nan"), "x": [float("inf"), 1.0]}}

    monkeypatch.setattr(runner, "run_trial", fake_run)
    code = cli.main(["run", "--workload", "mlp", "--framework", "torch", "--mode", "eager", "--json"])
    assert code == 0
    out = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    record = json.loads(out, parse_constant=refuse)
    assert record["metrics"] == {"loss_last": None, "x": [None, 1.0]}


# --- cores --------------------------------------------------------------------------------------

def test_profile_threads_above_the_cores_need_oversubscribe():
    cores = default_threads()
    for fields in ({"threads": cores + 1}, {"sweep_threads": [1, cores + 1]},
                   {"dp_workers": [1, cores + 1], "dp_threads_per_worker": 1},
                   {"dp_workers": [1, 2], "dp_threads_per_worker": cores}):
        with pytest.raises(BadInput, match="oversubscribe"):
            Profile(profile="x", **fields)
        Profile(profile="x", oversubscribe=True, **fields)  # asked for: allowed


def test_cli_threads_above_the_cores_are_one_line():
    out = fwstudy("run", "--workload", "mlp", "--framework", "torch", "--mode", "eager",
                  "--threads", str(default_threads() + 1))
    assert_one_line_exit_2(out, "--oversubscribe")


@pytest.mark.parametrize("name", ["../../x", "/tmp/elsewhere"])
def test_make_refuses_a_profile_that_is_a_path(name):
    """`make figures PROFILE=../../x` would write build/../../x and figures/../../x."""
    out = subprocess.run(["make", "-s", "help", f"PROFILE={name}"], cwd=PROJECT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "not a plain profile name" in out.stderr, out.stderr
