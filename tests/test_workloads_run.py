"""Every workload trains in both frameworks through the ordinary trial runner (eager mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from fwstudy import frameworks
from fwstudy.workloads import WORKLOADS, get_workload

CASES = [(w, fw) for w in sorted(WORKLOADS) for fw in frameworks.NAMES]


def run_trial(workload: str, framework: str) -> dict:
    argv = [
        sys.executable, "-m", "fwstudy", "run", "--workload", workload, "--framework", framework,
        "--mode", "eager", "--steps", "3", "--warmup", "1", "--threads", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def records() -> dict[tuple[str, str], Future]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {case: pool.submit(run_trial, *case) for case in CASES}


@pytest.mark.slow
@pytest.mark.parametrize(("workload", "framework"), CASES)
def test_eager_trial_is_ok(records, workload, framework):
    record = records[(workload, framework)].result()
    assert record["status"] == "ok", record["error"]
    spec = get_workload(workload)
    params = spec.resolve_params({})
    metrics = record["metrics"]
    assert metrics["params"] == metrics["params_analytic"] == spec.param_count(params)
    assert metrics["flops_per_step"] == spec.train_flops(params, spec.default_batch_size)
    assert metrics["step_time_ms_median"] > 0
    assert record["env"]["frameworks_loaded"] == {name: name == framework for name in frameworks.NAMES}
