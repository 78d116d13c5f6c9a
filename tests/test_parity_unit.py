"""The parity gate's parent side, without starting a child: inputs, comparison, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fwstudy import cli
from fwstudy.errors import BadInput
from fwstudy.parity.compare import GRADIENT_SCALE_FLOOR, break_bias, compare, gradient_scale
from fwstudy.parity.gate import ParityRequest, make_inputs
from fwstudy.workloads import get_workload


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


@pytest.mark.parametrize("workload", ["mlp", "cnn", "lstm", "transformer"])
def test_perfect_twins_compare_as_zero(workload):
    spec = get_workload(workload)
    params = spec.resolve_params({})
    spec, torch_out, tf_out = fake_outputs(workload, params, steps=3)
    result = compare(spec, params, torch_out, tf_out)
    assert result["forward_max_abs_diff"] == 0.0
    assert result["gradient_max_abs_diff"] == 0.0
    assert result["steps_max_rel_diff"] == 0.0
    assert set(result["gradients"]) == {
        n for n in spec.weight_map().torch_shapes(params) if n not in spec.weight_map().torch_buffers(params)
    }


def test_compare_finds_a_transposed_gradient():
    spec = get_workload("mlp")
    params = spec.resolve_params({"input_dim": 6, "hidden": 6, "depth": 1, "classes": 6})
    spec, torch_out, tf_out = fake_outputs("mlp", params)
    tf_out["grad:dense0/kernel"] = tf_out["grad:dense0/kernel"].T.copy()  # forgot the transpose
    result = compare(spec, params, torch_out, tf_out)
    assert result["gradient_worst"] == "dense0.weight"
    assert result["gradient_max_rel_diff"] > 0.1


def test_compare_reports_losses_relative_per_step():
    spec = get_workload("mlp")
    params = spec.resolve_params({})
    spec, torch_out, tf_out = fake_outputs("mlp", params, steps=4)
    tf_out["losses"] = tf_out["losses"] * np.array([1.0, 1.0, 1.0, 1.002])
    result = compare(spec, params, torch_out, tf_out)
    assert result["steps_rel_diff"][:3] == [0.0, 0.0, 0.0]
    assert result["steps_max_rel_diff"] == pytest.approx(0.002)


def test_gradient_scale_is_floored_by_the_largest_gradient():
    grads = {"big": np.array([2.0, -4.0]), "zero_in_theory": np.array([1e-12, -3e-12]), "empty": np.zeros(0)}
    scales = gradient_scale(grads)
    assert scales["big"] == 4.0
    assert scales["zero_in_theory"] == pytest.approx(4.0 * GRADIENT_SCALE_FLOOR)
    assert scales["empty"] > 0


def test_break_bias_zeroes_the_last_bias_of_either_layout():
    keras_weights = {"a/kernel": np.ones(2), "a/bias": np.ones(2), "head/bias": np.ones(3)}
    assert break_bias(keras_weights, "tensorflow") == "head/bias"
    assert not keras_weights["head/bias"].any() and keras_weights["a/bias"].all()
    torch_state = {"a.weight": np.ones(2), "a.bias": np.ones(2), "head.bias": np.ones(3)}
    assert break_bias(torch_state, "torch") == "head.bias"


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
        (ParityRequest("mlp", break_side="weights"), "valid breaks: activation, bias"),
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
