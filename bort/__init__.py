"""Bort: optimal subarchitecture of BERT, on MXNet 1.9.1 and GluonNLP 0.10."""

__version__ = "0.1.0"


def __getattr__(name):
    # `bort.get_bort_model` without importing MXNet when `bort` itself is imported.
    if name == "get_bort_model":
        from .checkpoint import get_bort_model

        return get_bort_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
