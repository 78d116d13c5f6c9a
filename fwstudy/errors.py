"""Errors that the command line turns into a one-line message and exit status 2, and the one
way a child process reports an exception it caught."""

from __future__ import annotations

import traceback
from pathlib import Path


class BadInput(ValueError):
    """Input a user can fix: unknown names, wrong types, non-positive sizes.

    Raised by validation anywhere in the library so that the CLI, the profile loader and the
    notebooks all report the same one-line message instead of a traceback.
    """


def choices(values) -> str:
    """Format the valid choices the same way in every message."""
    return ", ".join(str(v) for v in values)


def error_text(exc: BaseException) -> str:
    """The exception and where it came from, on one line: enough to act on in a results table.

    Every child (trial, parity, GEMM peak, overhead, data-parallel worker) reports a caught
    exception this way, so a failed record reads the same whichever child failed (rule 9)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()
    head = message[0] if message else ""
    return f"{type(exc).__name__}: {head}{where}"
