"""F6 (fwstudy.deployment, fwstudy.figures.deployment): bad input, the serving child on a real
artifact, the parent's bookkeeping when a child crashes, and the figure's numbers.

The serving test builds a tiny ONNX file with ``onnx.helper`` (no framework), so it exercises
the real ``serve`` phase in its own process, with onnxruntime only, in about a second; the
framework exports run in the smoke notebook (tests/test_notebooks.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fwstudy.config.profile import Profile
from fwstudy.deployment import catalog, runs
from fwstudy.errors import BadInput
from fwstudy.figures import deployment
from tests.conftest import PROJECT


def run_child(job: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"out": str(tmp_path / "out.json"), **job}))
    return subprocess.run([sys.executable, "-m", "fwstudy.harness.child", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=PROJECT)


# --- bad input ------------------------------------------------------------------------------------


def test_an_unknown_path_names_the_valid_ones():
    with pytest.raises(BadInput, match=r"unknown export path 'tflite'; valid paths: savedmodel, litert_fp32"):
        catalog.check_path("tflite")


def test_a_path_the_framework_lacks_names_its_paths():
    with pytest.raises(BadInput, match=r"framework torch has no export path 'litert_fp32'; its paths: torch_export"):
        catalog.check_path("litert_fp32", "torch")
    with pytest.raises(BadInput, match="valid frameworks"):
        catalog.check_path("savedmodel", "jax")
    assert set(catalog.paths_of("torch")) | set(catalog.paths_of("tensorflow")) == set(catalog.PATHS)


@pytest.mark.parametrize(("path", "framework", "message"), [
    ("nope", "torch", "unknown export path 'nope'"),
    ("onnx_tf", "torch", "framework torch has no export path 'onnx_tf'"),
])
def test_the_child_refuses_bad_input_in_one_line_with_status_2(tmp_path, path, framework, message):
    done = run_child({"kind": "export", "phase": "export", "path": path, "framework": framework}, tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("deployment_paths", ["savedmodel", "tflite"], "unknown export path 'tflite'"),
    ("deployment_paths", [], "deployment_paths must be a non-empty list"),
    ("deployment_workloads", ["resnet"], "unknown workload 'resnet'"),
    ("interop_workloads", ["resnet"], "unknown workload 'resnet'"),
    ("deployment_latency_calls", 0, "deployment_latency_calls"),
    ("interop_batch", -1, "interop_batch"),
])
def test_the_profile_refuses_bad_deployment_fields(field, value, message):
    with pytest.raises(BadInput, match=message):
        Profile(profile="smoke", **{field: value})


def test_every_parameter_file_names_valid_paths():
    from fwstudy.config.profile import load_profile_file

    for path in sorted((PROJECT / "parameters").glob("*.yaml")):
        profile = load_profile_file(path)
        assert profile.deployment_paths and all(p in catalog.PATHS for p in profile.deployment_paths)


# --- serving a real artifact ------------------------------------------------------------------------


def tiny_onnx(path: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    """logits = x @ weight + bias, one Gemm node, a dynamic batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", weight.shape[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", weight.shape[1]])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_the_serve_phase_times_an_artifact_in_its_own_runtime(tmp_path):
    """Cold start, latency, throughput, drift and accuracy of an ONNX file whose exact logits
    are known: drift within float32 rounding of the logits' scale, accuracy as NumPy's argmax
    gives it, and no framework in the serving process."""
    gen = np.random.default_rng(0)
    weight, bias = gen.standard_normal((16, 4)).astype(np.float32), gen.standard_normal(4).astype(np.float32)
    x = gen.standard_normal((50, 16)).astype(np.float32)
    exact = x.astype(np.float64) @ weight + bias
    y = np.argmax(exact, axis=1)
    y[:10] = (y[:10] + 1) % 4  # 10 of 50 labels wrong: accuracy 0.8
    tiny_onnx(tmp_path / "model.onnx", weight, bias)
    np.savez(tmp_path / "inputs.npz", x_test=x, y_test=y, x_one=x[:1], x_large=x[:32])
    np.savez(tmp_path / "reference.npz", logits=exact, accuracy=0.8)
    import time

    job = {"kind": "export", "phase": "serve", "path": "onnx_torch", "framework": "torch",
           "artifact": str(tmp_path / "model.onnx"), "inputs": str(tmp_path / "inputs.npz"),
           "reference": str(tmp_path / "reference.npz"), "threads": 1, "warmup": 2, "latency_calls": 30,
           "throughput_calls": 3, "spawn_time": time.time()}
    done = run_child(job, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert result["frameworks_loaded"] == []
    # float32 GEMM of 16 terms: each logit is off by at most ~16 eps |w||x| summed; bound by scale.
    bound = 16 * np.finfo(np.float32).eps * float(np.max(np.abs(x) @ np.abs(weight) + np.abs(bias)))
    assert 0 <= result["drift_max_abs"] <= bound
    assert result["accuracy"] == pytest.approx(0.8) and result["top1_agreement"] == 1.0
    assert result["latency_calls"] == 30 and 0 < result["latency_ms_p50"] <= result["latency_ms_p99"]
    assert result["large_batch"] == 32 and result["throughput_samples_per_s"] > 0
    assert 0 < result["load_s"] and 0 < result["first_prediction_s"] < result["cold_start_s"]


def test_a_failing_path_gives_a_one_line_reason_and_keeps_the_detail(tmp_path):
    """An artifact its runtime refuses (here bytes that are no ONNX model): a failed result,
    not a crash; ``error`` is one line naming the exception, ``error_detail`` the traceback
    down to the runtime's call and the whole message."""
    import time

    (tmp_path / "model.onnx").write_bytes(b"not an onnx model")
    np.savez(tmp_path / "inputs.npz", x_one=np.zeros((1, 4), np.float32))
    job = {"kind": "export", "phase": "serve", "path": "onnx_torch", "framework": "torch",
           "artifact": str(tmp_path / "model.onnx"), "inputs": str(tmp_path / "inputs.npz"),
           "reference": str(tmp_path / "reference.npz"), "threads": 1, "warmup": 1, "latency_calls": 2,
           "throughput_calls": 1, "spawn_time": time.time()}
    done = run_child(job, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["status"] == "failed"
    assert "\n" not in result["error"] and result["error"].split(":")[0] in result["error_detail"]
    detail = result["error_detail"]
    assert detail.startswith("Traceback") and "runtime_onnx.py" in detail and "InferenceSession" in detail


# --- a crashing path is a failed record, and the batch goes on ---------------------------------------

STAND_IN = r'''
import json, os, signal, sys
from pathlib import Path
job = json.loads(Path(sys.argv[1]).read_text())
if job.get("path") == "litert_int8" and job["phase"] == "export":
    os.kill(os.getpid(), signal.SIGSEGV)
if job["phase"] == "train":
    Path(job["weights"]).write_bytes(b"")
    result = {"status": "ok", "error": None, "test_accuracy": 0.9}
elif job["phase"] == "export":
    result = {"status": "ok", "error": None, "artifact": "a", "size_bytes": 10, "export_s": 0.1, "eager_accuracy": 0.9}
else:
    result = {"status": "ok", "error": None, "latency_ms_p50": 1.0, "accuracy": 0.9}
Path(job["out"]).write_text(json.dumps(result))
'''


def test_a_crashing_path_is_recorded_as_failed_and_the_batch_goes_on(tmp_path, fake_python):
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)
    python = fake_python(f'exec {sys.executable} {stand_in} "$3"')
    profile = Profile(profile="smoke", results_dir=str(tmp_path / "results"), deployment_workloads=["mlp"],
                      deployment_paths=["litert_int8", "onnx_torch"], threads=1)
    table = runs.measure_deployment(profile, progress=lambda line: None, python=python)
    rows = table.set_index(table["path"].fillna("train"))
    assert rows.loc["train", "status"] == "ok"
    assert rows.loc["litert_int8", "status"] == "failed"
    assert "killed by SIGSEGV" in rows.loc["litert_int8", "error"]
    assert rows.loc["onnx_torch", "status"] == "ok" and rows.loc["onnx_torch", "latency_ms_p50"] == 1.0
    stored = runs.store_of(profile).table()
    assert set(stored["status"]) == {"ok", "failed"} and (stored["variant"] == "litert_int8").any()


# --- the figure's numbers -------------------------------------------------------------------------------


def flat_table() -> pd.DataFrame:
    rows = [{"task": "deployment_train", "workload": "mlp", "status": "ok", "error": None, "test_accuracy": 0.95}]
    for path, accuracy, status in (("litert_fp32", 0.95, "ok"), ("litert_int8", 0.93, "ok"),
                                   ("onnx_torch_int8", 0.94, "ok"), ("pt2e_int8", None, "failed")):
        rows.append({"task": "deployment_export", "workload": "mlp", "path": path,
                     "framework": catalog.PATHS[path].framework, "status": status,
                     "error": None if status == "ok" else "RuntimeError: x", "accuracy": accuracy,
                     "eager_accuracy": 0.96, "size_mb": 1.0, "runtime_import_s": 0.1, "load_s": 0.01,
                     "first_prediction_s": 0.01, "latency_ms_p50": 0.1, "latency_ms_p99": 0.2,
                     "latency_calls": 20, "cpu_model": "test", "threads": 1})
    return pd.DataFrame(rows)


def test_int8_accuracy_is_set_beside_its_fp32_counterpart():
    numbers = deployment.analyse(flat_table())
    paths = numbers["paths"].set_index("path")
    assert paths.loc["litert_int8", "fp32_accuracy"] == 0.95  # the measured LiteRT fp32 artifact
    assert paths.loc["litert_int8", "accuracy_delta"] == pytest.approx(-0.02)
    assert paths.loc["onnx_torch_int8", "fp32_accuracy"] == 0.96  # its fp32 file not measured: eager
    assert list(numbers["failed"]["path"]) == ["pt2e_int8"]
    assert list(numbers["paths"]["path"]) == ["litert_fp32", "litert_int8", "onnx_torch_int8", "pt2e_int8"]


def test_the_figure_draws_the_paths_that_succeeded():
    import matplotlib

    matplotlib.use("Agg")
    fig = deployment.draw(deployment.analyse(flat_table()))
    assert len(fig.axes[0].get_yticklabels()) == 3
    assert "not a phone" in fig.texts[-1].get_text()


# --- PT2E on a convolution written with padding="same" -----------------------------------------------

SAME_PADDING = r'''
import json, torch
from fwstudy.frameworks.torch import export
from fwstudy.workloads import get_workload
spec = get_workload("cnn")
params = spec.resolve_params(dict(spec.dataset_params))
torch.manual_seed(0)
model = spec.implementation("torch").build_model(params).eval()
x, calib = torch.rand(4, 8, 8, 1), torch.rand(16, 8, 8, 1)
dynamic = export._dynamic(x, 64)
graph = torch.export.export(model, (x,), dynamic_shapes=dynamic).module()
rewritten = export.explicit_same_padding(graph)
with torch.no_grad():
    diff = float((graph(x) - model(x)).abs().max())
program = export._pt2e(model, x, calib, dynamic, export._x86_quantizer())
ops = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
floats = [n for n, p in program.state_dict.items() if p.dtype == torch.float32 and p.dim() > 1]
print(json.dumps({"rewritten": rewritten, "diff": diff, "ops": ops, "float_weights": floats}))
'''


def test_pt2e_quantizes_the_cnn_convolutions_after_the_same_padding_rewrite():
    """The rewrite changes no output (same arithmetic, explicit zeros) and lets the X86
    quantizer reach both convolutions: four per-channel int8 weights (2 conv, 2 linear), and no
    float32 weight matrix left in the saved program."""
    done = subprocess.run([sys.executable, "-c", SAME_PADDING], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rewritten"] == 2 and result["diff"] == 0.0
    assert "aten.conv2d.padding" not in result["ops"]
    assert result["ops"].count("quantized_decomposed.dequantize_per_channel.default") == 4
    assert result["float_weights"] == []
