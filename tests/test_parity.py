"""The parity gate end to end: one child per framework, weights through .npz files.

Each case is a real ``python -m fwstudy parity`` run (a torch child, then a TensorFlow child,
~10 s together); the module starts them all at once, two at a time on one thread each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from fwstudy.parity.gate import FORWARD_TOLERANCE, GRADIENT_TOLERANCE, STEPS_TOLERANCE
from fwstudy.workloads import get_workload

WORKLOADS = ["mlp", "cnn", "lstm", "transformer"]
CASES: dict[str, list[str]] = {
    **{f"default-{w}": ["--workload", w] for w in WORKLOADS},
    **{f"steps-{w}": ["--workload", w, "--steps", "10"] for w in ("mlp", "cnn")},
    "reverse-transformer": ["--workload", "transformer", "--source", "tensorflow"],
    "broken-activation": ["--workload", "cnn", "--break", "activation"],
    "broken-bias": ["--workload", "mlp", "--break", "bias"],
}


def run_case(args: list[str]) -> tuple[int, dict, str]:
    argv = [sys.executable, "-m", "fwstudy", "parity", *args, "--threads", "1", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)  # exactly one JSON object on stdout
    return done.returncode, report, done.stderr


@pytest.fixture(scope="module")
def runs() -> dict[str, Future]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_case, args) for name, args in CASES.items()}
        yield futures


def assert_passed(code: int, report: dict, stderr: str) -> None:
    assert code == 0, (report.get("error"), report.get("checks"), stderr[-2000:])
    assert report["passed"] and report["error"] is None
    assert report["params_torch"] == report["params_tensorflow"] == report["params_analytic"]
    assert report["forward_max_abs_diff"] <= FORWARD_TOLERANCE
    assert report["gradient_max_rel_diff"] <= GRADIENT_TOLERANCE
    assert report["frameworks_loaded"] == {
        "torch": {"torch": True, "tensorflow": False},
        "tensorflow": {"torch": False, "tensorflow": True},
    }


@pytest.mark.slow
@pytest.mark.parametrize("workload", WORKLOADS)
def test_twins_agree_at_the_default_shape(runs, workload):
    code, report, stderr = runs[f"default-{workload}"].result()
    assert_passed(code, report, stderr)
    assert report["data"] == "synthetic" and report["source"] == "torch"
    spec = get_workload(workload)
    params = spec.resolve_params({})
    weight_map = spec.weight_map()
    trainable = set(weight_map.torch_shapes(params)) - weight_map.torch_buffers(params)
    assert set(report["gradients"]) == trainable  # every weight's gradient was compared
    assert all(g["rel_diff"] <= GRADIENT_TOLERANCE for g in report["gradients"].values())


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["mlp", "cnn"])
def test_ten_adam_steps_on_digits_agree(runs, workload):
    code, report, stderr = runs[f"steps-{workload}"].result()
    assert_passed(code, report, stderr)
    assert report["data"] == "dataset" and report["steps"] == 10
    assert len(report["losses_torch"]) == len(report["losses_tensorflow"]) == 10
    assert report["steps_max_rel_diff"] <= STEPS_TOLERANCE
    assert report["losses_torch"][-1] < report["losses_torch"][0]  # it did train


@pytest.mark.slow
def test_tensorflow_weights_carry_over_to_torch(runs):
    code, report, stderr = runs["reverse-transformer"].result()
    assert_passed(code, report, stderr)
    assert (report["source"], report["receiver"]) == ("tensorflow", "torch")


@pytest.mark.slow
def test_a_different_activation_fails_the_gate(runs):
    code, report, _ = runs["broken-activation"].result()
    assert code == 1 and not report["passed"]
    assert report["broken_layer"] == "conv1"
    assert not report["checks"]["forward"] and not report["checks"]["gradients"]
    assert report["checks"]["params"]  # same parameters, different function: only math shows it


@pytest.mark.slow
def test_a_missing_bias_fails_the_gate(runs):
    code, report, _ = runs["broken-bias"].result()
    assert code == 1 and not report["passed"]
    assert report["broken_weight"] == "dense2/bias"
    assert not report["checks"]["forward"]
    assert report["forward_max_abs_diff"] > 100 * FORWARD_TOLERANCE
