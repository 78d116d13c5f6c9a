"""Atomic file writes (readers see a whole file or none), strict JSON, and checked reading of
the JSON files written this way.

Kept apart from the store (which needs pandas) because every child writes its result with
these, and a trial child must not import pandas before it measures its import footprint."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf), at any depth, replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def strict_json(obj: Any, **dumps_kwargs: Any) -> str:
    """JSON that every parser accepts: NaN and ±inf (which ``json.dumps`` writes as the
    non-standard tokens ``NaN``/``Infinity``) become null, in nested dicts and lists too, and
    ``allow_nan=False`` guarantees none is left. What a ``default=`` hook returns is cleaned
    the same way (a NumPy scalar or array turned into floats may hold a NaN)."""
    default = dumps_kwargs.pop("default", None)
    if default is not None:
        dumps_kwargs["default"] = lambda value: _finite(default(value))
    return json.dumps(_finite(obj), allow_nan=False, **dumps_kwargs)


class Unreadable(ValueError):
    """A stored file that is empty, does not parse, or lacks what its reader needs. The
    message says why in a few words, for a one-line warning that also names the file."""


def read_json_object(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON object stored at ``path``, with the ``required`` keys, else ``Unreadable``.

    A file written atomically is whole or absent, but a disk that filled up, a copy
    interrupted by hand or an older writer can still leave an empty or truncated one; its
    reader must say which file and why instead of failing somewhere later with no name.
    ``FileNotFoundError`` (and other ``OSError``) propagate: a missing file is not a bad one."""
    data = path.read_bytes()
    if not data.strip():
        raise Unreadable("empty file")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable(f"not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise Unreadable(f"a JSON {type(obj).__name__}, not an object")
    missing = [key for key in required if key not in obj]
    if missing:
        raise Unreadable(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return obj


def discard_bad_cache(path: Path, reason: str, what: str) -> None:
    """Report a bad cache file in one line and remove it, so it is rebuilt: a cache holds
    only what can be measured again, and leaving it would report it again on every read."""
    try:
        path.unlink(missing_ok=True)
        done = "removed"
    except OSError as exc:
        done = f"not removable ({exc.strerror or exc})"
    print(f"fwstudy: {what} cache {path} is unusable ({reason}): {done}, measuring it again",
          file=sys.stderr, flush=True)


def read_cache(
    path: Path, what: str, required: Iterable[str] = (), check: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any] | None:
    """A cache entry, or None when there is none or it is unusable: ``read_json_object`` plus
    the reader's own ``check`` (which raises ``Unreadable`` saying why). An unusable entry is
    reported and removed (``discard_bad_cache``), so the caller measures it again."""
    try:
        obj = read_json_object(path, required)
        if check is not None:
            check(obj)
    except FileNotFoundError:
        return None
    except (Unreadable, OSError) as exc:
        discard_bad_cache(path, str(exc) if isinstance(exc, Unreadable) else exc.strerror or str(exc), what)
        return None
    return obj
