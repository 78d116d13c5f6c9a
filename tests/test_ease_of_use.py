"""F9 (fwstudy.usability, fwstudy.figures.ease_of_use): code metrics derived from the source,
planted bugs and what their user sees, the custom-gradient parity check, the profile's fields.

The metrics are parsed, never typed: the tests edit copies of the real twins and check that the
metrics move with the code. The planted bugs and the custom-gradient twins run for real in the
slow tests (one child per framework), the rest on synthetic inputs."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest

from fwstudy import frameworks
from fwstudy.config.profile import Profile
from fwstudy.errors import BadInput
from fwstudy.figures import ease_of_use
from fwstudy.parity.compare import TOLERANCES
from fwstudy.usability import code_metrics as cm
from fwstudy.usability import custom_gradient, planted, runs
from fwstudy.usability.catalog import API_LEVELS, BUGS, DEBUGGING_MODULES
from fwstudy.workloads import WORKLOADS

# --- F9a: code metrics ---------------------------------------------------------------------------


def test_code_metrics_cover_every_workload_level_and_part():
    table = cm.code_metrics()
    expected = len(WORKLOADS) * len(API_LEVELS) * 3 + len(frameworks.NAMES)
    assert len(table) == expected
    assert set(table["workload"]) == set(WORKLOADS) | {"custom_gradient"}
    assert (table["lloc"] > 0).all() and (table["cc_total"] >= 1).all()
    scripts = table[table["part"] == "script"].set_index(["workload", "level"])
    models = table[table["part"] == "model"].set_index(["workload", "level"])
    steps = table[table["part"] == "step"].set_index(["workload", "level"])
    for level, info in API_LEVELS.items():
        module = cm.measure_module(cm.module_path(info["module"]))
        for workload in WORKLOADS:
            # the script is the twin plus the level's module, and holds its step
            assert scripts.loc[(workload, level), "lloc"] == models.loc[(workload, level), "lloc"] + module.lloc
            assert steps.loc[(workload, level), "lloc"] < scripts.loc[(workload, level), "lloc"]
            assert set(steps.loc[(workload, level), "symbol_names"].split()) <= set(
                scripts.loc[(workload, level), "symbol_names"].split())


@pytest.mark.parametrize("framework", frameworks.NAMES)
def test_a_changed_twin_changes_its_metrics(framework, tmp_path):
    """Edit a copy of a real twin: one function, one branch, one new framework symbol more.
    Every metric must follow (the numbers are parsed from the file, not stored anywhere)."""
    workload = sorted(WORKLOADS)[0]
    original = cm.twin_path(workload, framework)
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    before = cm.measure_module(copy)
    assert before == cm.measure_module(original)
    alias = "nn" if framework == "torch" else "keras"
    symbol = "nn.Dropout" if framework == "torch" else "keras.layers.Dropout"
    full = "torch.nn.Dropout" if framework == "torch" else "keras.layers.Dropout"
    assert alias in cm.imported_names(ast.parse(copy.read_text()))[0]
    copy.write_text(copy.read_text() + textwrap.dedent(f"""

        def extra(rate):
            if rate > 0:
                return {symbol}(rate)
            return None
        """))
    after = cm.measure_module(copy)
    assert after.lloc == before.lloc + 4  # def, if, two returns
    assert after.cc_total == before.cc_total + 2  # a function with one branch
    assert after.symbols == before.symbols | {full}
    assert full not in before.symbols


def test_symbols_resolve_through_imports_and_skip_annotations():
    source = textwrap.dedent("""
        import numpy as np
        import tensorflow as tf
        from torch import nn
        from torch.nn import functional as F

        def step(model: nn.Module, x) -> tf.Tensor:
            layer = nn.Linear(2, 3)
            with tf.GradientTape() as tape:
                y = F.relu(layer(x))
            y.backward()
            np.asarray(x).sum()
            [].append(1)
            self_like = model.parameters()
            return tape
        """)
    tree = ast.parse(source)
    part = cm.measure_nodes(tree.body, tree)
    assert part.symbols == {"torch.nn.Linear", "tensorflow.GradientTape", "torch.nn.functional.relu"}
    assert part.namespaces == {"torch.nn", "tensorflow", "torch.nn.functional"}
    assert part.methods == {"backward", "parameters"}  # not np's, not list.append
    assert part.cc_total == 1


def test_a_class_counts_its_methods_once():
    tree = ast.parse("class A:\n    def f(self):\n        return 1\n    def g(self, x):\n        if x:\n            return 2\n        return 3\n")
    part = cm.measure_nodes(tree.body, tree)
    assert (part.cc_total, part.cc_max) == (1 + 2, 2)


def test_docstrings_are_not_code():
    with_doc = ast.parse('"""Module."""\ndef f():\n    """Why."""\n    return 1\n')
    without = ast.parse("def f():\n    return 1\n")
    assert cm.measure_nodes(cm.strip_docstrings(with_doc).body, with_doc).lloc == \
        cm.measure_nodes(without.body, without).lloc


def test_every_level_declares_its_step_and_every_twin_module_its_layer():
    for info in API_LEVELS.values():
        tree = cm.parse(cm.module_path(info["module"]))
        for name in cm.declared_parts(tree, "STEP_PARTS"):
            cm.find_definition(tree, name)
    with pytest.raises(BadInput, match="no definition"):
        cm.find_definition(ast.parse("def f(): pass"), "g")


# --- F9b: planted bugs ----------------------------------------------------------------------------


@pytest.mark.parametrize("framework", frameworks.NAMES)
def test_every_bug_has_a_site_in_each_framework(framework):
    path = cm.module_path(DEBUGGING_MODULES[framework])
    sites = planted.site_lines(path)
    assert set(sites) == set(BUGS)
    lines = path.read_text().splitlines()
    for bug, line in sites.items():
        assert "SITE:" in lines[line - 1] and bug in lines[line - 1]


def _fail_inside():
    def inner():
        raise ValueError("boom")

    try:
        inner()
    except ValueError as exc:
        raise RuntimeError(f'wrapped: File "{__file__}", line 3') from exc


def test_explain_counts_the_printed_chain():
    try:
        _fail_inside()
    except RuntimeError as exc:
        caught = exc
    from pathlib import Path

    seen = planted.explain(caught, Path(__file__), site=3)
    assert seen["error_type"] == "RuntimeError" and seen["chained_exceptions"] == 2
    assert seen["traceback_frames"] == 4  # 2 in the wrapper's traceback, 2 in its cause's
    assert seen["message_names_site"] and seen["message_names_user_line"]
    # a test file is not in the fwstudy package: none of these frames is "user code" there
    assert seen["traceback_user_frames"] == 0 and seen["traceback_user_share"] == 0


def test_run_planted_records_errors_nans_and_hooks():
    from pathlib import Path

    path = Path(planted.__file__)

    def raising(x, y):
        raise TypeError("bad")

    result = planted.run_planted("shape", raising, (1, 2), 3, path, lambda v: True)
    assert result["raised"] and result["raised_at_step"] == 1 and result["steps_run"] == 1
    # run_planted's frame is in fwstudy (the "user's script"), the step defined here is not
    assert (result["traceback_user_frames"], result["traceback_frames"]) == (1, 2)

    values = iter([1.0, float("nan"), float("nan")])
    result = planted.run_planted("nan", lambda x, y: next(values), (1, 2), 3, path, lambda v: True)
    assert not result["raised"] and result["first_nonfinite_step"] == 2

    def printing(x, y):
        h = 3.0  # noqa: F841  (the hook reads the caller's ``h``)
        print(planted.PRINT_MARK)
        breakpoint()
        return 0.0

    result = planted.run_planted("print_hook", printing, (1, 2), 2, path, lambda v: v == 3.0)
    assert result["prints_per_step"] == [1, 1] and result["hooks_per_step"] == [1, 1]
    assert result["hook_concrete_calls"] == 2 and result["hook_symbolic_calls"] == 0


def _row(**fields):
    base = {"status": "ok", "bug": "shape", "raised": True, "raised_at_step": 1, "error_type": "E",
            "traceback_names_site": False, "message_names_site": False, "message_names_user_line": False,
            "deepest_user_line": 9, "traceback_frames": 4, "traceback_user_share": 0.5, "time_to_error_s": 0.01,
            "prints_per_step": [0], "hooks_per_step": [0], "first_nonfinite_step": None}
    return pd.Series({**base, **fields})


def test_matrix_outcomes():
    assert ease_of_use.outcome(_row(traceback_names_site=True)) == "error names the bug's line"
    assert ease_of_use.outcome(_row()) == "error, bug's line not shown"
    assert ease_of_use.outcome(_row(raised=False, bug="nan")) == "no error (silent)"
    assert ease_of_use.outcome(_row(bug="print_hook", raised=False, prints_per_step=[2, 1])) == "print/hook every step"
    assert ease_of_use.outcome(_row(bug="print_hook", raised=False, prints_per_step=[1, 0])) == "print/hook at trace only"
    assert ease_of_use.outcome(_row(status="failed", error="killed")) == "run failed"
    assert "line 9" in ease_of_use.finding(_row())
    assert "NaN from step 2" in ease_of_use.finding(_row(bug="nan", raised=False, first_nonfinite_step=2))


# --- F9c: the custom-gradient parity check ---------------------------------------------------------


def _arrays(scale_custom: float = 1.0, shift: float = 0.0) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(0)
    arrays = {}
    for dtype in ("float32", "float64"):
        arrays[f"{dtype}:logits"] = gen.standard_normal((4, 3)) + shift
        for key in ("dense0.weight", "dense0.bias"):
            base = gen.standard_normal((3, 2))
            arrays[f"{dtype}:builtin:grad:{key}"] = base
            arrays[f"{dtype}:custom:grad:{key}"] = base * scale_custom
    return arrays


def test_custom_gradient_parity_judges_agreement_and_effect():
    same = _arrays(scale_custom=2.0)
    report = custom_gradient.parity(same, same)
    assert report["passed"], report
    no_effect = _arrays(scale_custom=1.0)
    report = custom_gradient.parity(no_effect, no_effect)
    assert not report["checks"]["custom_gradient_in_effect_torch"]
    apart = _arrays(scale_custom=2.0, shift=10 * TOLERANCES["float32"]["forward_max_abs"])
    assert not custom_gradient.parity(_arrays(scale_custom=2.0), apart)["checks"]["forward_float32"]


def test_reference_weights_are_seeded_and_in_torch_layout():
    a, b = custom_gradient.reference_weights(), custom_gradient.reference_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    widths = custom_gradient.WIDTHS
    assert a["dense0.weight"].shape == (widths[1], widths[0])
    x, _ = custom_gradient.reference_batch()
    # enough pre-activations outside [-1, 1] for the custom gradient to show
    pre = x @ a["dense0.weight"].T + a["dense0.bias"]
    assert 0.1 < np.mean(np.abs(pre) > 1) < 0.9


# --- the profile -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "message"), [
    ("debug_bugs", ["shape", "typo"], "unknown debug_bug 'typo'; valid debug_bugs: shape, dtype"),
    ("debug_modes", ["fit"], "valid debug_modes: eager, graph, compiled"),
    ("footprint_levels", ["keras"], "valid footprint_levels: tf_gradient_tape"),
    ("debug_steps", 0, "debug_steps must be >= 1"),
    ("footprint_cold_import", "yes", "footprint_cold_import must be true or false"),
    ("footprint_workload", "resnet", "unknown footprint_workload"),
])
def test_profile_rejects_bad_usability_fields(field, value, message):
    with pytest.raises(BadInput, match=message):
        Profile(profile="t", **{field: value})


def test_jobs_follow_the_profile_and_the_frameworks_modes():
    profile = Profile(profile="t", debug_bugs=["shape", "nan"], debug_modes=["eager", "graph", "compiled"])
    jobs = runs.debugging_jobs(profile)
    assert len(jobs) == 2 * (3 + 2)  # TensorFlow has graph, PyTorch does not
    assert {(j["framework"], j["mode"]) for j in jobs if j["framework"] == "torch"} == {("torch", "eager"), ("torch", "compiled")}
    cg = runs.custom_gradient_jobs(dataclasses.replace(profile, custom_gradient_modes=["eager"]))
    assert sorted((j["framework"], j["variant"], j["arrays"]) for j in cg) == [
        ("tensorflow", "builtin", False), ("tensorflow", "custom", True),
        ("torch", "builtin", False), ("torch", "custom", True)]
    assert len({runs.identity(j) for j in jobs}) == len(jobs)


# --- real children (slow) --------------------------------------------------------------------------


@pytest.mark.slow
def test_planted_shape_bug_and_custom_gradient_twins_for_real(tmp_path):
    """One planted bug per framework in eager mode, and the custom-gradient twins' parity."""
    profile = Profile(profile="t", results_dir=str(tmp_path), debug_bugs=["shape"], debug_modes=["eager"],
                      debug_steps=2, custom_gradient_modes=["eager"], custom_gradient_steps=2, warmup=0)
    table = runs.measure_debugging(profile)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    for row in table.itertuples():
        assert row.raised and row.raised_at_step == 1, row
        assert row.traceback_names_site and row.deepest_user_line == row.site_line, row
        assert 0 < row.traceback_user_frames <= row.traceback_frames
    jobs = [j for j in runs.custom_gradient_jobs(profile) if j["variant"] == "custom"]
    costs = runs.flat(runs.collect(profile, jobs))
    assert (costs["status"] == "ok").all(), costs["error"].tolist()
    report = runs.parity_of(costs)
    assert report is not None and report["passed"], report
    # stored like any trial: the tidy table has the runs' numbers
    assert any((tmp_path / "trials").glob("*.parquet"))
