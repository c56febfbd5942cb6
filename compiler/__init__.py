"""specc.compiler: spec files -> validated specs -> inferred shapes -> generated PyTorch code."""

__version__ = "0.1.0"
