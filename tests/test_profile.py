"""Profiles: strict parameter files, and the notebook overlay of papermill's values."""

import pytest

from fwstudy.config.profile import RUN_OPTIONS, Profile, load_profile_file, profile_from_notebook
from fwstudy.errors import BadInput
from fwstudy.figures.trials import training_configs
from tests.conftest import PROJECT


@pytest.mark.parametrize("name", ["smoke", "quick", "full"])
def test_shipped_profiles_are_valid_and_named_after_their_file(name):
    profile = load_profile_file(PROJECT / "parameters" / f"{name}.yaml")
    assert profile.profile == name


def test_notebook_profile_layers_file_injected_overrides_and_run_options():
    """Later wins: the YAML, then what papermill injected, then overrides, then run options."""
    smoke = load_profile_file(PROJECT / "parameters" / "smoke.yaml")
    namespace = {"profile": "smoke", "steps": 7, "overrides": {"repeats": 3, "steps": 9},
                 "force": True, "results_dir": None, "figures_dir": None}
    profile = profile_from_notebook(namespace)
    assert profile.steps == 9 and profile.repeats == 3 and profile.force is True
    assert profile.modes == smoke.modes and profile.results_dir is None
    assert profile_from_notebook({"profile": "smoke", "steps": 7}).steps == 7
    assert profile_from_notebook({"profile": "smoke"}) == smoke


def test_notebook_profile_takes_a_file_papermill_injected_from_elsewhere():
    """``papermill -f elsewhere/mine.yaml``: every key of that file arrives as a variable,
    and its profile name is not one of parameters/."""
    profile = profile_from_notebook({"profile": "mine", "workloads": ["cnn"], "repeats": 2, "overrides": {}})
    assert profile.profile == "mine" and profile.workloads == ["cnn"] and profile.repeats == 2


def test_notebook_profile_takes_a_path_to_a_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("profile: mine\nworkloads: [cnn]\n")
    profile = profile_from_notebook({"profile": str(path), "overrides": {}})
    assert profile.profile == "mine" and profile.workloads == ["cnn"]


@pytest.mark.parametrize(
    "namespace, message",
    [
        ({"profile": "smoke", "steps": -1}, "steps must be >= 1"),
        ({"profile": "smoke", "reapeats": 3}, "unknown notebook parameter 'reapeats'"),
        ({"profile": "smoke", "overrides": {"reapeats": 3}}, "unknown parameter 'reapeats'"),
        ({"profile": "nope"}, "unknown profile 'nope'; valid profiles: .*full.*quick.*smoke"),
        ({"profile": "smoke", "overrides": {"profile": "x"}}, "cannot rename the profile"),
        ({"profile": "smoke", "overrides": [1]}, "overrides must be a mapping"),
    ],
)
def test_notebook_profile_rejects_bad_parameters_in_one_line(namespace, message):
    with pytest.raises(BadInput, match=message) as info:
        profile_from_notebook(namespace)
    assert "\n" not in str(info.value)


def test_notebook_profile_ignores_modules_functions_and_kernel_names():
    import json

    namespace = {"profile": "smoke", "json": json, "f": len, "In": [""], "Out": {}, "_": 1, "_i1": "x"}
    assert profile_from_notebook(namespace).profile == "smoke"


def test_training_configs_run_in_shuffled_paired_blocks_and_skip_missing_modes():
    """Every block holds each configuration of both frameworks once (twice in the A-vs-A
    blocks), in an order that changes from block to block but not from run to run."""
    profile = Profile(profile="t", modes=["eager", "graph"], repeats=6, aa_blocks=2, threads=1)
    configs = training_configs(profile)
    expected = [("eager", "tensorflow"), ("eager", "torch"), ("graph", "tensorflow")]
    orders = []
    for block in range(6):
        mine = [(c.mode, c.framework, c.replica) for c in configs if c.repeat == block]
        replicas = (0, 1) if block < 2 else (0,)
        assert sorted(mine) == sorted((m, f, r) for m, f in expected for r in replicas)
        orders.append(tuple(mine))
    assert [c.repeat for c in configs] == sorted(c.repeat for c in configs), "blocks run one after another"
    assert len(set(orders[2:])) > 1, "the order within a block is shuffled per block"
    assert configs == training_configs(profile), "and the same in every run"
    assert all(c.threads == 1 for c in configs)
    assert len({c.identity("v") for c in configs}) == len(configs)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("aa_blocks", 7, "aa_blocks .7. cannot exceed repeats"),
    ("confidence", 1.5, "confidence must be a number between 0 and 1"),
    ("confidence", True, "confidence must be a number between 0 and 1"),
])
def test_profile_rejects_bad_statistics_settings(field, value, message):
    with pytest.raises(BadInput, match=message):
        Profile(profile="t", repeats=6, **{field: value})


def test_notebook_parameters_cells_hold_only_what_a_reader_changes():
    """The profile, ``overrides`` and the run options: the profile's fields live in its YAML
    file, not in a copy per notebook (papermill's ``-f`` still injects them)."""
    import nbformat

    expected = {"profile", "overrides", *RUN_OPTIONS}
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        declared = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and not line.startswith("#")}
        assert declared == expected, f"{path.name}: missing {expected - declared}, extra {declared - expected}"


@pytest.mark.parametrize(("name", "least"), [("quick", 0.90), ("full", 0.95)])
def test_profiles_repeat_enough_to_reach_their_confidence(name, least):
    """Quick's intervals reach at least 90%, full's 95%: the repeats are derived, not hoped."""
    from fwstudy.results.stats import repeats_for

    profile = load_profile_file(PROJECT / "parameters" / f"{name}.yaml")
    assert profile.confidence >= least
    assert profile.repeats >= repeats_for(profile.confidence)
    assert profile.aa_blocks >= 1, "an A-vs-A noise floor needs A-vs-A pairs"
