"""Submission-file writers, in the formats the GLUE and SuperGLUE servers accept. All writes are atomic.

Each writer has the signature `writer(task, examples, predictions, path)`; a `Task` names its writer.

- `glue_tsv`: header `index\\tprediction`, then `<idx>\\t<label name>` per example (labels as in the data:
  `0`/`1` for CoLA, SST-2, MRPC, QQP, WNLI; `entailment`/`not_entailment`/... for MNLI, AX, QNLI, RTE);
  STS-B scores are clipped to [0, 5] and written with 3 decimals.
- `superglue_jsonl(values)`: `{"idx": <int>, "label": <value>}` per line, where `values` maps a label name
  to what the server expects. The types follow the files the SuperGLUE baseline (jiant v1, strict format)
  submitted: BoolQ and WiC `"true"`/`"false"`, WSC `"True"`/`"False"`, CB, RTE, AX-b, AX-g the label strings,
  COPA the integer 0/1 of the chosen alternative.
- `multirc_jsonl`: one line per passage, `{"idx": p, "passage": {"questions": [{"idx": q, "answers":
  [{"idx": a, "label": 0|1}, ...]}, ...]}}`, passages and questions in file order.
- `record_jsonl`: `{"idx": <query idx>, "label": "<entity text>"}` per query.
- `race_jsonl`: one line per article, `{"id": "<file id>", "answers": ["A", "C", ...]}` in question order.
"""
import json

from ..io_utils import atomic_open


def _write_lines(path, lines):
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def glue_tsv(task, examples, predictions, path):
    def value(prediction):
        if task.head == "regression":
            return f"{min(max(float(prediction), 0.0), 5.0):.3f}"
        return str(prediction)

    _write_lines(path, ["index\tprediction"] + [f"{ex.idx}\t{value(p)}" for ex, p in zip(examples, predictions)])


def submission_idx(idx):
    """Ids are integers in the submission files, also where a data file writes them as strings (AX-b's "0")."""
    if isinstance(idx, str) and idx.strip().lstrip("-").isdigit():
        return int(idx)
    return idx


def superglue_jsonl(values=None):
    """Writer of `{"idx", "label"}` lines; `values` maps predictions to output values (identity if None)."""
    def write(task, examples, predictions, path):
        records = ({"idx": submission_idx(ex.idx), "label": values[p] if values is not None else p}
                   for ex, p in zip(examples, predictions))
        _write_lines(path, (json.dumps(record) for record in records))
    return write


def _grouped(examples, predictions):
    """`[(group, [(example, prediction), ...]), ...]` in first-appearance order."""
    groups = {}
    for example, prediction in zip(examples, predictions):
        groups.setdefault(example.group, []).append((example, prediction))
    return list(groups.items())


def multirc_jsonl(task, examples, predictions, path):
    lines = []
    for passage_idx, members in _grouped(examples, predictions):
        questions = [{"idx": ex.idx,
                      "answers": [{"idx": key, "label": int(label)} for key, label in zip(ex.option_keys, pred)]}
                     for ex, pred in members]
        lines.append(json.dumps({"idx": passage_idx, "passage": {"questions": questions}}))
    _write_lines(path, lines)


def record_jsonl(task, examples, predictions, path):
    _write_lines(path, (json.dumps({"idx": ex.idx, "label": p}) for ex, p in zip(examples, predictions)))


def race_jsonl(task, examples, predictions, path):
    lines = []
    for article_id, members in _grouped(examples, predictions):
        answers = [ex.option_keys[int(pred)] for ex, pred in members]
        lines.append(json.dumps({"id": article_id, "answers": answers}))
    _write_lines(path, lines)
