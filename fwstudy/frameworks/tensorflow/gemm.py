"""fp32 GEMM throughput of TensorFlow on this machine: the yardstick of its MFU."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

WARMUP_CALLS = 3


def gemm_times(size: int, repeats: int, threads: int, device: str, precision: str = "fp32") -> list[float]:
    """Seconds per ``size``² fp32 matmul, ``repeats`` back-to-back calls after an untimed
    warm-up (``repeats`` ≥ 50 is the caller's). The clock is read only after
    ``tf.test.experimental.sync_devices()``, TensorFlow's documented benchmarking barrier:
    it waits for the device's stream (GPU kernels are queued asynchronously) and for eager
    ops still pending in an asynchronous executor, so no matmul is timed as "done" while it
    still runs. Eager CPU execution is synchronous by default (the record's
    ``tf.config.experimental.get_synchronous_execution()``); the barrier costs a few µs
    there. TF32 is off on a GPU for fp32, on for tf32 (as the trials: ``trial.set_precision``);
    bf16 multiplies bfloat16 matrices (what the mixed_bfloat16 policy hands a matmul)."""
    from fwstudy.frameworks.tensorflow.trial import set_precision

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    name = "/GPU:0" if device == "gpu" else "/CPU:0"
    set_precision(precision, device, policy=False)
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    gen = np.random.default_rng(0)
    sync = tf.test.experimental.sync_devices
    with tf.device(name):
        a = tf.cast(tf.constant(gen.standard_normal((size, size), dtype=np.float32)), dtype)
        b = tf.cast(tf.constant(gen.standard_normal((size, size), dtype=np.float32)), dtype)
        for _ in range(WARMUP_CALLS):
            c = tf.linalg.matmul(a, b)
        sync()
        float(c[0, 0])  # the warm-up's result exists on the host side: nothing left pending
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            c = tf.linalg.matmul(a, b)
            sync()
            times.append(time.perf_counter() - start)
        float(c[0, 0])
    return times
