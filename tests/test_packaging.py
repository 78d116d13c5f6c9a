"""environment.yml gives conda users exactly the pins of pyproject.toml."""

import re
import tomllib

import yaml

from tests.conftest import PROJECT


def test_environment_yml_mirrors_pyproject_pins():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["cpu"])
    pins |= set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {p for p in pip_section if re.match(r"^[A-Za-z0-9_.\-\[\]]+==", p)}
    assert conda_pins == pins
    assert all("==" in pin for pin in pins), "every dependency is pinned exactly"
