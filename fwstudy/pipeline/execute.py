"""``fwstudy batch`` (``make batch``, ``make figures``): papermill over notebooks × parameter files.

Resumable at two levels. Trials: every notebook measures through the results store, which
reuses what is measured, saves each trial the moment it ends and retries failed ones as
``RETRY_FAILED`` says (``harness.batch``). Notebooks: one whose inputs are unchanged since its
last successful run is not executed again (``pipeline.digest``). So a batch interrupted
anywhere and started again skips the notebooks it finished, re-executes the one it was in
(which finds its finished trials stored) and runs the rest: nothing measured is measured twice.

Each parameter file is validated before anything runs. Executed notebooks go to
``build/<profile>/notebooks/`` with their digests beside them. A failed notebook does not stop
the batch; the exit status is 1 when any failed (2: bad input, 130: interrupted).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fwstudy import paths
from fwstudy.config.profile import Profile, load_profile_file, resolve_profile_path
from fwstudy.errors import BadInput, choices
from fwstudy.pipeline import digest
from fwstudy.results.store import READS_VARIABLE

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent.parent / "notebooks"


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Job:
    """One notebook on one parameter file."""

    notebook: Path
    params: Path
    profile: Profile

    @property
    def name(self) -> str:
        return self.notebook.stem

    @property
    def output(self) -> Path:
        return paths.build_dir(self.profile.profile) / "notebooks" / self.notebook.name

    def profile_argument(self) -> str:
        """What the notebook's ``profile`` parameter gets: the profile's name when the file is
        ``parameters/<name>.yaml`` (the executed notebook then reads as a reader would run it),
        else the file's absolute path."""
        standard = paths.parameters_dir() / f"{self.profile.profile}.yaml"
        if standard.exists() and standard.resolve() == self.params.resolve():
            return self.profile.profile
        return str(self.params.resolve())


def notebook_paths(given: Sequence[str] | None = None) -> list[Path]:
    """The study's notebooks (``notebooks/*.ipynb`` in order), or those given (paths or names)."""
    known = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    if not given:
        return known
    by_name = {p.stem: p for p in known} | {p.name: p for p in known}
    chosen = []
    for text in given:
        path = Path(text)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
        elif text in by_name:
            chosen.append(by_name[text])
        else:
            raise BadInput(f"unknown notebook {text!r}; valid notebooks: {choices(p.stem for p in known)}")
    return list(dict.fromkeys(chosen))


def load_parameter_files(files: Sequence[str]) -> list[tuple[Path, Profile]]:
    """Every parameter file, validated (a profile name stands for ``parameters/<name>.yaml``);
    two files of one profile would write the same folders: bad input too."""
    if not files:
        raise BadInput("give at least one parameter file, e.g. parameters/quick.yaml")
    loaded: list[tuple[Path, Profile]] = []
    for text in files:
        path = resolve_profile_path(text)
        loaded.append((path, load_profile_file(path)))
    names = [profile.profile for _, profile in loaded]
    for name in names:
        if names.count(name) > 1:
            clash = [str(p) for p, prof in loaded if prof.profile == name]
            raise BadInput(f"{' and '.join(clash)} both name profile {name!r} (its folders would be shared); "
                           "give each parameter file its own profile name")
    return loaded


def retry_failed() -> bool:
    """``RETRY_FAILED`` as ``harness.batch.retry_failed`` reads it (not imported: that module
    loads pandas and the harness, and a no-op batch must stay fast)."""
    return os.environ.get("RETRY_FAILED", "").strip().lower() in ("1", "true", "yes")


def run(
    parameter_files: Sequence[str],
    notebooks: Sequence[str] | None = None,
    *,
    force: bool = False,
    scheduler: str | None = None,
    progress: Callable[[str], None] = _print,
) -> int:
    """Execute every notebook × parameter file whose inputs changed (all with ``force``)."""
    loaded = load_parameter_files(parameter_files)
    chosen = notebook_paths(notebooks)
    if scheduler:
        from fwstudy.cluster.client import SCHEDULER_VARIABLE, check_address

        os.environ[SCHEDULER_VARIABLE] = check_address(scheduler)
    # One id per batch: with FORCE, a trial shared by several notebooks is measured once.
    os.environ.setdefault("FWSTUDY_RUN_ID", str(time.time_ns()))
    retry = retry_failed()
    jobs = [Job(notebook, path, profile) for path, profile in loaded for notebook in chosen]
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        reason = "forced" if force else digest.changed(job.output, job.notebook, job.profile, retry_failed=retry)
        if reason is None:
            progress(f"{job.profile.profile}/{job.name}: inputs unchanged, not executed again")
        else:
            todo.append((job, reason))
    if not todo:
        progress(f"nothing to run: all {len(jobs)} notebooks are up to date"
                 f" ({', '.join(sorted({str(j.output.parent) for j in jobs}))})")
        return 0
    import logging

    from tqdm.auto import tqdm

    # papermill logs each cell's output (the trials' progress lines) at INFO, as its CLI shows.
    logger = logging.getLogger("papermill")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    failed: list[str] = []
    started = time.monotonic()
    with tqdm(total=len(todo), desc="batch", unit="notebook", position=0, file=sys.stderr) as bar:
        for job, reason in todo:
            bar.set_postfix_str(f"{job.profile.profile}/{job.name}", refresh=True)
            tqdm.write(f"==> {job.notebook.name} (profile {job.profile.profile}; {reason}) -> {job.output}",
                       file=sys.stdout)
            error = execute(job, force=force)
            if error:
                failed.append(f"{job.profile.profile}/{job.name}")
                tqdm.write(f"{job.profile.profile}/{job.name} failed: {error}", file=sys.stdout)
            bar.update(1)
    took = time.monotonic() - started
    profiles = sorted({job.profile.profile for job, _ in todo})
    progress(f"executed {len(todo) - len(failed)} of {len(todo)} notebooks in {took:.0f} s"
             f" ({len(jobs) - len(todo)} unchanged); outputs in "
             + ", ".join(f"build/{p}/notebooks/ and figures/{p}/" for p in profiles))
    if failed:
        progress(f"failed notebooks: {' '.join(failed)} (see the papermill errors above; "
                 "their trials that ended are stored, and the next batch runs them again)")
        return 1
    return 0


def execute(job: Job, *, force: bool = False) -> str | None:
    """Run one notebook with papermill; None on success (its digest written), else why not.
    An interrupt (Ctrl-C, SIGTERM) propagates: the kernel and its trial child are stopped,
    and the notebook keeps no digest, so the next batch runs it again."""
    import papermill

    job.output.parent.mkdir(parents=True, exist_ok=True)
    digest.forget(job.output)
    log = job.output.with_name(f".{job.output.stem}.reads")
    log.unlink(missing_ok=True)
    parameters: dict[str, object] = {"profile": job.profile_argument()}
    if force:
        parameters["force"] = True
    saved = {name: os.environ.get(name) for name in (READS_VARIABLE, "PATH")}
    os.environ[READS_VARIABLE] = str(log)
    # The kernel is the interpreter of this environment (papermill finds it on PATH).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    started = time.monotonic()
    try:
        papermill.execute_notebook(
            str(job.notebook), str(job.output), parameters=parameters, log_output=True,
            progress_bar={"desc": f"{job.profile.profile}/{job.name}", "position": 1, "leave": False},
            request_save_on_cell_execute=True,
        )
    except Exception as exc:  # a failed cell, a dead kernel: this notebook failed, the batch goes on
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[-1] if text else ''}"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    digest.write(job.output, job.notebook, job.profile, digest.read_log(log), time.monotonic() - started)
    log.unlink(missing_ok=True)
    return None
