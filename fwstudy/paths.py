"""Where parameters, results and figures live, whichever folder a notebook runs from."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fwstudy.errors import BadInput

# A profile's name becomes a folder under results/, figures/ and build/: a plain name only,
# so that ``../x`` or ``/abs/path`` can never send outputs outside the repository.
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_profile_name(name: object) -> str:
    if not isinstance(name, str) or not PROFILE_NAME.fullmatch(name):
        raise BadInput(
            f"profile name {name!r} is not a plain name: use letters, digits, '-' and '_' "
            f"(it names the folders results/<profile>, figures/<profile> and build/<profile>)"
        )
    return name


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
    """``results/<profile>/``, or the folder explicitly given."""
    return Path(override) if override else project_root() / "results" / check_profile_name(profile)


def figures_dir(profile: str, override: str | os.PathLike | None = None) -> Path:
    """``figures/<profile>/``: running smoke never overwrites quick's figures."""
    return Path(override) if override else project_root() / "figures" / check_profile_name(profile)


def build_dir(profile: str) -> Path:
    """``build/<profile>/``: the executed notebooks (``notebooks/``) of that profile."""
    return project_root() / "build" / check_profile_name(profile)
