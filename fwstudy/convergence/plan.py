"""The runs of F8 and F10: what one training run and one robustness evaluation are, validated
at construction so that every entry point rejects bad input with the same one-line error.

A training run is (workload, framework, arm, mode, seed). The seed changes the initial weights
and the batch order on both sides at once; the arm says how the initial weights and the
optimizer constants are chosen:

* ``matched``: the NumPy initial weights of ``convergence.init`` moved into each twin by the
  parity weight map, the same batch order, and the study's aligned Adam
  (``measure.training``: epsilon 1e-12 on both sides). A parity test of training.
* ``idiomatic``: each framework's own initializers (``torch.manual_seed`` / Keras' seeded
  defaults) and its own Adam defaults (epsilon 1e-8 in PyTorch, 1e-7 in Keras), with the same
  architecture, data, batch order, batch size and learning rate. What a user experiences.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwstudy.config.trial import (
    DEVICES,
    FRAMEWORKS,
    check_choice,
    check_positive_int,
    default_threads,
)
from fwstudy.errors import BadInput, choices

ARMS: tuple[str, ...] = ("matched", "idiomatic")
ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
ATTRIBUTIONS: tuple[str, ...] = ("saliency", "integrated_gradients")
# Training modes: each framework's custom loop, as F1's trials define them (docs/methodology.md);
# Keras' fit is left out (its per-step losses need a callback whose cost is not the others').
CONVERGENCE_MODES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("eager", "graph", "compiled"),
    "torch": ("eager", "compiled"),
}
DEFAULT_TIMEOUT_S = 900.0


def check_arm(arm: Any) -> str:
    return check_choice("arm", arm, ARMS)


def check_attack(attack: Any) -> str:
    return check_choice("attack", attack, ATTACKS)


def check_epsilon(epsilon: Any) -> float:
    """An L-infinity radius on [0, 1] pixels: a number >= 0 (0 is the clean accuracy)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon):
        raise BadInput(f"epsilon must be a number >= 0, got {epsilon!r}")
    if epsilon < 0:
        raise BadInput(f"epsilon must be >= 0 (an L-infinity radius), got {epsilon}")
    return float(epsilon)


def check_share(name: str, value: Any) -> float:
    """A share in (0, 1]: the target accuracy as a share of the best final accuracy."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise BadInput(f"{name} must be a number in (0, 1], e.g. 0.95, got {value!r}")
    return float(value)


def task_of(workload: str) -> tuple[str, dict[str, Any]]:
    """(task, workload parameters) of a workload's convergence task, chosen from its spec.

    Image workloads (a ``image`` parameter) learn the shifted 28x28 digits as images, flat ones
    (an ``input_dim``) the same digits flattened to 784 features; sequence workloads (a
    ``vocab``) the harder token task at their own length. A workload with none of these has no
    convergence task: bad input naming the workloads that do."""
    from fwstudy.workloads import WORKLOADS, get_workload

    spec = get_workload(workload)
    if "image" in spec.defaults:
        return "digits28-image", {"image": 28, "channels": 1, "classes": 10}
    if "vocab" in spec.defaults:
        return "tokens-hard", {"classes": 10}
    if "input_dim" in spec.defaults:
        return "digits28-flat", {"input_dim": 784, "classes": 10}
    able = [w for w in sorted(WORKLOADS) if {"image", "vocab", "input_dim"} & set(get_workload(w).defaults)]
    raise BadInput(f"workload {workload!r} has no convergence task; workloads with one: {choices(able)}")


def image_task(workload: str) -> bool:
    """Attacks and attributions are defined on pixels in [0, 1]: the digit workloads only."""
    return task_of(workload)[0].startswith("digits")


def dataset_for(task: str, params: Mapping[str, Any], seed: int = 0):
    from fwstudy.measure import data

    if task == "digits28-image":
        return data.digits_shifted("image")
    if task == "digits28-flat":
        return data.digits_shifted("flat")
    if task == "tokens-hard":
        return data.token_task_hard(params["vocab"], params["length"], params["classes"])
    raise BadInput(f"unknown convergence task {task!r}")


# The package's own measuring code: ``harness.environment.code_version`` hashes the harness,
# the frameworks' modules, the data and the configs, but not this package, whose child, initial
# weights and IG rule decide what a run measures as much as they do.
MEASURING_FILES = ("child.py", "init.py", "measures.py", "plan.py", "tables.py")


@functools.cache
def own_code_version() -> str:
    digest = hashlib.sha256()
    for name in MEASURING_FILES:
        digest.update(name.encode())
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def _identity(data: dict[str, Any], code_version: str, fingerprint: str | None) -> str:
    """Hash of what changes a run: its configuration, the study's code version, this
    package's own code and the environment (rule 8); the timeout only decides when to stop."""
    if fingerprint is None:
        from fwstudy.harness.environment import fingerprint_digest

        fingerprint = fingerprint_digest()
    blob = json.dumps({"config": data, "code": [code_version, own_code_version()], "env": fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainRun:
    """One training run of F8: ``epochs`` passes over the task's training split."""

    workload: str
    framework: str
    arm: str
    mode: str = "eager"
    seed: int = 0
    epochs: int = 5
    batch_size: int | None = None
    threads: int = field(default_factory=default_threads)
    device: str = "cpu"
    timeout_s: float = DEFAULT_TIMEOUT_S
    task: str = ""
    workload_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from fwstudy.workloads import get_workload

        spec = get_workload(self.workload)
        check_choice("framework", self.framework, FRAMEWORKS)
        check_arm(self.arm)
        check_choice("mode", self.mode, CONVERGENCE_MODES[self.framework])
        check_choice("device", self.device, DEVICES)
        task, params = task_of(self.workload)
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "workload_params", spec.resolve_params({**params, **dict(self.workload_params)}))
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", spec.default_batch_size)
        for name in ("batch_size", "epochs", "threads"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("seed", self.seed, allow_zero=True)
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise BadInput(f"timeout_s must be a number > 0, got {self.timeout_s!r}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["workload_params"] = dict(self.workload_params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainRun:
        return cls(**{k: v for k, v in data.items() if k != "task"})

    def identity(self, code_version: str, fingerprint: str | None = None) -> str:
        """What changes the run, with the code version and the environment (rule 8)."""
        data = self.to_dict()
        data.pop("timeout_s")
        return _identity({"kind": "convergence", **data}, code_version, fingerprint)

    def label(self) -> str:
        return f"{self.framework} {self.workload} {self.arm} {self.mode} seed {self.seed}"


@dataclass(frozen=True)
class RobustnessRun:
    """One framework's attacks and attributions on the trained weights of ``runs`` (one training
    run per seed). Matched: every seed's weights are PyTorch's matched-arm final weights, so
    both frameworks evaluate the same numbers (an implementation check). Idiomatic: each
    framework evaluates its own idiomatic-arm weights (the comparison)."""

    workload: str
    framework: str
    arm: str
    runs: tuple[TrainRun, ...]
    attacks: tuple[str, ...] = ATTACKS
    epsilons: tuple[float, ...] = (0.0, 0.05, 0.1)
    pgd_steps: int = 10
    pgd_step_ratio: float = 0.25
    explain_samples: int = 16
    ig_steps: int = 32
    threads: int = field(default_factory=default_threads)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        check_choice("framework", self.framework, FRAMEWORKS)
        check_arm(self.arm)
        if not image_task(self.workload):
            raise BadInput(f"robustness needs a digit workload (pixels in [0, 1]); {self.workload!r} reads tokens")
        object.__setattr__(self, "runs", tuple(self.runs))
        object.__setattr__(self, "attacks", tuple(check_attack(a) for a in self.attacks))
        object.__setattr__(self, "epsilons", tuple(check_epsilon(e) for e in self.epsilons))
        if not self.runs or not self.attacks or not self.epsilons:
            raise BadInput("a robustness run needs training runs, attacks and epsilons")
        check_positive_int("pgd_steps", self.pgd_steps)
        check_share("pgd_step_ratio", self.pgd_step_ratio)
        check_positive_int("explain_samples", self.explain_samples)
        check_positive_int("ig_steps", self.ig_steps)
        if self.ig_steps < 2:
            raise BadInput(f"ig_steps must be >= 2 (the trapezoid rule needs both ends), got {self.ig_steps}")
        check_positive_int("threads", self.threads)

    def identity(self, code_version: str, fingerprint: str | None = None) -> str:
        data = dataclasses.asdict(self)
        data.pop("timeout_s")
        data["runs"] = [r.identity(code_version, fingerprint) for r in self.runs]
        return _identity({"kind": "robustness", **data}, code_version, fingerprint)

    def label(self) -> str:
        return f"{self.framework} {self.workload} {self.arm} robustness, {len(self.runs)} seeds"
