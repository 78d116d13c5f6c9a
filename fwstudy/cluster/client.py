"""The batch's side of a Dask cluster: connect, check the workers, send trials, take records.

``scheduler_address`` decides whether a batch uses a cluster at all: ``$FWSTUDY_SCHEDULER``
(set by ``fwstudy batch --scheduler`` and ``make batch SCHEDULER=...``), else the profile's
``scheduler`` key, else none (run locally, the default).

``Cluster.run`` submits every trial with ``resources={"machine": 1}`` (plus ``gpu`` for a GPU
trial) and yields each record as it arrives, so the batch stores it at once: an interrupted
batch loses only the trials still running. Each record says where it ran
(``record["dask"]``: worker, host, how many workers died under it) and, when that host ran
several workers at once during the batch, ``env["shared_host"] = true``: its timings shared
the cores with other trials, and ``results.store`` leaves such trials out of every table the
figures read.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput

SCHEDULER_VARIABLE = "FWSTUDY_SCHEDULER"
ADDRESS = re.compile(r"(tcp|tls|ws|wss|ucx)://[^\s/:]+:[0-9]{1,5}")
CONNECT_TIMEOUT_S = 30.0
# How long a batch waits for its first worker before saying none is there.
WORKER_WAIT_S = float(os.environ.get("FWSTUDY_WORKER_WAIT", "60"))
WORKER_HINT = ("start one worker per host: dask worker ADDRESS --nworkers 1 --nthreads 1 "
               "--resources machine=1 (a GPU host: --resources 'machine=1,gpu=1')")


def check_address(text: Any) -> str:
    """A scheduler address such as ``tcp://host:8786``, else a one-line ``BadInput``."""
    if not isinstance(text, str) or not ADDRESS.fullmatch(text.strip()):
        raise BadInput(f"scheduler must be an address such as tcp://host:8786 "
                       f"(protocols: tcp, tls, ws, wss, ucx), got {text!r}")
    return text.strip()


def scheduler_address(profile_value: str | None = None) -> str | None:
    """The cluster a batch sends its trials to: ``$FWSTUDY_SCHEDULER``, else the profile's
    ``scheduler``; None (run locally) when neither is set."""
    text = os.environ.get(SCHEDULER_VARIABLE, "").strip() or profile_value
    return check_address(text) if text else None


def resources_for(config: TrialConfig) -> dict[str, int]:
    """What a trial asks of a worker: a whole machine, and a GPU when it runs on one."""
    return {"machine": 1, "gpu": 1} if config.device == "gpu" else {"machine": 1}


def _suspicious(dask_scheduler: Any, key: str) -> int | None:
    """On the scheduler: how many workers died while running task ``key``."""
    task = dask_scheduler.tasks.get(key)
    return None if task is None else int(task.suspicious)


class Cluster:
    """A connection to a running scheduler whose workers are checked before any trial goes.

    Bad input (one line, exit 2): no scheduler at the address, no worker within
    ``FWSTUDY_WORKER_WAIT`` seconds, no worker advertising ``machine``, a worker whose
    measuring code differs from the client's."""

    def __init__(self, address: str):
        from distributed import Client

        from fwstudy.cluster.task import worker_facts
        from fwstudy.harness.environment import code_version

        self.address = check_address(address)
        try:
            self.client = Client(self.address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise BadInput(f"no Dask scheduler answers at {self.address} ({str(exc).splitlines()[0]}); "
                           "start one with `dask scheduler`, or unset the scheduler to run locally") from None
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            self.close()
            raise BadInput(f"the Dask scheduler at {self.address} has no worker after {WORKER_WAIT_S:g} s; "
                           f"{WORKER_HINT}") from None
        self.code = code_version()
        facts = self.client.run(worker_facts)
        differing = {addr: f["code_version"] for addr, f in facts.items() if f["code_version"] != self.code}
        if differing:
            self.close()
            addr, version = next(iter(differing.items()))
            raise BadInput(f"worker {addr} runs measuring code {version}, this checkout {self.code}: "
                           "install the same fwstudy checkout on every host")
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if not any(w.get("resources", {}).get("machine") for w in workers.values()):
            self.close()
            raise BadInput(f"no worker of {self.address} advertises the resource 'machine'; {WORKER_HINT}")
        self.fingerprints = {f["fingerprint"] for f in facts.values()}
        self.peak_workers: dict[str, int] = {}  # host name -> most workers seen on it at once
        self._observe()

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _observe(self) -> None:
        """Count the live workers per host now; keep each host's largest count."""
        try:
            names = self.client.run(socket.gethostname, on_error="ignore")
        except Exception:  # a worker dying while asked: the next observation counts again
            return
        counts: dict[str, int] = {}
        for name in names.values():
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + 1
        for name, count in counts.items():
            self.peak_workers[name] = max(self.peak_workers.get(name, 0), count)

    def check_resources(self, configs: Sequence[TrialConfig]) -> None:
        """A GPU trial with no GPU worker would wait forever: bad input instead."""
        if not any(c.device == "gpu" for c in configs):
            return
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if not any(w.get("resources", {}).get("gpu") for w in workers.values()):
            raise BadInput(f"GPU trials need a worker advertising 'gpu' on {self.address}; "
                           "start the GPU host's worker with --resources 'machine=1,gpu=1'")

    def run(self, configs: Sequence[TrialConfig], *, gemm_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Send every config; yield ``(index, record)`` as each trial ends, in any order.

        A trial whose worker died is run again elsewhere by the scheduler; one that Dask gives
        up on (``KilledWorker``), or that raised on the worker, comes back as a failed record
        with the reason. Leaving early (an interrupt) cancels what has not run."""
        from fwstudy.cluster.task import run_on_worker

        self.check_resources(configs)
        token = uuid.uuid4().hex[:12]
        index: dict[str, int] = {}
        futures = []
        for i, config in enumerate(configs):
            key = f"fwstudy-trial-{token}-{i}"
            index[key] = i
            futures.append(self.client.submit(run_on_worker, config, gemm_size, token, self.code,
                                              key=key, resources=resources_for(config), pure=False))
        return self._collect(configs, futures, index)  # submitted now, collected as they end

    def _collect(self, configs: Sequence[TrialConfig], futures: list[Any],
                 index: dict[str, int]) -> Iterator[tuple[int, dict[str, Any]]]:
        from distributed import as_completed

        pending = set(futures)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                pending.discard(future)
                i = index[future.key]
                try:
                    lost = self.client.run_on_scheduler(_suspicious, key=future.key)
                except Exception:
                    lost = None
                try:
                    record = future.result()
                except Exception as exc:
                    record = lost_record(configs[i], exc, lost)
                future.release()
                self._observe()
                yield i, self.annotate(record, lost)
        finally:
            if pending:
                self.client.cancel(list(pending))

    def annotate(self, record: dict[str, Any], lost: int | None) -> dict[str, Any]:
        """Say where the trial ran, and flag it when its host ran several workers."""
        where = record.setdefault("dask", {})
        where["scheduler"] = self.address
        where["lost_workers"] = lost
        host = where.get("hostname") or record.get("env", {}).get("hostname")
        shared = bool(host) and self.peak_workers.get(host, 0) > 1
        record["shared_host"] = shared
        env = record.setdefault("env", {})
        env["dask_worker"] = where.get("worker")
        if shared:
            env["shared_host"] = True
        return record


def lost_record(config: TrialConfig, exc: BaseException, lost: int | None) -> dict[str, Any]:
    """The failed record of a trial the cluster could not finish (its workers kept dying, or
    the task raised), with the reason: never a trial silently missing."""
    from fwstudy.harness.environment import base_environment, code_version
    from fwstudy.harness.record import make_record

    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    if lost:
        reason = f"lost on the cluster after {lost} worker death(s) ({reason})"
    else:
        reason = f"failed on the cluster ({reason})"
    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    return make_record(config, trial_id=config.identity(code_version()), status="failed", error=reason,
                       metrics={}, env=env)
