"""fp32 GEMM throughput of PyTorch on this machine: the yardstick of its MFU.

``gemm_times(size, repeats, threads, device)`` returns seconds per ``size`` x ``size`` fp32
matmul, ``repeats`` back-to-back calls after an untimed warm-up (the caller picks size and
repeats: >= 50 calls, n >= 8192 on a GPU). Each call is timed as TensorFlow's is
(``frameworks/tensorflow/gemm.py``): the host clock around the call and a device
synchronization before each clock read. CUDA events would time the device alone, but
TensorFlow's Python API has none, and the two peaks must be measured the same way (rule 10);
at n >= 8192 one fp32 call takes >= 20 ms on the fastest GPU lent here, so the
synchronization's ~10 µs is under 0.1% of it. On the CPU a matmul returns when it is done. The output buffer is allocated
once (``out=``), so no call pays for an allocation.
"""

from __future__ import annotations

import time

import torch

WARMUP_CALLS = 3


def gemm_times(size: int, repeats: int, threads: int, device: str, precision: str = "fp32") -> list[float]:
    """``precision`` as the trials set it (``trial.set_precision``): fp32 with TF32 off, tf32
    with TF32 on, bf16 on bfloat16 matrices (what autocast hands a matmul)."""
    from fwstudy.frameworks.torch.trial import set_precision

    torch.set_num_threads(threads)
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    set_precision(precision, dev)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dev, dtype)
    b = torch.randn(size, size, generator=gen).to(dev, dtype)
    c = torch.empty(size, size, device=dev, dtype=dtype)
    for _ in range(WARMUP_CALLS):
        torch.matmul(a, b, out=c)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        sync()
        times.append(time.perf_counter() - start)
    return times
