"""The registry of paired workloads; importing it imports no framework."""

from __future__ import annotations

from fwstudy.errors import BadInput, choices
from fwstudy.workloads.adaptive.spec import SPEC as ADAPTIVE
from fwstudy.workloads.cnn.spec import SPEC as CNN
from fwstudy.workloads.lstm.spec import SPEC as LSTM
from fwstudy.workloads.mlp.spec import SPEC as MLP
from fwstudy.workloads.spec import WorkloadSpec
from fwstudy.workloads.transformer.spec import SPEC as TRANSFORMER

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
register(CNN)
register(LSTM)
register(TRANSFORMER)
register(ADAPTIVE)
