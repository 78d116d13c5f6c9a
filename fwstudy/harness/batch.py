"""Run a list of trials into a store: reuse what is measured, save each trial as it ends.

``measure(profile, configs)`` is the one call a notebook makes to get its trials. With a Dask
scheduler (``$FWSTUDY_SCHEDULER`` or the profile's ``scheduler``) the trials go to that cluster
(``fwstudy.cluster``) and their records come back here to be stored; without one they run here.

``RETRY_FAILED=1`` (also ``true``/``yes``) in the environment re-measures every stored trial
whose status is not ``ok`` (``make figures RETRY_FAILED=1`` passes it to the notebooks)."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

from fwstudy import paths
from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.harness.environment import code_version
from fwstudy.harness.forkserver import ForkServers
from fwstudy.harness.runner import run_trial
from fwstudy.results.store import ResultStore


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def retry_failed() -> bool:
    """``RETRY_FAILED`` is set to 1, true or yes: re-measure the trials that failed or timed out."""
    return os.environ.get("RETRY_FAILED", "").strip().lower() in ("1", "true", "yes")


# Runs the trials it is given and yields (position in its list, record) as each one ends.
Execute = Callable[[list[TrialConfig]], Iterator[tuple[int, dict]]]


def reason_to_measure(
    config: TrialConfig,
    record: dict[str, Any] | None,
    *,
    run_id: str | None,
    force: bool,
    retry: bool,
    cluster: bool = False,
) -> str | None:
    """Why the trial must be measured now ("new", "forced", ...), or None to reuse ``record``
    (its stored record, None when it has none). ``fwstudy plan`` asks the same question.

    A record measured on a host that ran several cluster workers at once is reused only by
    another cluster run (so such a batch resumes); a local run measures it again, since no
    figure uses it (``results.store.exclusive_hosts``)."""
    if record is None:
        return "new"
    if run_id and record.get("run_id") == run_id:
        return None  # measured earlier in this run (by another notebook): never twice
    if force:
        return "forced"
    if not cluster and record.get("env", {}).get("shared_host"):
        return "shared host"
    if record["status"] == "ok":
        return None
    if retry:
        return "RETRY_FAILED"
    if record["config"].get("timeout_s") != config.timeout_s:
        return "timeout changed"
    return None


def stored_record(
    store: ResultStore, config: TrialConfig, version: str, fingerprints: Iterable[str] = ()
) -> tuple[str, dict[str, Any] | None]:
    """The trial's id and stored record: under this host's fingerprint, else under one of
    ``fingerprints`` (the hosts of a cluster, whose ids hash their own environment); the
    local id and None when it is stored under none."""
    local = config.identity(version)
    for trial_id in dict.fromkeys([local, *(config.identity(version, f) for f in fingerprints)]):
        record = store.measured(trial_id)
        if record is not None:
            return trial_id, record
    return local, None


def run_batch(
    configs: Sequence[TrialConfig],
    store: ResultStore,
    *,
    force: bool = False,
    progress: Callable[[str], None] = _print,
    run: Callable[[TrialConfig], dict] = run_trial,
    execute: Execute | None = None,
    fingerprints: Iterable[str] = (),
) -> pd.DataFrame:
    """Measure every config not yet in ``store`` (all of them when ``force``) and return the
    tidy table of the whole batch. A failed trial is saved like any other and the batch goes on.

    A stored trial counts as measured only when both its files pass the store's checks; a bad
    file is quarantined and the trial measured again. A stored trial that failed or timed out
    is measured again when its cause may have changed: always with ``RETRY_FAILED=1``, and
    when its timeout differs from the config's (the timeout is not part of the trial id, so
    raising it would otherwise reuse the timed-out record forever). A changed environment
    needs nothing here: the trial id hashes the environment fingerprint and the code version
    (``TrialConfig.identity``), so a new torch or TensorFlow, another CPU or changed measuring
    code is a new trial. Within one ``make`` run (``FWSTUDY_RUN_ID``) no trial is measured twice,
    so notebooks that share trials re-measure them once when forced or retrying.

    ``execute`` runs the trials elsewhere (a Dask cluster, ``fwstudy.cluster``) and yields
    their records as they end, in any order; each is stored the moment it arrives. A trial is
    then also found under ``fingerprints``, the environments of the cluster's hosts.

    The store must be writable (checked before anything is measured) and is locked for the
    batch (``ResultStore.lock``): a second run on the same store waits for this one."""
    store.check_writable()
    with store.lock(progress=progress):
        return _run_batch(configs, store, force=force, progress=progress, run=run, execute=execute,
                          fingerprints=list(fingerprints))


def _run_batch(
    configs: Sequence[TrialConfig],
    store: ResultStore,
    *,
    force: bool,
    progress: Callable[[str], None],
    run: Callable[[TrialConfig], dict],
    execute: Execute | None,
    fingerprints: list[str],
) -> pd.DataFrame:
    version = code_version()
    run_id = os.environ.get("FWSTUDY_RUN_ID")
    retry = retry_failed()
    quarantined_before = len(store.quarantined)
    found = [stored_record(store, config, version, fingerprints) for config in configs]
    ids = [trial_id for trial_id, _ in found]
    reasons = {
        i: reason_to_measure(config, record, run_id=run_id, force=force, retry=retry, cluster=execute is not None)
        for i, (config, (_, record)) in enumerate(zip(configs, found, strict=True))
    }
    todo = [i for i, reason in reasons.items() if reason]
    reused = len(configs) - len(todo)
    kinds = ("forced", "shared host", "RETRY_FAILED", "timeout changed")
    counts = {r: sum(1 for i in todo if reasons[i] == r) for r in kinds}
    details = [f"{counts['forced']} forced"] if counts["forced"] else []
    details += [f"{counts['shared host']} measured on a shared host"] if counts["shared host"] else []
    details += [f"{counts[r]} not-ok retried ({r})" for r in ("RETRY_FAILED", "timeout changed") if counts[r]]
    if len(store.quarantined) > quarantined_before:
        details.append(f"{len(store.quarantined) - quarantined_before} bad files quarantined")
    progress(
        f"{len(configs)} trials: {reused} already measured, {len(todo)} to measure"
        + (f" ({'; '.join(details)})" if details else "")
    )
    failed = 0
    started = begin = time.monotonic()
    pending = [configs[i] for i in todo]
    results = execute(pending) if execute else ((k, run(config)) for k, config in enumerate(pending))
    for n, (k, record) in enumerate(results, 1):
        index = todo[k]
        config = configs[index]
        record["run_id"] = run_id
        store.save(record)
        ids[index] = record["trial_id"]  # a cluster host's own id (its fingerprint)
        took, begin = time.monotonic() - begin, time.monotonic()
        if record["status"] == "ok":
            outcome = f"ok, {record['metrics']['step_time_ms_median']:.2f} ms/step"
        else:
            failed += 1
            outcome = f"{record['status'].upper()}: {str(record['error']).splitlines()[0]}"
        where = f" on {record['dask'].get('hostname') or record['dask'].get('worker')}" if record.get("dask") else ""
        progress(f"[{n}/{len(todo)}] {config.label()} r{config.repeat}: {outcome}{where} ({took:.0f} s)")
    if todo:
        progress(
            f"measured {len(todo)} trials in {time.monotonic() - started:.0f} s"
            f" ({failed} not ok), reused {reused}"
        )
    return store.table(ids)


def measure(profile: Profile, configs: list[TrialConfig], *, isolate: bool = True) -> pd.DataFrame:
    """Measure what is missing from ``results/<profile>/`` (everything when forced) and return
    the tidy table of ``configs``, each row with its workload's parity verdict (rule 6).

    The verdict of every workload in ``configs`` comes first (``parity.verdict``, cached per
    code version): each measured record carries it in ``parity``, and the table's
    ``parity_passed`` column lets a figure flag a workload whose twins disagree.

    Trials that may fork take the profile's ``isolation`` (``Profile.isolate``; ``isolate=False``
    keeps each config's own, as the isolation check needs); with ``fork`` they are forked from
    one server per framework and environment, started once for the call
    (``harness/forkserver.py``).

    The trials of one call share compile caches (inductor's and XLA's, both frameworks alike):
    steady-state figures don't pay a cold compile per repeat. Cold and warm compile costs are
    F4's ``compile`` trials, which always start from empty caches. That cache folder is an
    ``owned_tempdir``: removed however this process ends, and by the next run's
    ``sweep_stale`` if it was killed.

    The results folder is checked for writability before anything is measured (the parity
    gate included), and the store is locked from the first verdict to the last trial
    (``ResultStore.lock``).

    With a scheduler address (``fwstudy.cluster.client.scheduler_address``) the trials run on
    that Dask cluster, one per worker at a time, each in a fresh process there; the parity
    gate still runs here. The cluster is reached, and its workers checked, before any trial."""
    from fwstudy.cluster.client import scheduler_address
    from fwstudy.harness import lifeline

    configs = [profile.isolate(config) for config in configs] if isolate else list(configs)
    address = scheduler_address(profile.scheduler)
    lifeline.sweep_stale()  # compile caches and temp folders left by runs that were killed
    store = ResultStore(paths.results_dir(profile.profile, profile.results_dir))
    store.check_writable()
    if address:
        return _measure_on_cluster(profile, configs, store, address)
    with store.lock(progress=_print):
        verdicts = parity_verdicts(profile, configs)
        with lifeline.owned_tempdir("compile-cache") as cache, ForkServers() as servers:
            trial = functools.partial(run_trial, gemm_size=profile.gemm_size, cache_dir=str(cache), servers=servers)

            def run(config: TrialConfig) -> dict:
                record = trial(config)
                if config.workload in verdicts:
                    record["parity"] = verdicts[config.workload]
                return record

            table = run_batch(configs, store, force=profile.force, run=run)
    return with_parity(table, verdicts)


def parity_verdicts(profile: Profile, configs: Sequence[TrialConfig]) -> dict[str, dict]:
    """The parity verdict of every workload of ``configs`` (none when the profile turns the
    gate off). The gates time nothing (they compare numbers, within tolerances that hold for
    any thread count), so they run side by side, up to one per core: much of a gate is
    single-threaded tracing and compiling, and quick's gates cost about one gate's time rather
    than their sum. Each verdict is cached per code version (``parity.verdict``)."""
    from concurrent.futures import ThreadPoolExecutor

    from fwstudy.config.trial import default_threads
    from fwstudy.parity.verdict import workload_verdict

    workloads = list(dict.fromkeys(c.workload for c in configs))
    if not profile.parity_gate or not workloads:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(workloads), default_threads())) as pool:
        found = pool.map(lambda w: workload_verdict(w, threads=profile.threads, timeout_s=profile.trial_timeout_s),
                         workloads)
        return dict(zip(workloads, found, strict=True))


def with_parity(table: pd.DataFrame, verdicts: dict[str, dict]) -> pd.DataFrame:
    passed = {w: v["passed"] for w, v in verdicts.items()}
    return table.assign(parity_passed=table["workload"].map(passed) if passed else None)


def _measure_on_cluster(profile: Profile, configs: list[TrialConfig], store: ResultStore, address: str) -> pd.DataFrame:
    """``measure`` with the trials sent to the Dask scheduler at ``address``."""
    from fwstudy.cluster.client import Cluster

    with Cluster(address) as cluster, store.lock(progress=_print):
        _print(f"trials go to the Dask cluster at {address} ({len(cluster.fingerprints)} host environment(s))")
        verdicts = parity_verdicts(profile, configs)

        def execute(pending: list[TrialConfig]) -> Iterator[tuple[int, dict]]:
            for k, record in cluster.run(pending, gemm_size=profile.gemm_size):
                if record["workload"] in verdicts:
                    record["parity"] = verdicts[record["workload"]]
                yield k, record

        table = run_batch(configs, store, force=profile.force, execute=execute, fingerprints=cluster.fingerprints)
    return with_parity(table, verdicts)
