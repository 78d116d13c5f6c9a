"""The registry of paired workloads; importing it imports no framework."""

from __future__ import annotations

from fwstudy.errors import BadInput, choices
from fwstudy.workloads.mlp.spec import SPEC as MLP
from fwstudy.workloads.spec import WorkloadSpec

WORKLOADS: dict[str, WorkloadSpec] = {}


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


register(MLP)
