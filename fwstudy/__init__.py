"""fwstudy: a reproducible, measured comparison of TensorFlow and PyTorch.

Importing the package never imports a framework: the parent process that plans, launches and
stores trials must stay framework-free so that every trial runs in a child that imports only
its own framework (fairness rule 1).
"""

__version__ = "0.1.0"
