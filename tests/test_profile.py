"""Profiles: strict parameter files, and the notebook overlay of papermill's values."""

import pytest

from fwstudy.errors import BadInput
from fwstudy.profile import Profile, load_profile_file, profile_from_notebook
from fwstudy.study import training_speed_configs
from tests.conftest import PROJECT


@pytest.mark.parametrize("name", ["smoke", "quick", "full"])
def test_shipped_profiles_are_valid_and_named_after_their_file(name):
    profile = load_profile_file(PROJECT / "parameters" / f"{name}.yaml")
    assert profile.profile == name


def test_notebook_overlay_keeps_none_from_the_file_and_applies_the_rest():
    namespace = {"profile": "smoke", "steps": 7, "modes": None, "force": None}
    profile = profile_from_notebook(namespace)
    smoke = load_profile_file(PROJECT / "parameters" / "smoke.yaml")
    assert profile.steps == 7
    assert profile.modes == smoke.modes
    assert profile.force is False


def test_notebook_overlay_validates():
    with pytest.raises(BadInput, match="steps must be >= 1"):
        profile_from_notebook({"profile": "smoke", "steps": -1})


def test_training_speed_configs_interleave_frameworks_and_skip_missing_modes():
    profile = Profile(profile="t", modes=["eager", "graph"], repeats=2, threads=1)
    configs = training_speed_configs(profile)
    labels = [(c.repeat, c.mode, c.framework) for c in configs]
    assert labels == [
        (0, "eager", "tensorflow"), (0, "eager", "torch"), (0, "graph", "tensorflow"),
        (1, "eager", "tensorflow"), (1, "eager", "torch"), (1, "graph", "tensorflow"),
    ]
    assert all(c.threads == 1 for c in configs)


def test_every_notebook_declares_every_profile_parameter():
    """papermill injects the whole parameter file: a key a notebook doesn't declare would be
    an 'unknown parameter' there, and the notebook could not be run by hand with it."""
    import dataclasses

    import nbformat

    names = {f.name for f in dataclasses.fields(Profile)}
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        declared = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and not line.startswith("#")}
        assert declared == names, f"{path.name}: missing {names - declared}, extra {declared - names}"
