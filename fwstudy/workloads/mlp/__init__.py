"""Multi-layer perceptron: 784 → 512 → 512 → 10 with ReLU (docs/methodology.md)."""
