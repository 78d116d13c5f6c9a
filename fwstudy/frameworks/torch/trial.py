"""PyTorch side of a trial: eager loop or torch.compile (inductor), on CPU or CUDA."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy.config.trial import TrialConfig
from fwstudy.frameworks.base import (
    InferResult,
    RetraceResult,
    TrainResult,
    TrialError,
    overhead_blocks,
    shape_sequence,
    shaped_params,
)
from fwstudy.measure import training
from fwstudy.measure.timing import measure_steps
from fwstudy.workloads.spec import WorkloadSpec


def configure(config: TrialConfig) -> torch.device:
    torch.set_num_threads(config.threads)
    torch.set_num_interop_threads(config.interop_threads)
    if config.device == "gpu":
        if not torch.cuda.is_available():
            raise TrialError("device 'gpu' asked for, but torch.cuda.is_available() is False")
        # fp32 on both sides (fairness rule 3): TF32 off, as the TF backend does.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda")
    return torch.device("cpu")


def framework_env(config: TrialConfig, device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "parallel_info": torch.__config__.parallel_info(),
        "compile": {"backend": "inductor", "mode": "default", "scope": "model forward+backward; optimizer eager"}
        if config.mode == "compiled"
        else None,
    }
    if device.type == "cuda":
        env["gpu_name"] = torch.cuda.get_device_name(device)
        env["cuda_version"] = torch.version.cuda
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        env["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    return env


def to_device(batch: tuple[np.ndarray, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(a).to(device) for a in batch)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Adam with the constants of fwstudy.measure.training, shared by trials and the parity gate."""
    return torch.optim.Adam(
        model.parameters(),
        lr=training.LEARNING_RATE,
        betas=(training.ADAM_BETA_1, training.ADAM_BETA_2),
        eps=training.ADAM_EPSILON,
    )


def gpu_peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class Training:
    """Model, batches and optimizer of one trial; ``step`` is what the harness times and
    ``bare`` the same training written as a plain loop, for the overhead benchmark."""

    def __init__(self, config: TrialConfig, spec: WorkloadSpec, dynamic: bool | None = None):
        self.device = configure(config)
        params = config.workload_params
        torch.manual_seed(config.seed)
        self.model = spec.implementation("torch").build_model(params).to(self.device)
        self.model.train()
        gen = np.random.default_rng(config.seed)
        self.batches = [
            to_device(spec.synthetic_batch(params, config.batch_size, gen), self.device)
            for _ in range(training.BATCH_POOL)
        ]
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = make_optimizer(self.model)
        self.forward = (
            torch.compile(self.model, dynamic=dynamic) if config.mode == "compiled" else self.model
        )
        self.sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.forward(x), y)
        loss.backward()
        self.optimizer.step()
        self.sync()
        return loss.item()

    def bare(self, steps: int) -> float:
        start = time.perf_counter()
        for i in range(steps):
            x, y = self.batches[i % len(self.batches)]
            self.optimizer.zero_grad(set_to_none=True)
            self.loss_fn(self.forward(x), y).backward()
            self.optimizer.step()
        self.sync()
        return time.perf_counter() - start

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def dynamo_counts() -> dict[str, int]:
    """What torch.compile did: frames compiled (first compile plus recompiles), distinct
    graphs, and graph breaks (code dynamo could not capture, run eagerly in between)."""
    from torch._dynamo.utils import counters

    return {
        "compiles": int(counters["frames"]["ok"]),
        "graphs": int(counters["stats"]["unique_graphs"]),
        "graph_breaks": int(sum(counters["graph_break"].values())),
    }


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    run = Training(config, spec)
    samples = measure_steps(run.step, config.warmup, config.steps)
    env = framework_env(config, run.device)
    if config.mode == "compiled":
        # nn.LSTM, for one, is skipped by dynamo (allow_rnn=False): the counts make that visible.
        env["dynamo"] = dynamo_counts()
    return TrainResult(
        samples=samples, params=run.param_count(), framework_env=env,
        gpu_peak_mb=gpu_peak_mb(run.device),
    )


def retrace(config: TrialConfig, spec: WorkloadSpec) -> RetraceResult:
    """Training steps over changing shapes; ``dynamic`` variant: ``torch.compile(dynamic=True)``,
    default: ``dynamic`` unset (dynamo specializes, then recompiles with dynamic dims)."""
    from torch._dynamo.utils import counters

    counters.clear()
    run = Training(config, spec, dynamic=True if config.variant == "dynamic" else None)
    gen = np.random.default_rng(config.seed + 1)
    times = []
    for batch, length in shape_sequence(config):
        x, y = to_device(spec.synthetic_batch(shaped_params(config.workload_params, length), batch, gen), run.device)
        start = time.perf_counter()
        run.optimizer.zero_grad(set_to_none=True)
        loss = run.loss_fn(run.forward(x), y)
        loss.backward()
        run.optimizer.step()
        run.sync()
        loss.item()
        times.append(time.perf_counter() - start)
    counts = dynamo_counts() if config.mode == "compiled" else {"compiles": 0, "graphs": 0, "graph_breaks": 0}
    return RetraceResult(
        shape_times_s=times, traces=counts["compiles"], graphs=counts["graphs"],
        graph_breaks=counts["graph_breaks"], params=run.param_count(),
        framework_env=framework_env(config, run.device), gpu_peak_mb=gpu_peak_mb(run.device),
    )


def overhead(config: TrialConfig, spec: WorkloadSpec, blocks: int) -> dict[str, float]:
    run = Training(config, spec)
    measure_steps(run.step, config.warmup, 1)  # compile and warm up before either loop
    return overhead_blocks(run.bare, run.step, config.steps, blocks)


def infer(config: TrialConfig, spec: WorkloadSpec) -> InferResult:
    """``eval()`` and ``inference_mode``; each call copies its output to the host, as a
    served model must (and as TF's ``.numpy()`` does)."""
    device = configure(config)
    params = config.workload_params
    torch.manual_seed(config.seed)
    model = spec.implementation("torch").build_model(params).to(device).eval()
    forward = torch.compile(model) if config.mode == "compiled" else model
    gen = np.random.default_rng(config.seed)
    one = to_device(spec.synthetic_batch(params, 1, gen), device)[0]
    many = to_device(spec.synthetic_batch(params, config.batch_size, gen), device)[0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def call(x: torch.Tensor) -> float:
        out = forward(x).cpu()
        return float(out.reshape(-1)[0])

    with torch.inference_mode():
        latency = measure_steps(lambda i: call(one), config.warmup, config.latency_calls)
        throughput = measure_steps(lambda i: call(many), config.warmup, config.steps)
    return InferResult(
        latency=latency, throughput=throughput, params=sum(p.numel() for p in model.parameters()),
        framework_env=framework_env(config, device), gpu_peak_mb=gpu_peak_mb(device),
    )
