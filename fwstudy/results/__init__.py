"""Results: the per-trial store, atomic writes, statistics, and ``load``, the one call that
reads a profile's whole table.

Nothing is imported here eagerly: every trial child imports ``fwstudy.results.atomic`` (and so
this package) before it measures its import footprint, and must not pay for pandas there."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def load(profile: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every stored trial of ``profile`` (``results/<profile>/``, or ``results_dir``) as one tidy
    table: one row per trial × metric. The same as ``pd.read_parquet("results/<profile>/trials")``,
    except that a bad file is quarantined and left out instead of failing the read."""
    from fwstudy import paths
    from fwstudy.errors import BadInput
    from fwstudy.results.store import ResultStore

    root = paths.results_dir(profile, results_dir)
    if not (root / "trials").is_dir():
        raise BadInput(f"no results at {root}: nothing has been measured for profile {profile!r} there")
    return ResultStore(root).table()
