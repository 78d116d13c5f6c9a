"""Where parameters, results and figures live, whichever folder a notebook runs from."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """$FWSTUDY_ROOT, else the checkout holding this package, else the working directory.

    JupyterLab runs a notebook from ``notebooks/`` and papermill from wherever ``make`` runs,
    so paths are anchored on the project, never on the current folder.
    """
    if os.environ.get("FWSTUDY_ROOT"):
        return Path(os.environ["FWSTUDY_ROOT"]).resolve()
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


def parameters_dir() -> Path:
    return project_root() / "parameters"


def results_dir(profile: str, override: str | os.PathLike | None = None) -> Path:
    return Path(override) if override else project_root() / "results" / profile


def figures_dir(profile: str, override: str | os.PathLike | None = None) -> Path:
    """``figures/<profile>/``: running smoke never overwrites quick's figures."""
    return Path(override) if override else project_root() / "figures" / profile


def build_dir(profile: str) -> Path:
    """``build/<profile>/``: the executed notebooks (``notebooks/``) of that profile."""
    return project_root() / "build" / profile
