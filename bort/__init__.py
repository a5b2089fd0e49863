"""Bort: optimal subarchitecture of BERT, on MXNet 1.9.1 and GluonNLP 0.10."""

__version__ = "0.1.0"

# Before any submodule loads MXNet or numpy: size their thread pools (OpenMP = usable cores, BLAS pthreads = 1,
# a user's variables win). It only sets environment variables; see bort/threads.py and docs/threads.md.
from .threads import configure_threads as _configure_threads  # noqa: E402

_configure_threads()


def __getattr__(name):
    # `bort.get_bort_model` without importing MXNet when `bort` itself is imported.
    if name == "get_bort_model":
        from .checkpoint import get_bort_model

        return get_bort_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
