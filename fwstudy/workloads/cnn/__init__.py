"""Convolutional network: 28×28×1 → conv 32 → pool → conv 64 → pool → dense 128 → 10 (docs/methodology.md)."""
