"""fp32 GEMM throughput of PyTorch on this machine: the yardstick of its MFU."""

from __future__ import annotations

import time

import torch


def gemm_times(size: int, repeats: int, threads: int, device: str) -> list[float]:
    torch.set_num_threads(threads)
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as in every trial
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dev)
    b = torch.randn(size, size, generator=gen).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return times
