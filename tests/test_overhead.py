"""The harness-overhead benchmark: paired ABBA blocks, an interval on the median paired ratio,
and blocks that go on until that interval is narrower than the 3% target (or a cap)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fwstudy.frameworks.base import overhead_blocks
from fwstudy.harness import overhead

from .conftest import PROJECT


def fake_loops(cost_s: float = 2e-4):
    """A bare loop that reports ``cost_s`` per step, and a step that busy-waits that long."""
    order = []

    def bare(n: int) -> float:
        order.append("bare")
        return n * cost_s

    def step(i: int) -> float:
        order.append("step")
        end = time.perf_counter() + cost_s
        while time.perf_counter() < end:
            pass
        return 0.0

    return bare, step, order


def test_blocks_stop_once_the_interval_is_narrow_enough_or_at_the_cap():
    bare, step, order = fake_loops()
    wide_ok = overhead_blocks(bare, step, 4, 6, max_blocks=40, target_width_pct=1e6, confidence=0.9)
    assert wide_ok["blocks"] == 6  # already narrower than a huge target after the minimum
    never = overhead_blocks(bare, step, 4, 6, max_blocks=9, target_width_pct=0.0, confidence=0.9)
    assert never["blocks"] == 9  # no interval is narrower than 0: the cap ends it
    assert never["overhead_ci_low_pct"] <= never["overhead_pct"] <= never["overhead_ci_high_pct"]
    assert never["overhead_ci_confidence"] >= 0.9 and len(never["block_ratios"]) == 9


def test_the_two_loops_alternate_which_goes_first():
    bare, step, order = fake_loops()
    overhead_blocks(bare, step, 2, 4)
    firsts, i = [], 0
    while i < len(order):  # each block: one bare call, and 2 step calls
        firsts.append(order[i])
        i += 3
    assert firsts == ["bare", "step", "bare", "step"]


@pytest.mark.parametrize("low, high, expected", [
    (-1.0, 1.5, "met"), (3.5, 5.0, "missed"), (1.0, 4.0, "undecided"), (float("nan"), float("nan"), "no interval"),
])
def test_the_verdict_needs_the_whole_interval_on_one_side_of_3_percent(low, high, expected):
    result = {"overhead_ci_low_pct": low, "overhead_ci_high_pct": high, "overhead_ci_confidence": 0.95}
    assert overhead.verdict(result).endswith(expected)


def test_bad_options_are_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "fwstudy.harness.overhead", "--confidence", "2"],
                          capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_real_overhead_row_has_its_interval_and_blocks():
    done = subprocess.run(
        [sys.executable, "-m", "fwstudy.harness.overhead", "--workloads", "mlp", "--frameworks", "torch",
         "--modes", "eager", "--steps", "5", "--blocks", "3", "--max-blocks", "4", "--threads", "1"],
        capture_output=True, text=True, cwd=PROJECT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = done.stdout.splitlines()[-1]
    assert row.startswith("torch") and "]%" in row and "failed" not in row, done.stdout
