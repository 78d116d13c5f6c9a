"""The trial record of docs/methodology.md: one JSON object per trial, whatever happened to it."""

from __future__ import annotations

from typing import Any

from fwstudy.config.trial import TrialConfig

STATUSES = ("ok", "failed", "timeout")


def make_record(
    config: TrialConfig,
    *,
    trial_id: str,
    status: str,
    error: str | None,
    metrics: dict[str, Any] | None,
    env: dict[str, Any],
    samples: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} not in {STATUSES}")
    return {
        "trial_id": trial_id,
        "workload": config.workload,
        "framework": config.framework,
        "mode": config.mode,
        "device": config.device,
        "batch_size": config.batch_size,
        "threads": config.threads,
        "repeat": config.repeat,
        "replica": config.replica,
        "status": status,
        "error": error,
        "metrics": metrics or {},
        "samples": samples or {},
        "config": config.to_dict(),
        "env": env,
    }
