"""GLUE: CoLA, SST, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI and the diagnostic AX, one `Task` each.

Files are the TSVs of the GLUE download script (`<data_dir>/<Task>/train.tsv`, ...). Columns are looked up by
their header names, so the differing layouts of train, dev and test files need no per-file positions; the one
exception is CoLA's train/dev, which have no header (4 columns: source, label, original label, sentence).
Every row must have as many columns as the header (QQP's train file alone tolerates short rows, which
older QQP releases contain; they are skipped with a warning). The example `idx` is the `index` (QQP: `id`)
column where the file has one, else the 0-based row number.
"""
import warnings

from ..errors import DataError
from . import writers
from .base import Example, Task
from .readers import TsvFile


def _sub_dirs(folder, cache_name):
    # The download script's layout first, then common parent names, then GluonNLP's cache folder names.
    return (folder, f"glue_data/{folder}", f"glue/{folder}", f"GLUE/{folder}", cache_name)


def _parse_index(value):
    return int(value) if value.isdigit() else value


def tsv_reader(text_a, text_b=None, label=None, index=None, headerless=None, skip_short_train_rows=False):
    """Reader for a GLUE TSV: arguments are header names; `headerless` maps split -> positions for files
    without a header, e.g. `{'train': {'text_a': 3, 'label': 1, 'columns': 4}}`."""
    headerless = headerless or {}

    def parse(task, path, split):
        positions = headerless.get(split)
        with TsvFile(path, header=positions is None) as table:
            return _read_rows(task, path, split, table, positions, (text_a, text_b, label, index),
                              skip_short_train_rows)

    return parse


def _read_rows(task, path, split, table, positions, names_wanted, skip_short_train_rows):
    text_a, text_b, label, index = names_wanted
    if positions is not None:
        width = positions["columns"]
        a_col, b_col = positions["text_a"], positions.get("text_b")
        label_col, index_col = positions.get("label"), None
    else:
        names = {name: i for i, name in enumerate(table.columns)}
        width = len(table.columns)

        def column(name, required):
            if name in names:
                return names[name]
            if required:
                raise DataError(f"{path}:1: header has no column {name!r} (it has: {', '.join(table.columns)})")
            return None

        a_col = column(text_a, True)
        b_col = column(text_b, True) if text_b else None
        # Test files carry no labels; elsewhere a missing label column is an error.
        label_col = column(label, not split.startswith("test")) if label else None
        index_col = column(index, False) if index else None

    examples, skipped = [], 0
    for line_number, fields in table:
        if len(fields) != width:
            if skip_short_train_rows and split == "train" and len(fields) < width:
                skipped += 1
                continue
            raise DataError(f"{path}:{line_number}: {len(fields)} tab-separated columns, expected {width}")
        gold = None if label_col is None else _label(task, fields[label_col], path, line_number)
        examples.append(Example(
            split=split,
            idx=_parse_index(fields[index_col]) if index_col is not None else len(examples),
            text_a=fields[a_col],
            text_b=fields[b_col] if b_col is not None else None,
            label=gold,
        ))
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} rows with missing columns (known defect of some QQP releases)")
    return examples


def _label(task, value, path, line_number):
    if task.head == "regression":
        try:
            return float(value)
        except ValueError:
            raise DataError(f"{path}:{line_number}: score {value!r} is not a number") from None
    if value not in task.labels:
        raise DataError(f"{path}:{line_number}: unknown label {value!r} (expected one of {', '.join(task.labels)})")
    return value


_TRAIN_DEV_TEST = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_BINARY = ("0", "1")
_MNLI_LABELS = ("neutral", "entailment", "contradiction")
_ENTAILMENT = ("not_entailment", "entailment")


def _glue(name, folder, cache_name, parse, metrics, submission_name, **kwargs):
    files = kwargs.pop("files", _TRAIN_DEV_TEST)
    submission = kwargs.pop("submission", {"test": submission_name})
    return Task(name=name, benchmark="glue", files=files, sub_dirs=_sub_dirs(folder, cache_name), parse=parse,
                metrics=metrics, submission=submission, writer=writers.glue_tsv, **kwargs)


GLUE_TASKS = (
    _glue("CoLA", "CoLA", "glue_cola",
          tsv_reader("sentence", index="index",
                     headerless={s: {"text_a": 3, "label": 1, "columns": 4} for s in ("train", "dev")}),
          ("mcc",), "CoLA.tsv", head="classification", labels=_BINARY,
          description="grammatical acceptability of one sentence"),
    _glue("SST", "SST-2", "glue_sst", tsv_reader("sentence", label="label", index="index"),
          ("accuracy",), "SST-2.tsv", head="classification", labels=_BINARY, aliases=("SST-2", "SST2"),
          description="sentiment of one sentence"),
    _glue("MRPC", "MRPC", "glue_mrpc", tsv_reader("#1 String", "#2 String", label="Quality", index="index"),
          ("f1", "accuracy"), "MRPC.tsv", head="classification", labels=_BINARY, positive_label="1",
          description="are the two sentences paraphrases"),
    _glue("QQP", "QQP", "glue_qqp",
          tsv_reader("question1", "question2", label="is_duplicate", index="id", skip_short_train_rows=True),
          ("f1", "accuracy"), "QQP.tsv", head="classification", labels=_BINARY, positive_label="1",
          description="are the two questions duplicates"),
    _glue("STS-B", "STS-B", "glue_stsb", tsv_reader("sentence1", "sentence2", label="score", index="index"),
          ("pearson", "spearman"), "STS-B.tsv", head="regression", aliases=("STSB", "STS"),
          description="similarity score 0-5 of two sentences"),
    _glue("MNLI", "MNLI", "glue_mnli", tsv_reader("sentence1", "sentence2", label="gold_label", index="index"),
          ("accuracy",), None, head="classification", labels=_MNLI_LABELS,
          files={"train": "train.tsv", "dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv",
                 "test_matched": "test_matched.tsv", "test_mismatched": "test_mismatched.tsv"},
          submission={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
          aliases=("MNLI-m", "MNLI-mm"), description="premise entails / contradicts / is neutral to hypothesis"),
    _glue("QNLI", "QNLI", "glue_qnli", tsv_reader("question", "sentence", label="label", index="index"),
          ("accuracy",), "QNLI.tsv", head="classification", labels=_ENTAILMENT,
          description="does the sentence answer the question"),
    _glue("RTE", "RTE", "glue_rte", tsv_reader("sentence1", "sentence2", label="label", index="index"),
          ("accuracy",), "RTE.tsv", head="classification", labels=_ENTAILMENT,
          description="textual entailment (GLUE version)"),
    _glue("WNLI", "WNLI", "glue_wnli", tsv_reader("sentence1", "sentence2", label="label", index="index"),
          ("accuracy",), "WNLI.tsv", head="classification", labels=_BINARY,
          description="Winograd NLI: does the sentence with the pronoun substituted follow"),
    _glue("AX", "diagnostic", "glue_diagnostic",
          tsv_reader("sentence1", "sentence2", label="label", index="index"),
          ("mcc",), "AX.tsv", head="classification", labels=_MNLI_LABELS,
          files={"test": "diagnostic.tsv"}, train_task_name="MNLI", aliases=("GLUE-AX", "diagnostic"),
          description="GLUE diagnostic set, predicted by the MNLI model; labels are not public"),
)
