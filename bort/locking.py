"""An exclusive lock on an output directory, so two runs never write into the same one.

`output_lock(directory)` takes `fcntl.flock` on `<directory>/.bort.lock` (or, with `sibling=True`, on
`<parent>/.<name>.lock`, for outputs that are created by renaming a finished temporary directory into place).
The kernel drops a `flock` when its holder exits, however it exits, so a lock file left behind by a crash
never blocks the next run; only a live holder does, and the error names its pid, host and command.
The lock file itself is kept: deleting it while another process may have it open would let two runs lock
two different files.
"""
import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time

from .errors import ConfigError

LOCK_NAME = ".bort.lock"


def lock_path(directory, sibling=False):
    """Where the lock of `directory` lives."""
    directory = os.path.abspath(os.fspath(directory))
    if sibling:
        parent, name = os.path.split(directory.rstrip(os.sep))
        return os.path.join(parent, f".{name}.lock")
    return os.path.join(directory, LOCK_NAME)


def _holder(handle):
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}


@contextlib.contextmanager
def output_lock(directory, what="run", sibling=False, enabled=True):
    """Hold an exclusive lock on `directory` (created if missing) for the duration of the block.

    Raises ConfigError when `directory` is an existing file, or when another live process holds the lock.
    `enabled=False` (e.g. on the non-main workers of a distributed run) makes it a no-op.
    """
    if not enabled:
        yield None
        return
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"the output directory {directory} is an existing file; choose a directory path")
    path = lock_path(directory, sibling)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _holder(handle)
            raise ConfigError(
                f"{directory} is in use by another {holder.get('what', 'run')} (pid {holder.get('pid', '?')} on "
                f"host {holder.get('host', '?')}, since {holder.get('since', '?')}: {holder.get('command', '?')}); "
                f"wait for it to finish or choose another output directory (lock file {path})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(dict(pid=os.getpid(), host=socket.gethostname(), what=what,
                                     since=time.strftime("%Y-%m-%d %H:%M:%S"), command=" ".join(sys.argv))))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the descriptor releases the flock
