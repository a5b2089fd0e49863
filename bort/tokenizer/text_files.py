"""Reading users' text files line by line, with errors that name the file and line of a bad byte."""
import os

from ..errors import DataError


def _describe_decode_error(err):
    bad = err.object[err.start:err.start + 1]
    return f"byte 0x{bad.hex()} at column {err.start + 1} is not valid UTF-8"


def iter_utf8_lines(path, error_cls=DataError):
    """Yield `(line_number, text)` for each line of `path` (1-based, newline kept).

    Decoding line by line (instead of `open(..., encoding='utf-8')`) is what lets the error say which line
    holds the bad byte; a corpus of many gigabytes would otherwise fail with an offset nobody can use.
    """
    path = os.fspath(path)
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise error_cls(f"cannot read {path}: {err.strerror}") from err
    with handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                yield line_number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error_cls(f"{path}, line {line_number}: {_describe_decode_error(err)}; "
                                f"convert the file to UTF-8 (e.g. with iconv)") from None


def read_utf8_lines(path, error_cls=DataError, keep_newlines=False):
    """All lines of a UTF-8 text file as a list; non-UTF-8 bytes raise `error_cls` naming file and line."""
    if keep_newlines:
        return [text for _, text in iter_utf8_lines(path, error_cls)]
    return [text.rstrip("\r\n") for _, text in iter_utf8_lines(path, error_cls)]


def read_utf8_text(path, error_cls=DataError):
    """The whole file as one string, checked line by line so a bad byte is reported with its line."""
    return "".join(text for _, text in iter_utf8_lines(path, error_cls))


def check_utf8_files(paths, error_cls=DataError):
    """Raise `error_cls` for the first file that is missing or holds bytes that are not UTF-8."""
    for path in paths:
        for _ in iter_utf8_lines(path, error_cls):
            pass
