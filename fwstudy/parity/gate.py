"""The parity gate (fairness rule 6): proof that a workload's two twins compute the same thing.

Parent side only: this module never imports a framework. It writes the inputs, runs one child
per framework (``fwstudy.parity.child``, each importing only its own framework, rule 1), moves
the weights from one to the other through ``.npz`` files with the workload's NumPy weight map,
and compares what came back. Each child computes the batch twice from the same weights, in
float32 and in float64 (``compare.PRECISIONS``); the tolerances and the numbers behind them are
in ``fwstudy.parity.compare``:

* float32: the forward output (logits) max abs difference ≤ 1e-4 (the methodology's rule), and every
  weight's gradient, brought to PyTorch's layout by the same weight map, within 5e-2 of its
  norm (‖g_tf − g_pt‖₂ / ‖g_pt‖₂); the per-element maximum is reported, not checked (one ReLU
  input within round-off of zero may land on either side of the kink);
* float64: forward ≤ 1e-9, gradients ≤ 1e-9 norm-relative and ≤ 1e-8 per element: round-off is
  2^29 times smaller, so a kink flip is practically impossible and any difference in the math
  (or a layer that silently computes in float32) stands out by orders of magnitude;
* the parameter count of each side, which must be equal;
* with ``steps``, the losses of that many float32 Adam steps from the same weights and batches:
  ≤ 1e-3 relative at every step;
* with ``modes``, that every execution mode of each framework agrees with that framework's
  eager mode in float32 (``fwstudy.parity.modes``), and whatever the workload's own
  ``parity_report`` hook adds (the adaptive workload: its halting and what each framework
  needed to express it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.config.trial import (
    FRAMEWORKS,
    TrialConfig,
    check_choice,
    check_positive_int,
    default_threads,
)
from fwstudy.errors import BadInput
from fwstudy.harness.lifeline import owned_tempdir
from fwstudy.harness.process import child_environment, run_job
from fwstudy.parity.breaks import BREAK_CHOICES, BREAKS, MODEL_BREAKS, break_weights, check_applies
from fwstudy.parity.compare import (
    GRADIENT_NORM_FLOOR,
    GRADIENT_SCALE_FLOOR,
    PRECISIONS,
    STEPS_TOLERANCE,
    TOLERANCES,
    compare,
    compare_steps,
    precision_checks,
    precision_outputs,
    prefixed,
)
from fwstudy.parity.modes import MODE_TOLERANCE, compare_modes, modes_verdict, optional_module
from fwstudy.workloads import get_workload
from fwstudy.workloads.spec import WorkloadSpec

DATA_CHOICES = ("synthetic", "dataset")
DEFAULT_TIMEOUT_S = 600.0
LEGACY_KEYS = ("forward_max_abs_diff", "gradient_max_rel_diff", "gradient_max_abs_diff", "gradient_worst")


@dataclass(frozen=True)
class ParityRequest:
    """One run of the gate. ``data=None`` means the workload's real-data task when ``steps`` are
    asked for (digits for mlp and cnn, the token task for the sequence models) and seeded
    synthetic tensors of the default shape otherwise.

    ``modes`` adds the mode-agreement check (``fwstudy.parity.modes``) in both children.

    ``break_side`` breaks one twin on purpose, to show that the gate can fail (``breaks.BREAKS``):
    ``activation`` and ``pooling`` change the Keras model, ``bias``, ``transpose`` and ``gates``
    the weights handed to the receiving side, in NumPy.
    """

    workload: str
    params: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    steps: int = 0
    data: str | None = None
    source: str = "torch"
    seed: int = 0
    threads: int = field(default_factory=default_threads)
    timeout_s: float = DEFAULT_TIMEOUT_S
    break_side: str | None = None
    modes: bool = False

    def resolve(self) -> tuple[WorkloadSpec, dict[str, Any], str, int]:
        """Validate everything before a child starts; bad input is a one-line error."""
        spec = get_workload(self.workload)
        check_positive_int("steps", self.steps, allow_zero=True)
        check_positive_int("seed", self.seed, allow_zero=True)
        check_positive_int("threads", self.threads)
        check_choice("framework", self.source, FRAMEWORKS)
        if self.break_side is not None:
            check_choice("break", self.break_side, BREAK_CHOICES)
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise BadInput(f"timeout must be a number > 0, got {self.timeout_s!r}")
        data = self.data if self.data is not None else ("dataset" if self.steps else "synthetic")
        check_choice("data source", data, DATA_CHOICES)
        batch_size = spec.default_batch_size if self.batch_size is None else self.batch_size
        check_positive_int("batch_size", batch_size)
        if data == "dataset":
            params = spec.dataset_params_for(dict(self.params))
            # A shape the data doesn't fit, or a batch larger than it, is bad input found now.
            train = len(spec.dataset(params).y_train)
            if batch_size > train:
                raise BadInput(f"batch_size {batch_size} exceeds the {train} training samples")
        else:
            params = spec.resolve_params(dict(self.params))
        if self.break_side is not None:
            check_applies(self.break_side, spec, params, "tensorflow" if self.source == "torch" else "torch")
        return spec, params, data, batch_size


def make_inputs(
    spec: WorkloadSpec, params: Mapping[str, Any], data: str, batch_size: int, steps: int, seed: int
) -> dict[str, np.ndarray]:
    """The forward/gradient batch ``x, y`` and, for the Adam steps, ``xs, ys``: one per step."""
    count = max(steps, 1)
    if data == "dataset":
        dataset = spec.dataset(params)
        batches = list(dataset.batches(batch_size, count, seed))
    else:
        gen = np.random.default_rng(seed)
        batches = [spec.synthetic_batch(params, batch_size, gen) for _ in range(count)]
    inputs = {"x": batches[0][0], "y": batches[0][1]}
    if steps:
        inputs["xs"] = np.stack([b[0] for b in batches[:steps]])
        inputs["ys"] = np.stack([b[1] for b in batches[:steps]])
    return inputs


@dataclass
class _Child:
    framework: str
    summary: dict[str, Any]
    arrays: dict[str, np.ndarray]
    wall_s: float


class ChildFailed(RuntimeError):
    """A parity child that crashed, timed out or refused its input: the gate fails, with why."""


def _run_side(
    framework: str,
    request: ParityRequest,
    params: Mapping[str, Any],
    workdir: Path,
    weights: Path | None,
    python: str,
) -> _Child:
    job = {
        "kind": "parity",
        "framework": framework,
        "workload": request.workload,
        "params": dict(params),
        "seed": request.seed,
        "threads": request.threads,
        "inputs": str(workdir / "inputs.npz"),
        "weights": str(weights) if weights else None,
        "arrays": str(workdir / f"out_{framework}.npz"),
        "break": request.break_side if framework == "tensorflow" and request.break_side in MODEL_BREAKS else None,
        "dtypes": list(PRECISIONS),
        "modes": request.modes,
    }
    config = TrialConfig(
        workload=request.workload,
        framework=framework,
        mode="eager",
        threads=request.threads,
        workload_params=dict(params),
    )
    side_dir = workdir / framework
    side_dir.mkdir()
    outcome, summary = run_job(
        job, timeout_s=request.timeout_s, env=child_environment(config), workdir=side_dir, python=python
    )
    if summary is None:
        raise ChildFailed(outcome.error(phase=f"{framework} child", timeout_s=request.timeout_s))
    if summary["status"] != "ok":
        raise ChildFailed(f"{framework} child failed: {summary['error']}")
    with np.load(job["arrays"]) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return _Child(framework, summary, arrays, outcome.wall_s)


def mode_reports(
    spec: WorkloadSpec,
    params: Mapping[str, Any],
    inputs: Mapping[str, np.ndarray],
    torch_weights: Mapping[str, np.ndarray],
    sides: Mapping[str, _Child],
) -> dict[str, Any]:
    """Each framework's modes against its eager mode, and the workload's own report (if any)."""
    per_framework = {fw: compare_modes(sides[fw].arrays, sides[fw].summary["modes"]) for fw in FRAMEWORKS}
    out: dict[str, Any] = {"modes": per_framework, "modes_verdict": modes_verdict(per_framework)}
    hook = optional_module(f"{spec.package}.parity_report")
    if hook is not None:
        probes = {
            fw: {
                "arrays": prefixed(sides[fw].arrays, "probe:"),
                "info": sides[fw].summary.get("probe", {}),
                "modes": per_framework[fw],
            }
            for fw in FRAMEWORKS
        }
        out["workload_report"] = hook.report(params, inputs, torch_weights, probes)
    return out


def run_parity(request: ParityRequest, *, python: str = sys.executable) -> dict[str, Any]:
    """Run the gate; always returns a report (``passed`` False with ``error`` when a child fails)."""
    spec, params, data, batch_size = request.resolve()
    start = time.monotonic()
    receiver = "tensorflow" if request.source == "torch" else "torch"
    report: dict[str, Any] = {
        "workload": request.workload,
        "params": params,
        "data": data,
        "batch_size": batch_size,
        "steps": request.steps,
        "seed": request.seed,
        "threads": request.threads,
        "source": request.source,
        "receiver": receiver,
        "break": request.break_side,
        "params_analytic": spec.param_count(params),
        "tolerances": {
            **{dtype: dict(TOLERANCES[dtype]) for dtype in PRECISIONS},
            "gradient_norm_floor": GRADIENT_NORM_FLOOR,
            "gradient_scale_floor": GRADIENT_SCALE_FLOOR,
            "steps_max_rel": STEPS_TOLERANCE,
            **({"modes_max_abs_and_rel": MODE_TOLERANCE} if request.modes else {}),
        },
    }
    weight_map = spec.weight_map()
    inputs = make_inputs(spec, params, data, batch_size, request.steps, request.seed)
    try:
        with owned_tempdir("parity") as tmp:
            workdir = Path(tmp)
            np.savez(workdir / "inputs.npz", **inputs)
            first = _run_side(request.source, request, params, workdir, None, python)
            weights = prefixed(first.arrays, "weight:")
            if request.source == "torch":
                moved = weight_map.to_keras(weights, params)
            else:
                moved = weight_map.to_torch(weights, params)
            if request.break_side is not None and request.break_side not in MODEL_BREAKS:
                report["broken_weight"] = break_weights(request.break_side, moved, receiver, request.seed)
            np.savez(workdir / "weights_in.npz", **moved)
            second = _run_side(receiver, request, params, workdir, workdir / "weights_in.npz", python)
            sides = {first.framework: first, second.framework: second}
            report["params_torch"] = sides["torch"].summary["params"]
            report["params_tensorflow"] = sides["tensorflow"].summary["params"]
            report["frameworks_loaded"] = {fw: sides[fw].summary["frameworks_loaded"] for fw in FRAMEWORKS}
            report["child_wall_s"] = {fw: sides[fw].wall_s for fw in FRAMEWORKS}
            if "broken_layer" in sides["tensorflow"].summary:
                report["broken_layer"] = sides["tensorflow"].summary["broken_layer"]
            if request.break_side is not None:
                report["break_description"] = BREAKS[request.break_side]
            report["precisions"] = {
                dtype: compare(
                    spec,
                    params,
                    precision_outputs(sides["torch"].arrays, dtype),
                    precision_outputs(sides["tensorflow"].arrays, dtype),
                )
                for dtype in PRECISIONS
            }
            # float32 figures also under the names the gate had before float64 (older readers).
            report.update(
                {key: report["precisions"]["float32"][key] for key in LEGACY_KEYS}
            )
            report.update(compare_steps(sides["torch"].arrays, sides["tensorflow"].arrays))
            if request.modes:
                torch_weights = weights if request.source == "torch" else moved
                report.update(mode_reports(spec, params, inputs, torch_weights, sides))
    except (ChildFailed, ValueError, KeyError) as exc:
        report.update(passed=False, error=f"{type(exc).__name__}: {exc}", wall_s=time.monotonic() - start)
        return report
    checks = {
        **{
            name: ok
            for dtype in PRECISIONS
            for name, ok in precision_checks(report["precisions"][dtype], dtype).items()
        },
        "params": report["params_torch"] == report["params_tensorflow"] == report["params_analytic"],
        "isolation": all(
            loaded == {name: name == fw for name in FRAMEWORKS}
            for fw, loaded in report["frameworks_loaded"].items()
        ),
    }
    if request.steps:
        checks["steps"] = report["steps_max_rel_diff"] <= STEPS_TOLERANCE
    if request.modes:
        checks["modes"] = report["modes_verdict"]["passed"]
        if "passed" in report.get("workload_report", {}):
            checks["workload"] = report["workload_report"]["passed"]
    report.update(checks=checks, passed=all(checks.values()), error=None, wall_s=time.monotonic() - start)
    return report
