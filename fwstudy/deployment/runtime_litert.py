"""LiteRT's interpreter (``ai-edge-litert``): the runtime of the ``.tflite`` artifacts, without
TensorFlow in the process, as on a device (not the deprecated ``tf.lite.Interpreter``).

The artifacts keep Keras' dynamic batch (shape signature ``[-1, ...]``): the interpreter is
resized when the batch changes, once, outside any timed call of that batch size.
"""

from __future__ import annotations

import numpy as np


def prepare(runtime: str) -> None:
    from ai_edge_litert import interpreter  # noqa: F401  (part of the cold start)


def load(runtime: str, path: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    shape: list[tuple[int, ...] | None] = [None]

    def predict(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:
            interpreter.resize_tensor_input(source["index"], list(x.shape))
            interpreter.allocate_tensors()
            shape[0] = x.shape
        interpreter.set_tensor(source["index"], x.astype(source["dtype"], copy=False))
        interpreter.invoke()
        return interpreter.get_tensor(target["index"]).copy()

    return predict
