"""The parity gate end to end: one child per framework, weights through .npz files.

Each case is a real ``python -m fwstudy parity`` run (a torch child, then a TensorFlow child,
each computing float32 and float64, ~6 s together); the module starts them all at once, two at a
time on one thread each. Every registered workload in both directions at seed 0, ten Adam steps
on mlp, and every break in both directions on a workload it applies to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from fwstudy.config.trial import FRAMEWORKS
from fwstudy.parity.breaks import BREAK_CHOICES
from fwstudy.parity.compare import PRECISIONS, STEPS_TOLERANCE, TOLERANCES
from fwstudy.workloads import WORKLOADS, get_workload

# Where each break applies (breaks.BREAKS): the one workload each is shown failing on.
BREAK_WORKLOAD = {"activation": "cnn", "pooling": "cnn", "bias": "mlp", "transpose": "mlp", "gates": "lstm"}
CASES: dict[str, list[str]] = {
    **{f"default-{w}-{src}": ["--workload", w, "--source", src] for w in WORKLOADS for src in FRAMEWORKS},
    "steps": ["--workload", "mlp", "--steps", "10"],
    **{
        f"broken-{b}-{src}": ["--workload", BREAK_WORKLOAD[b], "--break", b, "--source", src]
        for b in BREAK_CHOICES
        for src in FRAMEWORKS
    },
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
    assert report["passed"] and report["error"] is None and all(report["checks"].values())
    assert report["params_torch"] == report["params_tensorflow"] == report["params_analytic"]
    for dtype in PRECISIONS:
        figures = report["precisions"][dtype]
        assert figures["dtype"] == {"torch": dtype, "tensorflow": dtype}
        assert figures["forward_max_abs_diff"] <= TOLERANCES[dtype]["forward_max_abs"]
        assert figures["gradient_norm_rel_max"] <= TOLERANCES[dtype]["gradient_norm_rel"]
    assert report["frameworks_loaded"] == {
        "torch": {"torch": True, "tensorflow": False},
        "tensorflow": {"torch": False, "tensorflow": True},
    }


@pytest.mark.slow
@pytest.mark.parametrize("source", FRAMEWORKS)
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_twins_agree_at_the_default_shape(runs, workload, source):
    code, report, stderr = runs[f"default-{workload}-{source}"].result()
    assert_passed(code, report, stderr)
    assert report["data"] == "synthetic" and report["source"] == source
    spec = get_workload(workload)
    params = spec.resolve_params({})
    weight_map = spec.weight_map()
    trainable = set(weight_map.torch_shapes(params)) - weight_map.torch_buffers(params)
    for dtype in PRECISIONS:  # every weight's gradient was compared, in both precisions
        assert set(report["precisions"][dtype]["gradients"]) == trainable
    # float64 is where the math shows: round-off ~1e-16, orders of magnitude under its tolerance
    assert report["precisions"]["float64"]["forward_max_abs_diff"] < 1e-3 * TOLERANCES["float64"]["forward_max_abs"]


@pytest.mark.slow
def test_ten_adam_steps_on_digits_agree(runs):
    code, report, stderr = runs["steps"].result()
    assert_passed(code, report, stderr)
    assert report["data"] == "dataset" and report["steps"] == 10
    assert len(report["losses_torch"]) == len(report["losses_tensorflow"]) == 10
    assert report["steps_max_rel_diff"] <= STEPS_TOLERANCE
    assert report["losses_torch"][-1] < report["losses_torch"][0]  # it did train


@pytest.mark.slow
@pytest.mark.parametrize("source", FRAMEWORKS)
@pytest.mark.parametrize("name", BREAK_CHOICES)
def test_every_break_fails_the_gate(runs, name, source):
    code, report, _ = runs[f"broken-{name}-{source}"].result()
    assert code == 1 and not report["passed"] and report["error"] is None
    assert report["checks"]["params"]  # same parameters, different function: only math shows it
    assert report.get("broken_weight") or report.get("broken_layer")
    for dtype in PRECISIONS:  # not by a hair: by orders of magnitude over the limits
        figures = report["precisions"][dtype]
        assert figures["forward_max_abs_diff"] > 100 * TOLERANCES["float32"]["forward_max_abs"]
        assert not report["checks"][f"forward_{dtype}"] and not report["checks"]["gradients_float64"]
    if name != "bias":  # a lost classifier bias moves the gradients by ~8e-2: forward shows it
        assert report["precisions"]["float32"]["gradient_norm_rel_max"] > 5 * TOLERANCES["float32"]["gradient_norm_rel"]
