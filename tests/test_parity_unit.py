"""The parity gate's parent side, without starting a child: inputs, comparison, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fwstudy import cli
from fwstudy.errors import BadInput
from fwstudy.parity.breaks import PERMUTED_GATES, break_bias, break_gates, break_transpose
from fwstudy.parity.compare import (
    GRADIENT_SCALE_FLOOR,
    TOLERANCES,
    UNIT_ROUNDOFF,
    compare,
    compare_steps,
    gradient_figures,
    gradient_scale,
    precision_checks,
)
from fwstudy.parity.gate import ParityRequest, make_inputs
from fwstudy.workloads import WORKLOADS, get_workload


def fake_outputs(workload: str, params: dict, seed: int = 0, steps: int = 0):
    """Outputs of two perfect twins: torch-layout gradients and their Keras-layout twins."""
    spec = get_workload(workload)
    weight_map = spec.weight_map()
    gen = np.random.default_rng(seed)
    buffers = weight_map.torch_buffers(params)
    grads = {
        n: gen.standard_normal(s).astype(np.float32)
        for n, s in weight_map.torch_shapes(params).items()
        if n not in buffers
    }
    state = {**grads, **{n: np.zeros(weight_map.torch_shapes(params)[n], np.float32) for n in buffers}}
    logits = gen.standard_normal((4, 10)).astype(np.float32)
    losses = np.linspace(2.3, 2.0, steps)
    torch_out = {"logits": logits, "loss": np.asarray(2.3), "losses": losses}
    torch_out.update({f"grad:{n}": g for n, g in grads.items()})
    tf_out = {"logits": logits.copy(), "loss": np.asarray(2.3), "losses": losses.copy()}
    tf_out.update({f"grad:{n}": g for n, g in weight_map.to_keras(state, params).items()})
    return spec, torch_out, tf_out


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_perfect_twins_compare_as_zero(workload):
    spec = get_workload(workload)
    params = spec.resolve_params({})
    spec, torch_out, tf_out = fake_outputs(workload, params, steps=3)
    result = compare(spec, params, torch_out, tf_out)
    assert result["forward_max_abs_diff"] == 0.0
    assert result["gradient_max_abs_diff"] == 0.0 and result["gradient_norm_rel_max"] == 0.0
    assert compare_steps(torch_out, tf_out)["steps_max_rel_diff"] == 0.0
    assert set(result["gradients"]) == {
        n for n in spec.weight_map().torch_shapes(params) if n not in spec.weight_map().torch_buffers(params)
    }


def test_compare_finds_a_transposed_gradient():
    spec = get_workload("mlp")
    params = spec.resolve_params({"input_dim": 6, "hidden": 6, "depth": 1, "classes": 6})
    spec, torch_out, tf_out = fake_outputs("mlp", params)
    tf_out["grad:dense0/kernel"] = tf_out["grad:dense0/kernel"].T.copy()  # forgot the transpose
    result = compare(spec, params, torch_out, tf_out)
    assert result["gradient_worst"] == result["gradient_norm_worst"] == "dense0.weight"
    assert result["gradient_max_rel_diff"] > 0.1 and result["gradient_norm_rel_max"] > 0.1


def test_compare_reports_losses_relative_per_step():
    spec = get_workload("mlp")
    params = spec.resolve_params({})
    spec, torch_out, tf_out = fake_outputs("mlp", params, steps=4)
    tf_out["losses"] = tf_out["losses"] * np.array([1.0, 1.0, 1.0, 1.002])
    result = compare_steps(torch_out, tf_out)
    assert result["steps_rel_diff"][:3] == [0.0, 0.0, 0.0]
    assert result["steps_max_rel_diff"] == pytest.approx(0.002)


def test_gradient_scale_is_floored_by_the_largest_gradient():
    grads = {"big": np.array([2.0, -4.0]), "zero_in_theory": np.array([1e-12, -3e-12]), "empty": np.zeros(0)}
    scales = gradient_scale(grads)
    assert scales["big"] == 4.0
    assert scales["zero_in_theory"] == pytest.approx(4.0 * GRADIENT_SCALE_FLOOR)
    assert scales["empty"] > 0


def test_break_bias_resets_the_last_bias_to_the_receivers_init():
    keras_weights = {"a/kernel": np.ones(2), "a/bias": np.ones(2), "head/bias": np.ones(3)}
    assert break_bias(keras_weights, "tensorflow") == "head/bias"
    assert not keras_weights["head/bias"].any() and keras_weights["a/bias"].all()
    torch_state = {"a.weight": np.ones((2, 4)), "a.bias": np.zeros(2), "head.weight": np.ones((3, 4)),
                   "head.bias": np.zeros(3)}  # fmt: skip
    assert break_bias(torch_state, "torch") == "head.bias"
    assert torch_state["head.bias"].all() and np.abs(torch_state["head.bias"]).max() <= 0.5
    assert not torch_state["a.bias"].any()


def test_weight_breaks_mean_the_same_mistake_in_either_layout():
    """Transposing or reordering gates before or after the weight map gives the same weights."""
    for workload, breaker in (("mlp", lambda w, fw: break_transpose(w)), ("lstm", break_gates)):
        spec = get_workload(workload)
        params = spec.resolve_params({})
        gen = np.random.default_rng(0)
        state = {n: gen.standard_normal(s) for n, s in spec.weight_map().torch_shapes(params).items()}
        keras_weights = spec.weight_map().to_keras(state, params)
        original = {n: a.copy() for n, a in keras_weights.items()}
        breaker(keras_weights, "tensorflow")
        assert any(not np.array_equal(keras_weights[n], original[n]) for n in original)
        breaker(state, "torch")
        after = spec.weight_map().to_keras(state, params)
        for name in keras_weights:
            np.testing.assert_allclose(after[name], keras_weights[name], err_msg=name)
    assert sorted(PERMUTED_GATES) == [0, 1, 2, 3] and tuple(PERMUTED_GATES) != (0, 1, 2, 3)


# The norm criterion on synthetic gradients shaped like the default transformer's
# encoder.1.linear1.weight: N = batch 32 × length 64 rank-1 terms delta_n x_n^T, H = ff 512 rows,
# d_model 128 columns. One kink flip adds or removes one term in one row.
N_ROWS, HIDDEN, WIDTH = 32 * 64, 512, 128


def kinked_layer(seed: int = 0):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((N_ROWS, WIDTH))
    delta = gen.standard_normal((N_ROWS, HIDDEN)) * (gen.random((N_ROWS, HIDDEN)) > 0.5)  # ReLU mask
    grad = delta.T @ x / N_ROWS
    n, j = 7, 11
    flipped = grad.copy()
    flipped[j] += gen.standard_normal() * x[n] / N_ROWS  # the derivative at (n, j) flipped 0 ↔ 1
    return grad, flipped


def fp32_roundoff(grad: np.ndarray, seed: int = 1) -> np.ndarray:
    """Round-off of an N-term float32 sum: relative sqrt(N)·u per element (random-walk)."""
    gen = np.random.default_rng(seed)
    u = UNIT_ROUNDOFF["float32"]
    return grad * (1 + np.sqrt(N_ROWS) * u * gen.standard_normal(grad.shape))


def test_a_kink_flipped_row_passes_the_float32_norm_criterion_not_the_element_one():
    grad, flipped = kinked_layer()
    figures = gradient_figures({"w": grad, "b": grad.sum(1)}, {"w": fp32_roundoff(flipped), "b": grad.sum(1)})["w"]
    # ~1/sqrt(N·H) = 1e-3: what one flip does to the norm, far under the float32 tolerance ...
    assert 1e-4 < figures["norm_rel"] < TOLERANCES["float32"]["gradient_norm_rel"] / 10
    # ... while the one row it touches fails the old per-element criterion (1e-4)
    assert figures["rel_diff"] > 1e-3


def test_a_transposed_weight_or_a_zeroed_bias_fails_in_float32():
    gen = np.random.default_rng(2)
    square = gen.standard_normal((HIDDEN, HIDDEN))
    bias = gen.standard_normal(HIDDEN)
    ok = {"w": square, "b": bias}
    tol = TOLERANCES["float32"]["gradient_norm_rel"]
    transposed = gradient_figures(ok, {"w": fp32_roundoff(square.T), "b": bias})
    assert transposed["w"]["norm_rel"] > 20 * tol  # ~sqrt(2) for an unsymmetric matrix
    zeroed = gradient_figures(ok, {"w": square, "b": np.zeros_like(bias)})  # a bias the twin lacks
    assert zeroed["b"]["norm_rel"] == pytest.approx(1.0)


def test_float64_roundoff_passes_and_float32_roundoff_does_not():
    """float64 tolerances sit between float64 round-off and a float32 computation's round-off:
    a layer that silently computes in float32 fails the float64 gate."""
    grad, _ = kinked_layer()
    u64 = UNIT_ROUNDOFF["float64"]
    noisy64 = grad * (1 + np.sqrt(N_ROWS) * u64 * np.random.default_rng(3).standard_normal(grad.shape))
    limit = TOLERANCES["float64"]["gradient_norm_rel"]
    assert gradient_figures({"w": grad}, {"w": noisy64})["w"]["norm_rel"] < limit / 100
    assert gradient_figures({"w": grad}, {"w": fp32_roundoff(grad)})["w"]["norm_rel"] > 100 * limit


def test_a_gradient_zero_in_theory_is_floored_by_the_global_norm():
    """The attention key bias: exact gradient 0, computed as round-off of the global scale."""
    gen = np.random.default_rng(4)
    big = gen.standard_normal((HIDDEN, WIDTH))
    key_bias = 1e-7 * gen.standard_normal(WIDTH)
    other = 1e-7 * gen.standard_normal(WIDTH)
    figures = gradient_figures({"big": big, "key_bias": key_bias}, {"big": big, "key_bias": other})
    assert figures["key_bias"]["norm_rel"] < 1e-3


def test_precision_checks_follow_the_tolerances():
    figures = {"forward_max_abs_diff": 1e-7, "gradient_norm_rel_max": 1e-3, "gradient_max_rel_diff": 1e-2}
    assert precision_checks(figures, "float32") == {"forward_float32": True, "gradients_float32": True}
    assert precision_checks(figures, "float64") == {
        "forward_float64": False, "gradients_float64": False, "gradient_elements_float64": False
    }  # fmt: skip
    assert not precision_checks({**figures, "forward_max_abs_diff": float("nan")}, "float32")["forward_float32"]


def test_inputs_for_steps_come_from_the_real_data_task():
    spec = get_workload("cnn")
    params = spec.dataset_params_for({})
    inputs = make_inputs(spec, params, "dataset", 16, 3, seed=0)
    assert inputs["x"].shape == (16, 8, 8, 1)
    assert inputs["xs"].shape == (3, 16, 8, 8, 1) and inputs["ys"].shape == (3, 16)
    np.testing.assert_array_equal(inputs["xs"][0], inputs["x"])
    synthetic = make_inputs(get_workload("lstm"), get_workload("lstm").resolve_params({}), "synthetic", 4, 0, 0)
    assert set(synthetic) == {"x", "y"} and synthetic["x"].dtype == np.int64


def test_request_defaults_to_the_dataset_only_with_steps():
    _, params, data, batch = ParityRequest("mlp").resolve()
    assert (data, params["input_dim"], batch) == ("synthetic", 784, 128)
    _, params, data, _ = ParityRequest("mlp", steps=10).resolve()
    assert (data, params["input_dim"]) == ("dataset", 64)
    _, params, data, _ = ParityRequest("cnn", steps=10, data="synthetic").resolve()
    assert (data, params["image"]) == ("synthetic", 28)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ParityRequest("resnet"), "valid workloads: adaptive, cnn, lstm, mlp, transformer"),
        (ParityRequest("mlp", steps=-1), "steps must be >= 0"),
        (ParityRequest("mlp", source="jax"), "valid frameworks"),
        (ParityRequest("mlp", data="imagenet"), "valid data sources"),
        (ParityRequest("mlp", break_side="weights"), "valid breaks: activation, pooling, bias, transpose, gates"),
        (ParityRequest("cnn", break_side="transpose"), "square 2-D weight"),
        (ParityRequest("mlp", break_side="gates"), "needs an LSTM"),
        (ParityRequest("mlp", batch_size=0), "batch_size must be >= 1"),
        (ParityRequest("cnn", data="dataset", params={"image": 28}), "digits"),
        (ParityRequest("mlp", timeout_s=0), "timeout"),
    ],
)
def test_bad_requests_are_bad_input(request_, message):
    with pytest.raises(BadInput, match=message):
        request_.resolve()


@pytest.mark.parametrize(
    "argv",
    [
        ["parity", "--workload", "resnet"],
        ["parity", "--workload", "mlp", "--steps", "x"],
        ["parity", "--workload", "mlp", "--param", "depth=0"],
        ["parity", "--workload", "transformer", "--param", "heads=3", "--json"],
        ["parity", "--workload", "cnn", "--steps", "2", "--param", "image=28"],
        ["parity", "--workload", "mlp", "--steps", "2", "--batch-size", "5000"],
        ["parity"],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("fwstudy: error:")
