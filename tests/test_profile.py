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


def test_training_speed_configs_interleave_frameworks_and_skip_missing_modes():
    profile = Profile(profile="t", modes=["eager", "graph"], repeats=2, threads=1)
    configs = training_configs(profile)
    labels = [(c.repeat, c.mode, c.framework) for c in configs]
    assert labels == [
        (0, "eager", "tensorflow"), (0, "eager", "torch"), (0, "graph", "tensorflow"),
        (1, "eager", "tensorflow"), (1, "eager", "torch"), (1, "graph", "tensorflow"),
    ]
    assert all(c.threads == 1 for c in configs)


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
