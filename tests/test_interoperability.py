"""F7 (fwstudy.deployment.interop, fwstudy.figures.interoperability): the pairwise matrix, the
exporter's graph statistics, the tolerance verdicts, the figure, and the onnxruntime side in
its own process with no framework (on hand-built ONNX files, about a second); the real
four-process run is the smoke notebook's (tests/test_notebooks.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fwstudy.deployment import interop, runtime_onnx
from fwstudy.figures import interoperability
from tests.conftest import PROJECT
from tests.test_deployment import tiny_onnx


def test_the_matrix_is_symmetric_with_an_exact_zero_diagonal():
    logits = {"a": np.array([[1.0, 2.0]]), "b": np.array([[1.0, 2.5]]), "c": np.array([[0.0, 2.0]])}
    pairs = interop.matrix(logits)
    assert pairs["a"]["a"] == pairs["b"]["b"] == 0.0
    assert pairs["a"]["b"] == pairs["b"]["a"] == 0.5
    assert pairs["a"]["c"] == 1.0 and pairs["b"]["c"] == 1.0


def test_graph_stats_count_what_the_exporter_wrote(tmp_path):
    gen = np.random.default_rng(0)
    tiny_onnx(tmp_path / "m.onnx", gen.standard_normal((8, 3)).astype(np.float32), np.zeros(3, np.float32))
    stats = runtime_onnx.graph_stats(tmp_path / "m.onnx")
    assert stats["opset"] == 17 and stats["nodes"] == 1 and stats["op_types"] == {"Gemm": 1}
    assert stats["size_bytes"] == (tmp_path / "m.onnx").stat().st_size


def results(diff: float) -> list[dict]:
    names = ["PT eager", "TF eager", "ONNX from PT"]
    matrix = {a: {b: (0.0 if a == b else (diff if "ONNX" in a + b else 1e-7)) for b in names} for a in names}
    graph = {"opset": 18, "nodes": 5, "op_types": {"Gemm": 3, "Relu": 2}, "size_bytes": 2048, "producer": "p"}
    return [{"workload": "mlp", "status": "ok", "error": None, "matrix": matrix, "logit_scale": 3.0,
             "graphs": {"torch": graph, "tensorflow": None},
             "keras": {"torch": {"backend": "torch", "step_time_ms_median": 1.0, "frameworks_loaded": ["torch"]}}}]


@pytest.mark.parametrize(("diff", "outside"), [(5e-5, 0), (2e-4, 2)])
def test_pairs_above_the_parity_tolerance_are_named(diff, outside):
    numbers = interoperability.analyse(results(diff))
    assert len(numbers["outside"]) == outside
    assert len(numbers["pairs"]) == 9 and list(numbers["graphs"]["nodes"]) == [5]
    assert numbers["keras"].loc[0, "frameworks_loaded"] == ["torch"]


def test_the_figure_marks_the_tolerance():
    import matplotlib

    matplotlib.use("Agg")
    fig = interoperability.draw(interoperability.analyse(results(2e-4)))
    assert "2 pair(s) above 0.0001" in fig.texts[0].get_text()


def test_an_unknown_interop_side_is_refused_in_one_line(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"kind": "interop", "side": "jax", "out": str(tmp_path / "out.json")}))
    done = subprocess.run([sys.executable, "-m", "fwstudy.harness.child", str(job)], capture_output=True,
                          text=True, timeout=60, cwd=PROJECT)
    assert done.returncode == 2 and "unknown interop side 'jax'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_onnxruntime_side_runs_both_files_without_a_framework(tmp_path):
    gen = np.random.default_rng(1)
    weight, bias = gen.standard_normal((8, 3)).astype(np.float32), gen.standard_normal(3).astype(np.float32)
    tiny_onnx(tmp_path / "a.onnx", weight, bias)
    tiny_onnx(tmp_path / "b.onnx", weight, bias)
    x = gen.standard_normal((4, 8)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"kind": "interop", "side": "onnxruntime", "threads": 1, "out": str(tmp_path / "out.json"),
                               "inputs": str(tmp_path / "inputs.npz"),
                               "onnx": {"torch": str(tmp_path / "a.onnx"), "tensorflow": str(tmp_path / "b.onnx")}}))
    done = subprocess.run([sys.executable, "-m", "fwstudy.harness.child", str(job)], capture_output=True,
                          text=True, timeout=60, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["status"] == "ok" and result["frameworks_loaded"] == []
    # Same file twice: the runtime is deterministic, so the two are bit-identical.
    assert result["torch_logits"] == result["tensorflow_logits"]
    exact = x.astype(np.float64) @ weight + bias
    bound = 8 * np.finfo(np.float32).eps * float(np.max(np.abs(x) @ np.abs(weight) + np.abs(bias)))
    assert np.max(np.abs(np.asarray(result["torch_logits"]) - exact)) <= bound


def test_a_failed_side_is_listed_with_its_reason():
    run = results(5e-5)
    run[0]["side_errors"] = {"keras_torch": "RuntimeError: shape inference"}
    failed = interoperability.analyse(run)["failed"]
    assert list(failed["side"]) == ["keras_torch"] and "shape inference" in failed.loc[0, "error"]
