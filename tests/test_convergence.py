"""F8 (fwstudy.convergence, fwstudy.figures.convergence): the harder tasks, the matched arm's
initial weights, run validation, time-to-accuracy and drift, and (slow) real matched training
in both frameworks."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.convergence import measures, runs, tables
from fwstudy.convergence.init import matched_weights
from fwstudy.convergence.plan import TrainRun, task_of
from fwstudy.errors import BadInput
from fwstudy.figures import convergence
from fwstudy.measure import data
from fwstudy.workloads import WORKLOADS, get_workload
from fwstudy.workloads.transfer import check_shapes
from tests.conftest import PROJECT

FLOAT32_EPS = float(np.finfo(np.float32).eps)
CONVERGENT = [w for w in sorted(WORKLOADS) if {"image", "vocab", "input_dim"} & set(get_workload(w).defaults)]


# --- the harder tasks ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", data.DIGITS_LAYOUTS)
def test_shifted_digits_are_seeded_in_range_and_keep_the_split_labels(layout):
    first, again = data.digits_shifted(layout), data.digits_shifted(layout)
    plain = data.digits("flat")
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, plain.y_train)
    np.testing.assert_array_equal(first.y_test, plain.y_test)
    assert first.x_train.dtype == np.float32 and first.x_train.min() >= 0 and first.x_train.max() <= 1
    assert first.x_train.shape[1:] == ((784,) if layout == "flat" else (28, 28, 1))
    other = data.digits_shifted(layout, seed=1)
    assert not np.array_equal(first.x_train, other.x_train)


def test_shifted_digits_are_harder_than_the_plain_ones():
    """The same digit varies more: shifts and noise spread a class's images apart."""
    shifted = data.digits_shifted("flat")
    zeros = shifted.x_train[shifted.y_train == 0]
    spread = np.linalg.norm(zeros - zeros.mean(0), axis=1).mean() / np.linalg.norm(zeros.mean(0))
    plain = data.digits("flat")
    plain_zeros = plain.x_train[plain.y_train == 0]
    plain_spread = np.linalg.norm(plain_zeros - plain_zeros.mean(0), axis=1).mean() / np.linalg.norm(plain_zeros.mean(0))
    assert spread > plain_spread


def test_hard_token_task_labels_follow_the_rule_with_a_smaller_margin():
    hard, easy = data.token_task_hard(1000, 50), data.token_task(1000, 50)
    np.testing.assert_array_equal(hard.y_train, data.token_rule(hard.x_train, 1000, 10))

    def margin(ds):
        buckets = data.token_buckets(ds.x_train, 1000, 10)
        counts = np.stack([(buckets == b).sum(1) for b in range(10)], axis=1)
        top = np.sort(counts, axis=1)
        return float(np.mean(top[:, -1] - top[:, -2]))

    assert margin(hard) < margin(easy)
    assert len(hard.y_train) > len(easy.y_train)


def test_token_batch_default_share_is_unchanged():
    """Other figures' token batches are drawn with the old constant (their parity and timings
    must not move): the default planted share is still TOKEN_PLANTED_SHARE."""
    a = data.token_batch(np.random.default_rng(3), 8, 100, 20, 10)
    b = data.token_batch(np.random.default_rng(3), 8, 100, 20, 10, data.TOKEN_PLANTED_SHARE)
    c = data.token_batch(np.random.default_rng(3), 8, 100, 20, 10, 0.9)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


# --- matched initial weights --------------------------------------------------------------------


@pytest.mark.parametrize("workload", CONVERGENT)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_matched_weights_fill_both_twins_and_follow_the_seed(workload, seed):
    params = get_workload(workload).resolve_params(task_of(workload)[1])
    weights = matched_weights(workload, params, seed)
    wmap = get_workload(workload).weight_map()
    check_shapes(weights, wmap.torch_shapes(params), "torch")
    check_shapes(wmap.to_keras(weights, params), wmap.keras_shapes(params), "keras")
    again, other = matched_weights(workload, params, seed), matched_weights(workload, params, seed + 1)
    assert all(np.array_equal(weights[n], again[n]) for n in weights)
    assert any(not np.array_equal(weights[n], other[n]) for n in weights if weights[n].ndim > 1)
    for name, array in weights.items():
        if array.ndim > 1:
            bound = 1 / math.sqrt(int(np.prod(array.shape[1:])))
            assert np.abs(array).max() <= bound and array.std() > bound / 4, name


# --- runs and profiles: bad input ---------------------------------------------------------------


def test_train_run_rejects_bad_input_and_keys_on_what_changes_the_run():
    with pytest.raises(BadInput, match="unknown arm 'tuned'; valid arms: matched, idiomatic"):
        TrainRun(workload="mlp", framework="torch", arm="tuned")
    with pytest.raises(BadInput, match="valid modes"):
        TrainRun(workload="mlp", framework="torch", arm="matched", mode="graph")
    run = TrainRun(workload="mlp", framework="torch", arm="matched", threads=1)
    assert run.task == "digits28-flat" and run.workload_params["input_dim"] == 784
    same = TrainRun(workload="mlp", framework="torch", arm="matched", threads=1, timeout_s=5)
    assert run.identity("v") == same.identity("v")
    for change in ({"seed": 1}, {"arm": "idiomatic"}, {"framework": "tensorflow"}, {"epochs": 9}):
        other = TrainRun(**{**dict(workload="mlp", framework="torch", arm="matched", threads=1), **change})
        assert other.identity("v") != run.identity("v"), change
    assert TrainRun.from_dict(run.to_dict()) == run


@pytest.mark.parametrize("field, value, message", [
    ("attacks", ["cw"], "unknown attack 'cw'; valid attacks: fgsm, pgd"),
    ("epsilons", [0.1, -0.05], "epsilon must be >= 0"),
    ("target_share", 0.0, r"target_share must be a number in \(0, 1\]"),
    ("target_share", 1.2, r"target_share must be a number in \(0, 1\]"),
    ("target_share", True, r"target_share must be a number in \(0, 1\]"),
    ("arms", ["matched", "tuned"], "unknown arm 'tuned'; valid arms: matched, idiomatic"),
])
def test_profile_rejects_bad_convergence_fields(field, value, message):
    with pytest.raises(BadInput, match=message):
        Profile(profile="t", **{field: value})
    assert Profile(profile="t", target_share=1).target_share == 1


@pytest.mark.parametrize("line, message", [
    ("attacks: [cw]", "unknown attack 'cw'"),
    ("epsilons: [-0.1]", "epsilon must be >= 0"),
    ("target_share: 1.5", "target_share must be a number in (0, 1]"),
    ("arms: [lucky]", "unknown arm 'lucky'"),
])
def test_bad_profile_is_a_one_line_error_and_exit_2(tmp_path, line, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"profile: bad\n{line}\n")
    done = subprocess.run([sys.executable, "-m", "fwstudy", "check-profile", str(path)],
                          capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_configs_cover_every_seed_arm_and_framework_once():
    profile = Profile(profile="t", convergence_workloads=["mlp"], seeds=3, threads=1)
    configs = runs.train_configs(profile)
    keys = {(r.seed, r.arm, r.framework) for r in configs}
    assert len(configs) == len(keys) == 3 * 2 * 2
    assert [r.seed for r in configs] == sorted(r.seed for r in configs)  # seeds outermost


# --- time-to-accuracy, drift and the figure's numbers ------------------------------------------


def test_target_and_time_to_accuracy():
    assert measures.target_accuracy([0.5, 0.9, float("nan")], 0.95) == pytest.approx(0.855)
    assert measures.time_to_accuracy([0.5, 0.86, 0.9], [1.0, 2.0, 3.0], 0.855) == 2.0
    assert math.isnan(measures.time_to_accuracy([0.5, 0.6], [1.0, 2.0], 0.855))
    assert measures.first_exceeding([1, 2, 3], [0.0, 2e-3, 5e-3], 1e-3) == 2
    assert math.isnan(measures.first_exceeding([1, 2], [1e-4, -1e-4], 1e-3))


def synthetic_curves(seeds: int = 5) -> convergence.Curves:
    """Two frameworks, both arms, ``seeds`` seeds: TF is exactly twice as slow per epoch and
    reaches the same accuracies; the matched losses part at step 3."""
    rows, steps, epochs = [], [], []
    for seed in range(seeds):
        for arm in ("matched", "idiomatic"):
            for framework, pace in (("tensorflow", 2.0), ("torch", 1.0)):
                tid = f"{framework}-{arm}-{seed}"
                accuracy = [0.5, 0.8, 0.9 + 0.01 * seed]
                rows.append({"trial_id": tid, "workload": "mlp", "framework": framework, "mode": "eager",
                             "variant": arm, "repeat": seed, "status": "ok", "metric": "final_test_accuracy",
                             "value": accuracy[-1], "fingerprint": "f"})
                for e, acc in enumerate(accuracy, 1):
                    epochs.append({"trial_id": tid, "workload": "mlp", "framework": framework, "mode": "eager",
                                   "arm": arm, "seed": seed, "epoch": e, "step": 2 * e, "test_accuracy": acc,
                                   "test_loss": 1.0, "train_s": pace * e, "fingerprint": "f"})
                for s in range(1, 7):
                    loss = 2.0 / s + (5e-3 * (s >= 3) if framework == "tensorflow" else 0.0)
                    steps.append({"trial_id": tid, "workload": "mlp", "framework": framework, "mode": "eager",
                                  "arm": arm, "seed": seed, "step": s, "epoch": (s + 1) // 2, "loss": loss,
                                  "train_s": pace * s / 2, "fingerprint": "f"})
    return convergence.Curves(pd.DataFrame(rows), pd.DataFrame(steps), pd.DataFrame(epochs))


def test_analyse_finds_the_target_the_ratio_and_the_drift():
    numbers = convergence.analyse(synthetic_curves(), target_share=0.95, confidence=0.9)
    target = numbers["target"].set_index("workload").loc["mlp"]
    assert target["reference"] == pytest.approx(0.92) and target["target"] == pytest.approx(0.874)
    ratio = numbers["tta_ratio"].set_index("arm")
    # Epoch 3 reaches 0.874 for every seed: TF at 6 s, PT at 3 s, paired by seed.
    assert ratio.loc["matched", "ratio"] == pytest.approx(2.0)
    assert ratio.loc["matched", "blocks"] == 5 and ratio.loc["matched", "confidence"] == pytest.approx(0.9375)
    drift = numbers["drift"]
    assert set(drift["first_step_above"]) == {3.0}
    final = numbers["final_accuracy"]
    assert set(final["n"]) == {5} and np.allclose(final["median"], 0.92)
    agreement = numbers["agreement"]
    assert (agreement["accuracy_gap"] == 0).all() and agreement["within_spread"].all()


def test_draw_makes_a_figure_from_synthetic_curves():
    curves = synthetic_curves(3)
    fig = convergence.draw(curves, convergence.analyse(curves, 0.95, 0.9), 0.9)
    assert len(fig.axes) == 5


def test_tables_round_trip_with_their_schema(tmp_path):
    path = tables.path_of(tmp_path, "abc", "steps")
    tables.write(path, "steps", {"step": [1, 2], "epoch": [1, 1], "loss": [2, 1.5], "train_s": [0.1, 0.2]})
    frame = tables.read(path, "steps")
    assert frame["loss"].dtype == np.float64 and frame["step"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="schema"):
        tables.read(path, "epochs")


def test_a_run_without_weights_is_recorded_as_failed_and_the_batch_goes_on(tmp_path):
    """A failed run is a result with its reason (rule 9), never silently dropped."""
    from fwstudy.results.store import ResultStore

    store = ResultStore(tmp_path)
    run_a = TrainRun(workload="mlp", framework="torch", arm="matched", threads=1)
    run_b = TrainRun(workload="mlp", framework="torch", arm="matched", threads=1, seed=1)
    table = runs.run_all([run_a, run_b], store, progress=lambda line: None, before=lambda r: f"no input for seed {r.seed}")
    failed = table.drop_duplicates("trial_id")
    assert list(failed["status"]) == ["failed", "failed"]
    assert {e for e in failed["error"]} == {"no input for seed 0", "no input for seed 1"}


# --- real training in both frameworks (slow) -----------------------------------------------------


@pytest.mark.slow
def test_matched_training_starts_identical_and_both_frameworks_learn(tmp_path):
    """One epoch of mlp, each framework in its own child (one seed here, to keep ``make test``
    short: the seeded parts are tested over several seeds above, without frameworks). Step 1
    sees the same weights and batch: the losses agree to float32 round-off of the forward pass
    (a few eps per accumulation of sqrt(fan-in) terms); every run records full curves and
    weights, and both learn."""
    from fwstudy.results.store import ResultStore

    store = ResultStore(tmp_path)
    configs = [TrainRun(workload="mlp", framework=f, arm="matched", epochs=1, seed=s, threads=1, timeout_s=300)
               for s in (5,) for f in ("tensorflow", "torch")]
    table = runs.run_all(configs, store, progress=lambda line: None)
    assert (table["status"] == "ok").all(), table.loc[table["status"] != "ok", "error"].unique()
    steps = runs.load_tables_at(tmp_path, table, "steps")
    epochs = runs.load_tables_at(tmp_path, table, "epochs")
    per_epoch = len(data.digits_shifted("flat").y_train) // configs[0].batch_size
    assert steps.groupby("trial_id").size().eq(per_epoch).all() and epochs.groupby("trial_id").size().eq(1).all()
    first = steps[steps["step"] == 1].pivot_table(index="seed", columns="framework", values="loss")
    tolerance = 4 * math.sqrt(784) * FLOAT32_EPS * first.to_numpy().max()
    assert (first["tensorflow"] - first["torch"]).abs().max() <= tolerance, first
    last = steps.sort_values("step").groupby("trial_id")["loss"].last()
    start = steps[steps["step"] == 1].set_index("trial_id")["loss"].reindex(last.index)
    assert (last < start).all()  # both learn
    for run_id in table["trial_id"].unique():
        assert tables.weights_path(tmp_path, run_id).exists()
