"""The ``fwstudy run`` options of data-parallel trials, kept here so the CLI gains them with two
calls: ``add_arguments(run_parser)`` while building the parser and ``apply(args, options)``
before the ``TrialConfig`` is made from ``options``.

The launch options (hosts, node rank, master port) are not part of the trial's config: they
say where the same measurement runs. They reach ``run_distributed_trial`` through the
environment (``fwstudy.harness.distributed.plan.LaunchOptions``), so the single-trial entry point
needs no change for a multi-host run.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from fwstudy.config.trial import SCALINGS
from fwstudy.errors import BadInput, choices
from fwstudy.harness.distributed.plan import LaunchOptions


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def add_arguments(run_parser: argparse.ArgumentParser) -> None:
    group = run_parser.add_argument_group(
        "data-parallel training",
        "N workers with each framework's own engine (PyTorch DDP via torchrun, TensorFlow "
        "MultiWorkerMirroredStrategy); --threads are split evenly over this host's workers. "
        "Several hosts: run the same command on every host with its own --node-rank.",
    )
    group.add_argument("--workers", type=_int, default=1, help="total workers, all hosts (default 1)")
    group.add_argument(
        "--scaling", default="strong",
        help=f"one of: {choices(SCALINGS)}; strong: --batch-size is the global batch, "
        "weak: each worker's (default strong)",
    )
    group.add_argument(
        "--hosts", help="comma-separated hosts, the same list on every host; the first is the "
        "rendezvous (default: all workers on this host)",
    )
    group.add_argument("--node-rank", type=_int, help="this host's index in --hosts (default 0)")
    group.add_argument(
        "--master-port", type=_int,
        help="with --hosts: torchrun's rendezvous port on the first host, and the first of the "
        "consecutive TensorFlow worker ports on every host",
    )


def apply(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """Copy ``--workers``/``--scaling`` into the TrialConfig keywords and publish the launch
    options; a bad combination is a one-line BadInput before anything starts."""
    options["workers"] = args.workers
    options["scaling"] = args.scaling
    given = args.hosts is not None or args.node_rank is not None or args.master_port is not None
    if not given:
        return
    if args.workers < 2:
        raise BadInput("--hosts, --node-rank and --master-port need --workers 2 or more")
    hosts = tuple(h.strip() for h in (args.hosts or "").split(",") if h.strip())
    launch = LaunchOptions(hosts=hosts, node_rank=args.node_rank or 0, master_port=args.master_port)
    if args.workers % max(1, len(hosts)):
        raise BadInput(f"--workers ({args.workers}) must be a multiple of the number of hosts ({len(hosts)})")
    os.environ.update(launch.to_environment())
