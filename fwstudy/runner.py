"""Parent side of a trial: launch the child, turn whatever happens into a record."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from fwstudy.config import TrialConfig
from fwstudy.environment import base_environment, code_version
from fwstudy.isolation import ChildOutcome, run_child
from fwstudy.record import make_record
from fwstudy.threads import thread_variables


def child_environment(config: TrialConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(thread_variables(config))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env["PYTHONUNBUFFERED"] = "1"
    if config.device == "cpu":
        # A CPU trial must not touch a GPU even where one exists.
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def failure_record(config: TrialConfig, trial_id: str, outcome: ChildOutcome) -> dict[str, Any]:
    status = "timeout" if outcome.timed_out else "failed"
    reason = outcome.describe()
    if outcome.timed_out:
        reason += f" after {config.timeout_s:g} s"
    error = f"{reason}; last output:\n{outcome.output_tail}" if outcome.output_tail else reason
    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    return make_record(config, trial_id=trial_id, status=status, error=error, metrics={}, env=env)


def run_trial(config: TrialConfig, *, python: str = sys.executable) -> dict[str, Any]:
    """Measure one trial in a fresh process; always returns a record, never raises for the child."""
    trial_id = config.identity(code_version())
    with tempfile.TemporaryDirectory(prefix="fwstudy-trial-") as tmp:
        config_path = Path(tmp, "config.json")
        out_path = Path(tmp, "record.json")
        config_path.write_text(json.dumps(config.to_dict()))
        argv = [python, "-m", "fwstudy", "_child", str(config_path), trial_id, str(out_path)]
        outcome = run_child(argv, timeout_s=config.timeout_s, env=child_environment(config))
        if out_path.exists() and not outcome.timed_out:
            record = json.loads(out_path.read_text())
        else:
            record = failure_record(config, trial_id, outcome)
    record["wall_s"] = outcome.wall_s
    return record
