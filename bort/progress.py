"""Progress bars that suit where they are written: tqdm's live bar on a terminal; in a log file or a pipe (CI, nohup,
horovodrun) one plain line per interval instead of a carriage-return update many times a second.

Use `from bort.progress import tqdm` wherever the package shows progress; it takes tqdm's arguments.
`BORT_PROGRESS_INTERVAL` (seconds, default 30) sets how often a line is written when not on a terminal.
"""
import functools
import os
import sys

DEFAULT_INTERVAL_S = 30.0


class _OneLinePerUpdate:
    """A stream for tqdm that turns each carriage-return redraw into one complete line."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        text = text.replace("\r", "").replace("\x1b[A", "")
        if text.strip():
            self._stream.write(text.rstrip("\n") + "\n")

    def flush(self):
        self._stream.flush()

    def isatty(self):
        return False


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def line_interval():
    """Seconds between lines when the output is not a terminal."""
    value = os.environ.get("BORT_PROGRESS_INTERVAL", "")
    try:
        return max(0.0, float(value)) if value else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def tqdm(*args, **kwargs):
    """tqdm's bar; when its stream (default stderr) is not a terminal, one line per `line_interval()` seconds."""
    from tqdm import tqdm as live_bar

    stream = kwargs.get("file") or sys.stderr
    if not _is_terminal(stream):
        kwargs["file"] = _OneLinePerUpdate(stream)
        kwargs.setdefault("mininterval", line_interval())
        kwargs.setdefault("maxinterval", max(line_interval(), 10.0))
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("ascii", True)
        bar = live_bar(*args, **kwargs)
        # set_postfix/set_description redraw at once by default: in a log that would be one line per update again.
        bar.set_postfix = functools.partial(bar.set_postfix, refresh=False)
        bar.set_description = functools.partial(bar.set_description, refresh=False)
        return bar
    return live_bar(*args, **kwargs)
