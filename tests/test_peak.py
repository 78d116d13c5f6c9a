"""MFU's denominator and the trial identity: the GEMM peak cache key follows the environment,
NumPy's GEMM runs in a child of its own, the code version hashes only the measuring code, and
a trial id changes with the environment fingerprint (fast: no framework)."""

import json
import shutil

import pytest

from fwstudy.config.trial import TrialConfig
from fwstudy.harness import environment, peak, runner

FINGERPRINT = {"torch": "2.0", "tensorflow": "2.16", "keras": "3.0", "numpy": "1.26", "cpu_model": "X", "host": "h"}


@pytest.mark.parametrize("changed", ["torch", "tensorflow", "numpy", "keras", "cpu_model", "host"])
def test_the_peak_cache_key_changes_with_the_environment(changed):
    key = peak.cache_key("torch", 2, "cpu", 1024, fingerprint=FINGERPRINT)
    other = peak.cache_key("torch", 2, "cpu", 1024, fingerprint={**FINGERPRINT, changed: "other"})
    assert key != other
    assert key == peak.cache_key("torch", 2, "cpu", 1024, fingerprint=dict(FINGERPRINT))
    assert key != peak.cache_key("numpy", 2, "cpu", 1024, fingerprint=FINGERPRINT)
    assert key != peak.cache_key("torch", 4, "cpu", 1024, fingerprint=FINGERPRINT)


def test_gpu_peaks_use_large_matrices_and_many_calls():
    assert peak.gemm_size_for("gpu", 1024) >= 8192
    assert peak.gemm_size_for("cpu", 1024) == 1024
    assert peak.GEMM_REPEATS >= 50
    assert set(peak.PEAK_SOURCES) == {"torch", "tensorflow", "numpy"}


def test_numpy_gemm_job_limits_its_blas_and_times_every_call(tmp_path):
    out = tmp_path / "gemm.json"
    assert peak.run_job({"framework": "numpy", "size": 64, "threads": 1, "device": "cpu", "out": str(out)}) == 0
    result = json.loads(out.read_text())
    assert result["gemm_repeats"] == peak.GEMM_REPEATS and result["gemm_peak_gflops"] > 0
    blas = [p for p in result["threadpools"] if p.get("user_api") == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)


def test_mfu_divides_by_the_machine_peak_and_by_the_own_peak(monkeypatch):
    def fake_peak(threads, device, size, *, python, precision):
        return {"gemm_peak_gflops": 100.0, "best_source": "numpy",
                "peaks": {"torch": 80.0, "tensorflow": 50.0, "numpy": 100.0}}

    monkeypatch.setattr(runner, "machine_peak", fake_peak)
    record = {"status": "ok", "framework": "tensorflow", "threads": 2, "device": "cpu",
              "metrics": {"achieved_gflops": 10.0}, "env": {"precision": "fp32"}}
    runner.add_mfu(record, 1024, "python")
    m = record["metrics"]
    assert m["gemm_peak_gflops"] == 100.0 and m["mfu"] == pytest.approx(0.1)
    assert m["gemm_peak_own_gflops"] == 50.0 and m["mfu_own"] == pytest.approx(0.2)


def touch(path):
    path.write_text(path.read_text() + "\n# changed\n")


def test_code_version_hashes_only_the_measuring_code(tmp_path):
    package = tmp_path / "fwstudy"
    shutil.copytree(environment.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    base = environment.hash_code(package)
    assert base == environment.hash_code(environment.PACKAGE_DIR)
    for unmeasured in ("figures/common.py", "results/stats.py", "parity/report.py",
                       "workloads/adaptive/parity_report.py"):
        touch(package / unmeasured)
        assert environment.hash_code(package) == base, unmeasured
    for measured in ("harness/trial_child.py", "measure/timing.py", "workloads/mlp/spec.py",
                     "config/trial.py", "errors.py", "paths.py"):
        touch(package / measured)
        changed = environment.hash_code(package)
        assert changed != base, measured
        base = changed


def test_a_run_package_version_hashes_its_listed_files_only(tmp_path):
    """Deployment and usability runs re-measure when their own children change, not when a
    table or figure of theirs does; the order a package lists its files in does not matter."""
    for name in ("child.py", "runs.py", "tables.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    base = environment.subpackage_version(tmp_path, ("runs.py", "child.py"))
    assert environment.subpackage_version(tmp_path, ("child.py", "runs.py")) == base
    touch(tmp_path / "tables.py")
    assert environment.subpackage_version(tmp_path, ("runs.py", "child.py")) == base
    touch(tmp_path / "child.py")
    assert environment.subpackage_version(tmp_path, ("runs.py", "child.py")) != base


def test_a_trial_id_includes_the_environment_fingerprint():
    config = TrialConfig(workload="mlp", framework="torch", mode="eager", threads=2)
    here = environment.fingerprint_digest()
    assert config.identity("v") == config.identity("v", here)
    elsewhere = environment.fingerprint_digest({**environment.fingerprint(), "host": "another"})
    assert config.identity("v", elsewhere) != config.identity("v", here)
    upgraded = environment.fingerprint_digest({**environment.fingerprint(), "torch": "99.0"})
    assert config.identity("v", upgraded) != config.identity("v", here)


def test_records_carry_the_fingerprint_and_the_inductor_compile_threads():
    from fwstudy.harness.process import child_environment

    env = environment.base_environment()
    assert env["fingerprint"] == environment.fingerprint()
    assert set(env["fingerprint"]) == {"torch", "tensorflow", "keras", "numpy", "cpu_model", "host"}
    for name in ("TORCHINDUCTOR_COMPILE_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME"):
        assert name in environment.RECORDED_VARIABLES
    child = child_environment(TrialConfig(workload="mlp", framework="torch", mode="compiled", threads=2))
    assert child["TORCHINDUCTOR_COMPILE_THREADS"] == "1"
