"""F10 (fwstudy.convergence.measures, fwstudy.figures.robustness): the IG quadrature both sides
share, the agreement measures, the figure's numbers, and (slow) both frameworks' attacks and
attributions on the same weights."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.convergence import measures, runs
from fwstudy.convergence.plan import RobustnessRun, TrainRun
from fwstudy.errors import BadInput
from fwstudy.figures import robustness
from fwstudy.workloads import WORKLOADS
from tests.conftest import PROJECT

FLOAT32_EPS = float(np.finfo(np.float32).eps)


# --- the quadrature ----------------------------------------------------------------------------


STEP_COUNTS = (2, 8, 32, 50)


def test_ig_rule_is_captums_riemann_trapezoid():
    """Same alphas and weights as captum's own rule (read in one child: captum imports torch)."""
    code = ("import json; from captum.attr._utils.approximation_methods import approximation_parameters as a; "
            f"s, al = a('riemann_trapezoid'); print(json.dumps([[s(n), al(n)] for n in {STEP_COUNTS}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    for steps, (weights, alphas) in zip(STEP_COUNTS, json.loads(done.stdout), strict=True):
        ours_alphas, ours_weights = measures.ig_rule(steps)
        np.testing.assert_allclose(ours_alphas, alphas, rtol=0, atol=4 * FLOAT32_EPS)  # torch.linspace: float32
        np.testing.assert_allclose(ours_weights, weights, rtol=1e-15)
        assert ours_weights.sum() == pytest.approx(1 - 1 / steps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ig_with_the_rule_sums_to_its_weight_share_of_the_difference_for_a_linear_model(seed):
    """For F(x) = w.x the gradient is w everywhere, so IG's sum is exactly (1 - 1/steps) of
    F(x) - F(baseline): the completeness error F10 reports for captum's weighting."""
    gen = np.random.default_rng(seed)
    w, x = gen.normal(size=20), gen.uniform(size=20)
    alphas, weights = measures.ig_rule(16)
    attributions = x * sum(wt * w for wt in weights)  # baseline 0, gradient w at every alpha
    assert attributions.sum() == pytest.approx((1 - 1 / 16) * w @ x, rel=1e-12)
    error = measures.completeness_error(attributions.sum(), w @ x)
    assert error == pytest.approx(1 / 16, rel=1e-9)
    with pytest.raises(BadInput):
        measures.ig_rule(1)


# --- agreement measures ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_measures_on_known_pairs(seed):
    gen = np.random.default_rng(seed)
    a = gen.normal(size=(6, 100))
    same = measures.agreement(a, a.copy(), 10)
    assert all(np.allclose(v, 1) for v in same.values())
    flipped = measures.agreement(a, -a, 10)
    assert np.allclose(flipped["pearson"], -1) and np.allclose(flipped["top_k"], 1) and np.allclose(flipped["sign"], 0)
    monotone = measures.agreement(a, np.sign(a) * a ** 2, 10)  # order and signs kept, values not
    assert np.allclose(monotone["spearman"], 1) and np.allclose(monotone["top_k"], 1)
    assert (monotone["pearson"] < 1 - 1e-3).all()
    independent = measures.agreement(a, gen.normal(size=a.shape), 50)
    assert abs(independent["top_k"].mean() - 0.5) < 0.15  # two random halves share about half
    with pytest.raises(ValueError):
        measures.agreement(a, a[:, :50], 10)


# --- validation --------------------------------------------------------------------------------


def test_robustness_run_rejects_bad_input():
    run = TrainRun(workload="mlp", framework="torch", arm="matched", threads=1)
    with pytest.raises(BadInput, match="unknown attack 'deepfool'"):
        RobustnessRun(workload="mlp", framework="torch", arm="matched", runs=(run,), attacks=("deepfool",))
    with pytest.raises(BadInput, match="epsilon must be >= 0"):
        RobustnessRun(workload="mlp", framework="torch", arm="matched", runs=(run,), epsilons=(-0.1,))
    with pytest.raises(BadInput, match="unknown arm"):
        RobustnessRun(workload="mlp", framework="torch", arm="other", runs=(run,))
    tokens = sorted(w for w in WORKLOADS if "vocab" in WORKLOADS[w].defaults)
    for workload in tokens:
        with pytest.raises(BadInput, match="reads tokens"):
            Profile(profile="t", robustness_workloads=[workload])


def test_matched_evaluations_read_torchs_weights_and_idiomatic_their_own():
    configs = runs.robustness_configs(Profile(profile="t", seeds=2, threads=1))
    assert len(configs) == 2 * 2  # arms x frameworks
    for config in configs:
        sources = {r.framework for r in config.runs}
        assert sources == ({"torch"} if config.arm == "matched" else {config.framework})
        assert [r.seed for r in config.runs] == [0, 1] and {r.arm for r in config.runs} == {config.arm}


# --- the figure's numbers ----------------------------------------------------------------------


def synthetic_maps(seeds: int = 3) -> robustness.Maps:
    """Matched: TF and PT identical. Idiomatic: PT's maps are TF's plus independent noise, and
    PT is 2 points less accurate under attack."""
    gen = np.random.default_rng(0)
    attacks, attributions, completeness, timings, table = [], [], [], [], []
    for seed in range(seeds):
        for arm in ("matched", "idiomatic"):
            base = gen.normal(size=(4, 16))
            for framework in ("tensorflow", "torch"):
                tid = f"{framework}-{arm}"
                table.append({"trial_id": tid, "workload": "mlp", "framework": framework, "mode": "eager",
                              "variant": arm, "repeat": 0, "status": "ok", "metric": "seeds", "value": seeds,
                              "task": "robustness", "fingerprint": "f"})
                shift = 0.02 if (arm == "idiomatic" and framework == "torch") else 0.0
                for eps in (0.0, 0.1):
                    attacks.append({"trial_id": tid, "workload": "mlp", "framework": framework, "arm": arm,
                                    "seed": seed, "attack": "fgsm", "epsilon": eps, "accuracy": 0.9 - eps - shift, "n": 360})
                values = base + (gen.normal(size=base.shape) if shift else 0)
                for method in ("saliency", "integrated_gradients", "fgsm_sign"):
                    for sample in range(4):
                        for feature in range(16):
                            v = values[sample, feature]
                            attributions.append({"trial_id": tid, "workload": "mlp", "framework": framework, "arm": arm,
                                                 "seed": seed, "sample": sample, "method": method, "feature": feature,
                                                 "value": float(np.sign(v)) if method == "fgsm_sign" else v})
                completeness.append({"trial_id": tid, "workload": "mlp", "framework": framework, "arm": arm, "seed": seed,
                                     "sample": 0, "label": 1, "attribution_sum": 0.75, "logit_difference": 1.0})
                timings.append({"trial_id": tid, "workload": "mlp", "framework": framework, "arm": arm, "seed": seed,
                                "method": "saliency", "seconds": 0.01, "samples": 4})
    frame = pd.DataFrame
    return robustness.Maps(frame(table), frame(attacks), frame(attributions), frame(completeness), frame(timings))


def test_analyse_separates_the_implementation_check_from_the_finding():
    numbers = robustness.analyse(synthetic_maps(), top_k=4, confidence=0.75, ig_steps=4)
    assert numbers["matched_disagreement"]["points"].max() == pytest.approx(0)
    medians = numbers["agreement_median"].set_index(["arm", "method", "measure"])["median"]
    assert np.allclose(medians.loc["matched"], 1)
    assert (medians.loc[("idiomatic", "saliency")] < 0.95).all()
    fgsm = numbers["fgsm_agreement"]
    assert np.allclose(fgsm.loc[fgsm["arm"] == "matched", "value"], 1)
    accuracy = numbers["accuracy"].set_index(["arm", "framework", "epsilon"])
    assert accuracy.loc[("idiomatic", "torch", 0.1), "median"] == pytest.approx(0.78)
    assert accuracy.loc[("idiomatic", "torch", 0.1), "confidence"] == pytest.approx(0.75)  # 3 seeds
    comp = numbers["completeness"]
    assert np.allclose(comp["median_relative_error"], 0.25)
    assert np.allclose(comp["median_rescaled_error"], 0)  # 0.75 / (1 - 1/4) = the difference


def test_draw_makes_a_figure_from_synthetic_maps():
    maps = synthetic_maps(2)
    fig = robustness.draw(maps, robustness.analyse(maps, 4, 0.75, 4), 0.75)
    assert len(fig.axes) >= 3


# --- both frameworks on the same weights (slow) -------------------------------------------------


@pytest.mark.slow
def test_both_frameworks_attack_and_explain_the_same_weights_alike(tmp_path):
    """Untrained matched-arm weights (seed 3) saved as a one-epoch run's would be: PyTorch's
    and TensorFlow's FGSM and PGD accuracies, FGSM examples and attributions agree."""
    from fwstudy.convergence import tables
    from fwstudy.convergence.child import save_npz
    from fwstudy.convergence.init import matched_weights
    from fwstudy.results.store import ResultStore

    train = TrainRun(workload="mlp", framework="torch", arm="matched", epochs=1, seed=3, threads=1)
    path = tables.weights_path(tmp_path, "given")
    save_npz(path, matched_weights("mlp", dict(train.workload_params), 3))
    configs = [RobustnessRun(workload="mlp", framework=f, arm="matched", runs=(train,), epsilons=(0.0, 0.05),
                             pgd_steps=2, explain_samples=4, ig_steps=8, threads=1, timeout_s=300)
               for f in ("tensorflow", "torch")]
    store = ResultStore(tmp_path)
    table = runs.run_all(configs, store, progress=lambda line: None, before=lambda r: {"weights": {"3": str(path)}})
    assert (table["status"] == "ok").all(), table.loc[table["status"] != "ok", "error"].unique()
    maps = robustness.Maps(table, *(runs.load_tables_at(tmp_path, table, k)
                                    for k in ("attacks", "attributions", "completeness", "timings")))
    numbers = robustness.analyse(maps, top_k=20, confidence=0.9, ig_steps=8)
    # Same weights: a prediction changes only where two logits tie within round-off.
    assert numbers["matched_disagreement"]["points"].max() <= 100 / 360
    medians = numbers["agreement_median"].set_index(["method", "measure"])["median"]
    assert medians.loc[("integrated_gradients", "pearson")] > 1 - 1e-4
    assert medians.loc[("saliency", "pearson")] > 1 - 1e-4
    assert numbers["fgsm_agreement"]["value"].median() > 0.99
    comp = numbers["completeness"]
    # IG sums to (1 - 1/8) of the difference up to the quadrature's error: the same on both sides.
    assert math.isclose(*comp["median_relative_error"], rel_tol=1e-3)
