"""Who runs where with what: the layout of one data-parallel trial, framework-free.

The parent and every worker derive the same numbers from the same config and launch options,
so a worker on another host needs nothing but the command line to find its shard, its threads
and its peers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.errors import BadInput

# Launch options travel in the environment, so that the single-trial entry point
# (``fwstudy.harness.runner.run_trial``) serves a multi-host launch unchanged.
HOSTS_VARIABLE = "FWSTUDY_DIST_HOSTS"
NODE_RANK_VARIABLE = "FWSTUDY_DIST_NODE_RANK"
MASTER_PORT_VARIABLE = "FWSTUDY_DIST_MASTER_PORT"
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class LaunchOptions:
    """Where the workers run. No hosts: every worker on this host, ports chosen free.

    With hosts, the command runs once on every host (same arguments, its own ``node_rank``);
    ``hosts[0]`` is the rendezvous (torchrun's master, TensorFlow's chief) and ``master_port``
    is the rendezvous port for PyTorch and the first of ``workers / len(hosts)`` consecutive
    gRPC ports per host for TensorFlow.
    """

    hosts: tuple[str, ...] = ()
    node_rank: int = 0
    master_port: int | None = None

    def __post_init__(self) -> None:
        if any(not h or "," in h or ":" in h for h in self.hosts):
            raise BadInput(f"hosts must be bare host names or addresses, got {list(self.hosts)}")
        if isinstance(self.node_rank, bool) or not isinstance(self.node_rank, int):
            raise BadInput(f"node_rank must be an integer, got {self.node_rank!r}")
        nodes = max(1, len(self.hosts))
        if not 0 <= self.node_rank < nodes:
            raise BadInput(f"node_rank must be in 0..{nodes - 1} for {nodes} host(s), got {self.node_rank}")
        if self.master_port is not None and not 1 <= self.master_port <= 65535:
            raise BadInput(f"master_port must be in 1..65535, got {self.master_port}")
        if len(self.hosts) > 1 and self.master_port is None:
            raise BadInput("a multi-host launch needs --master-port (the same on every host)")

    @property
    def multi_host(self) -> bool:
        return len(self.hosts) > 1

    def to_environment(self) -> dict[str, str]:
        env = {HOSTS_VARIABLE: ",".join(self.hosts), NODE_RANK_VARIABLE: str(self.node_rank)}
        if self.master_port is not None:
            env[MASTER_PORT_VARIABLE] = str(self.master_port)
        return env

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> LaunchOptions:
        environ = os.environ if environ is None else environ
        hosts = tuple(h.strip() for h in environ.get(HOSTS_VARIABLE, "").split(",") if h.strip())
        try:
            node_rank = int(environ.get(NODE_RANK_VARIABLE) or 0)
            port = environ.get(MASTER_PORT_VARIABLE)
            master_port = int(port) if port else None
        except ValueError:
            raise BadInput(
                f"{NODE_RANK_VARIABLE} and {MASTER_PORT_VARIABLE} must be integers"
            ) from None
        return cls(hosts=hosts, node_rank=node_rank, master_port=master_port)


@dataclass(frozen=True)
class Plan:
    """The numbers every process of the trial agrees on (written to ``plan.json``)."""

    world_size: int
    nodes: int
    node_rank: int
    local_workers: int
    threads_per_worker: int
    scaling: str
    global_batch: int
    per_worker_batch: int
    hosts: list[str] = field(default_factory=list)
    master_port: int | None = None
    backend: str = "gloo"

    def global_rank(self, local_rank: int) -> int:
        return self.node_rank * self.local_workers + local_rank

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(**data)


def backend_name(config: TrialConfig) -> str:
    """The collective backend: torch.distributed's gloo or nccl; TensorFlow's ring all-reduce
    (over gRPC) or nccl."""
    if config.device == "gpu":
        return "nccl"
    return "gloo" if config.framework == "torch" else "ring (gRPC)"


def make_plan(config: TrialConfig, options: LaunchOptions) -> Plan:
    """Strong scaling splits ``batch_size`` (the global batch) over the workers; weak scaling
    gives each worker ``batch_size``. ``config.threads`` are this host's threads, split evenly
    over the workers on it (at least one each)."""
    nodes = max(1, len(options.hosts))
    if config.workers % nodes:
        raise BadInput(f"workers ({config.workers}) must be a multiple of the number of hosts ({nodes})")
    local = config.workers // nodes
    if config.scaling == "strong":
        global_batch, per_worker = config.batch_size, config.batch_size // config.workers
    else:
        global_batch, per_worker = config.batch_size * config.workers, config.batch_size
    return Plan(
        world_size=config.workers,
        nodes=nodes,
        node_rank=options.node_rank,
        local_workers=local,
        threads_per_worker=max(1, config.threads // local),
        scaling=config.scaling,
        global_batch=global_batch,
        per_worker_batch=per_worker,
        hosts=list(options.hosts),
        master_port=options.master_port,
        backend=backend_name(config),
    )


def shard(rank: int, per_worker_batch: int) -> slice:
    """Rank r trains on rows [r*b, (r+1)*b) of every global batch: the shards tile the
    global batch exactly, so the mean of the workers' gradients is the single-process one."""
    return slice(rank * per_worker_batch, (rank + 1) * per_worker_batch)


def free_ports(count: int, host: str = "") -> list[int]:
    """Distinct ports the kernel calls free now: all sockets are held open until every port
    is chosen (so none repeats) and closed just before launch. Another process may still
    take one in between; the caller retries once when a worker cannot bind."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_cluster(plan: Plan, local_ports: list[int] | None = None) -> list[str]:
    """TF_CONFIG's worker list, the same on every host: host h's j-th worker listens on
    ``master_port + j``; on one host, on the free ports chosen for this trial."""
    if plan.hosts and len(plan.hosts) > 1:
        return [f"{h}:{plan.master_port + j}" for h in plan.hosts for j in range(plan.local_workers)]
    if local_ports is None or len(local_ports) != plan.local_workers:
        raise ValueError("a one-host TensorFlow trial needs one free port per worker")
    return [f"{LOCALHOST}:{p}" for p in local_ports]


def tf_config(cluster: list[str], index: int) -> dict[str, Any]:
    return {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}


def torchrun_arguments(plan: Plan) -> list[str]:
    """One host: ``--standalone`` (a c10d store on a port the kernel picks: no race). Several
    hosts: static rendezvous at ``hosts[0]:master_port`` with this host's node rank."""
    common = ["--nproc-per-node", str(plan.local_workers), "--max-restarts", "0"]
    if plan.nodes == 1:
        return ["--standalone", "--nnodes", "1", *common]
    return [
        "--nnodes", str(plan.nodes), "--node-rank", str(plan.node_rank),
        "--master-addr", plan.hosts[0], "--master-port", str(plan.master_port), *common,
    ]
