"""The framework-neutral specs of the workloads: registry, parameters, shapes, FLOPs.

Per-workload tests take their workloads from the registry, so a new workload folder is tested
without a test edit; the hand-counted references below (the methodology's default shapes, docs/methodology.md) are checked for the
workloads they name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fwstudy import cli
from fwstudy.errors import BadInput
from fwstudy.workloads import WORKLOADS, get_workload

NAMES = sorted(WORKLOADS)
WORKLOAD_FOLDERS = Path(__file__).resolve().parent.parent / "fwstudy" / "workloads"


def real_data_workloads(prefix: str = "") -> list[str]:
    """Registered workloads with a real-data task, only those whose dataset is named
    ``<prefix>-...`` when a prefix is given (``digits``: the digits, ``tokens``: the token task)."""
    return [
        name
        for name, spec in sorted(WORKLOADS.items())
        if spec.dataset is not None
        and spec.dataset(spec.dataset_params_for({})).name.startswith(f"{prefix}-" if prefix else "")
    ]


# The default shapes of docs/methodology.md, counted by hand.
PARAMS = {
    "mlp": 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10,
    "cnn": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 128 + 128) + (128 * 10 + 10),
    "lstm": 1000 * 64 + 4 * 128 * (64 + 128 + 1) + 128 * 10 + 10,
    "transformer": 1000 * 128
    + 64 * 128
    + 2 * ((4 * 128 * 128 + 4 * 128) + (128 * 512 + 512 + 512 * 128 + 128) + 4 * 128)
    + 128 * 10
    + 10,
    "adaptive": 64 * 256 + 256 + 256 * 256 + 256 * 10 + 10,  # the control-flow model of F4
}
BATCH = {"mlp": 128, "cnn": 64, "lstm": 64, "transformer": 32, "adaptive": 128}
# Synthetic batches of 5 at the default parameters: (x shape, x dtype).
SHAPES = {
    "mlp": ((5, 784), np.float32),
    "cnn": ((5, 28, 28, 1), np.float32),  # channels last: the one neutral layout
    "lstm": ((5, 50), np.int64),
    "transformer": ((5, 64), np.int64),
    "adaptive": ((5, 64), np.float32),
}


def test_registry_holds_every_workload_folder():
    assert NAMES == sorted(path.parent.name for path in WORKLOAD_FOLDERS.glob("*/spec.py"))
    assert set(PARAMS) == set(BATCH) == set(SHAPES) and set(PARAMS) <= set(WORKLOADS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_default_parameter_count_and_batch(name):
    spec = get_workload(name)
    assert spec.param_count(spec.resolve_params({})) == PARAMS[name]
    assert spec.default_batch_size == BATCH[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_hook_is_present(name):
    spec = get_workload(name)
    for hook in ("shape_text", "layers", "param_count", "synthetic_batch", "num_classes"):
        assert callable(getattr(spec, hook)), hook
    assert spec.default_batch_size >= 1 and spec.param_count(spec.resolve_params({})) > 0
    assert spec.weight_map() is not None


@pytest.mark.parametrize("name", NAMES)
def test_synthetic_batches_are_seeded_and_shaped(name):
    spec = get_workload(name)
    params = spec.resolve_params({})
    x1, y1 = spec.synthetic_batch(params, 5, np.random.default_rng(3))
    x2, y2 = spec.synthetic_batch(params, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape[0] == 5 and y1.shape == (5,)
    assert y1.dtype == np.int64 and 0 <= y1.min() and y1.max() < spec.num_classes(params)
    assert x1.dtype in (np.float32, np.int64)
    if x1.dtype == np.int64:
        assert 0 <= x1.min() and x1.max() < params["vocab"]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_synthetic_batches_have_the_documented_shapes(name):
    spec = get_workload(name)
    x, _ = spec.synthetic_batch(spec.resolve_params({}), 5, np.random.default_rng(3))
    assert (x.shape, x.dtype) == SHAPES[name]


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("cnn", {"image": 2}, "image >= 4"),
        ("transformer", {"heads": 3}, "heads to divide d_model"),
        ("lstm", {"vocab": 5}, "vocab >= classes"),
        ("mlp", {"widths": 3}, "unknown parameter 'widths'"),
        ("cnn", {"image": 8.0}, "must be int"),
        ("lstm", {"hidden": 0}, ">= 1"),
    ],
)
def test_bad_parameters_are_bad_input(name, overrides, message):
    with pytest.raises(BadInput, match=message):
        get_workload(name).resolve_params(overrides)


@pytest.mark.parametrize("name", NAMES)
def test_train_flops_cover_forward_and_backward(name):
    spec = get_workload(name)
    params = spec.resolve_params({})
    forward, train = spec.forward_flops(params, 4), spec.train_flops(params, 4)
    assert forward > 0
    assert 2 * forward < train <= 3 * forward
    assert spec.forward_flops(params, 8) == 2 * forward


def test_mlp_flops_are_unchanged():
    spec = get_workload("mlp")
    params = spec.resolve_params({})
    macs = 784 * 512 + 512 * 512 + 512 * 10
    assert spec.forward_flops(params, 1) == 2 * macs
    assert spec.train_flops(params, 1) == 2 * (3 * macs - 784 * 512)


def test_transformer_counts_the_attention_products():
    spec = get_workload("transformer")
    params = spec.resolve_params({})
    names = [layer.name for layer in spec.layers(params)]
    assert "enc0_scores" in names and "enc1_context" in names
    scores = next(layer for layer in spec.layers(params) if layer.name == "enc0_scores")
    assert scores.macs_per_sample == 64 * 64 * 128


@pytest.mark.parametrize("name", real_data_workloads())
def test_the_real_data_task_fits_the_synthetic_shapes(name):
    spec = get_workload(name)
    params = spec.dataset_params_for({})
    dataset = spec.dataset(params)
    x, y = spec.synthetic_batch(params, 2, np.random.default_rng(0))
    assert x.shape[1:] == dataset.x_train.shape[1:] and x.dtype == dataset.x_train.dtype
    assert dataset.classes == spec.num_classes(params)


@pytest.mark.parametrize("name", real_data_workloads("digits"))
def test_digits_shapes_come_from_parameters(name):
    spec = get_workload(name)
    params = spec.dataset_params_for({})
    assert spec.dataset(params).name.startswith("digits-")
    if params != spec.resolve_params({}):  # the default shape is not the digits' shape
        with pytest.raises(BadInput, match="digits"):
            spec.dataset(spec.resolve_params({}))


def test_the_helper_tells_the_tasks_apart():
    digits, tokens = real_data_workloads("digits"), real_data_workloads("tokens")
    assert digits and tokens and not set(digits) & set(tokens)
    assert sorted(digits + tokens) == real_data_workloads()


def test_list_prints_every_workload(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    for line in lines:
        spec = get_workload(line.split()[0])
        assert f"{spec.param_count(spec.resolve_params({})):,} params" in line
        assert "tensorflow: eager, graph, compiled, fit" in line and "torch: eager, compiled" in line


def test_specs_and_weight_maps_import_no_framework():
    code = (
        "import sys\n"
        "from fwstudy.workloads import WORKLOADS\n"
        "for spec in WORKLOADS.values():\n"
        "    params = spec.resolve_params({})\n"
        "    spec.weight_map().torch_shapes(params)\n"
        "    spec.describe()\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
