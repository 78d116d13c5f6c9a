"""The parity verdict that gates timings (rule 6): computed once per code version, carried by
every record and every figure.

A timing of a workload is only a comparison if the two twins compute the same function in
every mode that is timed. ``workload_verdict`` runs the full gate (``--modes``: both precisions,
every execution mode against eager) at the workload's default shape, once for each version of
the code that runs inside a trial and of the gate itself, and keeps the report in the cache
folder, where every profile and every test session finds it. The verdict is about the
workload's code, so it covers trials of other shapes (the F3 width sweep) too: the gate's own
tests check other shapes of every workload.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fwstudy.config.trial import default_threads
from fwstudy.harness.environment import code_version
from fwstudy.harness.peak import cache_dir
from fwstudy.results.atomic import (
    Unreadable,
    atomic_write_text,
    read_cache,
    strict_json,
)

PARITY_DIR = Path(__file__).resolve().parent


def gate_version() -> str:
    """The trial code's version and the gate's own: either changing means a new verdict."""
    digest = hashlib.sha256(code_version().encode())
    for path in sorted(PARITY_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def verdict_path(workload: str) -> Path:
    return cache_dir() / "parity" / f"{workload}-{gate_version()}.json"


def summary(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a record carries: the verdict, the failed checks, and where the report is."""
    checks = report.get("checks") or {}
    return {
        "workload": report["workload"],
        "passed": bool(report.get("passed")),
        "failed_checks": sorted(name for name, ok in checks.items() if not ok),
        "error": report.get("error"),
        "gate_version": path.stem.rsplit("-", 1)[-1],
        "report": str(path),
    }


def read_cached_report(path: Path, workload: str) -> dict[str, Any] | None:
    """The cached gate report at ``path``; None when there is none or it is unusable (empty,
    truncated, another workload's, no boolean ``passed``), which is reported in one line
    naming the file and removed so that the gate runs again."""
    def check(report: dict[str, Any]) -> None:
        if report["workload"] != workload:
            raise Unreadable(f"the report of workload {report['workload']!r}, not {workload!r}")
        if not isinstance(report["passed"], bool):
            raise Unreadable(f"passed is {report['passed']!r}, not true or false")
        if not isinstance(report.get("checks") or {}, dict):
            raise Unreadable("checks is not an object")

    return read_cache(path, "parity-verdict", ("workload", "passed"), check)


def workload_verdict(
    workload: str, *, threads: int | None = None, timeout_s: float = 900.0, progress=print
) -> dict[str, Any]:
    """The cached verdict of ``workload`` for this code, measured (about a minute) when missing."""
    from fwstudy.parity.gate import ParityRequest, run_parity

    path = verdict_path(workload)
    cached = read_cached_report(path, workload)
    if cached is not None:
        return summary(cached, path)
    progress(f"parity gate of {workload} (once per code version) ...")
    request = ParityRequest(workload=workload, modes=True, threads=threads or default_threads(), timeout_s=timeout_s)
    report = run_parity(request)
    atomic_write_text(path, strict_json(report, default=str, indent=1))
    result = summary(report, path)
    progress(f"parity gate of {workload}: {'passed' if result['passed'] else 'FAILED ' + str(result['failed_checks'] or result['error'])}")
    return result
