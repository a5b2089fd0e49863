"""Exceptions the package raises for problems a user can fix.

Every message names what was wrong (file, line, parameter, shape) and what to do. Scripts catch `BortError`,
print the message and exit non-zero (see `bort.cli.run_main`), so a user never sees an MXNet stack trace for
bad input.
"""


class BortError(Exception):
    """Base class: a problem with the user's input, files or flags."""


class ConfigError(BortError):
    """An impossible or unknown model configuration or command-line setting."""


class ParamsError(BortError):
    """A parameter file that is missing, unreadable, or does not fit the model."""


class VocabError(BortError):
    """A vocabulary, merges or tokenizer model file that is missing or malformed."""


class DataError(BortError):
    """A data file that is missing or has a malformed row (the message names the file and line)."""


class InputError(BortError):
    """Model inputs of the wrong shape, ids out of range, or sequences longer than the model allows."""


class CheckpointError(BortError):
    """A training checkpoint that is missing, incomplete, or written for another model or task."""


class DownloadError(BortError):
    """A download that failed: HTTP error, no connection, a destination in the way, or a file that is not what
    was asked for (the message names the URL and the destination)."""


class ChecksumError(DownloadError):
    """A downloaded file whose sha1 is not the published one (the bad file has been removed)."""


class OutputError(BortError):
    """An output that cannot be written: a full disk, a directory where a file should go, a locked directory."""


class TrainingError(BortError):
    """Training that cannot go on, e.g. a loss or gradient that is no longer finite (the message says which)."""


class GpuError(BortError):
    """A GPU run that cannot work here: CUDA libraries or driver missing, or a GPU the installed MXNet wheel has no
    kernels for (the message says what runs instead)."""
