"""The isolation check's design (paired levels, A-vs-A block) and its verdicts, on synthetic
tables whose truth is known."""

import itertools

import numpy as np
import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.errors import BadInput
from fwstudy.harness import isolation
from fwstudy.workloads import WORKLOADS


def test_every_cell_runs_under_both_levels_side_by_side_in_paired_blocks():
    two = sorted(w for w in WORKLOADS if w != "adaptive")[:2]  # any two, each with eager and graph
    profile = Profile(profile="t", workloads=two, modes=["eager", "graph"], repeats=3)
    configs = isolation.configs(profile, blocks=4)
    assert {c.repeat for c in configs} == {0, 1, 2, 3}
    pairs = list(zip(configs[::2], configs[1::2], strict=True))
    for a, b in pairs:  # each fork trial sits next to its process twin
        assert {a.isolation, b.isolation} == {"fork", "process"}
        assert (a.workload, a.framework, a.mode, a.repeat, a.replica) == (b.workload, b.framework, b.mode, b.repeat, b.replica)
    cells = {(c.workload, c.framework, c.mode) for c in configs}
    assert len(cells) == 2 * 3  # tensorflow eager/graph, torch eager, per workload
    assert {c.replica for c in configs if c.repeat == 0} == {0, 1}  # the A-vs-A block
    assert {c.replica for c in configs if c.repeat > 0} == {0}
    firsts = {a.isolation for a, _ in pairs}
    assert firsts == {"fork", "process"}  # which level goes first is shuffled, not fixed


@pytest.mark.parametrize("blocks", [0, 1, -3, True])
def test_fewer_than_two_blocks_is_bad_input(blocks):
    with pytest.raises(BadInput, match="blocks must be an integer >= 2"):
        isolation.configs(Profile(profile="t"), blocks=blocks)


def test_a_workload_outside_the_profile_is_bad_input():
    with pytest.raises(BadInput, match="valid: mlp"):
        isolation.configs(Profile(profile="t"), workloads=["cnn"])


def synthetic(effect: float, noise: float, blocks: int = 8, seed: int = 0) -> pd.DataFrame:
    """Step times: fork = process x ``effect``, each trial with log-normal ``noise``; block 0
    twice per level (A-vs-A)."""
    rng = np.random.default_rng(seed)
    rows, n = [], itertools.count()
    for block in range(blocks):
        for level, replica in itertools.product(("fork", "process"), (0, 1) if block == 0 else (0,)):
            value = 10.0 * (effect if level == "fork" else 1.0) * float(np.exp(rng.normal(0, noise)))
            rows.append({"trial_id": f"t{next(n)}", "status": "ok", "metric": "step_time_ms_median", "value": value,
                         "workload": "mlp", "framework": "torch", "mode": "eager", "device": "cpu", "threads": 2,
                         "isolation": level, "repeat": block, "replica": replica})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_real_difference_beyond_the_floor_is_named(seed):
    result = isolation.analyse(synthetic(effect=1.5, noise=0.01, seed=seed), confidence=0.9)
    row = result[result["metric"] == "step_time_ms_median"].iloc[0]
    assert row["verdict"] == "process lower"
    assert row["ratio_ci_low"] > 1.3 and row["n_fork"] == 9 and row["n_process"] == 9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_needs_the_whole_interval_inside_the_floor(seed):
    # identical levels: the interval of the ratio cannot exclude 1, and whether it also fits
    # inside the A-vs-A floor decides between "agree" and "no clear difference"
    result = isolation.analyse(synthetic(effect=1.0, noise=0.02, seed=seed), confidence=0.9).iloc[0]
    assert result["verdict"] in ("agree", "no clear difference")
    inside = (np.log(result["ratio_ci_low"]) >= -result["noise_floor"]
              and np.log(result["ratio_ci_high"]) <= result["noise_floor"])
    assert (result["verdict"] == "agree") == inside


def test_too_few_blocks_for_the_confidence_is_insufficient():
    result = isolation.analyse(synthetic(effect=1.0, noise=0.02, blocks=3), confidence=0.95).iloc[0]
    assert result["verdict"] == "insufficient data"
