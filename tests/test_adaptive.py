"""The adaptive-depth workload (data-dependent control flow, F4) and the mode-agreement check.

Fast tests need no framework: the spec, its FLOPs, the weight map, the float64 NumPy reference
of the loop (halting semantics), the code metrics and the parent side of ``--modes``. Slow
tests run real children: ``fwstudy parity --modes`` for adaptive and mlp, and one short trial
of every mode of both frameworks, two processes at a time on one thread each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from fwstudy.config.trial import FRAMEWORKS, TrialConfig, modes_for
from fwstudy.errors import BadInput
from fwstudy.parity.compare import TOLERANCES
from fwstudy.parity.modes import MODE_TOLERANCE, compare_modes, mode_key, modes_verdict
from fwstudy.workloads import WORKLOADS, get_workload
from fwstudy.workloads import transfer as t
from fwstudy.workloads.adaptive import expressiveness
from fwstudy.workloads.adaptive.spec import halting, reference

SPEC = get_workload("adaptive")
DEFAULTS = SPEC.resolve_params({})
PARAMS = 64 * 256 + 256 + 256 * 256 + 256 * 10 + 10


def torch_like_weights(params, seed: int = 0) -> dict[str, np.ndarray]:
    """U(±1/sqrt(fan_in)) in PyTorch layout: the distribution both twins initialise from."""
    gen = np.random.default_rng(seed)
    out = {}
    for name, shape in SPEC.weight_map().torch_shapes(params).items():
        fan_in = shape[-1] if name.endswith("weight") else {
            "encode.bias": params["input_dim"], "head.bias": params["hidden"]
        }[name]  # fmt: skip
        bound = fan_in**-0.5
        out[name] = gen.uniform(-bound, bound, size=shape).astype(np.float32)
    return out


def default_batch(batch: int = 128, seed: int = 0):
    return SPEC.synthetic_batch(DEFAULTS, batch, np.random.default_rng(seed))


# Spec ------------------------------------------------------------------------------------------


def test_registered_with_every_mode_and_hook():
    assert "adaptive" in WORKLOADS
    assert SPEC.modes == ("eager", "graph", "compiled", "fit")
    assert modes_for("torch", "adaptive") == ("eager", "compiled")
    for hook in ("shape_text", "layers", "param_count", "synthetic_batch", "num_classes", "dataset"):
        assert callable(getattr(SPEC, hook)), hook
    assert SPEC.default_batch_size == 128
    assert "at most 8×" in SPEC.describe()


def test_parameter_count_matches_both_layouts():
    assert SPEC.param_count(DEFAULTS) == PARAMS == 84_746
    weight_map = SPEC.weight_map()
    assert weight_map.torch_param_count(DEFAULTS) == weight_map.keras_param_count(DEFAULTS) == PARAMS


def test_flops_count_the_block_at_max_steps():
    macs = 64 * 256 + 8 * 256 * 256 + 256 * 10
    assert SPEC.forward_flops(DEFAULTS, 1) == 2 * macs
    assert SPEC.train_flops(DEFAULTS, 1) == 2 * (3 * macs - 64 * 256)
    deeper = SPEC.resolve_params({"max_steps": 16})
    assert SPEC.forward_flops(deeper, 1) - SPEC.forward_flops(DEFAULTS, 1) == 2 * 8 * 256 * 256


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"rate": 0.0}, "0 < rate <= 1"), ({"rate": 1.5}, "0 < rate <= 1"),
     ({"threshold": -1.0}, "threshold >= 0"), ({"max_steps": 0}, ">= 1"),
     ({"depth": 2}, "unknown parameter")],
)  # fmt: skip
def test_bad_parameters_are_bad_input(overrides, message):
    with pytest.raises(BadInput, match=message):
        SPEC.resolve_params(overrides)


def test_synthetic_batches_are_seeded_and_of_varied_scale():
    x1, y1 = default_batch(64, seed=3)
    x2, y2 = default_batch(64, seed=3)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (64, 64) and x1.dtype == np.float32 and y1.dtype == np.int64
    norms = np.linalg.norm(x1, axis=1)
    assert norms.max() / norms.min() > 5  # per-sample scales: samples of different depths


def test_digits_fit_the_default_shape():
    dataset = SPEC.dataset(SPEC.dataset_params_for({}))
    assert dataset.x_train.shape[1] == 64 and dataset.classes == 10


# Weight map ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, {"input_dim": 5, "hidden": 7, "classes": 3}])
def test_weight_map_round_trips_and_keras_layout_computes_the_same(overrides):
    params = SPEC.resolve_params(overrides)
    weight_map = SPEC.weight_map()
    state = torch_like_weights(params)
    keras_weights = weight_map.to_keras(state, params)
    t.check_shapes(keras_weights, weight_map.keras_shapes(params), "keras")
    back = weight_map.to_torch(keras_weights, params)
    for name, value in state.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    # The Keras layout computes x @ kernel: one block iteration from z, both ways.
    x = np.random.default_rng(1).standard_normal((4, params["input_dim"])).astype(np.float32)
    inj_t = x @ state["encode.weight"].T + state["encode.bias"]
    inj_k = x @ keras_weights["encode/kernel"] + keras_weights["encode/bias"]
    np.testing.assert_allclose(inj_k, inj_t, rtol=1e-5, atol=1e-6)
    z = np.tanh(inj_t)
    np.testing.assert_allclose(
        z @ keras_weights["block/kernel"], z @ state["block.weight"].T, rtol=1e-5, atol=1e-6
    )


# Halting semantics, on the float64 reference ---------------------------------------------------


def test_samples_halt_at_different_iterations_and_the_loop_stops_early():
    x, _ = default_batch()
    ref = reference(torch_like_weights(DEFAULTS), DEFAULTS, x)
    stats = halting(ref["iterations"], DEFAULTS["max_steps"])
    assert stats["distinct_depths"] >= 3, stats
    assert stats["trip_count"] == ref["trip_count"] < DEFAULTS["max_steps"], stats
    assert 1 <= stats["min_iterations"] < stats["mean_iterations"] < stats["trip_count"]
    assert sum(stats["histogram"].values()) == len(x)
    assert ref["margin"] > 1e-5  # no decision within fp32 round-off of the threshold


def test_threshold_zero_runs_every_iteration_and_max_steps_caps_it():
    x, _ = default_batch(16)
    weights = torch_like_weights(DEFAULTS)
    ref = reference(weights, SPEC.resolve_params({"threshold": 0.0}), x)
    assert (ref["iterations"] == 8).all() and ref["trip_count"] == 8 and ref["margin"] is None
    one = reference(weights, SPEC.resolve_params({"max_steps": 1}), x)
    assert (one["iterations"] == 1).all()


def test_halted_samples_keep_their_state():
    """A sample that halted after j iterations has the logits of a model capped at j."""
    x, _ = default_batch()
    weights = torch_like_weights(DEFAULTS)
    full = reference(weights, DEFAULTS, x)
    for j in np.unique(full["iterations"]):
        capped = reference(weights, SPEC.resolve_params({"max_steps": int(j)}), x)
        rows = full["iterations"] == j
        np.testing.assert_allclose(full["logits"][rows], capped["logits"][rows], rtol=0, atol=1e-12)


# What each framework needs, from the code --------------------------------------------------------


def test_code_lines_skip_docstrings_comments_and_blanks():
    source = 'def f(x):\n    """Doc\n    string."""\n    # comment\n\n    return (x +\n            1)\n'
    assert expressiveness.code_lines(source) == 3


def test_each_twin_expresses_the_loop_its_own_way():
    report = expressiveness.describe()
    (torch_loop,) = report["torch"]["loops"]
    (tf_loop,) = report["tensorflow"]["loops"]
    assert torch_loop["python_statements"] == {"while": 1} and torch_loop["nested_callables"] == 0
    assert "torch.where" in torch_loop["control_calls"] and ".any" in torch_loop["control_calls"]
    assert tf_loop["python_statements"] == {} and tf_loop["nested_callables"] == 2  # cond, body
    assert {"tf.while_loop", "tf.where", "tf.reduce_any"} <= set(tf_loop["control_calls"])
    for side in ("torch", "tensorflow"):
        assert 0 < report[side]["loops"][0]["loc"] < report[side]["loc"]
    variants = {v["function"]: v for v in report["tensorflow_variants"]}
    assert variants["_python_while"]["python_statements"] == {"while": 1}
    assert variants["_for_range"]["python_statements"] == {"break": 1, "for": 1, "if": 1}


# The parent side of --modes ----------------------------------------------------------------------


def fake_mode_arrays(modes: list[str], grads: bool = True) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(0)
    logits, grad = gen.standard_normal((4, 3)), gen.standard_normal((3, 2))
    arrays = {}
    for mode in modes:
        arrays[mode_key(mode, "logits")] = logits.copy()
        arrays[mode_key(mode, "loss")] = np.asarray(2.3)
        arrays[mode_key(mode, "step_loss")] = np.asarray(2.1)
        if grads and mode != "fit":
            arrays[mode_key(mode, "grad:w")] = grad.copy()
    return arrays


def ok(*modes: str) -> dict[str, dict]:
    return {m: {"status": "ok", "error": None, "wall_s": 0.1} for m in modes}


def test_identical_modes_agree_and_fit_needs_no_gradients():
    arrays = fake_mode_arrays(["eager", "graph", "fit"])
    result = compare_modes(arrays, ok("eager", "graph", "fit"))
    assert result["eager"]["reference"] and result["graph"]["agrees"]
    assert result["graph"]["forward_max_abs_diff"] == 0.0 and result["graph"]["gradient_max_rel_diff"] == 0.0
    assert result["fit"]["agrees"] and result["fit"]["gradient_max_rel_diff"] is None
    assert modes_verdict({"tensorflow": result})["passed"]


@pytest.mark.parametrize("what", ["logits", "step_loss", "grad:w"])
def test_a_mode_that_computes_something_else_disagrees(what):
    arrays = fake_mode_arrays(["eager", "compiled"])
    key = mode_key("compiled", what)
    if what == "grad:w":  # gradients are judged by their norm: change the tensor, not a digit
        arrays[key] = arrays[key][::-1].copy()
    else:
        arrays[key] = arrays[key] + 10 * MODE_TOLERANCE
    result = compare_modes(arrays, ok("eager", "compiled"))
    assert not result["compiled"]["agrees"]
    verdict = modes_verdict({"torch": result})
    assert not verdict["passed"] and verdict["disagree"] == ["torch/compiled"]


def test_a_mode_that_cannot_run_is_a_result_not_a_failure():
    arrays = fake_mode_arrays(["eager"])
    modes = {**ok("eager"), "compiled": {"status": "failed", "error": "InvalidArgumentError: no", "wall_s": 1.0}}
    result = compare_modes(arrays, modes)
    assert result["compiled"]["status"] == "failed" and "InvalidArgumentError" in result["compiled"]["error"]
    verdict = modes_verdict({"tensorflow": result})
    assert verdict["passed"] and verdict["could_not_run"] == ["tensorflow/compiled"]


def test_without_eager_nothing_agrees():
    arrays = fake_mode_arrays(["graph"])
    modes = {"eager": {"status": "failed", "error": "boom"}, **ok("graph")}
    result = compare_modes(arrays, modes)
    assert not result["graph"]["agrees"]
    assert not modes_verdict({"tensorflow": result})["passed"]


# Real children (slow) ----------------------------------------------------------------------------


def parity_modes(workload: str) -> tuple[int, dict, str]:
    argv = [sys.executable, "-m", "fwstudy", "parity", "--workload", workload, "--modes",
            "--threads", "1", "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return done.returncode, json.loads(done.stdout), done.stderr


def short_trial(framework: str, mode: str) -> dict:
    from fwstudy.harness.runner import run_trial

    config = TrialConfig(workload="adaptive", framework=framework, mode=mode, steps=3, warmup=1, threads=1)
    return run_trial(config)


TRIALS = [(fw, mode) for fw in FRAMEWORKS for mode in modes_for(fw, "adaptive")]


@pytest.fixture(scope="module")
def runs() -> dict[str, Future]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: dict = {w: pool.submit(parity_modes, w) for w in ("adaptive", "mlp")}
        futures.update({case: pool.submit(short_trial, *case) for case in TRIALS})
        yield futures


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["adaptive", "mlp"])
def test_every_mode_agrees_with_eager(runs, workload):
    code, report, stderr = runs[workload].result()
    assert code == 0, (report.get("error"), report.get("checks"), stderr[-2000:])
    assert report["passed"] and all(report["checks"].values()), report["checks"]
    for framework in FRAMEWORKS:
        modes = report["modes"][framework]
        assert tuple(modes) == modes_for(framework, workload)
        for mode, entry in modes.items():
            assert entry["status"] == "ok" and entry["agrees"], (framework, mode, entry)
            if mode not in ("eager", "fit"):
                assert entry["forward_max_abs_diff"] <= MODE_TOLERANCE
                assert entry["gradient_norm_rel_max"] <= TOLERANCES["float32"]["gradient_norm_rel"]
    assert report["modes_verdict"]["could_not_run"] == []


@pytest.mark.slow
def test_adaptive_passes_the_gate_and_halts_alike_everywhere(runs):
    code, report, _ = runs["adaptive"].result()
    assert code == 0
    assert report["params_torch"] == report["params_tensorflow"] == PARAMS
    assert report["forward_max_abs_diff"] <= 1e-4 and report["gradient_max_rel_diff"] <= 1e-4
    result = report["workload_report"]
    assert result["passed"] and all(result["same_iterations_as_reference"].values())
    stop = result["halting"]
    assert stop["distinct_depths"] >= 3 and stop["trip_count"] < stop["max_steps"], stop
    for framework in FRAMEWORKS:  # each framework's own initial weights halt at varied depths
        assert result["own_init"][framework]["distinct_depths"] >= 3


@pytest.mark.slow
def test_what_each_framework_needed(runs):
    _, report, _ = runs["adaptive"].result()
    expressing = report["workload_report"]["expressing"]
    compiled = expressing["torch"]["compiled"]
    assert compiled["status"] == "ok" and compiled["graph_breaks"] >= 1  # split at the while test
    assert expressing["torch"]["fullgraph"]["status"] == "failed"
    assert expressing["tensorflow"]["needs_autograph"] == {
        "eager": False, "graph": False, "compiled": False, "fit": False
    }  # fmt: skip
    variants = expressing["tensorflow"]["variants"]
    assert set(variants["tf_while_loop"].values()) == {"ok"}  # the twin: every mode
    assert set(variants["autograph_for_range"].values()) == {"ok"}
    # What tf_model's docstring says, kept true: autograph doesn't reach a Keras layer's call,
    # and a while loop without maximum_iterations can't be differentiated under XLA.
    assert variants["python_while"]["eager"] == "ok"
    for mode in ("graph", "compiled", "fit", "build_without_compute_output_shape"):
        assert variants["python_while"][mode].startswith("failed"), mode
    assert variants["autograph_while"]["graph"] == "ok" and variants["autograph_while"]["fit"] == "ok"
    assert "maximum_iteration" in variants["autograph_while"]["compiled"]


@pytest.mark.slow
@pytest.mark.parametrize(("framework", "mode"), TRIALS)
def test_every_mode_trains(runs, framework, mode):
    record = runs[(framework, mode)].result()
    assert record["status"] == "ok", record["error"]
    metrics = record["metrics"]
    assert metrics["params"] == PARAMS
    assert metrics["flops_per_step"] == SPEC.train_flops(DEFAULTS, 128)  # the bound, at K
    assert metrics["step_time_ms_median"] > 0
