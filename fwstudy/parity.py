"""The parity gate (fairness rule 6): proof that a workload's two twins compute the same thing.

Parent side only: this module never imports a framework. It writes the inputs, runs one child
per framework (``fwstudy.parity_child``, each importing only its own framework, rule 1), moves
the weights from one to the other through ``.npz`` files with the workload's NumPy weight map,
and compares what came back:

* the forward output (logits) from the same weights and inputs: max abs difference ≤ 1e-4;
* the gradient of the loss with respect to every weight, brought to PyTorch's layout by the same
  weight map: max abs difference ≤ 1e-4 of that gradient's scale (see ``gradient_scale``);
* the parameter count of each side, which must be equal;
* with ``steps``, the losses of that many Adam steps from the same weights and batches:
  ≤ 1e-3 relative at every step;
* with ``modes``, that every execution mode of each framework agrees with that framework's
  eager mode (``fwstudy.parity_modes``), and whatever the workload's own ``parity_report``
  hook adds (the adaptive workload: its halting and what each framework needed to express it).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.config import (
    FRAMEWORKS,
    TrialConfig,
    check_choice,
    check_positive_int,
    default_threads,
)
from fwstudy.errors import BadInput
from fwstudy.isolation import run_child
from fwstudy.parity_modes import MODE_TOLERANCE, compare_modes, modes_verdict, optional_module
from fwstudy.runner import child_environment
from fwstudy.workloads import get_workload
from fwstudy.workloads.spec import WorkloadSpec

FORWARD_TOLERANCE = 1e-4
GRADIENT_TOLERANCE = 1e-4
STEPS_TOLERANCE = 1e-3
# A gradient that is zero in exact arithmetic has no scale of its own, only round-off: the
# attention key bias is one (softmax ignores a constant added to every score of a query). Its
# scale is floored at this fraction of the model's largest gradient.
GRADIENT_SCALE_FLOOR = 1e-3

DATA_CHOICES = ("synthetic", "dataset")
BREAK_CHOICES = ("activation", "bias")
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ParityRequest:
    """One run of the gate. ``data=None`` means the workload's real-data task when ``steps`` are
    asked for (digits for mlp and cnn, the token task for the sequence models) and seeded
    synthetic tensors of the default shape otherwise.

    ``modes`` adds the mode-agreement check (``fwstudy.parity_modes``) in both children.

    ``break_side`` breaks one twin on purpose, to show that the gate can fail: ``activation``
    swaps the first non-linear activation of the Keras model, ``bias`` zeroes the last bias in
    the weights handed to the receiving side (a transfer that lost a bias), in NumPy.
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


def break_bias(weights: dict[str, np.ndarray], framework: str) -> str:
    """Zero the last bias (the classifier's: it always reaches the logits); returns its name."""
    suffix = "/bias" if framework == "tensorflow" else ".bias"
    name = [n for n in weights if n.endswith(suffix)][-1]
    weights[name] = np.zeros_like(weights[name])
    return name


def gradient_scale(grads: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each gradient's own max abs value, floored at ``GRADIENT_SCALE_FLOOR`` of the largest."""
    own = {n: float(np.max(np.abs(g))) if g.size else 0.0 for n, g in grads.items()}
    floor = GRADIENT_SCALE_FLOOR * max(own.values(), default=0.0)
    return {n: max(v, floor, np.finfo(np.float32).tiny) for n, v in own.items()}


def compare(
    spec: WorkloadSpec,
    params: Mapping[str, Any],
    torch_out: Mapping[str, np.ndarray],
    tf_out: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """The gate's numbers, with gradients compared in PyTorch's names and layouts."""
    weight_map = spec.weight_map()
    logits_pt = np.asarray(torch_out["logits"], dtype=np.float64)
    logits_tf = np.asarray(tf_out["logits"], dtype=np.float64)
    if logits_pt.shape != logits_tf.shape:
        raise ValueError(f"logits shapes differ: torch {logits_pt.shape}, tensorflow {logits_tf.shape}")
    grads_pt = _prefixed(torch_out, "grad:")
    grads_tf = weight_map.to_torch(_prefixed(tf_out, "grad:"), params)
    buffers = weight_map.torch_buffers(params)
    grads_tf = {n: g for n, g in grads_tf.items() if n not in buffers}
    if set(grads_pt) != set(grads_tf):
        raise ValueError(
            f"gradient names differ: only torch {sorted(set(grads_pt) - set(grads_tf))}, "
            f"only tensorflow {sorted(set(grads_tf) - set(grads_pt))}"
        )
    scales = gradient_scale(grads_pt)
    per_weight = {}
    for name, g_pt in grads_pt.items():
        diff = float(np.max(np.abs(g_pt.astype(np.float64) - grads_tf[name]))) if g_pt.size else 0.0
        per_weight[name] = {"max_abs_diff": diff, "scale": scales[name], "rel_diff": diff / scales[name]}
    result: dict[str, Any] = {
        "forward_max_abs_diff": float(np.max(np.abs(logits_pt - logits_tf))),
        "logits_scale": float(np.max(np.abs(logits_pt))),
        "loss_torch": float(torch_out["loss"]),
        "loss_tensorflow": float(tf_out["loss"]),
        "gradient_max_abs_diff": max(v["max_abs_diff"] for v in per_weight.values()),
        "gradient_max_rel_diff": max(v["rel_diff"] for v in per_weight.values()),
        "gradient_worst": max(per_weight, key=lambda n: per_weight[n]["rel_diff"]),
        "gradients": per_weight,
    }
    losses_pt = np.asarray(torch_out["losses"], dtype=np.float64)
    losses_tf = np.asarray(tf_out["losses"], dtype=np.float64)
    if losses_pt.size:
        rel = np.abs(losses_pt - losses_tf) / np.maximum(np.abs(losses_pt), np.finfo(np.float64).tiny)
        result.update(
            losses_torch=losses_pt.tolist(),
            losses_tensorflow=losses_tf.tolist(),
            steps_rel_diff=rel.tolist(),
            steps_max_rel_diff=float(rel.max()),
        )
    return result


def _prefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {n[len(prefix) :]: np.asarray(a) for n, a in arrays.items() if n.startswith(prefix)}


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
        "framework": framework,
        "workload": request.workload,
        "params": dict(params),
        "seed": request.seed,
        "threads": request.threads,
        "inputs": str(workdir / "inputs.npz"),
        "weights": str(weights) if weights else None,
        "out": str(workdir / f"out_{framework}.npz"),
        "summary": str(workdir / f"summary_{framework}.json"),
        "break": request.break_side if framework == "tensorflow" and request.break_side == "activation" else None,
        "modes": request.modes,
    }
    job_path = workdir / f"job_{framework}.json"
    job_path.write_text(json.dumps(job))
    config = TrialConfig(
        workload=request.workload,
        framework=framework,
        mode="eager",
        threads=request.threads,
        workload_params=dict(params),
    )
    outcome = run_child(
        [python, "-m", "fwstudy.parity_child", str(job_path)],
        timeout_s=request.timeout_s,
        env=child_environment(config),
    )
    summary_path = Path(job["summary"])
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if outcome.timed_out or summary is None:
        reason = outcome.describe() + (f" after {request.timeout_s:g} s" if outcome.timed_out else "")
        raise ChildFailed(f"{framework} child {reason}; last output:\n{outcome.output_tail}")
    if summary["status"] != "ok":
        raise ChildFailed(f"{framework} child failed: {summary['error']}")
    with np.load(job["out"]) as npz:
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
                "arrays": _prefixed(sides[fw].arrays, "probe:"),
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
            "forward_max_abs": FORWARD_TOLERANCE,
            "gradient_max_rel": GRADIENT_TOLERANCE,
            "gradient_scale_floor": GRADIENT_SCALE_FLOOR,
            "steps_max_rel": STEPS_TOLERANCE,
            **({"modes_max_abs_and_rel": MODE_TOLERANCE} if request.modes else {}),
        },
    }
    weight_map = spec.weight_map()
    inputs = make_inputs(spec, params, data, batch_size, request.steps, request.seed)
    try:
        with tempfile.TemporaryDirectory(prefix="fwstudy-parity-") as tmp:
            workdir = Path(tmp)
            np.savez(workdir / "inputs.npz", **inputs)
            first = _run_side(request.source, request, params, workdir, None, python)
            weights = _prefixed(first.arrays, "weight:")
            if request.source == "torch":
                moved = weight_map.to_keras(weights, params)
            else:
                moved = weight_map.to_torch(weights, params)
            if request.break_side == "bias":
                report["broken_weight"] = break_bias(moved, receiver)
            np.savez(workdir / "weights_in.npz", **moved)
            second = _run_side(receiver, request, params, workdir, workdir / "weights_in.npz", python)
            sides = {first.framework: first, second.framework: second}
            report["params_torch"] = sides["torch"].summary["params"]
            report["params_tensorflow"] = sides["tensorflow"].summary["params"]
            report["frameworks_loaded"] = {fw: sides[fw].summary["frameworks_loaded"] for fw in FRAMEWORKS}
            report["child_wall_s"] = {fw: sides[fw].wall_s for fw in FRAMEWORKS}
            if "broken_layer" in sides["tensorflow"].summary:
                report["broken_layer"] = sides["tensorflow"].summary["broken_layer"]
            report.update(compare(spec, params, sides["torch"].arrays, sides["tensorflow"].arrays))
            if request.modes:
                torch_weights = weights if request.source == "torch" else moved
                report.update(mode_reports(spec, params, inputs, torch_weights, sides))
    except (ChildFailed, ValueError, KeyError) as exc:
        report.update(passed=False, error=f"{type(exc).__name__}: {exc}", wall_s=time.monotonic() - start)
        return report
    checks = {
        "forward": report["forward_max_abs_diff"] <= FORWARD_TOLERANCE,
        "gradients": report["gradient_max_rel_diff"] <= GRADIENT_TOLERANCE,
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


def summary_text(report: Mapping[str, Any]) -> str:
    """The human-readable verdict of ``fwstudy parity`` without ``--json``."""
    verdict = "PASS" if report["passed"] else "FAIL"
    head = (
        f"parity {report['workload']} ({report['source']} → {report['receiver']}, {report['data']} data, "
        f"batch {report['batch_size']}): {verdict}"
    )
    if report.get("error"):
        return f"{head}\n{report['error']}"
    checks = report["checks"]

    def mark(ok: bool) -> str:
        return "ok" if ok else "FAILED"

    lines = [
        head,
        f"  forward max abs diff    {report['forward_max_abs_diff']:.2e}  (<= {FORWARD_TOLERANCE:g})  "
        f"{mark(checks['forward'])}",
        f"  gradient max rel diff   {report['gradient_max_rel_diff']:.2e}  (<= {GRADIENT_TOLERANCE:g}; "
        f"max abs {report['gradient_max_abs_diff']:.2e}, worst {report['gradient_worst']})  "
        f"{mark(checks['gradients'])}",
        f"  parameters              torch {report['params_torch']:,}  tensorflow "
        f"{report['params_tensorflow']:,}  analytic {report['params_analytic']:,}  {mark(checks['params'])}",
        f"  one framework per child {mark(checks['isolation'])}",
    ]
    if "steps" in checks:
        lines.append(
            f"  {report['steps']} Adam steps           max rel loss diff {report['steps_max_rel_diff']:.2e}  "
            f"(<= {STEPS_TOLERANCE:g}; last loss torch {report['losses_torch'][-1]:.6f}, "
            f"tensorflow {report['losses_tensorflow'][-1]:.6f})  {mark(checks['steps'])}"
        )
    if "modes" in checks:
        lines.extend(modes_text(report))
    if report.get("broken_weight"):
        lines.append(f"  (broken on purpose: {report['broken_weight']} zeroed)")
    elif report.get("broken_layer"):
        lines.append(f"  (broken on purpose: activation of {report['broken_layer']} swapped)")
    return "\n".join(lines)


def modes_text(report: Mapping[str, Any]) -> list[str]:
    """The ``--modes`` lines of the verdict: one per framework and mode, then the workload's."""
    verdict = report["modes_verdict"]
    lines = [
        f"  modes agree with eager  (<= {MODE_TOLERANCE:g}: forward, loss, loss after one step, "
        f"gradients rel)  {'ok' if verdict['passed'] else 'FAILED'}"
    ]
    for framework, modes in report["modes"].items():
        for mode, entry in modes.items():
            head = f"    {framework:10s} {mode:8s}"
            if entry["status"] != "ok":
                lines.append(f"{head} could not run: {entry['error']}")
            elif entry.get("reference"):
                lines.append(f"{head} (reference)  loss {entry['loss']:.6f}  after one step {entry['step_loss']:.6f}")
            elif "forward_max_abs_diff" not in entry:
                lines.append(f"{head} FAILED: {entry['error']}")
            else:
                grad = entry["gradient_max_rel_diff"]
                if entry.get("info", {}).get("fell_back_to_eager"):
                    head += " (torch.compile fell back to eager: 0 graphs)"
                lines.append(
                    f"{head} forward {entry['forward_max_abs_diff']:.1e}  loss {entry['loss_abs_diff']:.1e}  "
                    f"after one step {entry['step_loss_abs_diff']:.1e}  gradients "
                    f"{'n/a (not exposed)' if grad is None else f'{grad:.1e}'}  "
                    f"{'ok' if entry['agrees'] else 'DISAGREES'}"
                )
    hook = optional_module(f"{get_workload(report['workload']).package}.parity_report")
    if "workload_report" in report and hook is not None and hasattr(hook, "summary_lines"):
        lines.extend(hook.summary_lines(report["workload_report"]))
    return lines
