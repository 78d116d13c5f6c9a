"""Start the workers of one data-parallel trial with each framework's own launcher.

PyTorch: one ``torchrun`` (``python -m torch.distributed.run``) per host, which starts the
local workers and sets their ranks. TensorFlow: one process per worker with its own
``TF_CONFIG``; on one host the gRPC ports are chosen free here, and a trial whose worker
could not bind its port (another process took it between the choice and the launch) is
started once more on fresh ports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.distributed import processes
from fwstudy.harness.distributed.plan import (
    Plan,
    free_ports,
    tf_cluster,
    tf_config,
    torchrun_arguments,
)
from fwstudy.harness.distributed.worker import job_path, started_path
from fwstudy.harness.process import child_argv, child_environment, compile_cache_variables

PORT_IN_USE = ("address already in use", "failed to start server", "could not start grpc server")


@dataclass
class Launch:
    """What ran and how it ended: the launched processes and their supervision."""

    method: str
    launched: list[processes.Launched]
    supervision: processes.Supervision
    attempts: int = 1
    ports: list[int] | None = None


def worker_environment(config: TrialConfig, plan: Plan, out_dir: Path) -> dict[str, str]:
    """Each worker's share of the threads, set before its framework is imported (rule 1), and
    compile caches that start empty, as a single trial's do (its compile time is cold)."""
    env = child_environment(config, threads=plan.threads_per_worker)
    env.update(compile_cache_variables(str(out_dir / "cache")))
    return env


def write_job(config: TrialConfig, out_dir: Path) -> Path:
    """The one job file all workers of the trial start from; ranks come from the launcher."""
    path = job_path(out_dir)
    path.write_text(json.dumps({"kind": "worker", "framework": config.framework, "out_dir": str(out_dir)}))
    return path


def started_pids(out_dir: Path, ranks: range) -> list[int]:
    pids = []
    for rank in ranks:
        try:
            pids.append(json.loads(started_path(out_dir, rank).read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return pids


def local_ranks(plan: Plan) -> range:
    first = plan.global_rank(0)
    return range(first, first + plan.local_workers)


def launch_torch(config: TrialConfig, plan: Plan, out_dir: Path, python: str) -> Launch:
    # torchrun is no fwstudy child: the lifeline wrapper guards it, then execs it.
    argv = [
        python, "-m", "fwstudy.harness.lifeline",
        python, "-m", "torch.distributed.run", *torchrun_arguments(plan),
        *child_argv(write_job(config, out_dir), python)[1:],
    ]
    env = worker_environment(config, plan, out_dir)
    launched = [processes.start("torchrun", argv, env, out_dir / "torchrun.log")]
    supervision = processes.supervise(
        launched, config.timeout_s, lambda: started_pids(out_dir, local_ranks(plan))
    )
    return Launch(method="torchrun", launched=launched, supervision=supervision)


def _start_tf(config: TrialConfig, plan: Plan, out_dir: Path, python: str, cluster: list[str],
              attempt: int) -> list[processes.Launched]:
    base = worker_environment(config, plan, out_dir)
    launched = []
    for local_rank, rank in enumerate(local_ranks(plan)):
        env = dict(base)
        env.update(
            TF_CONFIG=json.dumps(tf_config(cluster, rank)),
            FWSTUDY_DIST_RANK=str(rank), FWSTUDY_DIST_LOCAL_RANK=str(local_rank),
        )
        if config.device == "gpu":
            env["CUDA_VISIBLE_DEVICES"] = str(local_rank)  # one GPU per worker
        argv = child_argv(write_job(config, out_dir), python)
        log = out_dir / f"worker-{rank}.attempt{attempt}.log"
        launched.append(processes.start(f"rank {rank}", argv, env, log))
    return launched


def _port_taken(launched: list[processes.Launched]) -> bool:
    return any(
        item.returncode not in (0, None) and any(k in item.tail(60).lower() for k in PORT_IN_USE)
        for item in launched
    )


def launch_tensorflow(config: TrialConfig, plan: Plan, out_dir: Path, python: str) -> Launch:
    attempts = 1 if plan.nodes > 1 else 2
    remaining = config.timeout_s
    for attempt in range(1, attempts + 1):
        ports = free_ports(plan.local_workers) if plan.nodes == 1 else None
        cluster = tf_cluster(plan, ports)
        for stale in out_dir.glob("rank-*.json"):
            stale.unlink()
        launched = _start_tf(config, plan, out_dir, python, cluster, attempt)
        supervision = processes.supervise(
            launched, remaining, lambda: started_pids(out_dir, local_ranks(plan))
        )
        remaining -= supervision.wall_s
        if not (remaining > 0 and attempt < attempts and supervision.first_failure and _port_taken(launched)):
            break
    return Launch(method="one process per worker, TF_CONFIG each", launched=launched,
                  supervision=supervision, attempts=attempt, ports=ports)


def launch(config: TrialConfig, plan: Plan, out_dir: Path, python: str) -> Launch:
    if config.framework == "torch":
        return launch_torch(config, plan, out_dir, python)
    return launch_tensorflow(config, plan, out_dir, python)


def launch_summary(result: Launch) -> Mapping[str, object]:
    return {
        "method": result.method,
        "attempts": result.attempts,
        "ports": result.ports,
        "returncodes": {item.name: item.returncode for item in result.launched},
    }
