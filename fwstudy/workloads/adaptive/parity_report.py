"""The adaptive workload's part of ``fwstudy parity --modes`` (parent side, no framework).

It puts together, for F4's control-flow question:

* ``halting``: how many iterations each sample took, from the float64 NumPy reference
  (``spec.reference``) on the parity weights and batch, and whether both twins (and TF's graph
  and XLA modes) took exactly the same per-sample iterations; the *halting margin* says how far
  the closest decision was from the threshold, i.e. how robust that equality is;
* ``own_init``: the same distribution from each framework's own seeded initial weights, which
  is what a trial of that framework times (the distributions should look alike, not be equal);
* ``expressing``: what each framework needed to express the loop, from the code
  (``expressiveness``) and from running it: torch.compile's graph breaks and whether
  ``fullgraph=True`` captures it; per TF mode, whether tracing needed autograph, and which
  ways of writing the loop (``tf_variants``) each TF mode can run.

``passed`` holds when both twins halt every sample exactly where the reference does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.workloads.adaptive import expressiveness
from fwstudy.workloads.adaptive.spec import halting, reference


def _equal(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and np.array_equal(np.asarray(a).reshape(-1), np.asarray(b).reshape(-1))


def tf_autograph_needs(modes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per TF mode: did tracing the twin need autograph (``parity_tf`` traced it without)?"""
    needs: dict[str, Any] = {"eager": False}  # nothing is traced in eager
    for mode in ("graph", "compiled"):
        probe = modes.get(mode, {}).get("info", {}).get("without_autograph")
        needs[mode] = None if probe is None else probe["status"] != "ok"
    # fit traces the same call in Keras' own tf.function: the graph mode's answer holds for it.
    needs["fit"] = needs["graph"]
    return needs


def variant_table(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """``{variant: {mode: "ok" | "failed: <reason>"}}``, the build included."""
    table = {}
    for name, modes in variants.items():
        row = {}
        for mode, result in modes.items():
            if not isinstance(result, Mapping) or "status" not in result:
                continue
            row[mode] = "ok" if result["status"] == "ok" else f"failed: {result['error']}"
        table[name] = row
    return table


def report(
    params: Mapping[str, Any],
    inputs: Mapping[str, np.ndarray],
    torch_weights: Mapping[str, np.ndarray],
    probes: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    ref = reference(torch_weights, params, inputs["x"])
    k = params["max_steps"]
    pt, tf = probes["torch"], probes["tensorflow"]
    same = {
        "torch_eager": _equal(pt["arrays"].get("iterations"), ref["iterations"]),
        "tensorflow_eager": _equal(tf["arrays"].get("iterations"), ref["iterations"]),
        "tensorflow_graph": _equal(tf["arrays"].get("iterations_graph"), ref["iterations"]),
        "tensorflow_compiled": _equal(tf["arrays"].get("iterations_compiled"), ref["iterations"]),
    }
    compiled = pt["modes"].get("compiled", {})
    expressing = {
        "code": expressiveness.describe(),
        "torch": {
            "compiled": {
                "status": compiled.get("status"),
                **{key: compiled.get("info", {}).get(key) for key in ("graphs", "graph_breaks", "graph_break_reasons")},
            },
            "fullgraph": pt["info"].get("fullgraph"),
        },
        "tensorflow": {
            "needs_autograph": tf_autograph_needs(tf["modes"]),
            "variants": variant_table(tf["info"].get("variants", {})),
            "variants_detail": tf["info"].get("variants", {}),
        },
    }
    return {
        "halting": {**halting(ref["iterations"], k), "margin": ref["margin"]},
        "same_iterations_as_reference": same,
        "logits_vs_reference_max_abs_diff": {
            fw: float(np.max(np.abs(probes[fw]["arrays"]["logits"] - ref["logits"])))
            for fw in ("torch", "tensorflow")
            if "logits" in probes[fw]["arrays"]
        },
        "own_init": {
            fw: halting(probes[fw]["arrays"]["own_init_iterations"], k)
            for fw in ("torch", "tensorflow")
            if "own_init_iterations" in probes[fw]["arrays"]
        },
        "expressing": expressing,
        "passed": all(same.values()),
    }


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """The adaptive lines of ``fwstudy parity --modes`` without ``--json``."""
    stop = result["halting"]
    hist = " ".join(f"{k}:{n}" for k, n in stop["histogram"].items())
    same = result["same_iterations_as_reference"]
    torch_side, tf_side = result["expressing"]["torch"], result["expressing"]["tensorflow"]
    lines = [
        f"  halting (iterations:samples) {hist}; mean {stop['mean_iterations']:.2f}, loop ran "
        f"{stop['trip_count']} of {stop['max_steps']}, margin "
        + ("n/a" if stop["margin"] is None else f"{stop['margin']:.1e}"),
        "  same per-sample iterations as the float64 reference: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()),
        f"  torch.compile: {torch_side['compiled'].get('graphs')} graphs, "
        f"{torch_side['compiled'].get('graph_breaks')} graph break(s); fullgraph=True: "
        + ("ok" if (torch_side["fullgraph"] or {}).get("status") == "ok"
           else f"failed ({(torch_side['fullgraph'] or {}).get('error')})"),
        "  TF needs autograph: "
        + ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in tf_side["needs_autograph"].items()),
    ]  # fmt: skip
    for name, row in tf_side["variants"].items():
        cells = ", ".join(f"{mode} {'ok' if v == 'ok' else 'FAILS'}" for mode, v in row.items())
        lines.append(f"    TF loop as {name:20s} {cells}")
    return lines
