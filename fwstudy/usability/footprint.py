"""F12: each framework's footprint, measured from the installed environment. Framework-free.

* Install size: the sizes in each distribution's ``RECORD`` (``importlib.metadata``), i.e. the
  wheel's files as installed (bytecode compiled after installation is not in RECORD). A
  framework's exclusive dependencies are those ``pip uninstall`` of it would leave orphaned:
  its transitive requirements that nothing else installed needs, where "else" excludes the
  packages that themselves require the framework (Lightning goes with torch). Shared ones
  (NumPy) are counted in the transitive total, not in the exclusive size.
* Transitive dependencies: the closure of ``Requires-Dist`` (markers evaluated for this
  interpreter, extras not taken) over the installed distributions.
* The variant measured is named: this environment's torch is the CPU wheel (local version
  ``+cpu``) and TensorFlow is ``tensorflow-cpu``. PyPI's default ``torch`` on Linux x86_64 is
  the CUDA build, which pulls NVIDIA's runtime wheels; ``tensorflow[and-cuda]`` lists its own in
  its metadata (``cuda_requirements``). Their sizes are not in the local metadata and are not
  reported as if measured.
* Import time and RSS after import: ``python -X importtime -c "import <framework>"`` in a fresh
  process, first with the bytecode cache as installed (warm), then with no bytecode cache at
  all (cold: ``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX``, so every module
  is compiled from source). The OS page cache is not dropped (that needs root and disturbs
  other users of the machine): instead, the share of the framework's largest shared library
  resident in the page cache is measured (``mincore``) right before each run and recorded.
  ``-X importtime`` prints the self and cumulative time of every module; the top costs are
  summed per top-level package.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata as md
import mmap
import os
import re
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# The distribution of each framework, first installed wins; and the high-level API beside it.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tensorflow-gpu"),
    "torch": ("torch",),
}
HIGH_LEVEL: dict[str, str] = {"tensorflow": "keras", "torch": "lightning"}
# What a fresh process imports, in order: the framework, then its high-level API.
IMPORTS: dict[str, tuple[str, ...]] = {"tensorflow": ("tensorflow", "keras"), "torch": ("torch", "lightning")}


@functools.cache
def installed() -> dict[str, md.Distribution]:
    found: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


def distribution_of(framework: str) -> str | None:
    return next((canonicalize_name(n) for n in DISTRIBUTIONS[framework] if canonicalize_name(n) in installed()), None)


def requirements(name: str, extra: str = "") -> list[str]:
    """The installed distributions ``name`` requires, its markers evaluated here (no extras)."""
    dist = installed().get(canonicalize_name(name))
    if dist is None:
        return []
    env = {**default_environment(), "extra": extra}
    out = []
    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        out.append(canonicalize_name(req.name))
    return out


@functools.cache
def closure(name: str) -> frozenset[str]:
    """Every installed distribution ``name`` needs, transitively (itself excluded)."""
    seen: set[str] = set()
    todo = [canonicalize_name(name)]
    while todo:
        for dep in requirements(todo.pop()):
            if dep not in seen and dep in installed():
                seen.add(dep)
                todo.append(dep)
    seen.discard(canonicalize_name(name))
    return frozenset(seen)


def exclusive(name: str) -> set[str]:
    """The dependencies that uninstalling ``name`` would orphan (see the module docstring)."""
    name = canonicalize_name(name)
    mine = closure(name)
    others = [d for d in installed() if d != name and d not in mine and name not in closure(d)]
    needed = set().union(*(closure(d) | {d} for d in others)) if others else set()
    return set(mine - needed)


def record_bytes(name: str) -> int:
    """Sum of the sizes RECORD lists for a distribution (files without a size count 0)."""
    dist = installed()[canonicalize_name(name)]
    return sum(int(f.size) for f in dist.files or [] if f.size)


def cuda_requirements(name: str) -> list[str]:
    """The GPU extra's requirements a distribution's metadata lists (``tensorflow[and-cuda]``)."""
    dist = installed().get(canonicalize_name(name))
    found = []
    for text in (dist.requires or []) if dist else []:
        match = re.search(r'extra\s*==\s*"([^"]*cuda[^"]*)"', text)
        if match:
            found.append(Requirement(text).name)
    return sorted(set(found))


def install_row(framework: str) -> dict[str, Any]:
    name = distribution_of(framework)
    if name is None:
        return {"framework": framework, "distribution": None, "error": f"{framework} is not installed"}
    dist = installed()[name]
    mine, only = closure(name), exclusive(name)
    high = canonicalize_name(HIGH_LEVEL[framework])
    return {
        "framework": framework,
        "distribution": name,
        "version": dist.version,
        "variant": variant(name, dist.version),
        "own_mb": record_bytes(name) / 2**20,
        "exclusive_deps": len(only),
        "exclusive_deps_mb": sum(record_bytes(d) for d in only) / 2**20,
        "exclusive_dep_names": " ".join(sorted(only)),
        "transitive_deps": len(mine),
        "transitive_deps_mb": sum(record_bytes(d) for d in mine) / 2**20,
        "transitive_dep_names": " ".join(sorted(mine)),
        "high_level": high,
        "high_level_installed": high in installed(),
        "high_level_in_closure": high in mine,
        "high_level_mb": record_bytes(high) / 2**20 if high in installed() else None,
        "high_level_extra_deps": len(closure(high) - mine - {name}) if high in installed() else None,
        "cuda_requirements": " ".join(cuda_requirements(name)),
        "error": None,
    }


def variant(name: str, version: str) -> str:
    if name == "torch":
        local = version.partition("+")[2]
        if local == "cpu":
            return "CPU wheel (+cpu); PyPI's default Linux torch is the CUDA build, far larger (NVIDIA wheels), not measured here"
        return f"local build tag {local!r}" if local else "PyPI build (CUDA on Linux x86_64)"
    if name == "tensorflow-cpu":
        return "tensorflow-cpu; tensorflow[and-cuda] adds the NVIDIA wheels its metadata lists, not measured here"
    return name


def install_table(frameworks: list[str]) -> list[dict[str, Any]]:
    return [install_row(f) for f in frameworks]


# --- page cache --------------------------------------------------------------------------------


def largest_library(framework: str) -> Path | None:
    """The biggest shared object a framework's distribution installs (what an import maps)."""
    name = distribution_of(framework)
    if name is None:
        return None
    files = [f for f in installed()[name].files or [] if ".so" in f.name and f.size]
    if not files:
        return None
    return Path(installed()[name].locate_file(max(files, key=lambda f: int(f.size))))


def resident_fraction(path: Path | None) -> float | None:
    """Share of a file's pages in the OS page cache now (``mincore`` on a read-only mapping;
    mapping and asking fault nothing in). None where it cannot be asked."""
    if path is None or not path.exists():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        size = path.stat().st_size
        page = mmap.PAGESIZE
        pages = (size + page - 1) // page
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                vec = ctypes.create_string_buffer(pages)
                if libc.mincore(addr, size, vec) != 0:
                    return None
                return sum(b & 1 for b in vec.raw) / pages
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        return None


# --- import runs -------------------------------------------------------------------------------

# Run as ``python -X importtime -c IMPORT_CODE OUT.json ERR.txt NAME...``: stderr (where
# -X importtime writes) goes to ERR.txt from here on; each NAME is imported and timed in turn.
# A high-level API that fails to import (Lightning missing) is recorded with its error.
IMPORT_CODE = """
import os, sys, time
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(fd, 2)
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
marks = {"rss_before_mb": rss(), "steps": []}
for index, name in enumerate(sys.argv[3:]):
    begin = time.perf_counter()
    try:
        __import__(name)
    except Exception as exc:  # the high-level API may be missing: say so, keep the framework's numbers
        if index == 0:
            raise
        marks["steps"].append({"module": name, "error": f"{type(exc).__name__}: {exc}"})
        continue
    marks["steps"].append({"module": name, "import_s": time.perf_counter() - begin, "rss_mb": rss()})
import json
with open(sys.argv[1], "w") as out:
    json.dump(marks, out)
"""

IMPORTTIME_LINE = re.compile(r"^import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)\s*$")


def parse_importtime(text: str) -> list[dict[str, Any]]:
    """The lines of ``-X importtime``: module, self and cumulative seconds, nesting depth."""
    rows = []
    for line in text.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            rows.append({"module": match.group(4), "self_s": int(match.group(1)) / 1e6,
                         "cumulative_s": int(match.group(2)) / 1e6, "depth": (len(match.group(3)) - 1) // 2})
    return rows


def top_costs(rows: list[dict[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    """Self time summed per top-level package, largest first (where an import's time goes)."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        top = row["module"].split(".")[0]
        totals[top] = totals.get(top, 0.0) + row["self_s"]
        counts[top] = counts.get(top, 0) + 1
    ranked = sorted(totals, key=totals.get, reverse=True)[:n]
    return [{"package": p, "self_s": totals[p], "modules": counts[p]} for p in ranked]
