"""Adaptive-depth network: a fixed-point block iterated per sample until it converges, at most K
times (a data-dependent control-flow workload, F4)."""
