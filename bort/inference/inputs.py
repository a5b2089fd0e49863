"""Input files for `scripts/predict.py`: JSON lines or TSV, one example per line.

- JSON lines: an object per line with `text` (str) and, for text pairs, `text_b` (str); other fields are kept
  and copied to the output. The field names can be changed.
- TSV: one column (a text) or two (a text pair); `header=True` skips a first line of column names.

Every problem raises `DataError` naming the file and line.
"""
import dataclasses
import os
from typing import Optional

from ..errors import DataError
from ..tasks.readers import TsvFile, read_jsonl

FORMATS = ("auto", "jsonl", "tsv")


@dataclasses.dataclass
class Example:
    line: int
    text: str
    text_b: Optional[str] = None
    extra: dict = dataclasses.field(default_factory=dict)  # other JSON fields, echoed in the output


def detect_format(path, fmt="auto"):
    if fmt not in FORMATS:
        raise DataError(f"unknown input format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    lowered = str(path).lower()
    if lowered.endswith((".tsv", ".txt")):
        return "tsv"
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the format from the file name; pass --format jsonl or --format tsv")


def _check_str(value, where, name):
    if not isinstance(value, str):
        raise DataError(f"{where}: field {name!r} should be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: field {name!r} is empty")
    return value


def read_examples(path, fmt="auto", text_field="text", pair_field="text_b", header=False):
    """All examples of `path` as a list of `Example`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"input file {path} does not exist")
    fmt = detect_format(path, fmt)
    examples = []
    if fmt == "jsonl":
        for line, record in read_jsonl(path):
            where = f"{path}:{line}"
            if text_field not in record:
                raise DataError(f"{where}: missing field {text_field!r} (fields: {', '.join(sorted(record))})")
            text = _check_str(record[text_field], where, text_field)
            text_b = record.get(pair_field)
            if text_b is not None:
                text_b = _check_str(text_b, where, pair_field)
            extra = {k: v for k, v in record.items() if k not in (text_field, pair_field)}
            examples.append(Example(line, text, text_b, extra))
    else:
        with TsvFile(path, header) as rows:
            for line, fields in rows:
                where = f"{path}:{line}"
                if len(fields) > 2:
                    raise DataError(f"{where}: {len(fields)} tab-separated columns; expected 1 (a text) or 2 "
                                    "(a text pair)")
                text = _check_str(fields[0], where, "column 1")
                text_b = _check_str(fields[1], where, "column 2") if len(fields) == 2 else None
                examples.append(Example(line, text, text_b))
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty)")
    return examples
