"""The precision axis (fp32, TF32, bf16 mixed): bad input, the tolerance's derivation, the
GPU count check, and a real bf16 trial on each side that must land inside its bound and
measurably away from fp32 (proof that bf16 was really used)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.config.trial import PRECISIONS, TrialConfig
from fwstudy.errors import BadInput
from fwstudy.figures import hardware, trials
from fwstudy.harness import gpu
from fwstudy.measure import precision
from fwstudy.workloads import WORKLOADS, get_workload

from .conftest import PROJECT, fake_record


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fwstudy", *args], capture_output=True, text=True,
                          cwd=PROJECT, timeout=600)


@pytest.mark.parametrize("args, expected", [
    (["--precision", "tf32"], "valid precisions on cpu: fp32, bf16"),
    (["--precision", "fp8"], "valid precisions: fp32, tf32, bf16"),
])
def test_a_precision_the_device_lacks_is_one_line_and_exit_2(args, expected):
    done = cli("run", "--workload", "mlp", "--framework", "torch", "--mode", "eager", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr


def test_tf32_is_accepted_on_a_gpu_only():
    assert TrialConfig(workload="mlp", framework="torch", mode="eager", device="gpu", precision="tf32")
    with pytest.raises(BadInput, match="needs device 'gpu'"):
        TrialConfig(workload="mlp", framework="torch", mode="eager", precision="tf32")
    with pytest.raises(BadInput, match="needs device 'gpu'"):
        Profile(profile="x", precisions=["fp32", "tf32"])


def test_precision_changes_the_trial_identity_and_label():
    a = TrialConfig(workload="mlp", framework="torch", mode="eager")
    b = TrialConfig(workload="mlp", framework="torch", mode="eager", precision="bf16")
    assert a.identity("c", "f") != b.identity("c", "f")
    assert b.label().endswith(" bf16") and "fp32" not in a.label()


def test_the_profile_sizes_workloads_and_multiplies_trials_by_precision():
    profile = Profile(profile="x", workloads=["mlp"], modes=["eager"], precisions=["fp32", "bf16"],
                      workload_sizes={"mlp": {"batch_size": 256, "hidden": 64}})
    configs = trials.training_configs(profile)
    assert {c.precision for c in configs} == {"fp32", "bf16"} and len(configs) == 4
    assert all(c.batch_size == 256 and c.workload_params["hidden"] == 64 for c in configs)
    with pytest.raises(BadInput, match="workload"):
        Profile(profile="x", workload_sizes={"nope": {}})
    with pytest.raises(BadInput):
        Profile(profile="x", workload_sizes={"mlp": {"batch_size": 0}})
    with pytest.raises(BadInput):
        Profile(profile="x", workload_sizes={"mlp": {"widht": 3}})


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_workload_has_a_stage_count_and_the_tolerance_is_3_L_u(workload):
    params = get_workload(workload).defaults
    stages = precision.reduced_stages(workload, params)
    assert stages >= 2
    for name in PRECISIONS:
        assert precision.tolerance(name, workload, params) == pytest.approx(3 * stages * precision.UNIT_ROUNDOFF[name])
    # bf16 has 8 significant bits, TF32 11: the bound is 8x looser for bf16
    assert precision.tolerance("bf16", workload, params) == pytest.approx(8 * precision.tolerance("tf32", workload, params))


@pytest.mark.parametrize("seed", range(4))
def test_rounding_to_bf16_lands_inside_the_bound_and_a_wrong_layer_outside(seed):
    """An mlp forward in NumPy with operands and outputs rounded to bf16 (the model of the
    bound) stays inside 3·L·u; computing one layer with the wrong weights does not."""
    gen = np.random.default_rng(seed)
    params = {"depth": 2}

    def bf16(a):  # round to nearest even on the upper 16 bits of float32
        bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return bits.astype(np.uint32).view(np.float32)

    x = gen.standard_normal((64, 784)).astype(np.float32)
    ws = [gen.standard_normal(s).astype(np.float32) / np.sqrt(s[0]) for s in ((784, 512), (512, 512), (512, 10))]

    def forward(round_, weights):
        h = x
        for i, w in enumerate(weights):
            h = round_(round_(h) @ round_(w))
            if i < len(weights) - 1:
                h = np.maximum(h, 0)
        return h

    exact = forward(lambda a: a, ws)
    check = precision.compare(forward(bf16, ws), exact, "bf16", "mlp", params)
    assert check["passed"] and check["norm_rel_error"] > 2.0**-12, check
    broken = precision.compare(forward(lambda a: a, [ws[0], ws[1] * 1.5, ws[2]]), exact, "bf16", "mlp", params)
    assert not broken["passed"], broken


def test_a_multi_worker_gpu_run_needs_a_gpu_per_worker(monkeypatch):
    rows = ({"index": "0", "name": "H200", "driver_version": "1", "memory.total": "1", "uuid": "GPU-aaa"},
            {"index": "1", "name": "H200", "driver_version": "1", "memory.total": "1", "uuid": "GPU-bbb"})
    monkeypatch.setattr(gpu, "_nvidia_smi_rows", lambda: rows)
    assert len(gpu.visible_gpus({})) == 2
    assert [g["index"] for g in gpu.visible_gpus({"CUDA_VISIBLE_DEVICES": "1"})] == ["1"]
    assert [g["index"] for g in gpu.visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-bbb,0"})] == ["1", "0"]
    assert gpu.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpu.visible_gpus({"CUDA_VISIBLE_DEVICES": "7,0"}) == []  # CUDA stops at an invalid entry
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(BadInput, match="needs 2 GPUs on this host .* but 1 is visible"):
        gpu.check_gpu_count(2, "--workers 2")
    gpu.check_gpu_count(1, "--workers 1")


def test_a_multi_worker_gpu_run_on_a_host_without_gpus_is_one_line_and_exit_2(monkeypatch):
    done = cli("run", "--workload", "mlp", "--framework", "torch", "--mode", "eager", "--device", "gpu",
               "--workers", "2", "--threads", "2")
    if gpu.visible_gpus():
        pytest.skip("this host has GPUs")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "needs 2 GPUs on this host" in done.stderr


def test_the_precision_table_puts_each_precision_beside_fp32():
    rows = []
    for p, ms in (("fp32", 10.0), ("bf16", 5.0)):
        record = fake_record(TrialConfig(workload="mlp", framework="torch", mode="eager", precision=p), step_ms=ms)
        if p == "bf16":
            record["metrics"].update(precision_error_norm_rel=0.004, precision_tolerance=0.035)
        from fwstudy.results.store import tidy_rows

        rows.append(tidy_rows(record))
    table = hardware.precision_table(pd.concat(rows))
    bf16 = table[table["precision"] == "bf16"].iloc[0]
    assert bf16["speedup_vs_fp32"] == pytest.approx(2.0) and bool(bf16["within_tolerance"])


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_a_bf16_trial_runs_in_bf16_within_its_bound(framework):
    done = cli("run", "--workload", "mlp", "--framework", framework, "--mode", "eager", "--precision", "bf16",
               "--steps", "3", "--warmup", "1", "--batch-size", "32", "--threads", "1", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    check = record["env"]["precision_check"]
    # inside 3·L·u, and far above fp32 round-off (~1e-7): the forward really ran in bf16
    assert check["passed"] and check["norm_rel_error"] > 2.0**-14, check
    assert record["config"]["precision"] == "bf16"
    framework_env = record["env"]["framework"]
    assert framework_env.get("autocast_dtype") == "bfloat16" or framework_env.get("keras_dtype_policy") == "mixed_bfloat16"
    assert record["env"]["cpu_precision_flags"]
