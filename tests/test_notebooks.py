"""Every notebook runs under papermill on the smoke profile and writes its figures (slow)."""

from pathlib import Path

import papermill
import pytest
import yaml

from fwstudy.figures.common import read_png_metadata
from tests.conftest import PROJECT

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))
# The figures each notebook owes (docs/methodology.md); a notebook missing here fails the test.
FIGURES = {
    "01_training_speed": ["training_speed"],
    "02_resource_usage": ["resource_usage"],
    "03_scalability": ["scalability"],
    "04_graph_modes": ["graph_modes"],
    "05_inference": ["inference"],
    "06_deployment": ["deployment"],
    "07_interoperability": ["interoperability"],
    "08_convergence": ["convergence"],
    "09_ease_of_use": ["ease_of_use"],
    "10_robustness": ["robustness"],
    "11_hardware": ["hardware"],
    "12_footprint": ["footprint"],
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke_profile(notebook: Path, tmp_path):
    parameters = yaml.safe_load((PROJECT / "parameters" / "smoke.yaml").read_text())
    parameters.update(results_dir=str(tmp_path / "results"), figures_dir=str(tmp_path / "figures"))
    papermill.execute_notebook(
        str(notebook), str(tmp_path / notebook.name), parameters=parameters,
        kernel_name="python3", cwd=str(notebook.parent), progress_bar=False,
    )
    assert notebook.stem in FIGURES, f"add {notebook.stem}'s figures to FIGURES"
    for name in FIGURES[notebook.stem]:
        for suffix in (".png", ".svg", ".csv"):  # the CSV: the numbers the figure plots
            path = tmp_path / "figures" / f"{name}{suffix}"
            assert path.exists() and path.stat().st_size > 100, path
        assert read_png_metadata(tmp_path / "figures" / f"{name}.png")["Profile"] == "smoke"
    assert any((tmp_path / "results" / "trials").glob("*.parquet"))


def test_notebooks_are_committed_clean_with_a_parameters_cell():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path
        assert any("parameters" in c.metadata.get("tags", []) for c in code), path
