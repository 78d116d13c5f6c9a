"""F9b: run a planted bug and record what its user sees. Framework-free; runs inside the child.

Each framework's ``debugging.py`` defines a small network with the bugs of
``catalog.BUGS`` planted in it (the line that causes each carries ``# SITE: <bug>``) and hands
this module a ``step(x, y) -> loss`` in the mode asked for. ``run_planted`` runs the steps and
keeps what a user would see:

* whether an exception reaches them, and at which step, or for a NaN, the first step whose
  loss is not finite;
* the exception's type and message, and whether the message names a line of the user's code,
  the site of the bug in particular (TensorFlow's graph errors quote the Python stack that
  created the failing op; an eager error is a plain message);
* the traceback as Python prints it, chained exceptions included (``raise ... from``): its
  length in frames, and the share of them in the user's code (the fwstudy package, standing
  in for the user's script), and whether one of them is the bug's site or only a later line;
* warnings emitted on the way (PyTorch's anomaly mode reports the forward stack as one);
* for ``print_hook``: how often the ``print`` ran per step, how often the ``breakpoint()`` hook
  ran, and how often the hook saw concrete values (a debugger can show numbers) or symbolic
  tensors (inside a trace: Keras also traces a subclassed model once symbolically on its
  first call);
* the time from the first step to the error.

The frameworks' traceback filtering stays on (TensorFlow and Keras drop their own frames by
default): the study records what a user gets by default.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
import time
import tokenize
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PRINT_MARK = "fwstudy-planted-print"
SITE = re.compile(r"#\s*SITE:\s*([\w ]+)$")
TEXT_LIMIT = 4000


def site_lines(path: str | Path) -> dict[str, int]:
    """``{bug: line}`` from the ``# SITE: bug [bug ...]`` comments of a file (comment tokens
    only: a docstring that mentions the convention is not a site)."""
    found: dict[str, int] = {}
    with open(path, "rb") as source:
        for token in tokenize.tokenize(source.readline):
            match = SITE.match(token.string) if token.type == tokenize.COMMENT else None
            if match:
                for bug in match.group(1).split():
                    found[bug] = token.start[0]
    return found


def is_user_file(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(PACKAGE_DIR)
    except (ValueError, OSError):
        return False
    return True


def named_lines(text: str, path: Path) -> set[int]:
    """Line numbers of ``path`` that a message quotes (``File ".../x.py", line 12`` or ``x.py:12``)."""
    name = re.escape(path.name)
    found = re.findall(name + r'",\s*line\s+(\d+)', text) + re.findall(name + r":(\d+)", text)
    return {int(n) for n in found}


def explain(exc: BaseException, user_file: Path, site: int | None) -> dict[str, Any]:
    """What the printed traceback of ``exc`` shows (the whole chain, as Python prints it)."""
    chain = []
    te: traceback.TracebackException | None = traceback.TracebackException.from_exception(exc)
    while te is not None:
        chain.append(te)
        te = te.__cause__ or (None if te.__suppress_context__ else te.__context__)
    frames = [frame for part in chain for frame in part.stack]
    user = [f for f in frames if is_user_file(f.filename)]
    last = chain[0].stack  # the exception the user catches: its own frames
    deepest = next((f for f in reversed(last) if is_user_file(f.filename)), None)
    printed = "".join(chain[0].format())
    message = str(exc)
    in_message = named_lines(message, user_file)
    at_site = [f for f in frames if Path(f.filename).resolve() == user_file.resolve() and f.lineno == site]
    return {
        "error_type": type(exc).__name__,
        "error_message": message[:TEXT_LIMIT],
        "message_names_user_line": bool(in_message),
        "message_names_site": site in in_message,
        "traceback_frames": len(frames),
        "traceback_user_frames": len(user),
        "traceback_user_share": len(user) / len(frames) if frames else float("nan"),
        "traceback_names_site": bool(at_site),
        "traceback_lines": len(printed.splitlines()),
        "chained_exceptions": len(chain),
        "deepest_user_line": deepest.lineno if deepest else None,
        "deepest_user_file": Path(deepest.filename).name if deepest else None,
        "traceback_text": printed[-TEXT_LIMIT:],
    }


def run_planted(
    bug: str,
    step: Callable[[Any, Any], Any],
    batch: tuple[Any, Any],
    steps: int,
    user_file: str | Path,
    concrete: Callable[[Any], bool],
) -> dict[str, Any]:
    """Run ``steps`` steps of a planted bug; never raises for the bug itself."""
    user_file = Path(user_file)
    site = site_lines(user_file).get(bug)
    current = {"step": 0}
    hook_calls: list[tuple[int, bool]] = []

    def hook(*args: Any, **kwargs: Any) -> None:
        """Stands in for pdb: what a debugger at ``breakpoint()`` would have in hand."""
        value = sys._getframe(1).f_locals.get("h")
        hook_calls.append((current["step"], bool(concrete(value))))

    previous_hook = sys.breakpointhook
    sys.breakpointhook = hook
    prints: list[int] = []
    losses: list[float] = []
    ends: list[float] = []
    caught: list[str] = []
    result: dict[str, Any] = {"bug": bug, "site_line": site, "site_file": user_file.name, "raised": False,
                              "raised_at_step": None}
    start = time.perf_counter()
    try:
        for number in range(1, steps + 1):
            current["step"] = number
            out = io.StringIO()
            with warnings.catch_warnings(record=True) as seen, contextlib.redirect_stdout(out):
                warnings.simplefilter("always")
                try:
                    loss = step(*batch)
                    error = None
                except Exception as exc:  # the planted bug: what the user sees is the result
                    error = exc
                caught.extend(str(w.message) for w in seen)
            prints.append(out.getvalue().count(PRINT_MARK))
            if error is not None:
                result.update(explain(error, user_file, site))
                result.update(raised=True, raised_at_step=number, time_to_error_s=time.perf_counter() - start)
                break
            losses.append(float(loss))
            ends.append(time.perf_counter() - start)
    finally:
        sys.breakpointhook = previous_hook
    first_nan = next((i for i, v in enumerate(losses, 1) if not math.isfinite(v)), None)
    warned_site = any(site in named_lines(text, user_file) for text in caught) if site else False
    per_step_hooks = [sum(1 for s, _ in hook_calls if s == n) for n in range(1, len(prints) + 1)]
    result.update(
        steps_run=len(prints),
        losses=losses,
        first_nonfinite_step=first_nan,
        time_to_nonfinite_s=ends[first_nan - 1] if first_nan else None,
        prints_per_step=prints,
        hooks_per_step=per_step_hooks,
        hook_concrete_calls=sum(1 for _, c in hook_calls if c),
        hook_symbolic_calls=sum(1 for _, c in hook_calls if not c),
        warnings=len(caught),
        warnings_name_site=warned_site,
        warning_text=(caught[0][:TEXT_LIMIT] if caught else None),
    )
    return result
