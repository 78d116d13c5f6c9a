"""Non-scalar results of F8/F10 (curves, accuracies per epsilon, attribution maps) as Parquet
files with explicit schemas, written atomically, under ``results/<profile>/convergence/``.

An explicit schema keeps a column's type from depending on the first value written (an
all-integer loss column would otherwise come back as int64), so files written by different
runs concatenate. Children write these with pyarrow alone: no pandas before the framework.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fwstudy.results.atomic import atomic_write_bytes

FOLDER = "convergence"

SCHEMAS: dict[str, pa.Schema] = {
    # One row per training step: the loss of that step's batch and the training wall-clock at
    # its end (evaluation excluded).
    "steps": pa.schema([("step", pa.int32()), ("epoch", pa.int32()), ("loss", pa.float64()),
                        ("train_s", pa.float64())]),
    # One row per epoch: test accuracy and loss after it, and the training wall-clock so far.
    "epochs": pa.schema([("epoch", pa.int32()), ("step", pa.int32()), ("test_accuracy", pa.float64()),
                         ("test_loss", pa.float64()), ("train_s", pa.float64())]),
    # Accuracy under each attack and radius (epsilon 0: clean), per seed.
    "attacks": pa.schema([("seed", pa.int32()), ("attack", pa.string()), ("epsilon", pa.float64()),
                          ("accuracy", pa.float64()), ("n", pa.int32())]),
    # Attribution maps of the explained samples (and FGSM's sign map), per seed.
    "attributions": pa.schema([("seed", pa.int32()), ("sample", pa.int32()), ("method", pa.string()),
                               ("feature", pa.int32()), ("value", pa.float64())]),
    # Integrated Gradients' completeness per sample: summed attributions against F(x) - F(baseline).
    "completeness": pa.schema([("seed", pa.int32()), ("sample", pa.int32()), ("label", pa.int32()),
                               ("attribution_sum", pa.float64()), ("logit_difference", pa.float64())]),
    # Time to explain one batch, per method and seed (after one warm-up call).
    "timings": pa.schema([("seed", pa.int32()), ("method", pa.string()), ("seconds", pa.float64()),
                          ("samples", pa.int32())]),
}


def path_of(root: Path | str, run_id: str, kind: str) -> Path:
    if kind not in SCHEMAS:
        raise ValueError(f"no table kind {kind!r}")
    return Path(root) / FOLDER / f"{run_id}.{kind}.parquet"


def weights_path(root: Path | str, run_id: str) -> Path:
    """A training run's final weights (PyTorch layout, .npz): the input of F10's evaluations."""
    return Path(root) / FOLDER / f"{run_id}.weights.npz"


def write(path: Path | str, kind: str, columns: dict[str, list[Any]]) -> None:
    """Write ``columns`` with the kind's schema, atomically (a reader sees all or nothing)."""
    table = pa.Table.from_pydict(columns, schema=SCHEMAS[kind])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read(path: Path | str, kind: str):
    """The table as a DataFrame, checked against its schema."""
    table = pq.read_table(path)
    if not table.schema.equals(SCHEMAS[kind], check_metadata=False):
        raise ValueError(f"{path} does not have the {kind} schema")
    return table.to_pandas()
