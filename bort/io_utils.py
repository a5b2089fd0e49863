"""Atomic file and directory writes: a reader never sees a half-written output."""
import contextlib
import errno
import os
import shutil
import tempfile

# Errors that mean "the disk (or a quota or file-size limit) is full": reported with the file being written.
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def current_umask():
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def reporting_full_disk(path):
    """Turn "no space left on device" (and quota / file-size limits) while writing `path` into an `OutputError`
    that names the file; MXNet and numpy otherwise raise it without any file name."""
    from .errors import OutputError

    try:
        yield
    except OSError as err:
        # numpy's tofile reports a short write as "N requested and M written", without an errno.
        short_write = err.errno is None and "written" in str(err)
        if err.errno not in _FULL_ERRNOS and not short_write:
            raise
        reason = "short write (disk full?)" if short_write else os.strerror(err.errno)
        raise OutputError(f"cannot write {path}: {reason}; free some space (or choose another output location) "
                          "and run again; nothing was left half-written") from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success it is renamed onto `path`, on error removed.

    Usage: `with atomic_path(out) as tmp: np.save(tmp, ...)`. The temporary file lives in the same
    directory so the final `os.replace` is atomic on POSIX file systems.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; an output should get what open() gives
        with reporting_full_disk(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """`open()` that writes to a temporary file and renames it onto `path` only when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


@contextlib.contextmanager
def atomic_directory(path, force=False):
    """Yield a temporary directory that becomes `path` when the block succeeds.

    An existing `path` is an error unless `force`, in which case it is replaced only after the new
    directory is complete.
    """
    from .errors import ConfigError

    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not force:
        raise ConfigError(f"output directory {path} already exists; pass --force to replace it")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700
        with reporting_full_disk(path):
            yield tmp
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "replaced"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def check_output_file(path, flag="--output"):
    """Fail before any work when `path` cannot become an output file (it is a directory, or a parent is a file)."""
    from .errors import OutputError

    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise OutputError(f"{flag} {path} is a directory; give the path of a file to write")
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise OutputError(f"{flag} {path}: {parent} is a file, so nothing can be written under it")
    return path
