"""Data-parallel training on each framework's own distributed engine (F3).

PyTorch: ``DistributedDataParallel`` over ``torch.distributed`` (gloo on CPU, nccl on GPU),
launched by ``torchrun``. TensorFlow: ``MultiWorkerMirroredStrategy`` with a custom loop,
one process and one ``TF_CONFIG`` per worker. ``run_distributed_trial`` is what
``fwstudy.harness.runner.run_trial`` calls for ``workers > 1``; like a single trial it always returns
a record, and nothing it started outlives it.

This package imports no framework (rule 1): each worker runs ``frameworks/<name>/worker.py``
in its own process, started through the one child entry point (``harness/child.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.lifeline import owned_tempdir


def unsupported(config: TrialConfig) -> str | None:
    """Configurations without a data-parallel meaning here: a failed record, not a launch."""
    if config.task != "train":
        return f"task {config.task!r} runs in one process; data-parallel trials train (task 'train')"
    if config.mode == "fit":
        return "mode 'fit' runs Keras' own loop; data-parallel trials use a custom loop (eager, graph, compiled)"
    return None


def run_distributed_trial(config: TrialConfig, trial_id: str, *, python: str) -> dict[str, Any]:
    """Launch ``config.workers`` workers (on this host, or this host's share of the hosts in
    the launch options), enforce ``config.timeout_s`` on all of them, and build the record."""
    from fwstudy.harness.distributed.collect import assemble
    from fwstudy.harness.distributed.launch import launch
    from fwstudy.harness.distributed.plan import LaunchOptions, make_plan
    from fwstudy.harness.environment import base_environment
    from fwstudy.harness.record import make_record

    options = LaunchOptions.from_environment()
    plan = make_plan(config, options)
    reason = unsupported(config)
    if reason:
        env = base_environment()
        env.update(device=config.device, threads=config.threads, distributed=plan.to_dict())
        record = make_record(config, trial_id=trial_id, status="failed", error=reason, metrics={}, env=env)
        record["wall_s"] = 0.0
        return record
    with owned_tempdir("dist") as tmp:
        out_dir = Path(tmp)
        (out_dir / "config.json").write_text(json.dumps(config.to_dict()))
        (out_dir / "plan.json").write_text(json.dumps(plan.to_dict()))
        result = launch(config, plan, out_dir, python)
        record = assemble(config, trial_id, plan, options, result, out_dir)
    record["wall_s"] = result.supervision.wall_s
    return record
