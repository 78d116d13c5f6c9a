"""The human-readable verdict of ``fwstudy parity`` (without ``--json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fwstudy.parity.compare import PRECISIONS, STEPS_TOLERANCE, TOLERANCES
from fwstudy.parity.modes import MODE_TOLERANCE, optional_module
from fwstudy.workloads import get_workload


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

    def cell(dtype: str, figure: str, key: str, check: str) -> str:
        value, limit = report["precisions"][dtype][figure], TOLERANCES[dtype][key]
        if limit is None:
            return f"{value:.2e} (reported)       "
        return f"{value:.2e} <= {limit:.0e} {mark(checks[f'{check}_{dtype}']):6s}"

    rows = (
        ("forward max abs diff", "forward_max_abs_diff", "forward_max_abs", "forward"),
        ("gradient norm rel", "gradient_norm_rel_max", "gradient_norm_rel", "gradients"),
        ("gradient per element", "gradient_max_rel_diff", "gradient_max_rel", "gradient_elements"),
    )
    lines = [head, f"  {'':24s}" + "".join(f"{dtype:27s}" for dtype in PRECISIONS)]
    for label, figure, key, check in rows:
        lines.append(f"  {label:24s}" + "".join(f"{cell(dtype, figure, key, check):27s}" for dtype in PRECISIONS))
    lines.append(
        "  worst gradient          "
        + "; ".join(
            f"{dtype} {report['precisions'][dtype]['gradient_norm_worst']} (norm), "
            f"{report['precisions'][dtype]['gradient_worst']} (element)"
            for dtype in PRECISIONS
        )
    )
    lines += [
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
    if report.get("break"):
        broken = report.get("broken_weight") or report.get("broken_layer")
        lines.append(f"  (broken on purpose: {report.get('break_description')}: {broken})")
    return "\n".join(lines)


def modes_text(report: Mapping[str, Any]) -> list[str]:
    """The ``--modes`` lines of the verdict: one per framework and mode, then the workload's."""
    verdict = report["modes_verdict"]
    lines = [
        f"  modes agree with eager  (<= {MODE_TOLERANCE:g}: forward, loss, loss after one step; "
        f"gradients norm-rel <= {TOLERANCES['float32']['gradient_norm_rel']:g})  {'ok' if verdict['passed'] else 'FAILED'}"
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
                grad = entry.get("gradient_norm_rel_max")
                if entry.get("info", {}).get("fell_back_to_eager"):
                    head += " (torch.compile fell back to eager: 0 graphs)"
                lines.append(
                    f"{head} forward {entry['forward_max_abs_diff']:.1e}  loss {entry['loss_abs_diff']:.1e}  "
                    f"after one step {entry['step_loss_abs_diff']:.1e}  gradients (norm-rel) "
                    f"{'n/a (not exposed)' if grad is None else f'{grad:.1e}'}  "
                    f"{'ok' if entry['agrees'] else 'DISAGREES'}"
                )
    hook = optional_module(f"{get_workload(report['workload']).package}.parity_report")
    if "workload_report" in report and hook is not None and hasattr(hook, "summary_lines"):
        lines.extend(hook.summary_lines(report["workload_report"]))
    return lines
