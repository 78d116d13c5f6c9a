"""fp32 GEMM throughput of TensorFlow on this machine: the yardstick of its MFU."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf


def gemm_times(size: int, repeats: int, threads: int, device: str) -> list[float]:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    name = "/GPU:0" if device == "gpu" else "/CPU:0"
    if device == "gpu":
        tf.config.experimental.enable_tensor_float_32_execution(False)
    gen = np.random.default_rng(0)
    with tf.device(name):
        a = tf.constant(gen.standard_normal((size, size), dtype=np.float32))
        b = tf.constant(gen.standard_normal((size, size), dtype=np.float32))

        def sync() -> None:
            if device == "gpu":
                tf.test.experimental.sync_devices()

        for _ in range(2):
            tf.linalg.matmul(a, b)
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.linalg.matmul(a, b)  # eager CPU ops run inline: returning means done
            sync()
            times.append(time.perf_counter() - start)
    return times
