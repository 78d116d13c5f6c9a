"""Skip-unchanged: a notebook is executed again only when one of its inputs changed.

A notebook's inputs are (1) the notebook itself, (2) the code (every ``.py`` file of the
fwstudy package but the report's and this package's: figures and statistics change what is
drawn even when no trial changes), (3) the profile, fully resolved, (4) the environment: its
fingerprint (a new torch means new trial ids, so other results) and every installed package's
version (a new pandas or matplotlib may draw otherwise), and (5) the results it read. The
first four are hashed. The fifth cannot be known before the notebook runs, so it is recorded while it runs:
the kernel inherits ``FWSTUDY_READS`` (``results.store.READS_VARIABLE``), and every result
file the store reads is listed there; after a successful run each listed file's size and
modification time are kept. A file since rewritten (re-measured, retried, quarantined,
deleted) changes them.

The digest lives beside the executed notebook, ``build/<profile>/notebooks/<name>.inputs.json``,
and is written only after the notebook succeeded: a failed or interrupted notebook has none
and is executed again. Checking costs a hash of the sources and one ``stat`` per file read,
so a no-op ``make figures`` takes seconds (issue 16).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fwstudy.config.profile import Profile
from fwstudy.results.atomic import atomic_write_text

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the fwstudy package
DIGEST_SUFFIX = ".inputs.json"
VERSION = 1  # bump when what the digest covers changes: every notebook runs again once
# Profile fields that say how to run, not what a notebook computes: ``force`` is decided
# before the digest is consulted, and where trials run (``scheduler``) changes no result
# unless new records come back, which the results part of the digest sees.
HOW_TO_RUN = ("force", "scheduler")


def sidecar_of(output: Path) -> Path:
    """Where the digest of the executed notebook ``output`` lives."""
    return output.with_name(output.stem + DIGEST_SUFFIX)


# Packages no notebook imports: the report reads executed notebooks, the pipeline runs them.
NOT_NOTEBOOK_CODE = ("report", "pipeline")


@functools.cache
def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """Hash of the Python files a notebook may run (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).parts
        if "__pycache__" in parts or parts[0] in NOT_NOTEBOOK_CODE:
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def packages_hash() -> str:
    """Hash of every installed distribution's name and version."""
    import importlib.metadata as md

    names = sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions())
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def static_inputs(notebook: Path, profile: Profile) -> dict[str, str]:
    """Inputs (1)-(4) of the module docstring, each as a short hash or value."""
    from fwstudy.harness.environment import fingerprint_digest

    fields = {k: v for k, v in dataclasses.asdict(profile).items() if k not in HOW_TO_RUN}
    blob = json.dumps(fields, sort_keys=True, default=str)
    return {
        "version": str(VERSION),
        "notebook": hashlib.sha256(notebook.read_bytes()).hexdigest()[:16],
        "code": source_hash(),
        "profile": hashlib.sha256(blob.encode()).hexdigest()[:16],
        "environment": fingerprint_digest(),
        "packages": packages_hash(),
    }


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def read_log(log: Path) -> list[str]:
    """The result files a kernel listed in ``FWSTUDY_READS`` (each once, in order)."""
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return []
    return list(dict.fromkeys(line for line in lines if line))


def not_ok(paths: list[str]) -> int:
    """How many of the JSON records read are of trials that failed or timed out (a notebook
    that read one runs again under ``RETRY_FAILED``)."""
    records = []
    for text in paths:
        path = Path(text)
        if path.suffix == ".parquet" and path.parent.name == "trials":  # its record beside it
            path = path.parent.parent / "records" / f"{path.stem}.json"
        if path.suffix == ".json":
            records.append(path)
    count = 0
    for path in dict.fromkeys(records):
        try:
            status = json.loads(path.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            continue
        count += status not in (None, "ok")
    return count


def write(output: Path, notebook: Path, profile: Profile, reads: list[str], seconds: float) -> Path:
    """Record the inputs of a notebook that just ran successfully."""
    data: dict[str, Any] = {
        "inputs": static_inputs(notebook, profile),
        "reads": {path: _stat(path) for path in reads},
        "not_ok": not_ok(reads),
        "seconds": round(seconds, 1),
    }
    path = sidecar_of(output)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    return path


def forget(output: Path) -> None:
    """Drop a digest (before a run: an interrupted or failed run leaves none)."""
    sidecar_of(output).unlink(missing_ok=True)


def changed(output: Path, notebook: Path, profile: Profile, *, retry_failed: bool = False) -> str | None:
    """Why ``notebook`` must run again ("never run", "code changed", ...), or None when every
    input is as it was when ``output`` was last written successfully."""
    if not output.exists():
        return "never run"
    try:
        data = json.loads(sidecar_of(output).read_text())
        stored, reads = data["inputs"], data["reads"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no record of its inputs"
    now = static_inputs(notebook, profile)
    for key in ("version", "notebook", "code", "profile", "environment", "packages"):
        if stored.get(key) != now[key]:
            return f"{key} changed" if key != "version" else "digest format changed"
    for path, stat in reads.items():
        if _stat(path) != stat:
            return f"results changed ({Path(path).name})"
    if retry_failed and data.get("not_ok"):
        return f"RETRY_FAILED: it read {data['not_ok']} failed trial(s)"
    return None
