"""Profiles: the papermill parameter files (smoke, quick, full), validated strictly.

A misspelt key in a parameter file would otherwise be ignored by papermill with a warning and
the study would silently run its defaults; here it is an error naming the valid keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fwstudy.config.trial import (
    ALL_MODES,
    DEVICES,
    FRAMEWORKS,
    ISOLATIONS,
    PRECISIONS,
    SCALINGS,
    TrialConfig,
    check_choice,
    check_cores,
    check_finite,
    check_positive_int,
    check_precision,
    default_threads,
)
from fwstudy.errors import BadInput, choices


@dataclass(frozen=True)
class Profile:
    profile: str
    workloads: list[str] = field(default_factory=lambda: ["mlp"])
    frameworks: list[str] = field(default_factory=lambda: list(FRAMEWORKS))
    modes: list[str] = field(default_factory=lambda: ["eager"])
    threads: int | None = None
    warmup: int = 5
    steps: int = 30
    # Blocks of F1 trials (one trial of each framework and configuration per block, in random
    # order), and the confidence the figures ask of their intervals: the repeats must reach it
    # (fwstudy.results.stats.repeats_for). aa_blocks: the first blocks in which every
    # configuration is measured twice, the A-vs-A pairs that define the noise floor.
    repeats: int = 1
    confidence: float = 0.95
    aa_blocks: int = 0
    device: str = "cpu"
    # F1/F2/F11 training trials: each in every precision listed (fp32, tf32 on a GPU only, bf16
    # mixed precision), and each workload at the size given here (batch_size and shape
    # parameters; default: the workload's own), e.g. larger on a GPU so that it is loaded.
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    workload_sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    trial_timeout_s: float = 600.0
    # How the steady-state training and inference trials start (TrialConfig.isolation):
    # "process", a fresh interpreter each (the strict default, and the full profile's), or
    # "fork", forked from a server that imported the framework once (quick: the import is most
    # of a CPU trial's time). Compile, retrace, data-parallel trials and F6-F12's runs are
    # unaffected: always fresh processes.
    isolation: str = "process"
    inference_batch_size: int = 256
    latency_calls: int = 200
    gemm_size: int = 1024
    # F4: workloads whose compile cost is measured (cold and warm; default: ``workloads``),
    # and the changing-shape sequence of the retracing experiment.
    graph_workloads: list[str] | None = None
    compile_repeats: int = 1  # F4 compile trials (two processes each: cold, then warm)
    inference_workloads: list[str] | None = None  # F5 (default: ``workloads``)
    retrace_workloads: list[str] = field(default_factory=lambda: ["mlp", "lstm"])
    retrace_batches: list[int] = field(default_factory=lambda: [16, 32, 48, 16, 64, 32])
    retrace_lengths: list[int] = field(default_factory=lambda: [20, 50, 30, 20, 40, 50])
    retrace_repeats: int = 1  # trace counts are deterministic; repeats only tighten the times
    # F3 (fwstudy.figures.scalability): sweeps around the workload's default point, each framework in
    # every mode of sweep_modes it has; sweep_threads None = 1, 2, 4, ... and all cores.
    sweep_modes: list[str] = field(default_factory=lambda: ["eager", "compiled"])
    sweep_batch_sizes: list[int] = field(default_factory=lambda: [16, 64, 128, 256, 512])
    sweep_threads: list[int] | None = None
    sweep_widths: list[int] = field(default_factory=lambda: [128, 256, 512, 1024, 2048])
    # Data-parallel scaling: workers 1..N, each with dp_threads_per_worker threads; strong
    # keeps the global batch at the workload's default, weak gives each worker that batch.
    dp_workers: list[int] = field(default_factory=lambda: [1, 2])
    dp_scalings: list[str] = field(default_factory=lambda: list(SCALINGS))
    dp_modes: list[str] = field(default_factory=lambda: ["eager"])
    dp_threads_per_worker: int = 1
    # Timed steps and independent trials of the F3 trials (None: ``steps``, ``repeats``);
    # warm-up is ``warmup``.
    scaling_steps: int | None = None
    scaling_repeats: int | None = None
    # Repeats of the data-parallel trials (None: ``scaling_repeats``): each starts a launcher
    # and its workers, the costliest F3 trials.
    dp_repeats: int | None = None
    # F9b (fwstudy.figures.ease_of_use): the planted bugs (fwstudy.usability.catalog.BUGS), the
    # modes each runs in (those its framework has), and the steps of each run.
    debug_bugs: list[str] = field(default_factory=lambda: ["shape", "dtype", "nan", "nan_checked", "print_hook"])
    debug_modes: list[str] = field(default_factory=lambda: ["eager", "graph", "compiled"])
    debug_steps: int = 3
    # F9c: the modes the custom-gradient twins are costed in, and their timed steps.
    custom_gradient_modes: list[str] = field(default_factory=lambda: ["eager", "graph", "compiled"])
    custom_gradient_steps: int = 30
    # F12 (fwstudy.figures.footprint): fresh processes per measurement, whether to import with
    # no bytecode cache too (compiles every module: slow), the API levels whose cold start to the
    # first training step is timed, and the workload they train.
    footprint_repeats: int = 3
    footprint_cold_import: bool = True
    footprint_predict: bool = True  # also the cold start to the first prediction
    footprint_levels: list[str] = field(default_factory=lambda: ["tf_gradient_tape", "keras_fit", "torch_loop", "lightning"])
    footprint_workload: str = "mlp"
    # Rule 6: run the parity gate of every workload before timing it (once per code version);
    # off only to time a workload whose twins are being written.
    parity_gate: bool = True
    # F8/F10 (fwstudy.convergence): training runs per (workload, arm, mode, framework, seed);
    # seeds change the initial weights and the batch order on both sides; the target accuracy
    # of time-to-accuracy is target_share of the best final accuracy either framework reaches.
    convergence_workloads: list[str] = field(default_factory=lambda: ["mlp"])
    convergence_modes: list[str] = field(default_factory=lambda: ["eager"])
    arms: list[str] = field(default_factory=lambda: ["matched", "idiomatic"])
    seeds: int = 1
    epochs: int = 3
    target_share: float = 0.95
    # F10: L-infinity attacks over the epsilon grid (0: clean), PGD's fixed steps and step
    # (pgd_step_ratio x epsilon); saliency and Integrated Gradients of explain_samples test
    # digits, IG with ig_steps points; agreement over the top_k features.
    robustness_workloads: list[str] = field(default_factory=lambda: ["mlp"])
    attacks: list[str] = field(default_factory=lambda: ["fgsm", "pgd"])
    epsilons: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2])
    pgd_steps: int = 10
    pgd_step_ratio: float = 0.25
    explain_samples: int = 16
    ig_steps: int = 32
    top_k: int = 50
    # F6 (fwstudy.deployment): workloads trained on their real data and exported along every
    # path of deployment_paths (fwstudy.deployment.catalog.PATHS) whose framework is measured;
    # training epochs, calibration samples of the int8 paths, batch-1 calls and large-batch
    # calls per artifact (the large batch is inference_batch_size).
    deployment_workloads: list[str] = field(default_factory=lambda: ["mlp"])
    deployment_paths: list[str] = field(default_factory=lambda: [
        "savedmodel", "litert_fp32", "litert_dynamic_int8", "litert_int8", "onnx_tf", "onnx_tf_int8",
        "torch_export", "onnx_torch", "onnx_torch_int8", "pt2e_int8"])
    deployment_epochs: int = 10
    deployment_calibration: int = 128
    deployment_latency_calls: int = 200
    deployment_throughput_calls: int = 10
    # F7: workloads of the interoperability matrix (default shapes, shared weights), the batch
    # of the compared inputs, and the timed forward calls of the Keras multi-backend comparison.
    interop_workloads: list[str] = field(default_factory=lambda: ["mlp"])
    interop_batch: int = 8
    keras_backend_steps: int = 20
    # Threads above this host's logical cores (threads, sweep_threads, dp workers x threads per
    # worker) measure the scheduler, not the frameworks: an error unless asked for here.
    oversubscribe: bool = False
    # A Dask scheduler (tcp://host:8786) whose workers measure the trials (fwstudy.cluster);
    # None: run here. $FWSTUDY_SCHEDULER (make batch SCHEDULER=...) overrides it.
    scheduler: str | None = None
    force: bool = False
    results_dir: str | None = None
    figures_dir: str | None = None

    def __post_init__(self) -> None:
        from fwstudy.paths import check_profile_name
        from fwstudy.workloads import WORKLOADS

        check_profile_name(self.profile)
        for item in dataclasses.fields(self):
            check_finite(item.name, getattr(self, item.name))
        for name, valid in (
            ("workloads", sorted(WORKLOADS)),
            ("frameworks", FRAMEWORKS),
            ("modes", ALL_MODES),
        ):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of: {choices(valid)}")
            for value in values:
                check_choice(name[:-1], value, valid)
        for name in ("graph_workloads", "retrace_workloads", "inference_workloads"):
            values = getattr(self, name)
            if values is None:
                continue
            if not isinstance(values, list):
                raise BadInput(f"{name} must be a list of: {choices(sorted(WORKLOADS))}")
            for value in values:
                check_choice("workload", value, sorted(WORKLOADS))
        for name in ("retrace_batches", "retrace_lengths"):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of positive integers")
            for value in values:
                check_positive_int(name, value)
        check_positive_int("retrace_repeats", self.retrace_repeats)
        check_positive_int("compile_repeats", self.compile_repeats)
        if len(self.retrace_lengths) != len(self.retrace_batches):
            raise BadInput("retrace_lengths must be as long as retrace_batches")
        if self.threads is not None:
            check_positive_int("threads", self.threads)
        check_positive_int("warmup", self.warmup, allow_zero=True)
        check_positive_int("steps", self.steps)
        check_positive_int("repeats", self.repeats)
        check_positive_int("aa_blocks", self.aa_blocks, allow_zero=True)
        if self.aa_blocks > self.repeats:
            raise BadInput(f"aa_blocks ({self.aa_blocks}) cannot exceed repeats ({self.repeats})")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) or not 0 < self.confidence < 1:
            raise BadInput(f"confidence must be a number between 0 and 1, e.g. 0.95, got {self.confidence!r}")
        check_choice("device", self.device, DEVICES)
        check_choice("isolation", self.isolation, ISOLATIONS)
        self._check_precision_and_sizes()
        check_positive_int("inference_batch_size", self.inference_batch_size)
        check_positive_int("latency_calls", self.latency_calls)
        check_positive_int("gemm_size", self.gemm_size)
        self._check_scaling()
        self._check_usability()
        self._check_convergence()
        self._check_deployment()
        if isinstance(self.trial_timeout_s, bool) or not isinstance(self.trial_timeout_s, (int, float)):
            raise BadInput(f"trial_timeout_s must be a number, got {self.trial_timeout_s!r}")
        if self.trial_timeout_s <= 0:
            raise BadInput(f"trial_timeout_s must be > 0, got {self.trial_timeout_s}")
        for name in ("force", "parity_gate", "oversubscribe"):
            if not isinstance(getattr(self, name), bool):
                raise BadInput(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.scheduler is not None:
            from fwstudy.cluster.client import check_address

            check_address(self.scheduler)
        self._check_cores()

    def isolate(self, config: TrialConfig) -> TrialConfig:
        """``config`` under the profile's ``isolation`` where its task may fork, else as given
        (what ``harness.batch.measure`` runs and ``fwstudy plan`` looks up)."""
        if config.isolation == self.isolation or not config.forkable:
            return config
        return dataclasses.replace(config, isolation=self.isolation)

    def _check_precision_and_sizes(self) -> None:
        from fwstudy.workloads import WORKLOADS, get_workload

        if not isinstance(self.precisions, list) or not self.precisions:
            raise BadInput(f"precisions must be a non-empty list of: {choices(PRECISIONS)}")
        for precision in self.precisions:
            check_precision(precision, self.device)
        if not isinstance(self.workload_sizes, dict):
            raise BadInput("workload_sizes must map a workload to its sizes, e.g. {mlp: {batch_size: 4096, hidden: 4096}}")
        for workload, sizes in self.workload_sizes.items():
            check_choice("workload", workload, sorted(WORKLOADS))
            if not isinstance(sizes, dict):
                raise BadInput(f"workload_sizes.{workload} must map batch_size or shape parameters to values")
            params = {k: v for k, v in sizes.items() if k != "batch_size"}
            if "batch_size" in sizes:
                check_positive_int(f"workload_sizes.{workload}.batch_size", sizes["batch_size"])
            get_workload(workload).resolve_params(params)

    def _check_cores(self) -> None:
        for name in ("threads", "sweep_threads"):
            value = getattr(self, name)
            for threads in value if isinstance(value, list) else [value] if value else []:
                check_cores(name, threads, oversubscribe=self.oversubscribe)
        workers = max(self.dp_workers)
        check_cores(
            f"dp_workers {workers} x dp_threads_per_worker {self.dp_threads_per_worker}",
            workers * self.dp_threads_per_worker, oversubscribe=self.oversubscribe,
        )

    def _check_usability(self) -> None:
        """F9 and F12 fields; the valid names come from fwstudy.usability.catalog."""
        from fwstudy.usability.catalog import ALL_DEBUG_MODES, API_LEVELS, BUGS
        from fwstudy.workloads import WORKLOADS

        for name, valid in (("debug_bugs", list(BUGS)), ("debug_modes", ALL_DEBUG_MODES),
                            ("custom_gradient_modes", ALL_DEBUG_MODES), ("footprint_levels", list(API_LEVELS))):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of: {choices(valid)}")
            for value in values:
                check_choice(name[:-1], value, valid)
        check_positive_int("debug_steps", self.debug_steps)
        check_positive_int("custom_gradient_steps", self.custom_gradient_steps)
        check_positive_int("footprint_repeats", self.footprint_repeats)
        check_choice("footprint_workload", self.footprint_workload, sorted(WORKLOADS))
        for name in ("footprint_cold_import", "footprint_predict"):
            if not isinstance(getattr(self, name), bool):
                raise BadInput(f"{name} must be true or false, got {getattr(self, name)!r}")

    def _check_scaling(self) -> None:
        for name, valid in (("sweep_modes", ALL_MODES), ("dp_modes", ALL_MODES), ("dp_scalings", SCALINGS)):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of: {choices(valid)}")
            for value in values:
                check_choice(name[:-1], value, valid)
        for name in ("sweep_batch_sizes", "sweep_threads", "sweep_widths", "dp_workers"):
            values = getattr(self, name)
            if values is None and name == "sweep_threads":
                continue
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of integers >= 1")
            for value in values:
                check_positive_int(name, value)
        check_positive_int("dp_threads_per_worker", self.dp_threads_per_worker)
        for name in ("scaling_steps", "scaling_repeats", "dp_repeats"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))

    def _check_convergence(self) -> None:
        """F8/F10 fields: an unknown arm or attack, a negative epsilon or a target share outside
        (0, 1] is bad input (one line, exit 2), as any other parameter."""
        from fwstudy.convergence import plan
        from fwstudy.workloads import WORKLOADS

        modes = sorted({m for ms in plan.CONVERGENCE_MODES.values() for m in ms})
        for name, valid in (("convergence_workloads", sorted(WORKLOADS)), ("robustness_workloads", sorted(WORKLOADS)),
                            ("convergence_modes", modes), ("arms", plan.ARMS), ("attacks", plan.ATTACKS)):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of: {choices(valid)}")
            for value in values:
                check_choice(name[:-1] if name != "arms" else "arm", value, valid)
        for workload in self.convergence_workloads:
            plan.task_of(workload)
        for workload in self.robustness_workloads:
            if not plan.image_task(workload):
                raise BadInput(f"robustness_workloads: {workload!r} reads tokens; attacks and attributions need digits")
        if not isinstance(self.epsilons, list) or not self.epsilons:
            raise BadInput("epsilons must be a non-empty list of numbers >= 0")
        for value in self.epsilons:
            plan.check_epsilon(value)
        plan.check_share("target_share", self.target_share)
        plan.check_share("pgd_step_ratio", self.pgd_step_ratio)
        for name in ("seeds", "epochs", "pgd_steps", "explain_samples", "top_k"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("ig_steps", self.ig_steps)
        if self.ig_steps < 2:
            raise BadInput(f"ig_steps must be >= 2 (the trapezoid rule needs both ends), got {self.ig_steps}")

    def _check_deployment(self) -> None:
        """F6/F7 fields: an unknown workload or export path is bad input naming the valid ones;
        a path whose framework is not measured is left out by the plan, not refused."""
        from fwstudy.deployment.catalog import PATHS
        from fwstudy.workloads import WORKLOADS

        for name, valid in (("deployment_workloads", sorted(WORKLOADS)), ("deployment_paths", list(PATHS)),
                            ("interop_workloads", sorted(WORKLOADS))):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{name} must be a non-empty list of: {choices(valid)}")
            for value in values:
                check_choice("export path" if name == "deployment_paths" else "workload", value, valid)
        for workload in self.deployment_workloads:
            if WORKLOADS[workload].dataset is None:
                raise BadInput(f"deployment_workloads: {workload!r} has no real-data task to train on")
        for name in ("deployment_epochs", "deployment_calibration", "deployment_latency_calls",
                     "deployment_throughput_calls", "interop_batch", "keras_backend_steps"):
            check_positive_int(name, getattr(self, name))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "parameters") -> Profile:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise BadInput(
                f"unknown parameter {unknown[0]!r} in {source}; valid parameters: {choices(names)}"
            )
        if "profile" not in data:
            raise BadInput(f"{source} must name its profile (key 'profile')")
        return cls(**data)


def threads_of(profile: Profile) -> int:
    """The profile's thread count, else all cores: the same for both frameworks (rule 1), for
    every kind of trial and run."""
    return profile.threads or default_threads()


def load_profile_file(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read parameter file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path} must be a mapping of parameter names to values")
    return Profile.from_mapping(data, source=str(path))


# What a notebook's parameters cell holds besides injected profile fields: the profile (a name
# in parameters/ or a path to a YAML file), ``overrides`` (profile fields to change) and the
# run options (fields that say how to run, not what to measure).
RUN_OPTIONS = ("force", "results_dir", "figures_dir")
# IPython's own names in a notebook's namespace: not parameters.
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "display"})


def resolve_profile_path(profile: str | Path) -> Path:
    """A profile name (``quick``: ``parameters/quick.yaml``) or a path to a YAML file."""
    from fwstudy.paths import parameters_dir

    text = str(profile)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if not path.exists():
            raise BadInput(f"parameter file {text!r} not found")
        return path
    known = sorted(p.stem for p in parameters_dir().glob("*.yaml"))
    if text not in known:
        raise BadInput(f"unknown profile {text!r}; valid profiles: {choices(known)} (or a path to a YAML file)")
    return parameters_dir() / f"{text}.yaml"


def _is_parameter(name: str, value: Any) -> bool:
    """A plain-data global a reader or papermill set: not a module, function, class or
    IPython's own history variables."""
    if name.startswith("_") or name in _KERNEL_NAMES:
        return False
    return value is None or isinstance(value, (str, int, float, bool, list, tuple, dict))


def profile_from_notebook(namespace: Mapping[str, Any]) -> Profile:
    """The profile a notebook runs, from its parameters cell and whatever papermill injected.

    In order, later wins: the profile's YAML file (``profile``: a name or a path); profile
    fields papermill injected (``-f file.yaml`` injects every key of the file, ``-p key value``
    one); the ``overrides`` mapping; the run options. A plain-data global that is none of
    these is a misspelt parameter: a one-line error naming the valid ones, as in a YAML file.
    """
    names = [f.name for f in dataclasses.fields(Profile)]
    given = {k: v for k, v in namespace.items() if _is_parameter(k, v)}
    allowed = {*names, "overrides"}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise BadInput(
            f"unknown notebook parameter {unknown[0]!r}; valid parameters: profile, overrides, "
            f"{choices(RUN_OPTIONS)} and the profile fields {choices(n for n in names if n not in RUN_OPTIONS and n != 'profile')}"
        )
    profile = given.get("profile", "quick")
    if not isinstance(profile, str) or not profile:
        raise BadInput(f"profile must be a profile name or a path to a YAML file, got {profile!r}")
    injected = {k: v for k, v in given.items() if k in names and k not in RUN_OPTIONS and k != "profile"}
    try:
        base: dict[str, Any] = dataclasses.asdict(load_profile_file(resolve_profile_path(profile)))
    except BadInput:
        if not injected:
            raise
        # ``-f elsewhere/my.yaml`` injected a whole parameter file whose name is not one of
        # parameters/: its keys are the profile (validated below like any file's).
        base = {"profile": profile}
    overrides = given.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise BadInput(f"overrides must be a mapping of profile fields to values, got {overrides!r}")
    if "profile" in overrides:
        raise BadInput("overrides cannot rename the profile; set `profile` instead")
    options = {k: given[k] for k in RUN_OPTIONS if given.get(k) is not None}
    return Profile.from_mapping({**base, **injected, **overrides, **options}, source=f"notebook parameters (profile {profile})")
