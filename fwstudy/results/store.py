"""The results store: one raw JSON record and one tidy Parquet file per trial, under
``results/<profile>/``.

One file per trial, each written atomically the moment its trial ends, means an interrupted
batch loses nothing already measured and a rerun finds exactly what is done.

The store heals itself: a trial counts as measured only when both its files parse and pass
their checks (the Parquet file has ``SCHEMA``, the record its ``REQUIRED_RECORD_KEYS``). A bad
file (empty, truncated, wrong columns) is moved aside into ``quarantine/`` with a one-line
warning, never deleted, and its trial is measured again; reading the table never fails on one.
Every Parquet file is written with the one explicit ``SCHEMA``, so a column that is null in one
trial (``error`` of a trial that succeeded) is typed as in every other and the folder loads in
one line: ``pd.read_parquet("results/<profile>/trials")`` or ``fwstudy.results.load(profile)``.

``lock`` makes concurrent runs on one store safe (see its docstring).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import io
import json
import math
import os
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fwstudy.errors import BadInput
from fwstudy.results.atomic import (
    Unreadable,
    atomic_write_bytes,
    atomic_write_text,
    read_json_object,
    strict_json,
)

# The unit of every metric a record may carry; a metric missing here is stored with unit "".
UNITS: dict[str, str] = {
    "step_time_ms_median": "ms",
    "step_time_ms_mean": "ms",
    "step_time_ms_min": "ms",
    "step_time_ms_p90": "ms",
    "step_time_ms_iqr": "ms",
    "throughput_samples_per_s": "samples/s",
    "achieved_gflops": "GFLOP/s",
    "compile_s": "s",
    "import_s": "s",
    "peak_rss_mb": "MiB",
    "rss_after_import_mb": "MiB",
    "peak_rss_above_import_mb": "MiB",
    "params": "count",
    "params_analytic": "count",
    "flops_per_step": "FLOP",
    "loss_first": "nats",
    "loss_last": "nats",
    "import_peak_rss_mb": "MiB",
    "gpu_peak_memory_mb": "MiB",
    "rss_sampler_cpu_s": "s",
    "cpu_cores_busy": "cores",
    "cpu_utilization": "fraction",
    "latency_ms_p50": "ms",
    "latency_ms_p90": "ms",
    "latency_ms_p99": "ms",
    "latency_ms_mean": "ms",
    "batch_time_ms_median": "ms",
    "gemm_peak_gflops": "GFLOP/s",
    "mfu": "fraction",
    "compile_cold_s": "s",
    "compile_warm_s": "s",
    "sequence_total_s": "s",
    "traces": "count",
    "graphs": "count",
    "graph_breaks": "count",
    "shapes": "count",
    "distinct_shapes": "count",
    "world_size": "count",
    "threads_per_worker": "count",
    "global_batch_size": "samples",
    "per_worker_batch_size": "samples",
    "dist_setup_s": "s",
    "peak_rss_sum_mb": "MiB",
    "allreduce_ms_median": "ms",
    "allreduce_isolated_ms_median": "ms",
    "allreduce_fraction": "fraction",
    # issue 10: measurement validity
    "timed_total_s": "s",
    "latency_ms_p99_ci_low": "ms",
    "latency_ms_p99_ci_high": "ms",
    "latency_ms_p99_ci_confidence": "probability",
    "latency_calls": "count",
    "latency_cpu_ms_per_call": "ms",
    "latency_quiet": "flag",
    "cpu_s_per_sample": "s/sample",
    "anon_after_import_mb": "MiB",
    "peak_anon_mb": "MiB",
    "peak_anon_above_import_mb": "MiB",
    "compile_peak_anon_above_import_mb": "MiB",
    "gemm_peak_own_gflops": "GFLOP/s",
    "mfu_own": "fraction",
    "compiles": "count",
    "xla_compilations": "count",
    "compiler_import_s": "s",
}
# Compile-cache counters (inductor fxgraph_cache_hit, AOTAutograd autograd_cache_miss, ...)
# copied from a trial's compile evidence: counts, whatever their prefix.
COUNT_SUFFIXES = ("_cache_hit", "_cache_miss", "_cache_bypass", "_cache_saved", "_cache_guard_miss")


def unit_of(metric: str) -> str:
    """The metric's unit; "" for a metric nobody has given one."""
    if metric in UNITS:
        return UNITS[metric]
    return "count" if metric.endswith(COUNT_SUFFIXES) else ""

# Trial columns repeated on every tidy row (the record's identity and settings).
TRIAL_COLUMNS = (
    "trial_id",
    "task",
    "workload",
    "framework",
    "mode",
    "device",
    "precision",
    "isolation",
    "batch_size",
    "threads",
    "repeat",
    "replica",
    "shared_host",
    "status",
    "error",
)


def tidy_rows(record: dict[str, Any]) -> pd.DataFrame:
    """One row per numeric metric; a trial without metrics still gets one row (metric None)."""
    base = {column: record.get(column) for column in TRIAL_COLUMNS}
    base["task"] = record["config"].get("task", "train")
    base["replica"] = record.get("replica") or 0  # records from before replicas existed
    base["precision"] = record["config"].get("precision", "fp32")  # records from before the axis
    base["isolation"] = record["config"].get("isolation", "process")  # before fork servers: process
    env = record.get("env", {})
    base["shared_host"] = bool(env.get("shared_host"))
    base.update(
        steps=record["config"]["steps"],
        warmup=record["config"]["warmup"],
        interop_threads=record["config"]["interop_threads"],
        variant=record["config"].get("variant"),
        workload_params=json.dumps(record["config"]["workload_params"], sort_keys=True),
        code_version=env.get("code_version"),
        git_commit=env.get("git_commit"),
        timestamp=env.get("timestamp"),
        cpu_model=env.get("cpu_model"),
        # The environment (fingerprint): statistics never pool records whose environments differ.
        host=env.get("hostname"),
        torch_version=env.get("torch_version"),
        tensorflow_version=env.get("tensorflow_version"),
        keras_version=env.get("keras_version"),
        numpy_version=env.get("numpy_version"),
        fingerprint=env.get("fingerprint_digest"),
        env=json.dumps(env, sort_keys=True, default=str),
    )
    rows = [
        {**base, "metric": name, "value": float(value), "unit": unit_of(name)}
        for name, value in record.get("metrics", {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    if not rows:
        rows = [{**base, "metric": None, "value": float("nan"), "unit": ""}]
    return pd.DataFrame(rows)


# The columns of every trial's Parquet file, in ``tidy_rows``'s order and with one type each,
# whatever the trial's outcome: without it a column that is null in every row of one file
# (``error`` of a trial that succeeded, ``variant`` of a training trial) is typed ``null`` there
# and ``string`` elsewhere, and reading the folder fails depending on which file comes first.
_STR = pa.string()
_INT = pa.int64()
SCHEMA = pa.schema([
    ("trial_id", _STR),
    ("task", _STR),
    ("workload", _STR),
    ("framework", _STR),
    ("mode", _STR),
    ("device", _STR),
    ("precision", _STR),
    ("isolation", _STR),
    ("batch_size", _INT),
    ("threads", _INT),
    ("repeat", _INT),
    ("replica", _INT),
    ("shared_host", pa.bool_()),
    ("status", _STR),
    ("error", _STR),
    ("steps", _INT),
    ("warmup", _INT),
    ("interop_threads", _INT),
    ("variant", _STR),
    ("workload_params", _STR),  # JSON
    ("code_version", _STR),
    ("git_commit", _STR),
    ("timestamp", _STR),
    ("cpu_model", _STR),
    ("host", _STR),
    ("torch_version", _STR),
    ("tensorflow_version", _STR),
    ("keras_version", _STR),
    ("numpy_version", _STR),
    ("fingerprint", _STR),
    ("env", _STR),  # JSON
    ("metric", _STR),
    ("value", pa.float64()),
    ("unit", _STR),
])
# What a stored record needs for the store, the batch and ``tidy_rows`` to use it.
REQUIRED_RECORD_KEYS = (
    "trial_id", "workload", "framework", "mode", "device", "batch_size", "threads", "repeat",
    "status", "error", "metrics", "config", "env",
)
RECORD_STATUSES = ("ok", "failed", "timeout")  # harness.record.STATUSES, without importing a config
LOCK_FILE = ".lock"
LOCK_WAIT_VARIABLE = "FWSTUDY_LOCK_WAIT"
# A file the batch runner (fwstudy.pipeline) names here: every result file this process reads
# is listed in it, once, so that a notebook whose results are unchanged is not run again.
READS_VARIABLE = "FWSTUDY_READS"
_listed: set[tuple[str, str]] = set()


def note_read(path: Path) -> None:
    """List ``path`` in ``$FWSTUDY_READS`` (when set): a result this process read."""
    log = os.environ.get(READS_VARIABLE)
    if not log:
        return
    name = os.path.abspath(path)
    if (log, name) in _listed:
        return
    _listed.add((log, name))
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(name + "\n")


def _warn(line: str) -> None:
    print(f"fwstudy: {line}", file=sys.stderr, flush=True)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` (``tidy_rows``'s output) as a table of exactly ``SCHEMA``, without pandas'
    per-file metadata (which would record ``object`` here and ``str`` there for one column)."""
    if list(frame.columns) != SCHEMA.names:
        raise ValueError(
            f"tidy rows and SCHEMA disagree: columns {sorted(set(frame.columns) ^ set(SCHEMA.names))}"
            " (add a new column to SCHEMA in fwstudy/results/store.py)"
        )
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False).replace_schema_metadata(None)


def check_table(table: pa.Table, trial_id: str) -> pa.Table:
    """``table`` cast to ``SCHEMA``, else ``Unreadable`` saying how it differs. A file written
    before the schema existed (a column typed ``null`` or ``large_string``) casts losslessly,
    and one written before a later column (``LATER_COLUMNS``) gets that column's value."""
    for name, value_of in LATER_COLUMNS.items():
        if name not in table.schema.names and table.num_rows:
            table = table.append_column(name, pa.array(value_of(table), SCHEMA.field(name).type))
    names = table.schema.names
    if set(names) != set(SCHEMA.names):
        missing = sorted(set(SCHEMA.names) - set(names))
        extra = sorted(set(names) - set(SCHEMA.names))
        raise Unreadable(f"columns differ from the schema (missing {missing or 'none'}, unknown {extra or 'none'})")
    if table.num_rows == 0:
        raise Unreadable("no rows")
    table = table.select(SCHEMA.names).replace_schema_metadata(None)
    if not table.schema.equals(SCHEMA):
        try:
            table = table.cast(SCHEMA)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise Unreadable(f"column types differ from the schema ({str(exc).splitlines()[0]})") from None
    ids = set(table.column("trial_id").to_pylist())
    if ids != {trial_id}:
        raise Unreadable(f"rows of trial {sorted(map(str, ids))[:2]} in the file of trial {trial_id}")
    return table


def check_record(record: dict[str, Any], trial_id: str) -> dict[str, Any]:
    """``record`` when it has what the store and ``tidy_rows`` need, else ``Unreadable``."""
    if record["trial_id"] != trial_id:
        raise Unreadable(f"the record of trial {record['trial_id']!r} in the file of trial {trial_id}")
    if record["status"] not in RECORD_STATUSES:
        raise Unreadable(f"status {record['status']!r} is none of {', '.join(RECORD_STATUSES)}")
    for key in ("metrics", "config", "env"):
        if not isinstance(record[key], dict):
            raise Unreadable(f"{key} is a {type(record[key]).__name__}, not an object")
    missing = [key for key in ("steps", "warmup", "interop_threads", "workload_params") if key not in record["config"]]
    if missing:
        raise Unreadable(f"config lacks {', '.join(missing)}")
    return record


def _lock_wait() -> float | None:
    """``FWSTUDY_LOCK_WAIT``: seconds to wait for another run's lock (0: fail at once); unset
    or empty: wait as long as it takes."""
    text = os.environ.get(LOCK_WAIT_VARIABLE, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"{LOCK_WAIT_VARIABLE} must be a number of seconds >= 0 (0: fail at once), got {text!r}")
    return value


def _describe_holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file."""
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data)
        command = " ".join(str(holder["command"]).split())[:200]  # one line, whatever it ran
        return f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({command})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (that has not written its name yet)"


# The locks this process holds: resolved lock path -> [file descriptor, depth]. A lock is
# re-entrant within a process (``measure`` holds it and calls ``run_batch``, which takes it
# again); a second ``flock`` on a new descriptor of the same file would wait for itself.
_held: dict[str, list[int]] = {}


class ResultStore:
    """Per-profile folder of trials: ``trials/<id>.parquet`` (tidy) and ``records/<id>.json``,
    bad files moved to ``quarantine/``, ``.lock`` held by the run that measures into it."""

    def __init__(self, root: Path | str, *, warn: Callable[[str], None] = _warn):
        self.root = Path(root)
        self.warn = warn
        self.quarantined: list[Path] = []  # where each file this store moved aside went

    def _parquet(self, trial_id: str) -> Path:
        return self.root / "trials" / f"{trial_id}.parquet"

    def _json(self, trial_id: str) -> Path:
        return self.root / "records" / f"{trial_id}.json"

    # --- reading, checked ---------------------------------------------------------------------

    def quarantine(self, path: Path, reason: str) -> None:
        """Move a bad file to ``quarantine/<name>.<UTC time><suffix>`` (kept for inspection,
        out of the way of the table and of the next measurement) and say so in one line."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.root / "quarantine" / f"{path.stem}.{stamp}{path.suffix}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:
            return  # another reader moved it first
        except OSError as exc:
            self.warn(f"{path} is unusable ({reason}) and could not be moved aside ({exc.strerror}):"
                      " its trial will be measured again")
            return
        self.quarantined.append(target)
        self.warn(f"{path} is unusable ({reason}): moved to {target}; its trial will be measured again")

    def trial_table(self, trial_id: str) -> pa.Table | None:
        """The trial's tidy rows as a table of ``SCHEMA``; None when the file is missing or bad
        (a bad one is quarantined). An older file that casts to the schema is rewritten with it,
        so the folder stays loadable by ``pd.read_parquet``."""
        path = self._parquet(trial_id)
        try:
            if path.stat().st_size == 0:
                raise Unreadable("empty file")
            try:
                raw = pq.read_table(path)
            except (pa.ArrowException, ValueError) as exc:
                raise Unreadable(f"not a readable Parquet file: {str(exc).splitlines()[0]}") from None
            table = check_table(raw, trial_id)
        except FileNotFoundError:
            return None
        except Unreadable as exc:
            self.quarantine(path, str(exc))
            return None
        note_read(path)
        if not raw.schema.equals(SCHEMA, check_metadata=True):
            with contextlib.suppress(OSError):  # a read-only store still reads
                atomic_write_bytes(path, _parquet_bytes(table))
        return table

    def record(self, trial_id: str) -> dict[str, Any] | None:
        """The trial's JSON record; None when missing or bad (a bad one is quarantined)."""
        path = self._json(trial_id)
        try:
            record = check_record(read_json_object(path, REQUIRED_RECORD_KEYS), trial_id)
            note_read(path)
            return record
        except FileNotFoundError:
            return None
        except Unreadable as exc:
            self.quarantine(path, str(exc))
            return None

    def measured(self, trial_id: str) -> dict[str, Any] | None:
        """The record of a trial that counts as measured: both its files exist and pass their
        checks. None otherwise, bad files quarantined (the trial is then measured again)."""
        if not (self._parquet(trial_id).exists() or self._json(trial_id).exists()):
            return None
        table_ok = self.trial_table(trial_id) is not None
        record = self.record(trial_id)
        return record if table_ok else None

    def has(self, trial_id: str) -> bool:
        return self.measured(trial_id) is not None

    def table(self, trial_ids: Iterable[str] | None = None, *, shared_hosts: bool = False) -> pd.DataFrame:
        """The tidy long table of the given trials (all when None). A bad file is quarantined
        and left out, never an exception: the trials it held are measured by the next batch.

        Trials measured on a host that ran several cluster workers at once (``SHARED_HOST``,
        e.g. the localhost cluster of the tests) are left out unless ``shared_hosts``: their
        timings shared the cores with other trials, so no figure or statistic may use them."""
        if trial_ids is None:
            trial_ids = [p.stem for p in sorted((self.root / "trials").glob("*.parquet"))]
        tables = [t for t in map(self.trial_table, trial_ids) if t is not None]
        if not tables:
            return SCHEMA.empty_table().to_pandas()
        table = pa.concat_tables(tables).to_pandas()
        return table if shared_hosts else exclusive_hosts(table)

    # --- writing ------------------------------------------------------------------------------

    def save(self, record: dict[str, Any]) -> None:
        """Write the record (strict JSON: a NaN metric is null) and its tidy rows, each atomically;
        the Parquet file last, since it is what the table and a plain ``read_parquet`` see."""
        trial_id = record["trial_id"]
        atomic_write_text(self._json(trial_id), strict_json(record, indent=1, default=str))
        atomic_write_bytes(self._parquet(trial_id), _parquet_bytes(to_arrow(tidy_rows(record))))

    def check_writable(self) -> None:
        """A one-line ``BadInput`` naming the folder unless the store and its ``trials/`` and
        ``records/`` can be written: checked before anything is measured, so that no result is
        measured only to be lost. ``os.access`` alone is not enough (root passes it everywhere,
        and it ignores read-only mounts), so a probe file is also written and removed."""
        for folder in (self.root, self.root / "trials", self.root / "records"):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if not os.access(folder, os.W_OK | os.X_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
                fd, probe = tempfile.mkstemp(dir=folder, prefix=".fwstudy-probe-")
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if isinstance(exc, FileExistsError):  # a file where a folder must be
                    reason = "a path component is a file, not a folder"
                raise BadInput(f"results folder {folder} is not writable ({reason}); "
                               "fix its permissions or choose another results_dir") from None

    @contextlib.contextmanager
    def lock(self, progress: Callable[[str], None] = _warn) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``<store>/.lock`` for the block: two runs on one store
        would otherwise both decide the same trials are missing and measure them against each
        other, on the same cores.

        The file holds the holder's pid, host, start time and command line. A second run says
        in one line who holds it and waits; with ``FWSTUDY_LOCK_WAIT=<seconds>`` it waits that
        long at most, and ``FWSTUDY_LOCK_WAIT=0`` fails at once, each with a one-line
        ``BadInput`` naming the holder. The kernel releases a ``flock`` when its holder dies,
        however it dies (SIGKILL included), so a lock left by a dead run is taken over at once:
        the file's content alone never locks anything. Re-entrant within a process (``measure``
        holds it around ``run_batch``); child processes do not inherit it (close-on-exec)."""
        path = self.root / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        if key in _held:
            _held[key][1] += 1
            try:
                yield
            finally:
                _held[key][1] -= 1
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._acquire(fd, progress)
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": " ".join(shlex.join(getattr(sys, "orig_argv", sys.argv)).split())[:300],
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, strict_json(holder).encode(), 0)
            _held[key] = [fd, 1]
            try:
                yield
            finally:
                del _held[key]
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # a free lock names nobody
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _acquire(self, fd: int, progress: Callable[[str], None]) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        wait = _lock_wait()
        holder = _describe_holder(fd)
        if wait == 0:
            raise BadInput(f"results folder {self.root} is locked by {holder}; "
                           f"wait for that run to end ({LOCK_WAIT_VARIABLE}=0 fails at once)")
        progress(f"results folder {self.root} is locked by {holder}: waiting for it"
                 + ("" if wait is None else f" (at most {wait:g} s)"))
        if wait is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BadInput(f"results folder {self.root} is still locked by {_describe_holder(fd)}"
                                   f" after {wait:g} s ({LOCK_WAIT_VARIABLE})") from None
                time.sleep(0.2)


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


# A record measured by a Dask worker whose host ran other workers during the batch carries
# ``env["shared_host"] = true`` (fwstudy.cluster); the tidy table has it as a column.
SHARED_HOST = '"shared_host": true'


def _shared_host_from_env(table: pa.Table) -> list[bool]:
    """``shared_host`` of a file written before the column: read from its env JSON, once (the
    file is then rewritten with the column)."""
    if "env" not in table.schema.names:  # not a trial file at all: check_table rejects it
        return [False] * table.num_rows
    return [SHARED_HOST in (env or "") for env in table.column("env").to_pylist()]


# Columns added after files were written, and how an older file's rows get their value.
LATER_COLUMNS = {
    "precision": lambda table: ["fp32"] * table.num_rows,  # before the precision axis: fp32
    "isolation": lambda table: ["process"] * table.num_rows,  # before fork servers: a process each
    "shared_host": _shared_host_from_env,
}


def exclusive_hosts(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without the rows of trials measured on a shared host (see ``SHARED_HOST``)."""
    if table.empty or "shared_host" not in table or not table["shared_host"].any():
        return table
    return table.loc[~table["shared_host"].astype(bool)].reset_index(drop=True)


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trial that did not succeed, with its reason."""
    columns = ["trial_id", "framework", "workload", "mode", "batch_size", "status", "error"]
    return table.loc[table["status"] != "ok", columns].drop_duplicates("trial_id")


def require_ok(table: pd.DataFrame) -> None:
    """A figure of nothing is a failed notebook, not an empty picture."""
    if not (table["status"] == "ok").any():
        reasons = "; ".join(
            f"{r.framework} {r.workload} {r.mode}: {str(r.error).splitlines()[0]}"
            for r in failures(table).itertuples()
        )
        raise RuntimeError(f"no trial succeeded ({reasons or 'no trials'})")
