"""One PyTorch DDP worker, started by ``torchrun`` (which sets RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT); imports PyTorch only.

The model, data and optimizer are those of the single-process backend: the same seed builds
the same weights on every rank (DDP also broadcasts rank 0's at construction), every rank
draws the same pool of global batches and trains on its shard, and DDP averages the
gradients, so N workers take the single-process step on the same global batch.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fwstudy.harness.distributed.worker import WorkerContext

ISOLATED_ALLREDUCE_CALLS = 10


class CommTimer:
    """DDP communication hook: the default all-reduce (average of the gradient buckets),
    timed from each bucket's launch to its completion and summed per step.

    The time includes waiting for the slowest rank to reach that bucket and overlaps the rest
    of backward, so it is the communication's span, not extra time added to the step."""

    def __init__(self, world_size: int):
        self.world_size = world_size
        self.current_s = 0.0

    def hook(self, state, bucket):  # unannotated: DDP checks the annotation is dist.GradBucket
        import torch.distributed as dist

        start = time.perf_counter()
        tensor = bucket.buffer().div_(self.world_size)
        future = dist.all_reduce(tensor, async_op=True).get_future()

        def done(fut):
            self.current_s += time.perf_counter() - start
            return fut.value()[0]

        return future.then(done)

    def take_ms(self) -> float:
        value, self.current_s = self.current_s, 0.0
        return value * 1e3


ALLREDUCE_LAYOUT = (
    "one coalesced all-reduce per call: the gradient-shaped tensors (one per parameter, in "
    "parameter order) flattened and concatenated, all-reduced (SUM), split back into their "
    "shapes, as TensorFlow's collective all-reduce packs them (bytes_per_pack=0: one pack) "
    "inside its tf.function; before each call a one-element all-reduce as the barrier; one "
    "barrier and one payload call untimed first"
)


def isolated_allreduce_ms(shapes: list[tuple[int, ...]], device: Any, sync) -> list[float]:
    """Gradient-shaped tensors all-reduced alone, by the method of TensorFlow's worker
    (``frameworks/tensorflow/worker.py``): the same layout (``ALLREDUCE_LAYOUT``: concatenate,
    one all-reduce, split), a one-element all-reduce as the barrier before each call, and the
    same untimed warm-up (one barrier, one payload call); ``ISOLATED_ALLREDUCE_CALLS`` timed.
    The cost of the collective itself, without overlap and without waiting for a straggler."""
    import torch
    import torch.distributed as dist

    payload = [torch.zeros(shape, device=device) for shape in shapes]
    token = torch.zeros(1, device=device)

    def barrier() -> None:
        dist.all_reduce(token)
        sync()

    def all_reduce() -> list:
        flat = torch.cat([t.reshape(-1) for t in payload])
        dist.all_reduce(flat)
        out = [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in payload]), payload, strict=True)]
        sync()
        return out

    barrier()
    all_reduce()  # untimed, as TF's first calls (which trace its two functions)
    times = []
    for _ in range(ISOLATED_ALLREDUCE_CALLS):
        barrier()
        start = time.perf_counter()
        all_reduce()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def train(ctx: WorkerContext) -> dict[str, Any]:
    begin = time.perf_counter()
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from fwstudy.frameworks.torch.trial import (
        compile_evidence,
        configure,
        framework_env,
        import_compiler,
        make_optimizer,
        reset_compile_counters,
    )
    from fwstudy.harness.distributed.plan import shard
    from fwstudy.harness.distributed.worker import fault_hook, samples_payload
    from fwstudy.harness.environment import frameworks_loaded
    from fwstudy.measure import collectors, training
    from fwstudy.measure.timing import measure_steps
    from fwstudy.workloads import get_workload

    import_s = time.perf_counter() - begin
    config, plan = ctx.config, ctx.plan
    rss_after_import = collectors.rss_mb()
    device = configure(ctx.worker_config)
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
        device = torch.device("cuda", ctx.local_rank)
    start = time.perf_counter()
    dist.init_process_group(backend=plan.backend)
    setup_s = time.perf_counter() - start
    if dist.get_world_size() != plan.world_size or dist.get_rank() != ctx.rank:
        raise RuntimeError(
            f"torchrun gave rank {dist.get_rank()} of {dist.get_world_size()}, "
            f"the plan says rank {ctx.rank} of {plan.world_size}"
        )

    spec = get_workload(config.workload)
    params = config.workload_params
    torch.manual_seed(config.seed)
    model = spec.implementation("torch").build_model(params).to(device)
    model.train()
    ddp = DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)
    timer = CommTimer(plan.world_size)
    ddp.register_comm_hook(None, timer.hook)
    compiler_import_s = None
    if config.mode == "compiled":
        compiler_import_s = import_compiler()  # one-off imports kept out of the first step
        reset_compile_counters()
    forward = torch.compile(ddp) if config.mode == "compiled" else ddp
    gen = np.random.default_rng(config.seed)
    rows = shard(ctx.rank, plan.per_worker_batch)
    batches = [
        tuple(torch.as_tensor(a[rows]).to(device) for a in spec.synthetic_batch(params, plan.global_batch, gen))
        for _ in range(training.BATCH_POOL)
    ]
    loss_fn = nn.CrossEntropyLoss()
    optimizer = make_optimizer(model)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fault = fault_hook(ctx.rank)
    comm_ms: list[float] = []

    def step(i: int) -> float:
        x, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        # The global mean loss, all-reduced: every rank has finished this step when .item()
        # returns, so the clock read after it times the slowest rank's step.
        total = loss.detach().clone()
        dist.all_reduce(total)
        value = total.item() / plan.world_size
        comm_ms.append(timer.take_ms())
        fault(i)
        return value

    reset = collectors.reset_high_water()
    samples = measure_steps(step, config.warmup, config.steps)
    trial_peak = collectors.high_water_mb() if reset else None
    param_count = sum(p.numel() for p in model.parameters())
    isolated = isolated_allreduce_ms([tuple(p.shape) for p in model.parameters()], device, sync)
    dist.barrier()
    env = framework_env(ctx.worker_config, device)
    env.update(
        backend=dist.get_backend(), master_addr=os.environ.get("MASTER_ADDR"),
        master_port=os.environ.get("MASTER_PORT"), ddp_bucket_cap_mb=25,
        comm_hook="timed all-reduce (average), the default hook's math",
        isolated_allreduce_layout=ALLREDUCE_LAYOUT,
        isolated_allreduce_tensors=len(list(model.parameters())),
        compile_scope="DDP model forward+backward through torch.compile (DDPOptimizer splits the "
        "graph at the buckets); gradient all-reduce by DDP's hooks and Adam eager"
        if config.mode == "compiled" else "nothing compiled: forward, backward, all-reduce and Adam eager",
    )
    if config.mode == "compiled":
        env.update(compile_evidence=compile_evidence(), compiler_import_s=compiler_import_s)
    return {
        **samples_payload(samples, comm_ms[1 + config.warmup :]),
        "import_s": import_s,
        "setup_s": setup_s,
        "params": param_count,
        "isolated_allreduce_ms": isolated,
        "rss_after_import_mb": rss_after_import,
        "trial_peak_rss_mb": trial_peak,
        "threads": torch.get_num_threads(),
        "framework_env": env,
        "frameworks_loaded": frameworks_loaded(),
    }
