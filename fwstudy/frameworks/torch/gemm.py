"""fp32 GEMM throughput of PyTorch on this machine: the yardstick of its MFU.

``gemm_times(size, repeats, threads, device)`` returns seconds per ``size`` x ``size`` fp32
matmul, ``repeats`` back-to-back calls after an untimed warm-up (the caller picks size and
repeats: >= 50 calls, n >= 8192 on a GPU). On a GPU each call is timed with a pair of CUDA
events recorded on the stream around it, and the host synchronizes once at the end, so the
calls run back to back without a host round trip between them; on the CPU each call is timed
with ``perf_counter`` (a CPU matmul returns when it is done). The output buffer is allocated
once (``out=``), so no call pays for an allocation.
"""

from __future__ import annotations

import time

import torch

WARMUP_CALLS = 3


def gemm_times(size: int, repeats: int, threads: int, device: str) -> list[float]:
    torch.set_num_threads(threads)
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as in every trial
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dev)
    b = torch.randn(size, size, generator=gen).to(dev)
    c = torch.empty(size, size, device=dev)
    for _ in range(WARMUP_CALLS):
        torch.matmul(a, b, out=c)
    if dev.type == "cuda":
        return cuda_event_times(a, b, c, repeats)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        times.append(time.perf_counter() - start)
    return times


def cuda_event_times(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, repeats: int) -> list[float]:
    """Per-call device time from CUDA events (``elapsed_time`` is in milliseconds)."""
    torch.cuda.synchronize()
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)
    ]
    for start, end in events:
        start.record()
        torch.matmul(a, b, out=c)
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1e3 for start, end in events]
