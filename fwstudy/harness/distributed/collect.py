"""Turn the workers' result files, or how they died, into one trial record.

A step of a data-parallel trial ends when its slowest worker ends it (each worker's clock is
read after a collective), so the trial's step time is the per-step maximum over the workers
and its throughput the global batch times the steps over the sum of those maxima (what a
user gets; the median step stays the comparison statistic).
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.distributed.launch import Launch, launch_summary, local_ranks
from fwstudy.harness.distributed.plan import LaunchOptions, Plan
from fwstudy.harness.distributed.processes import describe_exit
from fwstudy.harness.distributed.worker import result_path, started_path
from fwstudy.harness.environment import base_environment
from fwstudy.harness.record import make_record
from fwstudy.measure.timing import StepSamples, summarize

ROOT_CAUSE = re.compile(
    r"Root Cause.*?rank\s*:\s*(?P<rank>\d+).*?exitcode\s*:\s*(?P<code>-?\d+)"
    r".*?traceback\s*:\s*(?P<traceback>[^\n]*)",
    re.S,
)


def read_per_rank(out_dir: Path, ranks: range, path_of=result_path) -> dict[int, dict[str, Any]]:
    """Each rank's JSON file (its result, or with ``started_path`` its start note); a rank whose
    file is missing or torn is absent (it died before writing it)."""
    found = {}
    for rank in ranks:
        try:
            found[rank] = json.loads(path_of(out_dir, rank).read_text())
        except (OSError, ValueError):
            continue
    return found


def torchrun_root_cause(log: str) -> dict[str, Any] | None:
    """torchrun's own account of the first worker that failed (rank, exit code, traceback)."""
    match = ROOT_CAUSE.search(log)
    if not match:
        return None
    return {"rank": int(match["rank"]), "exitcode": int(match["code"]),
            "traceback": match["traceback"].strip()}


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def failure_reason(
    config: TrialConfig, plan: Plan, launch: Launch, results: dict[int, dict[str, Any]]
) -> tuple[str, str]:
    """The failed worker (rank, and how: its Python error or the signal that killed it), the
    other workers' errors after it, and the output tail that goes with it."""
    n = plan.world_size
    errors = sorted(
        (r for r in results.values() if r.get("status") == "failed"), key=lambda r: r.get("time", 0)
    )
    supervision = launch.supervision
    first = supervision.first_failure
    cause_rank, cause = None, None
    tail = first.tail() if first else launch.launched[0].tail()
    if launch.method == "torchrun":
        root = torchrun_root_cause(_read(launch.launched[0].log_path))
        if root:
            cause_rank = root["rank"]
            cause = results.get(cause_rank, {}).get("error") or describe_exit(root["exitcode"])
    elif first is not None:
        cause_rank = int(first.name.split()[-1])
        cause = results.get(cause_rank, {}).get("error") or describe_exit(first.returncode)
    if cause is None and errors:
        cause_rank, cause = errors[0]["rank"], errors[0]["error"]
    if supervision.timed_out:
        done = sorted(r for r, v in results.items() if v.get("status") == "ok")
        head = f"timed out after {config.timeout_s:g} s; ranks finished: {done or 'none'}"
    elif cause is not None:
        sep = " " if cause.startswith(("killed", "exited")) else ": "
        head = f"worker rank {cause_rank} of {n}{sep}{cause}"
    else:
        codes = ", ".join(f"{i.name} {describe_exit(i.returncode)}" for i in launch.launched)
        head = f"a worker left no result ({codes})"
    others = [f"rank {r['rank']}: {r['error']}" for r in errors if r["rank"] != cause_rank]
    if others:
        head += "; then " + "; ".join(others[:3])
    if supervision.survivors:
        head += f"; processes that could not be killed: {supervision.survivors}"
    return head, tail


def _rank_samples(result: dict[str, Any]) -> StepSamples:
    return StepSamples(
        compile_s=result["compile_s"], step_times_s=result["step_times_s"], losses=result["losses"],
        cpu_s=result["cpu_s"], wall_s=result["wall_s"],
    )


def ok_metrics(config: TrialConfig, plan: Plan, results: dict[int, dict[str, Any]]) -> tuple[dict, dict]:
    from fwstudy.workloads import get_workload

    spec = get_workload(config.workload)
    ranks = sorted(results)
    lead = results[ranks[0]]
    per_rank = [_rank_samples(results[r]) for r in ranks]
    step_max = [max(times) for times in zip(*(s.step_times_s for s in per_rank), strict=True)]
    combined = StepSamples(
        compile_s=max(s.compile_s for s in per_rank), step_times_s=step_max, losses=lead["losses"],
    )
    flops = spec.train_flops(config.workload_params, plan.global_batch)
    metrics: dict[str, Any] = summarize(combined, plan.global_batch, flops)
    wall = max(s.wall_s for s in per_rank)
    cores = sum(s.cpu_s for s in per_rank) / wall
    above = [
        results[r]["trial_peak_rss_mb"] - results[r]["rss_after_import_mb"]
        for r in ranks if results[r].get("trial_peak_rss_mb") is not None
    ]
    metrics.update(
        flops_per_step=flops,
        params=lead["params"],
        params_analytic=spec.param_count(config.workload_params),
        cpu_cores_busy=cores,
        cpu_utilization=cores / (plan.threads_per_worker * plan.local_workers),
        import_s=max(results[r]["import_s"] for r in ranks),
        dist_setup_s=max(results[r]["setup_s"] for r in ranks),
        peak_rss_mb=max(results[r]["peak_rss_mb"] for r in ranks),
        peak_rss_sum_mb=sum(results[r]["peak_rss_mb"] for r in ranks),
        rss_after_import_mb=max(results[r]["rss_after_import_mb"] for r in ranks),
        world_size=plan.world_size,
        global_batch_size=plan.global_batch,
        per_worker_batch_size=plan.per_worker_batch,
        threads_per_worker=plan.threads_per_worker,
        allreduce_isolated_ms_median=statistics.median(lead["isolated_allreduce_ms"]),
    )
    if above:
        metrics["peak_rss_above_import_mb"] = max(above)
    comm = lead.get("comm_ms")
    if comm:
        metrics["allreduce_ms_median"] = statistics.median(comm)
        metrics["allreduce_fraction"] = metrics["allreduce_ms_median"] / metrics["step_time_ms_median"]
    samples = {
        "step_time_ms": [t * 1e3 for t in step_max],
        "loss": lead["losses"],
        **{f"rank{r}_step_time_ms": [t * 1e3 for t in results[r]["step_times_s"]] for r in ranks},
    }
    if comm:
        samples["allreduce_ms"] = comm
    return metrics, samples


COMM_METHODS = {
    "torch": "allreduce_ms: DDP comm hook, launch to completion of each gradient bucket's "
    "all-reduce, summed per step (overlaps backward, includes waiting for the slowest rank); "
    "allreduce_isolated_ms: the whole gradient payload all-reduced alone after a barrier",
    "tensorflow": "TensorFlow does not expose the all-reduce time of a training step; "
    "allreduce_isolated_ms: the gradient-shaped tensors all-reduced alone in a tf.function "
    "after a one-element all-reduce barrier",
}


def environment(config: TrialConfig, plan: Plan, options: LaunchOptions, launch: Launch,
                results: dict[int, dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    from fwstudy.harness.distributed.worker import fault_injection

    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    lead = results.get(min(results)) if results else None
    if lead and lead.get("status") == "ok":
        env["framework"] = lead["framework_env"]
        env["frameworks_loaded"] = lead["frameworks_loaded"]
    keep = ("rank", "local_rank", "pid", "host", "status", "threads", "frameworks_loaded",
            "peak_rss_mb", "import_s", "setup_s", "error")
    workers = [
        {k: v for k, v in results[r].items() if k in keep} if r in results
        else {**info, "status": "no result (died or killed)"}
        for r, info in sorted(read_per_rank(out_dir, local_ranks(plan), started_path).items())
    ]
    env["distributed"] = {
        **plan.to_dict(),
        "launch": launch_summary(launch),
        "multi_host": options.multi_host,
        "communication_time": COMM_METHODS[config.framework],
        "step_time": "per-step maximum over this host's workers; each worker reads its clock "
        "after an all-reduce of the loss, so a step ends when the slowest worker's does",
        "workers": workers,
        "processes_killed_at_end": launch.supervision.killed,
        "processes_surviving": launch.supervision.survivors,
        "fault_injection": fault_injection(),
    }
    return env


def assemble(config: TrialConfig, trial_id: str, plan: Plan, options: LaunchOptions,
             launch: Launch, out_dir: Path) -> dict[str, Any]:
    results = read_per_rank(out_dir, local_ranks(plan))
    env = environment(config, plan, options, launch, results, out_dir)
    supervision = launch.supervision
    complete = len(results) == plan.local_workers and all(r["status"] == "ok" for r in results.values())
    if complete and not supervision.timed_out and supervision.first_failure is None:
        metrics, samples = ok_metrics(config, plan, results)
        return make_record(config, trial_id=trial_id, status="ok", error=None, metrics=metrics,
                           env=env, samples=samples)
    head, tail = failure_reason(config, plan, launch, results)
    error = f"{head}; last output:\n{tail}" if tail else head
    status = "timeout" if supervision.timed_out else "failed"
    peaks = [r["peak_rss_mb"] for r in results.values() if "peak_rss_mb" in r]
    metrics = {"peak_rss_mb": max(peaks)} if peaks else {}
    return make_record(config, trial_id=trial_id, status=status, error=error, metrics=metrics, env=env)
