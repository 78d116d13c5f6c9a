"""Real trials through the CLI contract, one per framework (slow: each imports a framework)."""

import json
import sys

import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.batch import run_batch
from fwstudy.harness.runner import run_trial
from fwstudy.results.store import ResultStore
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

REQUIRED_FIELDS = {"workload", "framework", "mode", "device", "batch_size", "threads", "status", "error", "metrics", "env"}
REQUIRED_METRICS = {"step_time_ms_median", "throughput_samples_per_s", "compile_s", "peak_rss_mb", "params", "flops_per_step"}


@pytest.fixture(scope="module")
def records():
    out = {}
    for framework, mode in (("torch", "eager"), ("tensorflow", "eager"), ("tensorflow", "graph")):
        done = run_cli(
            "run", "--workload", "mlp", "--framework", framework, "--mode", mode,
            "--steps", "4", "--warmup", "1", "--threads", "2", "--gemm-size", "256", "--json",
        )
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1, f"exactly one JSON record on stdout, got: {done.stdout!r}"
        out[(framework, mode)] = (done.returncode, json.loads(lines[0]))
    return out


@pytest.mark.parametrize("key", [("torch", "eager"), ("tensorflow", "eager"), ("tensorflow", "graph")])
def test_cli_prints_one_ok_record_with_the_contract_fields(records, key):
    returncode, record = records[key]
    assert returncode == 0, record["error"]
    assert record["status"] == "ok" and record["error"] is None
    assert REQUIRED_FIELDS <= set(record)
    assert REQUIRED_METRICS <= set(record["metrics"])
    m = record["metrics"]
    assert m["params"] == m["params_analytic"] == 669706
    assert m["step_time_ms_median"] > 0 and m["throughput_samples_per_s"] > 0
    assert m["peak_rss_mb"] >= m["rss_after_import_mb"] > 0
    assert len(record["samples"]["step_time_ms"]) == 4
    # Collectors of issue 4: memory above the post-import baseline, CPU, MFU.
    assert 0 < m["peak_rss_above_import_mb"] < m["peak_rss_mb"]
    assert 0 < m["cpu_utilization"] <= 1.2 and m["cpu_cores_busy"] > 0
    assert m["gemm_peak_gflops"] > 0 and 0 < m["mfu"] == pytest.approx(m["achieved_gflops"] / m["gemm_peak_gflops"])
    assert record["env"]["gemm_peak"]["gemm_size"] == 256
    # Issue 10: one MFU denominator (the best of torch, TensorFlow and NumPy), the own one too.
    peaks = record["env"]["gemm_peak"]["peaks"]
    assert set(peaks) == {"torch", "tensorflow", "numpy"} and all(v > 0 for v in peaks.values())
    assert m["gemm_peak_gflops"] == max(peaks.values()) and m["gemm_peak_own_gflops"] == peaks[key[0]]
    assert m["mfu_own"] >= m["mfu"] and record["env"]["precision"] == "fp32"
    # F2 on anonymous memory: steady state and compile peak apart, above the import baseline.
    assert m["anon_after_import_mb"] > 0 and 0 < m["peak_anon_above_import_mb"] < m["peak_rss_mb"]
    assert m["compile_peak_anon_above_import_mb"] >= 0
    assert m["peak_anon_mb"] == pytest.approx(m["anon_after_import_mb"] + m["peak_anon_above_import_mb"])
    assert record["samples"]["rss_curve"]["anon_mb"] and 2 in record["samples"]["rss_curve"]["phase"]
    assert m["cpu_s_per_sample"] > 0 and m["throughput_samples_per_s"] == pytest.approx(
        record["batch_size"] * 4 / m["timed_total_s"])
    assert record["env"]["compile_cache"]["state"] == "cold"
    assert record["env"]["variables"]["TORCHINDUCTOR_COMPILE_THREADS"] == "1"
    assert record["env"]["fingerprint"]["host"] == record["env"]["hostname"]
    assert record["samples"]["rss_curve"]["rss_mb"]
    assert record["env"]["threadpools"] and "load_average_1m" in record["env"]
    # The import footprint is the framework's alone: the child had not imported these yet.
    assert not {"pandas", "matplotlib"} & set(record["env"]["modules_before_framework_import"])


def test_both_frameworks_ran_with_equal_threads_and_alone(records):
    torch_env = records[("torch", "eager")][1]["env"]
    tf_env = records[("tensorflow", "eager")][1]["env"]
    assert torch_env["threads"] == tf_env["threads"] == 2
    assert torch_env["framework"]["torch_num_threads"] == tf_env["framework"]["tf_intra_op_threads"] == 2
    assert torch_env["variables"]["OMP_NUM_THREADS"] == tf_env["variables"]["OMP_NUM_THREADS"] == "2"
    assert torch_env["frameworks_loaded"] == {"torch": True, "tensorflow": False}
    assert tf_env["frameworks_loaded"] == {"torch": False, "tensorflow": True}
    for env in (torch_env, tf_env):
        for key in ("python", "torch_version", "tensorflow_version", "keras_version", "numpy_version",
                    "cpu_model", "logical_cores", "git_commit", "git_dirty", "timestamp", "device"):
            assert key in env


def test_a_gpu_trial_without_a_gpu_fails_with_its_reason():
    record = run_trial(TrialConfig(workload="mlp", framework="torch", mode="eager", device="gpu", steps=2))
    if record["status"] == "ok":
        pytest.skip("this machine has a GPU")
    assert record["status"] == "failed"
    assert "cuda" in record["error"].lower()


def test_a_batch_goes_on_after_a_child_killed_by_a_signal(tmp_path, fake_python):
    killer = fake_python("kill -KILL $$")
    configs = [
        TrialConfig(workload="mlp", framework="torch", mode="eager", steps=2, warmup=0, repeat=r)
        for r in range(3)
    ]

    def run(config):
        return run_trial(config, python=killer if config.repeat == 1 else sys.executable)

    table = run_batch(configs, ResultStore(tmp_path), run=run, progress=lambda line: None)
    by_repeat = table.drop_duplicates("trial_id").set_index("repeat")
    assert by_repeat.loc[0, "status"] == "ok" and by_repeat.loc[2, "status"] == "ok"
    assert by_repeat.loc[1, "status"] == "failed"
    assert by_repeat.loc[1, "error"].startswith("killed by SIGKILL")


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_inference_trial_reports_latency_percentiles(framework):
    done = run_cli(
        "run", "--workload", "mlp", "--framework", framework, "--mode", "eager", "--task", "inference",
        "--latency-calls", "30", "--batch-size", "32", "--steps", "3", "--warmup", "1",
        "--gemm-size", "256", "--json",
    )
    record = json.loads(done.stdout)
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert 0 < m["latency_ms_p50"] <= m["latency_ms_p90"] <= m["latency_ms_p99"]
    assert m["step_time_ms_median"] == m["latency_ms_p50"]
    assert m["throughput_samples_per_s"] > 0 and m["flops_per_step"] > 0
    assert len(record["samples"]["latency_ms"]) == 30
    assert m["latency_calls"] == 30
    assert m["latency_ms_p99_ci_low"] <= m["latency_ms_p99"] <= m["latency_ms_p99_ci_high"]
    assert 0 < m["latency_ms_p99_ci_confidence"] < 0.95  # 30 calls can't reach 95% for a p99
    assert record["config"]["task"] == "inference"
