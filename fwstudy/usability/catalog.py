"""The names F9 and F12 are built from: planted bugs, debugging modes, API levels.

Kept apart from the code that uses them (and free of fwstudy imports) so that the profile can
validate its fields against them without an import cycle, and so that a child can look a name
up without loading pandas."""

from __future__ import annotations

from fwstudy.errors import BadInput, choices

# F9b: the planted bugs, each written once per framework in ``frameworks/<name>/debugging.py``
# and marked there with a ``# SITE: <bug>`` comment on the line that causes it.
BUGS: dict[str, str] = {
    "shape": "shape mismatch: the second layer expects one input feature too many",
    "dtype": "dtype mismatch: a float64 array from NumPy multiplied into the float32 activations",
    "nan": "NaN mid-network: sqrt of a negative activation, default settings",
    "nan_checked": "the same NaN with the framework's own checker on (torch anomaly mode, tf check_numerics)",
    "print_hook": "a Python print and a breakpoint() hook inside the forward pass",
}
# The modes of each framework a planted bug runs in (docs/methodology.md's execution modes; fit
# is Keras' own loop, not a way of running the user's forward pass, so it is not a cell here).
DEBUG_MODES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("eager", "graph", "compiled"),
    "torch": ("eager", "compiled"),
}
ALL_DEBUG_MODES: tuple[str, ...] = ("eager", "graph", "compiled")

# F9a: the API levels, each a complete training script in one module of its framework. The
# module's ``STEP_PARTS`` names the functions (or ``Class.method``) that make up its training
# step; the rest of the module plus the workload's twin is the full script.
API_LEVELS: dict[str, dict[str, str]] = {
    "tf_gradient_tape": {
        "framework": "tensorflow",
        "module": "fwstudy.frameworks.tensorflow.train_tape",
        "label": "TF GradientTape loop",
    },
    "keras_fit": {
        "framework": "tensorflow",
        "module": "fwstudy.frameworks.tensorflow.train_fit",
        "label": "Keras fit",
    },
    "torch_loop": {
        "framework": "torch",
        "module": "fwstudy.frameworks.torch.train_plain",
        "label": "plain PyTorch loop",
    },
    "lightning": {
        "framework": "torch",
        "module": "fwstudy.frameworks.torch.train_lightning",
        "label": "PyTorch Lightning Trainer",
    },
}
# F9c: the custom-gradient twins (straight-through clamp), one module per framework.
CUSTOM_GRADIENT_MODULES: dict[str, str] = {
    "tensorflow": "fwstudy.frameworks.tensorflow.custom_gradient",
    "torch": "fwstudy.frameworks.torch.custom_gradient",
}
CUSTOM_GRADIENT_VARIANTS: tuple[str, ...] = ("custom", "builtin")
DEBUGGING_MODULES: dict[str, str] = {
    "tensorflow": "fwstudy.frameworks.tensorflow.debugging",
    "torch": "fwstudy.frameworks.torch.debugging",
}


def check_bug(name: object) -> str:
    if name not in BUGS:
        raise BadInput(f"unknown bug {name!r}; valid bugs: {choices(BUGS)}")
    return name  # type: ignore[return-value]


def check_level(name: object) -> str:
    if name not in API_LEVELS:
        raise BadInput(f"unknown API level {name!r}; valid API levels: {choices(API_LEVELS)}")
    return name  # type: ignore[return-value]


def check_debug_mode(name: object) -> str:
    if name not in ALL_DEBUG_MODES:
        raise BadInput(f"unknown debugging mode {name!r}; valid debugging modes: {choices(ALL_DEBUG_MODES)}")
    return name  # type: ignore[return-value]
