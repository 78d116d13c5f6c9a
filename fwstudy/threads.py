"""Thread settings applied before a framework is imported, identical for both frameworks."""

from __future__ import annotations

from fwstudy.config import TrialConfig


def thread_variables(config: TrialConfig) -> dict[str, str]:
    """Variables the OpenMP/MKL/oneDNN runtimes and TensorFlow read at import time."""
    threads = str(config.threads)
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": str(config.interop_threads),
    }
