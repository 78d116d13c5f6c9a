"""Weight transfer in pure NumPy: every layout difference checked by computing the same layer
both ways, and every workload's map round-tripped in both directions. No framework needed."""

from __future__ import annotations

import numpy as np
import pytest

from fwstudy.workloads import WORKLOADS
from fwstudy.workloads import transfer as t

GEN = np.random.default_rng(0)


def randn(*shape: int) -> np.ndarray:
    return GEN.standard_normal(shape).astype(np.float32)


def param_sets() -> list:
    """Default shapes, the real-data shapes, and a few odd overrides of every workload."""
    sets = []
    for name, spec in sorted(WORKLOADS.items()):
        sets.append(pytest.param(name, {}, id=f"{name}-default"))
        if spec.dataset_params:
            sets.append(pytest.param(name, dict(spec.dataset_params), id=f"{name}-dataset"))
    small = {"layers": 1, "heads": 2, "d_model": 16, "ff": 8, "length": 5}
    sets.append(pytest.param("transformer", small, id="transformer-small"))
    sets.append(pytest.param("cnn", {"image": 9, "channels": 3, "kernel": 5}, id="cnn-odd"))
    sets.append(pytest.param("mlp", {"depth": 3, "hidden": 7}, id="mlp-deep"))
    sets.append(pytest.param("lstm", {"hidden": 5, "embed": 3, "vocab": 20}, id="lstm-small"))
    return sets


def random_torch_state(weight_map: t.WeightMap, params) -> dict[str, np.ndarray]:
    buffers = weight_map.torch_buffers(params)
    return {
        n: np.zeros(s, np.float32) if n in buffers else randn(*s)
        for n, s in weight_map.torch_shapes(params).items()
    }


@pytest.mark.parametrize(("workload", "overrides"), param_sets())
def test_torch_to_keras_and_back_is_identity(workload, overrides):
    spec = WORKLOADS[workload]
    params = spec.resolve_params(overrides)
    weight_map = spec.weight_map()
    state = random_torch_state(weight_map, params)
    keras_weights = weight_map.to_keras(state, params)
    t.check_shapes(keras_weights, weight_map.keras_shapes(params), "keras")
    back = weight_map.to_torch(keras_weights, params)
    t.check_shapes(back, weight_map.torch_shapes(params), "torch")
    for name, value in state.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize(("workload", "overrides"), param_sets())
def test_keras_to_torch_and_back_is_identity(workload, overrides):
    spec = WORKLOADS[workload]
    params = spec.resolve_params(overrides)
    weight_map = spec.weight_map()
    weights = {n: randn(*s) for n, s in weight_map.keras_shapes(params).items()}
    back = weight_map.to_keras(weight_map.to_torch(weights, params), params)
    assert set(back) == set(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize(("workload", "overrides"), param_sets())
def test_both_layouts_hold_the_analytic_parameter_count(workload, overrides):
    spec = WORKLOADS[workload]
    params = spec.resolve_params(overrides)
    weight_map = spec.weight_map()
    assert weight_map.torch_param_count(params) == spec.param_count(params)
    assert weight_map.keras_param_count(params) == spec.param_count(params)


def test_dense_kernel_is_the_transposed_linear_weight():
    x, weight, bias = randn(5, 7), randn(3, 7), randn(3)
    kernel = t.dense_to_keras(weight)
    assert kernel.shape == (7, 3)
    np.testing.assert_allclose(x @ kernel + bias, x @ weight.T + bias, rtol=1e-6)
    np.testing.assert_array_equal(t.dense_to_torch(kernel), weight)


def conv_nchw(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Reference 'same' cross-correlation, PyTorch conventions (NCHW input, OIHW weight)."""
    k = weight.shape[-1]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, w = x.shape[2:]
    out = np.zeros((x.shape[0], weight.shape[0], h, w), np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + w], weight[:, :, i, j])
    return out


def conv_nhwc(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reference 'same' cross-correlation, Keras conventions (NHWC input, HWIO kernel)."""
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros((x.shape[0], h, w, kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("nhwc,co->nhwo", xp[:, i : i + h, j : j + w, :], kernel[i, j])
    return out


def test_conv_hwio_on_nhwc_equals_oihw_on_nchw():
    x_nhwc, weight = randn(2, 6, 5, 3), randn(4, 3, 3, 3)
    kernel = t.conv_to_keras(weight)
    assert kernel.shape == (3, 3, 3, 4)
    torch_style = conv_nchw(x_nhwc.transpose(0, 3, 1, 2), weight)
    keras_style = conv_nhwc(x_nhwc, kernel)
    np.testing.assert_allclose(keras_style, torch_style.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(t.conv_to_torch(kernel), weight)


def test_conv_kernel_is_not_symmetric_under_a_plain_transpose():
    """Guards the test above: a wrong axis order (OIHW → HWOI, say) must change the output."""
    x_nhwc, weight = randn(1, 5, 5, 2), randn(2, 2, 3, 3)
    wrong = weight.transpose(3, 2, 0, 1)  # (W, H, I, O): spatial axes swapped
    expected = conv_nchw(x_nhwc.transpose(0, 3, 1, 2), weight).transpose(0, 2, 3, 1)
    assert np.abs(conv_nhwc(x_nhwc, wrong) - expected).max() > 1e-2


def test_dense_after_flatten_reorders_rows_from_chw_to_hwc():
    channels, height, width, out = 4, 3, 2, 5
    features_nchw = randn(6, channels, height, width)
    weight = randn(out, channels * height * width)
    kernel = t.flat_dense_to_keras(weight, channels, height, width)
    torch_style = features_nchw.reshape(6, -1) @ weight.T
    keras_style = features_nchw.transpose(0, 2, 3, 1).reshape(6, -1) @ kernel
    np.testing.assert_allclose(keras_style, torch_style, rtol=1e-5, atol=1e-5)
    # A plain transpose would be wrong: the flatten orders differ.
    assert np.abs(features_nchw.transpose(0, 2, 3, 1).reshape(6, -1) @ weight.T - torch_style).max() > 1e-2
    np.testing.assert_array_equal(t.flat_dense_to_torch(kernel, channels, height, width), weight)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_torch_style(xs, w_ih, w_hh, b_ih, b_hh):
    """``nn.LSTM``'s equations: gates i, f, g, o from two products and two biases."""
    hidden = w_hh.shape[1]
    h = np.zeros((xs.shape[0], hidden))
    c = np.zeros_like(h)
    for x in xs.transpose(1, 0, 2):
        i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return h


def lstm_keras_style(xs, kernel, recurrent, bias):
    """Keras' LSTMCell: z = x K + h R + b, split into i, f, c, o."""
    hidden = recurrent.shape[0]
    h = np.zeros((xs.shape[0], hidden))
    c = np.zeros_like(h)
    for x in xs.transpose(1, 0, 2):
        i, f, cand, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(cand)
        h = sigmoid(o) * np.tanh(c)
    return h


def test_lstm_gates_and_summed_biases_compute_the_same_state():
    inputs, hidden = 3, 4
    xs = randn(2, 6, inputs)
    w_ih, w_hh = randn(4 * hidden, inputs), randn(4 * hidden, hidden)
    b_ih, b_hh = randn(4 * hidden), randn(4 * hidden)  # a stock nn.LSTM: both biases non-zero
    kernel, recurrent, bias = t.lstm_to_keras(w_ih, w_hh, b_ih, b_hh)
    assert kernel.shape == (inputs, 4 * hidden) and recurrent.shape == (hidden, 4 * hidden)
    expected = lstm_torch_style(xs, w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(lstm_keras_style(xs, kernel, recurrent, bias), expected, rtol=1e-5, atol=1e-6)
    # Back to PyTorch: one bias in bias_ih, zeros in bias_hh, same function.
    w_ih2, w_hh2, b_ih2, b_hh2 = t.lstm_to_torch(kernel, recurrent, bias)
    assert not b_hh2.any()
    np.testing.assert_allclose(b_ih2, b_ih + b_hh, rtol=1e-6)
    np.testing.assert_allclose(lstm_torch_style(xs, w_ih2, w_hh2, b_ih2, b_hh2), expected, rtol=1e-5, atol=1e-6)


def test_lstm_gate_order_is_the_same_on_both_sides():
    assert t.KERAS_LSTM_GATES == t.TORCH_LSTM_GATES


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mha_torch_style(x, in_w, in_b, out_w, out_b, heads):
    """``nn.MultiheadAttention``: packed projections, heads by reshaping the feature axis."""
    n, length, d = x.shape
    hd = d // heads
    q, k, v = np.split(x @ in_w.T + in_b, 3, axis=-1)

    def split(a):
        return a.reshape(n, length, heads, hd).transpose(0, 2, 1, 3)

    scores = split(q) @ split(k).transpose(0, 1, 3, 2) / np.sqrt(hd)
    context = (softmax(scores) @ split(v)).transpose(0, 2, 1, 3).reshape(n, length, d)
    return context @ out_w.T + out_b


def mha_keras_style(x, variables, heads):
    """``keras.layers.MultiHeadAttention``: one EinsumDense per projection, query scaled first."""
    q = np.einsum("bld,dhk->blhk", x, variables["query/kernel"]) + variables["query/bias"]
    k = np.einsum("bld,dhk->blhk", x, variables["key/kernel"]) + variables["key/bias"]
    v = np.einsum("bld,dhk->blhk", x, variables["value/kernel"]) + variables["value/bias"]
    q = q / np.sqrt(q.shape[-1])
    weights = softmax(np.einsum("bqhk,bshk->bhqs", q, k))
    context = np.einsum("bhqs,bshk->bqhk", weights, v)
    return (
        np.einsum("bqhk,hkd->bqd", context, variables["attention_output/kernel"])
        + variables["attention_output/bias"]
    )


def test_attention_projections_map_heads_to_heads():
    d, heads = 8, 2
    x = randn(2, 5, d)
    in_w, in_b, out_w, out_b = randn(3 * d, d), randn(3 * d), randn(d, d), randn(d)
    variables = t.mha_to_keras(in_w, in_b, out_w, out_b, heads)
    assert {n: v.shape for n, v in variables.items()} == t.mha_keras_shapes(d, heads)
    expected = mha_torch_style(x, in_w, in_b, out_w, out_b, heads)
    np.testing.assert_allclose(mha_keras_style(x, variables, heads), expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(t.mha_to_torch(variables), (in_w, in_b, out_w, out_b), strict=True):
        np.testing.assert_array_equal(a, b)


def test_check_shapes_names_what_is_wrong():
    shapes = {"a": (2,), "b": (3, 1)}
    t.check_shapes({"a": np.zeros(2), "b": np.zeros((3, 1))}, shapes, "torch")
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        t.check_shapes({"a": np.zeros(2), "c": np.zeros(1)}, shapes, "torch")
    with pytest.raises(ValueError, match="'b' has shape"):
        t.check_shapes({"a": np.zeros(2), "b": np.zeros((1, 3))}, shapes, "torch")
