"""A small project folder for the report's tests: a profile, stored training trials (written
through the real results store), one figure with its CSV, one figure without, and one executed
notebook (and one broken one). Building the report on it takes seconds, not a study run."""

from __future__ import annotations

import base64
import io
from pathlib import Path

PROFILE = "mini"
# step time (ms) per framework and mode: TF graph 4x faster than TF eager; torch eager 2x
# faster than TF eager and 2x slower than TF graph (F1 and F4's claims all get a verdict)
STEP_MS = {("tensorflow", "eager"): 20.0, ("tensorflow", "graph"): 5.0, ("torch", "eager"): 10.0}
BLOCKS = 6


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5), dpi=80)
    ax.bar(["TF eager", "TF graph", "PT eager"], list(STEP_MS.values()), color=["#ff8c00", "#ffb347", "#1f77b4"])
    ax.set_ylabel("step time (ms)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _notebook(png: bytes):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    cell = new_code_cell("print('step times')\nfig", execution_count=1, outputs=[
        new_output("stream", name="stdout", text="step times\n"),
        new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"}),
    ])
    notebook = new_notebook(cells=[new_markdown_cell("# F1 · training speed"), cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat, notebook


def make_project(root: Path) -> str:
    """Fill ``root`` with the fixture; return the profile's name."""
    from fwstudy.config.trial import TrialConfig
    from fwstudy.results.store import ResultStore
    from tests.conftest import fake_record

    (root / "parameters").mkdir(parents=True)
    (root / "parameters" / f"{PROFILE}.yaml").write_text(f"profile: {PROFILE}\nconfidence: 0.90\n")
    store = ResultStore(root / "results" / PROFILE)
    for block in range(BLOCKS):
        for (framework, mode), step_ms in STEP_MS.items():
            config = TrialConfig(workload="mlp", framework=framework, mode=mode, steps=5, warmup=1,
                                 threads=2, repeat=block)
            store.save(fake_record(config, step_ms=step_ms * (1 + 0.002 * (block % 3))))
    figures = root / "figures" / PROFILE
    figures.mkdir(parents=True)
    png = _png()
    (figures / "training_speed.png").write_bytes(png)
    (figures / "training_speed.csv").write_text(
        "framework,mode,step_time_ms\n" + "".join(f"{f},{m},{v}\n" for (f, m), v in STEP_MS.items()))
    (figures / "ease_of_use.png").write_bytes(png)  # a figure without its CSV
    notebooks = root / "build" / PROFILE / "notebooks"
    notebooks.mkdir(parents=True)
    nbformat, notebook = _notebook(png)
    nbformat.write(notebook, notebooks / "01_training_speed.ipynb")
    (notebooks / "03_scalability.ipynb").write_text("{ not a notebook")  # shown, never a crash
    return PROFILE
