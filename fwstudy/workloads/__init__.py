"""The registry of paired workloads; importing it imports no framework.

A workload is one folder: every subpackage ``fwstudy/workloads/<name>/`` is registered from its
``spec.py`` (``SPEC``, a ``WorkloadSpec`` named ``<name>``), in the order of the names. Nothing
here lists the workloads by hand, so adding a folder adds the workload to the command line, the
profiles, the notebooks and the tests (docs/adding-a-workload.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fwstudy.errors import BadInput, choices
from fwstudy.workloads.spec import WorkloadSpec

WORKLOADS: dict[str, WorkloadSpec] = {}


class WorkloadFolderError(ImportError):
    """A folder under ``fwstudy/workloads/`` that is not a complete workload."""


def register(spec: WorkloadSpec) -> WorkloadSpec:
    if spec.name in WORKLOADS:
        raise ValueError(f"workload {spec.name!r} registered twice")
    WORKLOADS[spec.name] = spec
    return spec


def get_workload(name: str) -> WorkloadSpec:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise BadInput(
            f"unknown workload {name!r}; valid workloads: {choices(sorted(WORKLOADS))}"
        ) from None


def _folder_spec(name: str) -> WorkloadSpec:
    """``SPEC`` of ``fwstudy/workloads/<name>/spec.py``, checked against its folder."""
    package = f"{__name__}.{name}"
    where = f"fwstudy/workloads/{name}/"
    try:
        module = importlib.import_module(f"{package}.spec")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.spec":
            raise
        raise WorkloadFolderError(
            f"workload folder {where} has no spec.py: every workload package needs a spec.py "
            f"that defines SPEC = WorkloadSpec(...) (see docs/adding-a-workload.md)"
        ) from None
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, WorkloadSpec):
        raise WorkloadFolderError(
            f"{where}spec.py defines no SPEC of type WorkloadSpec (found {type(spec).__name__})"
        )
    if spec.name != name or spec.package != package:
        raise WorkloadFolderError(
            f"{where}spec.py: SPEC must have name={name!r} and package={package!r} "
            f"(the folder's), got name={spec.name!r} and package={spec.package!r}"
        )
    return spec


def _discover() -> list[WorkloadSpec]:
    """Every workload folder's spec, sorted by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg)
    for path in __path__:
        for folder in sorted(Path(path).iterdir()):
            has_code = folder.is_dir() and any(folder.glob("*.py"))
            if has_code and folder.name not in names and not folder.name.startswith(("_", ".")):
                raise WorkloadFolderError(
                    f"workload folder fwstudy/workloads/{folder.name}/ has no __init__.py"
                )
    return [_folder_spec(name) for name in names]


for _spec in _discover():
    register(_spec)
