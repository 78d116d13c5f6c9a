"""The study's colours and line styles, in one place: a framework has the same colour in all
twelve figures (TensorFlow orange, PyTorch blue), a mode the same shade of it, an arm and a
scaling the same line style, so a reader learns the code once.

Every figure module takes its colours from here; none writes a colour of its own (a test
reads the figure modules for colour literals)."""

from __future__ import annotations

FRAMEWORKS = ("tensorflow", "torch")
LABELS = {"tensorflow": "TensorFlow", "torch": "PyTorch"}
SHORT = {"tensorflow": "TF", "torch": "PT"}

# Shades per framework: [0] the main colour (eager, the framework itself), then lighter,
# darker and lightest. Modes take them in MODE_ORDER.
FRAMEWORK_COLOURS = {
    "tensorflow": ("#e8710a", "#f4a259", "#b94e00", "#ffd3a8"),
    "torch": ("#1f5aa6", "#6fa3e0", "#0c2d5a", "#b9d4f5"),
}
MODE_ORDER = ("eager", "graph", "compiled", "fit")

# Neutral greys: what belongs to neither framework (ratios TF/PT, interpreter start-up).
RATIO = "0.55"       # a TF/PT ratio in a shared mode
RATIO_BEST = "0.25"  # each framework's best mode against the other's
NEUTRAL = "0.85"
REFERENCE_LINE = {"color": "black", "linewidth": 0.8}  # ratio 1, speedup 1, ...
THRESHOLD_LINE = {"color": "#d62728", "linewidth": 0.8, "linestyle": ":"}  # a tolerance or threshold
FAILED = "#d62728"  # text of a failed gate or an out-of-tolerance cell

# Line styles and markers shared by the figures that draw curves.
MODE_STYLES = {"eager": "-", "graph": ":", "compiled": "--", "fit": "-."}
ARM_STYLES = {"matched": "-", "idiomatic": "--"}
ARM_HATCHES = {"matched": None, "idiomatic": "//"}
ARM_ALPHA = {"matched": 0.9, "idiomatic": 0.5}
SCALING_STYLES = {"strong": "-", "weak": "--"}
SCALING_MARKERS = {"strong": "o", "weak": "s"}
ATTACK_MARKERS = {"fgsm": "o", "pgd": "s"}
PRECISION_HATCHES = {"int8": "//"}

# Sequential colour maps: one for counts and magnitudes, one diverging for signed maps.
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
GREYS = "gray_r"

# F9: API levels are a framework's shades; debugging outcomes a traffic light.
API_LEVEL_COLOURS = {
    "tf_gradient_tape": FRAMEWORK_COLOURS["tensorflow"][0],
    "keras_fit": FRAMEWORK_COLOURS["tensorflow"][1],
    "torch_loop": FRAMEWORK_COLOURS["torch"][0],
    "lightning": FRAMEWORK_COLOURS["torch"][1],
}
OUTCOME_COLOURS = ("#4caf50", "#ffc107", "#e53935", "#81c784", "#ff8a65", "#9e9e9e")

# F10: attribution methods (not frameworks: both frameworks' maps are compared in each).
METHOD_COLOURS = {("saliency", "matched"): "#4c72b0", ("saliency", "idiomatic"): "#9ab5dd",
                  ("integrated_gradients", "matched"): "#55a868",
                  ("integrated_gradients", "idiomatic"): "#a8d5b1"}


def colour(framework: str, shade: int = 0) -> str:
    """A framework's colour; ``shade`` picks a lighter or darker one (see FRAMEWORK_COLOURS)."""
    return FRAMEWORK_COLOURS[framework][shade % len(FRAMEWORK_COLOURS[framework])]


def mode_colour(framework: str, mode: str) -> str:
    """The shade of a framework's mode: the same mode has the same shade in every figure."""
    return colour(framework, MODE_ORDER.index(mode) if mode in MODE_ORDER else 0)


def variant_palette(variants: list[str]) -> dict[str, str]:
    """``"<framework> <mode>"`` labels to their colours; an unknown mode takes the framework's
    next free shade."""
    palette = {}
    for framework, colours in FRAMEWORK_COLOURS.items():
        mine = [v for v in variants if v.split(" ", 1)[0] == framework]
        for i, variant in enumerate(mine):
            mode = variant.split(" ", 1)[1].split(",")[0] if " " in variant else ""
            palette[variant] = mode_colour(framework, mode) if mode in MODE_ORDER else colours[i % len(colours)]
    return palette
