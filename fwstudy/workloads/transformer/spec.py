"""Framework-neutral definition of the transformer workload.

Each twin uses its framework's own attention, as a user of that framework would:
``nn.TransformerEncoderLayer`` (post-norm, ReLU, dropout 0, batch first; it calls
``nn.MultiheadAttention`` and scaled-dot-product attention) on one side, an encoder layer built
from ``keras.layers.MultiHeadAttention``, ``LayerNormalization`` and ``Dense`` on the other.
Both compute ``x = LN1(x + Attn(x)); x = LN2(x + W2 relu(W1 x))`` with scores scaled by
1/sqrt(head_dim) and LayerNorm's epsilon set to the same ``LAYER_NORM_EPSILON`` (Keras' default
is 1e-3, PyTorch's 1e-5). Learned positions are one (length, d_model) weight on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fwstudy.errors import BadInput
from fwstudy.workloads.spec import Layer, WorkloadSpec

LAYER_NORM_EPSILON = 1e-5


def validate(params: Mapping[str, Any]) -> None:
    if params["d_model"] % params["heads"]:
        raise BadInput(
            f"transformer needs heads to divide d_model, got d_model={params['d_model']}, "
            f"heads={params['heads']}"
        )
    if params["vocab"] < params["classes"]:
        raise BadInput("transformer needs vocab >= classes (the token task buckets the vocabulary)")


def layers(params: Mapping[str, Any]) -> list[Layer]:
    """Per encoder layer: Q, K, V and output projections, the two activation × activation
    products of attention (both operands get gradients), and the feed-forward pair."""
    length, d, ff = params["length"], params["d_model"], params["ff"]
    out: list[Layer] = []
    for i in range(params["layers"]):
        out += [
            Layer(f"enc{i}_qkv", length * 3 * d * d),
            Layer(f"enc{i}_scores", length * length * d, input_grad=True, weight_grad=True),
            Layer(f"enc{i}_context", length * length * d, input_grad=True, weight_grad=True),
            Layer(f"enc{i}_out", length * d * d),
            Layer(f"enc{i}_ff1", length * d * ff),
            Layer(f"enc{i}_ff2", length * ff * d),
        ]
    out.append(Layer("head", d * params["classes"]))
    return out


def param_count(params: Mapping[str, Any]) -> int:
    d, ff, c = params["d_model"], params["ff"], params["classes"]
    attention = 4 * d * d + 4 * d
    feed_forward = d * ff + ff + ff * d + d
    norms = 2 * 2 * d
    return (
        params["vocab"] * d
        + params["length"] * d
        + params["layers"] * (attention + feed_forward + norms)
        + d * c
        + c
    )


def shape_text(params: Mapping[str, Any]) -> str:
    return (
        f"tokens (vocab {params['vocab']}, length {params['length']}) → embedding "
        f"{params['d_model']} + learned positions → {params['layers']} encoder layers "
        f"({params['heads']} heads, ff {params['ff']}, post-norm) → mean pool → {params['classes']}"
    )


# The same seeded token task as the LSTM: both sequence models learn one labelled rule.
from fwstudy.workloads.lstm.spec import dataset, synthetic_batch  # noqa: E402

SPEC = WorkloadSpec(
    name="transformer",
    description="transformer encoder classifier",
    defaults={
        "vocab": 1000,
        "length": 64,
        "d_model": 128,
        "heads": 4,
        "ff": 512,
        "layers": 2,
        "classes": 10,
    },
    default_batch_size=32,
    package="fwstudy.workloads.transformer",
    shape_text=shape_text,
    layers=layers,
    param_count=param_count,
    synthetic_batch=synthetic_batch,
    num_classes=lambda params: params["classes"],
    validate=validate,
    dataset=dataset,
)
