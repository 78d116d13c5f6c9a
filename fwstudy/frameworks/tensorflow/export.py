"""TensorFlow side of F6: export the trained workload along one path with Keras 3's own
exporters (``model.export``: SavedModel, LiteRT, ONNX), and serve the SavedModel. Imported
only inside an ``export`` child (rule 1). The ``.tflite`` and ``.onnx`` artifacts are served
by framework-free runtimes (``deployment/runtime_litert.py``, ``runtime_onnx.py``).

The weights are the ones the PyTorch child trained, moved by the workload's weight map
(``convergence.build``): both frameworks' artifacts come from one set of weights.

``tf2onnx.convert.from_keras`` and the TFLite converter's ``from_keras_model`` have open
breakages under Keras 3, so neither is used: Keras' ``format="litert"`` passes its keyword
arguments to the TFLite converter it builds from a SavedModel, and ``format="onnx"`` converts
the model's traced function (Keras' own tf2onnx glue). LiteRT's full-integer int8 gets the
representative data set ``x_calib`` (training samples, as PT2E's calibration on the other
side) and only int8 builtin kernels; its input and output stay float32 (quantized at the
edges), so it is served like the other artifacts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwstudy.frameworks.tensorflow import convergence
from fwstudy.workloads import get_workload


def eager_model(job: dict[str, Any]) -> keras.Model:
    convergence.configure(int(job["threads"]))
    spec = get_workload(job["workload"])
    params = spec.resolve_params(dict(spec.dataset_params))
    return convergence.build(spec, params, 0, dict(np.load(job["weights"])))


def litert_options(name: str, calib: np.ndarray) -> dict[str, Any]:
    if name == "litert_fp32":
        return {}
    if name == "litert_dynamic_int8":
        return {"optimizations": [tf.lite.Optimize.DEFAULT]}

    def representative():
        for i in range(len(calib)):
            yield [calib[i:i + 1]]

    return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}


def export(job: dict[str, Any], model: keras.Model, inputs: dict[str, np.ndarray]) -> tuple[Path, float]:
    """Write the artifact of ``job["path"]`` into ``job["artifact_dir"]``; (its file or folder,
    seconds the export itself took)."""
    folder = Path(job["artifact_dir"])
    name = job["path"]
    start = time.perf_counter()
    if name == "savedmodel":
        target = folder / "saved_model"
        model.export(str(target), format="tf_saved_model", verbose=False)
    elif name.startswith("litert"):
        target = folder / "model.tflite"
        model.export(str(target), format="litert", verbose=False, **litert_options(name, inputs["x_calib"]))
    elif name in ("onnx_tf", "onnx_tf_int8"):
        from fwstudy.deployment import runtime_onnx

        target = folder / "model.onnx"
        fp32 = target if name == "onnx_tf" else folder / "model_fp32.onnx"
        model.export(str(fp32), format="onnx", verbose=False)
        if name == "onnx_tf_int8":
            runtime_onnx.quantize(fp32, target)
            fp32.unlink()
    else:
        raise ValueError(f"TensorFlow has no export path {name!r}")
    return target, time.perf_counter() - start


def reference(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(tf.constant(x), training=False))


# --- serving the SavedModel ----------------------------------------------------------------------


def prepare(runtime: str) -> None:
    """TensorFlow is imported with this module: its import is the runtime's."""


def load(runtime: str, path: str, threads: int):
    if runtime != "tensorflow":
        raise ValueError(f"no TensorFlow runtime {runtime!r}")
    convergence.configure(threads)
    loaded = tf.saved_model.load(path)

    def predict(x: np.ndarray) -> np.ndarray:
        return loaded.serve(tf.constant(x)).numpy()

    return predict


# --- F7: the TensorFlow twin from the shared weights, and its ONNX file -------------------------


def interop(job: dict[str, Any]) -> dict[str, Any]:
    """The twin at the workload's default shape with the PyTorch side's weights moved by the
    workload's weight map (the parity gate's transfer): its eager logits on the shared inputs
    and forward time (``keras_multibackend.run``, the loop the torch backend is timed by), then
    the ONNX file of Keras' ``model.export(format="onnx")``."""
    from fwstudy.frameworks.tensorflow import keras_multibackend

    convergence.configure(int(job["threads"]))
    result, model = keras_multibackend.run(job, keep=True)
    start = time.perf_counter()
    model.export(job["onnx"], format="onnx", verbose=False)
    return {**result, "onnx_export_s": time.perf_counter() - start, "tensorflow_version": tf.__version__}
