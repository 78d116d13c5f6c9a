"""Shared helpers: synthetic records and stand-in interpreters for the runner's failure paths."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.environment import code_version
from fwstudy.harness.record import make_record

PROJECT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """GEMM peaks measured by tests go to a throwaway cache, not the project's results/."""
    import tempfile

    os.environ.setdefault("FWSTUDY_CACHE_DIR", tempfile.mkdtemp(prefix="fwstudy-test-cache-"))


def fake_record(config: TrialConfig, step_ms: float = 10.0, status: str = "ok") -> dict:
    """A record as a child would write it, without running a framework."""
    metrics = (
        {
            "step_time_ms_median": step_ms,
            "throughput_samples_per_s": config.batch_size / step_ms * 1e3,
            "compile_s": 0.5,
            "peak_rss_mb": 400.0,
            "params": 669706,
            "flops_per_step": 1000,
        }
        if status == "ok"
        else {}
    )
    return make_record(
        config,
        trial_id=config.identity(code_version()),
        status=status,
        error=None if status == "ok" else "RuntimeError: injected",
        metrics=metrics,
        env={"code_version": code_version(), "cpu_model": "test", "timestamp": "now"},
        samples={"step_time_ms": [step_ms] * 3},
    )


@pytest.fixture
def fake_python(tmp_path):
    """Write an executable that stands in for the child's interpreter."""

    def make(body: str) -> str:
        path = tmp_path / f"fake-python-{abs(hash(body))}"
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    return make


def run_cli(*args: str, timeout: float = 300, env: dict | None = None):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "fwstudy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
    )
