"""Analytic FLOPs against PyTorch's own counter (``FlopCounterMode``), within 10%.

The count runs in a subprocess that imports only torch, so the test process stays free of
frameworks (rule 1). Two counter blind spots are switched off for the count only, without
changing the math: oneDNN's fused LSTM kernel and the fused CPU attention kernel are opaque to
``FlopCounterMode``, so the count runs with oneDNN disabled (nn.LSTM then runs as GEMMs) and
with the math backend of scaled-dot-product attention (which runs as bmm).

The adaptive workload's analytic count is an upper bound, its block at ``max_steps``
iterations; it is compared with threshold 0, where every sample runs all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fwstudy.workloads import WORKLOADS, get_workload

BATCH = 2
TOLERANCE = 0.10
# Parameters under which the analytic count is exact rather than a bound.
OVERRIDES = {"adaptive": {"threshold": 0.0}}

COUNT = """
import json
import sys

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fwstudy.workloads import WORKLOADS

counts = {}
overrides = json.loads(sys.argv[2])
torch.manual_seed(0)
with torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH):
    for name, spec in sorted(WORKLOADS.items()):
        params = spec.resolve_params(overrides.get(name, {}))
        model = spec.implementation("torch").build_model(params).train()
        x, y = spec.synthetic_batch(params, int(sys.argv[1]), np.random.default_rng(0))
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        with FlopCounterMode(display=False) as forward:
            model(x)
        with FlopCounterMode(display=False) as train:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        counts[name] = {"forward": forward.get_total_flops(), "train": train.get_total_flops()}
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def measured() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", COUNT, str(BATCH), json.dumps(OVERRIDES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKLOADS))
@pytest.mark.parametrize("kind", ["forward", "train"])
def test_analytic_flops_match_the_counter(measured, name, kind):
    spec = get_workload(name)
    params = spec.resolve_params(OVERRIDES.get(name, {}))
    analytic = spec.forward_flops(params, BATCH) if kind == "forward" else spec.train_flops(params, BATCH)
    counted = measured[name][kind]
    assert counted > 0
    assert abs(analytic - counted) / counted <= TOLERANCE, (name, kind, analytic, counted)
