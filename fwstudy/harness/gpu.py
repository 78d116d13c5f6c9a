"""The GPUs this host shows, read from ``nvidia-smi`` so that the parent never imports a
framework: how many a multi-worker run may use, and the name, driver and CUDA version every
GPU record carries.

Why not ask torch: the parent (CLI, batch, notebooks) must stay framework-free, and a
data-parallel launch that asks for more GPUs than are visible must fail before any child
starts, as one line (``CUDA error: invalid device ordinal`` from a worker is what it gave
before). ``CUDA_VISIBLE_DEVICES`` narrows what the children see, so it narrows the count too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from typing import Any

from fwstudy.errors import BadInput

QUERY = "index,name,driver_version,memory.total,uuid"


@lru_cache(maxsize=1)
def _nvidia_smi_rows() -> tuple[dict[str, str], ...]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    keys = QUERY.split(",")
    rows = (line.split(",") for line in out.splitlines() if line.strip())
    return tuple(dict(zip(keys, (v.strip() for v in row), strict=True)) for row in rows if len(row) == len(keys))


def _cuda_version() -> str | None:
    """The driver's CUDA version, from nvidia-smi's banner (the query interface lacks it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for part in out.split("|"):
        if "CUDA Version:" in part:
            return part.split("CUDA Version:")[1].split()[0]
    return None


def visible_gpus(environ: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The GPUs a child will see: nvidia-smi's list narrowed by ``CUDA_VISIBLE_DEVICES``
    (indices or GPU-UUIDs, comma-separated; empty hides them all)."""
    rows = list(_nvidia_smi_rows())
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return rows
    chosen = []
    for item in (v.strip() for v in visible.split(",")):
        if not item:
            continue
        match = [r for r in rows if item in (r["index"], r["uuid"]) or r["uuid"].startswith(item)]
        if not match:
            break  # CUDA stops at the first invalid entry
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def check_gpu_count(needed: int, what: str) -> None:
    """One GPU per local worker, or a one-line bad-input error naming what is visible."""
    gpus = visible_gpus()
    if needed > len(gpus):
        names = ", ".join(f"{g['index']}: {g['name']}" for g in gpus) or "none"
        raise BadInput(
            f"{what} needs {needed} GPUs on this host (one per worker), but {len(gpus)} "
            f"{'is' if len(gpus) == 1 else 'are'} visible ({names}); lower --workers or set CUDA_VISIBLE_DEVICES"
        )


def gpu_environment() -> dict[str, Any]:
    """Name, driver, memory and CUDA version of the visible GPUs, for a GPU record."""
    gpus = visible_gpus()
    return {
        "gpus": [{"name": g["name"], "memory_mib": g["memory.total"]} for g in gpus],
        "gpu_driver": gpus[0]["driver_version"] if gpus else None,
        "gpu_driver_cuda": _cuda_version() if gpus else None,
    }
