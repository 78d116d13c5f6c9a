"""Framework-neutral definition of the LSTM workload.

One bias per gate, as Keras has: PyTorch's ``nn.LSTM`` carries two (``bias_ih`` and
``bias_hh``) that only ever appear as their sum, i.e. 4·hidden redundant parameters, and Adam
would move their sum twice as fast as Keras moves its single bias. The PyTorch twin therefore
keeps ``bias_hh`` as a constant zero buffer (see ``torch_model.SingleBiasLSTM``), so that both
twins have the same parameters, the same count and the same optimizer dynamics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.errors import BadInput
from fwstudy.measure import data
from fwstudy.workloads.spec import Layer, WorkloadSpec


def validate(params: Mapping[str, Any]) -> None:
    if params["vocab"] < params["classes"]:
        raise BadInput("lstm needs vocab >= classes (the token task buckets the vocabulary)")


def layers(params: Mapping[str, Any]) -> list[Layer]:
    """The gates' two GEMMs per time step; the embedding is a gather (no MACs), yet its table
    needs the gradient of its output, so the input GEMM does compute an input gradient."""
    length, gates = params["length"], 4 * params["hidden"]
    return [
        Layer("lstm_input", length * gates * params["embed"]),
        Layer("lstm_recurrent", length * gates * params["hidden"]),
        Layer("head", params["hidden"] * params["classes"]),
    ]


def param_count(params: Mapping[str, Any]) -> int:
    e, h, c = params["embed"], params["hidden"], params["classes"]
    return params["vocab"] * e + 4 * h * (e + h + 1) + h * c + c


def shape_text(params: Mapping[str, Any]) -> str:
    return (
        f"tokens (vocab {params['vocab']}, length {params['length']}) → embedding {params['embed']} "
        f"→ LSTM {params['hidden']} → last state → {params['classes']}"
    )


def synthetic_batch(params: Mapping[str, Any], batch_size: int, gen: np.random.Generator):
    """Token-task batches: as cheap as random tokens, and their labels mean something."""
    return data.token_batch(gen, batch_size, params["vocab"], params["length"], params["classes"])


def dataset(params: Mapping[str, Any]) -> data.Dataset:
    return data.token_task(params["vocab"], params["length"], params["classes"])


SPEC = WorkloadSpec(
    name="lstm",
    description="LSTM sequence classifier",
    defaults={"vocab": 1000, "length": 50, "embed": 64, "hidden": 128, "classes": 10},
    default_batch_size=64,
    package="fwstudy.workloads.lstm",
    shape_text=shape_text,
    layers=layers,
    param_count=param_count,
    synthetic_batch=synthetic_batch,
    num_classes=lambda params: params["classes"],
    validate=validate,
    dataset=dataset,
)
