"""PyTorch side of a trial: eager loop or torch.compile (inductor), on CPU or CUDA."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fwstudy import training
from fwstudy.backends import TrainResult, TrialError
from fwstudy.config import TrialConfig
from fwstudy.timing import measure_steps
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


def train(config: TrialConfig, spec: WorkloadSpec) -> TrainResult:
    device = configure(config)
    params = config.workload_params
    torch.manual_seed(config.seed)
    model = spec.implementation("torch").build_model(params).to(device)
    model.train()
    gen = np.random.default_rng(config.seed)
    batches = [
        to_device(spec.synthetic_batch(params, config.batch_size, gen), device)
        for _ in range(training.BATCH_POOL)
    ]
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=training.LEARNING_RATE,
        betas=(training.ADAM_BETA_1, training.ADAM_BETA_2),
        eps=training.ADAM_EPSILON,
    )
    forward = torch.compile(model) if config.mode == "compiled" else model
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(i: int) -> float:
        x, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        sync()
        return loss.item()

    samples = measure_steps(step, config.warmup, config.steps)
    count = sum(p.numel() for p in model.parameters())
    return TrainResult(samples=samples, params=count, framework_env=framework_env(config, device))
