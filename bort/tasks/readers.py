"""Low-level readers for the official distribution files, with errors that name the file and line.

- `default_data_dir()`: `$BORT_DATA`, else `$MXNET_HOME/datasets`, else `~/.mxnet/datasets`.
- `find_path(data_dir, sub_dirs, name, what, want_dir=False)`: the first `<data_dir>/<sub_dir>/<name>` that
  exists, or a `DataError` listing every path that was tried.
- `TsvFile(path, header)`: iterates `(line_number, fields)`; with `header=True` the column names are in
  `.columns`. Quotes are ordinary characters (GLUE text contains unbalanced `"`),
  and only `\\n` ends a line, so a stray `\\r` inside a sentence cannot split a row.
- `read_jsonl(path)`: yields `(line_number, dict)`, blank lines skipped, broken JSON -> `DataError`.
- `read_json(path)`: one JSON document per file (RACE).
- `field(record, key, where)`: `record[key]` or a `DataError` saying which field is missing where.

`where` strings look like `"/data/CB/val.jsonl:12"` so every message points at the offending line.
"""
import json
import os

from ..errors import DataError


def default_data_dir():
    """Directory the tasks' files are looked up under when no `data_dir` is given."""
    if os.environ.get("BORT_DATA"):
        return os.path.expanduser(os.environ["BORT_DATA"])
    if os.environ.get("MXNET_HOME"):
        return os.path.join(os.path.expanduser(os.environ["MXNET_HOME"]), "datasets")
    return os.path.join(os.path.expanduser("~"), ".mxnet", "datasets")


def find_path(data_dir, sub_dirs, name, what, want_dir=False):
    """Return the first existing `<data_dir>/<sub_dir>/<name>`; raise `DataError` listing all tried paths."""
    tried = []
    for sub_dir in sub_dirs:
        candidate = os.path.join(data_dir, sub_dir, name)
        tried.append(candidate)
        if (os.path.isdir(candidate) if want_dir else os.path.isfile(candidate)):
            return candidate
    kind = "directory" if want_dir else "file"
    raise DataError(
        f"{what}: {kind} {name!r} not found under data_dir {data_dir}; looked for:\n  "
        + "\n  ".join(tried)
        + "\nPass --data_dir (or set $BORT_DATA) to the directory holding the benchmark's task folders; "
        "see the README's section 'Fine-tuning tasks and data' for the expected layout."
    )


class TsvFile:
    """Iterate the rows of a tab-separated file as `(line_number, fields)`; use it as a context manager.

    With `header=True` the first line is consumed and its names kept in `self.columns`.
    """

    def __init__(self, path, header):
        self.path = path
        self.header = header
        self.columns = None
        self._handle = open(path, "rb")
        self._line_number = 0
        if header:
            first = self._next_line()
            if first is None:
                self._handle.close()
                raise DataError(f"{path}: the file is empty (expected a header line)")
            self.columns = first

    def _next_line(self):
        raw = self._handle.readline()
        if not raw:
            return None
        self._line_number += 1
        try:
            # utf-8-sig: the MRPC files made by the GLUE download script keep the source's byte-order mark.
            text = raw.decode("utf-8-sig" if self._line_number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path}:{self._line_number}: not valid UTF-8 ({err})") from None
        return text.rstrip("\n").rstrip("\r").split("\t")

    def __iter__(self):
        while True:
            fields = self._next_line()
            if fields is None:
                return
            if fields == [""]:
                continue
            yield self._line_number, fields

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()


def _json_problem(err):
    """`Unterminated string starting at column 9`: json's own message ends in "at" for some errors."""
    return f"{err.msg.removesuffix(' at')} at column {err.colno}"


def read_jsonl(path):
    """Yield `(line_number, record)` for each non-blank line of a JSON-lines file."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{line_number}: not valid UTF-8 ({err})") from None
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_number}: broken JSON ({_json_problem(err)})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
            yield line_number, record


def read_json(path):
    """Parse a file holding one JSON object (a RACE article)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: broken JSON ({_json_problem(err)})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(record).__name__}")
    return record


_MISSING = object()


def field(record, key, where, types=None):
    """`record[key]`, checked to be one of `types`; a `DataError` naming `where` otherwise."""
    value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
    if value is _MISSING:
        raise DataError(f"{where}: missing field {key!r}")
    wrong_bool = isinstance(value, bool) and bool not in _as_tuple(types or ())
    if types is not None and (not isinstance(value, types) or wrong_bool):
        names = "/".join(t.__name__ for t in _as_tuple(types))
        raise DataError(f"{where}: field {key!r} should be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)
