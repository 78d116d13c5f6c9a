"""Transformer weights: packed ``in_proj`` ↔ per-projection (d, heads, head_dim) kernels, Dense
transposes, and LayerNorm weight/bias ↔ gamma/beta."""

from __future__ import annotations

from fwstudy.workloads import transfer as t


def torch_shapes(params: t.Params) -> t.Shapes:
    d, ff, c = params["d_model"], params["ff"], params["classes"]
    shapes: t.Shapes = {"embed.weight": (params["vocab"], d), "positions": (params["length"], d)}
    for i in range(params["layers"]):
        p = f"encoder.{i}."
        shapes.update(
            {
                p + "self_attn.in_proj_weight": (3 * d, d),
                p + "self_attn.in_proj_bias": (3 * d,),
                p + "self_attn.out_proj.weight": (d, d),
                p + "self_attn.out_proj.bias": (d,),
                p + "linear1.weight": (ff, d),
                p + "linear1.bias": (ff,),
                p + "linear2.weight": (d, ff),
                p + "linear2.bias": (d,),
                p + "norm1.weight": (d,),
                p + "norm1.bias": (d,),
                p + "norm2.weight": (d,),
                p + "norm2.bias": (d,),
            }
        )
    shapes.update({"head.weight": (c, d), "head.bias": (c,)})
    return shapes


def keras_shapes(params: t.Params) -> t.Shapes:
    d, ff, c = params["d_model"], params["ff"], params["classes"]
    shapes: t.Shapes = {
        "embed/embeddings": (params["vocab"], d),
        "positions/positions": (params["length"], d),
    }
    for i in range(params["layers"]):
        for name, shape in t.mha_keras_shapes(d, params["heads"]).items():
            shapes[f"enc{i}_attn/{name}"] = shape
        shapes.update(
            {
                f"enc{i}_norm1/gamma": (d,),
                f"enc{i}_norm1/beta": (d,),
                f"enc{i}_ff1/kernel": (d, ff),
                f"enc{i}_ff1/bias": (ff,),
                f"enc{i}_ff2/kernel": (ff, d),
                f"enc{i}_ff2/bias": (d,),
                f"enc{i}_norm2/gamma": (d,),
                f"enc{i}_norm2/beta": (d,),
            }
        )
    shapes.update({"head/kernel": (d, c), "head/bias": (c,)})
    return shapes


def to_keras(state: t.Arrays, params: t.Params) -> dict:
    out = {
        "embed/embeddings": state["embed.weight"].copy(),
        "positions/positions": state["positions"].copy(),
    }
    for i in range(params["layers"]):
        p, k = f"encoder.{i}.", f"enc{i}_"
        attention = t.mha_to_keras(
            state[p + "self_attn.in_proj_weight"],
            state[p + "self_attn.in_proj_bias"],
            state[p + "self_attn.out_proj.weight"],
            state[p + "self_attn.out_proj.bias"],
            params["heads"],
        )
        out.update({f"{k}attn/{name}": value for name, value in attention.items()})
        for n in (1, 2):
            out[f"{k}norm{n}/gamma"] = state[f"{p}norm{n}.weight"].copy()
            out[f"{k}norm{n}/beta"] = state[f"{p}norm{n}.bias"].copy()
            out[f"{k}ff{n}/kernel"] = t.dense_to_keras(state[f"{p}linear{n}.weight"])
            out[f"{k}ff{n}/bias"] = state[f"{p}linear{n}.bias"].copy()
    out["head/kernel"] = t.dense_to_keras(state["head.weight"])
    out["head/bias"] = state["head.bias"].copy()
    return out


def to_torch(weights: t.Arrays, params: t.Params) -> dict:
    out = {"embed.weight": weights["embed/embeddings"].copy(), "positions": weights["positions/positions"].copy()}
    for i in range(params["layers"]):
        p, k = f"encoder.{i}.", f"enc{i}_"
        prefix = f"{k}attn/"
        attention = {n[len(prefix) :]: v for n, v in weights.items() if n.startswith(prefix)}
        in_w, in_b, out_w, out_b = t.mha_to_torch(attention)
        out[p + "self_attn.in_proj_weight"] = in_w
        out[p + "self_attn.in_proj_bias"] = in_b
        out[p + "self_attn.out_proj.weight"] = out_w
        out[p + "self_attn.out_proj.bias"] = out_b
        for n in (1, 2):
            out[f"{p}norm{n}.weight"] = weights[f"{k}norm{n}/gamma"].copy()
            out[f"{p}norm{n}.bias"] = weights[f"{k}norm{n}/beta"].copy()
            out[f"{p}linear{n}.weight"] = t.dense_to_torch(weights[f"{k}ff{n}/kernel"])
            out[f"{p}linear{n}.bias"] = weights[f"{k}ff{n}/bias"].copy()
    out["head.weight"] = t.dense_to_torch(weights["head/kernel"])
    out["head.bias"] = weights["head/bias"].copy()
    return out


WEIGHTS = t.WeightMap(
    torch_shapes=torch_shapes, keras_shapes=keras_shapes, to_keras=to_keras, to_torch=to_torch
)
