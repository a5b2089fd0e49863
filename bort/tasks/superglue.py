"""SuperGLUE: BoolQ, CB, COPA, MultiRC, ReCoRD, SuperGLUERTE, WiC, WSC and the diagnostics AXb, AXg.

Files are the official JSONL (`<data_dir>/<Task>/train.jsonl`, `val.jsonl` (our 'dev'), `test.jsonl`;
`AX-b/AX-b.jsonl`, `AX-g/AX-g.jsonl`). Model inputs built from the fields (text_a / text_b):

- BoolQ: passage / question. CB, SuperGLUERTE, AXg: premise / hypothesis (unaltered; docs/release_bugs.md, "CB text
  mangling"). AXb: sentence1 / sentence2.
- WiC: `"<word>: <sentence1>"` / sentence2 (the release left the target word out).
- WSC: text / `'Does "<span2>" refer to "<span1>"?'`.
- COPA (multiple choice): per alternative, premise / `"What was the cause|effect? <choice>"`.
- MultiRC (one example per question; docs/release_bugs.md, "MultiRC passage as a list"): the passage with its
  `<b>Sent N: </b>` and `<br>` markup removed / `"<question> <answer>"`, one segment per answer; labels are the
  answers' 0/1.
- ReCoRD (one example per query; docs/release_bugs.md, "ReCoRD and MultiRC evaluation"): candidates are the
  passage's distinct entity strings (ends are inclusive offsets) in order of first mention, each segment
  passage / query with `@placeholder` replaced by the candidate; `@highlight` lines become `- ` bullets. Gold
  labels are the answers' texts, so candidate labels line up with the full candidate list (no subsampling here;
  a training loop may subsample).

Labels: BoolQ, WiC, WSC JSON booleans become 'false'/'true'; test files (and AX-b/AX-g if unlabelled) give
`label=None`.
"""
import re

from ..errors import DataError
from . import writers
from .base import Example, Task
from .readers import field, read_jsonl

_BOOL_LABELS = ("false", "true")
_CB_LABELS = ("neutral", "entailment", "contradiction")
_ENTAILMENT = ("not_entailment", "entailment")


def _sub_dirs(folder, cache_name):
    return (folder, f"superglue/{folder}", f"SuperGLUE/{folder}", f"super_glue/{folder}", cache_name)


def jsonl_reader(build):
    """Reader calling `build(task, record, where, split)` -> Example fields (a dict, or a list of dicts) per line."""
    def parse(task, path, split):
        examples = []
        for line_number, record in read_jsonl(path):
            where = f"{path}:{line_number}"
            built = build(task, record, where, split)
            for fields in built if isinstance(built, list) else [built]:
                examples.append(Example(split=split, **fields))
        return examples
    return parse


def _label(task, record, where, split):
    """The record's label as a label name (or None where a test file has none)."""
    if "label" not in record:
        if split.startswith("test"):
            return None
        raise DataError(f"{where}: missing field 'label'")
    value = record["label"]
    if task.labels == _BOOL_LABELS and isinstance(value, (bool, str)):
        value = str(value).lower()
    if value not in task.labels:
        raise DataError(f"{where}: unknown label {record['label']!r} (expected one of {', '.join(task.labels)})")
    return value


def _idx(record, where):
    return field(record, "idx", where, (int, str))


def _pair(key_a, key_b):
    def build(task, record, where, split):
        return dict(idx=_idx(record, where), text_a=field(record, key_a, where, str),
                    text_b=field(record, key_b, where, str), label=_label(task, record, where, split))
    return build


def _wic(task, record, where, split):
    word = field(record, "word", where, str)
    return dict(idx=_idx(record, where), text_a=f"{word}: {field(record, 'sentence1', where, str)}",
                text_b=field(record, "sentence2", where, str), label=_label(task, record, where, split))


def _wsc(task, record, where, split):
    target = field(record, "target", where, dict)
    span1 = field(target, "span1_text", f"{where} (target)", str)
    span2 = field(target, "span2_text", f"{where} (target)", str)
    return dict(idx=_idx(record, where), text_a=field(record, "text", where, str),
                text_b=f'Does "{span2}" refer to "{span1}"?', label=_label(task, record, where, split))


def parse_axg(task, path, split):
    """AX-g's minimal pairs are consecutive rows 2i and 2i+1 that share a hypothesis (the official file gives
    every row its own `pair_id`, so pair ids cannot group them); the SuperGLUE baseline pairs them the same way
    and checks the shared hypothesis, as this does."""
    build = _pair("premise", "hypothesis")
    rows = [(f"{path}:{line_number}", record) for line_number, record in read_jsonl(path)]
    if len(rows) % 2:
        raise DataError(f"{path}: {len(rows)} rows, but AX-g holds minimal pairs (consecutive rows 2i, 2i+1)")
    examples = []
    for row, (where, record) in enumerate(rows):
        built = build(task, record, where, split)
        if row % 2 and built["text_b"] != examples[-1].text_b:
            raise DataError(f"{where}: its hypothesis differs from the row before; AX-g's consecutive rows 2i, "
                            "2i+1 must be a minimal pair sharing one hypothesis")
        examples.append(Example(split=split, group=row // 2, **built))
    return examples


def _copa(task, record, where, split):
    question = field(record, "question", where, str)
    if question not in ("cause", "effect"):
        raise DataError(f"{where}: COPA question should be 'cause' or 'effect', got {question!r}")
    premise = field(record, "premise", where, str)
    choices = (field(record, "choice1", where, str), field(record, "choice2", where, str))
    label = record.get("label")
    if label is None and not split.startswith("test"):
        raise DataError(f"{where}: missing field 'label'")
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        raise DataError(f"{where}: unknown label {label!r} (expected 0 or 1)")
    return dict(idx=_idx(record, where), text_a=premise, label=label, option_keys=(0, 1),
                options=tuple((premise, f"What was the {question}? {choice}") for choice in choices))


_SENTENCE_MARK = re.compile(r"<b>\s*Sent\s*\d+\s*:\s*</b>")
_LINE_BREAK = re.compile(r"<br\s*/?>")


def clean_multirc_passage(text):
    """Drop MultiRC's `<b>Sent N: </b>` markers and `<br>` breaks, leaving the plain sentences."""
    return " ".join(_LINE_BREAK.sub(" ", _SENTENCE_MARK.sub(" ", text)).split())


def _multirc(task, record, where, split):
    passage = field(record, "passage", where, dict)
    text = clean_multirc_passage(field(passage, "text", f"{where} (passage)", str))
    examples = []
    for q_number, question in enumerate(field(passage, "questions", f"{where} (passage)", list)):
        q_where = f"{where} (question {q_number})"
        q_text = field(question, "question", q_where, str)
        answers = field(question, "answers", q_where, list)
        if not answers:
            raise DataError(f"{q_where}: question has no answers")
        keys, options, labels = [], [], []
        for a_number, answer in enumerate(answers):
            a_where = f"{q_where} (answer {a_number})"
            keys.append(field(answer, "idx", a_where, (int, str)))
            options.append((text, f"{q_text} {field(answer, 'text', a_where, str)}"))
            if "label" in answer:
                if answer["label"] not in (0, 1) or isinstance(answer["label"], bool):
                    raise DataError(f"{a_where}: unknown label {answer['label']!r} (expected 0 or 1)")
                labels.append(int(answer["label"]))
            elif not split.startswith("test"):
                raise DataError(f"{a_where}: missing field 'label'")
        examples.append(dict(idx=field(question, "idx", q_where, (int, str)), text_a=text, text_b=q_text,
                             label=tuple(labels) if len(labels) == len(answers) else None,
                             options=tuple(options), option_keys=tuple(keys), group=_idx(record, where)))
    if not examples:
        raise DataError(f"{where}: passage has no questions")
    return examples


def _record(task, record, where, split):
    passage = field(record, "passage", where, dict)
    raw = field(passage, "text", f"{where} (passage)", str)
    candidates = []
    for number, entity in enumerate(field(passage, "entities", f"{where} (passage)", list)):
        e_where = f"{where} (entity {number})"
        start, end = field(entity, "start", e_where, int), field(entity, "end", e_where, int)
        if not 0 <= start <= end < len(raw):
            raise DataError(f"{e_where}: span {start}..{end} lies outside the {len(raw)}-character passage")
        text = raw[start:end + 1]
        if text not in candidates:
            candidates.append(text)
    if not candidates:
        raise DataError(f"{where}: passage has no entities")
    text = raw.replace("@highlight\n", "- ")
    examples = []
    for number, qa in enumerate(field(record, "qas", where, list)):
        q_where = f"{where} (query {number})"
        query = field(qa, "query", q_where, str)
        if "@placeholder" not in query:
            raise DataError(f"{q_where}: query has no @placeholder")
        golds = None
        if "answers" in qa or not split.startswith("test"):
            golds = []
            for answer in field(qa, "answers", q_where, list):
                answer_text = field(answer, "text", q_where + " (answer)", str)
                if answer_text not in golds:
                    golds.append(answer_text)
            golds = tuple(golds) if golds else None
            if golds is None and not split.startswith("test"):
                raise DataError(f"{q_where}: query has no answers")
        examples.append(dict(idx=field(qa, "idx", q_where, (int, str)), text_a=text, text_b=query, label=golds,
                             options=tuple((text, query.replace("@placeholder", c)) for c in candidates),
                             option_keys=tuple(candidates), group=_idx(record, where)))
    if not examples:
        raise DataError(f"{where}: passage has no queries")
    return examples


_TRAIN_VAL_TEST = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}


def _superglue(name, folder, cache_name, build, head, metrics, submission_name, writer=None, **kwargs):
    files = kwargs.pop("files", _TRAIN_VAL_TEST)
    parse = kwargs.pop("parse", None) or jsonl_reader(build)
    return Task(name=name, benchmark="superglue", head=head, files=files, sub_dirs=_sub_dirs(folder, cache_name),
                parse=parse, metrics=metrics, submission={"test": submission_name},
                writer=writer or writers.superglue_jsonl(), **kwargs)


SUPERGLUE_TASKS = (
    _superglue("BoolQ", "BoolQ", "superglue_boolq", _pair("passage", "question"), "classification",
               ("accuracy",), "BoolQ.jsonl", labels=_BOOL_LABELS, description="yes/no question about a passage"),
    _superglue("CB", "CB", "superglue_cb", _pair("premise", "hypothesis"), "classification",
               ("macro_f1", "accuracy"), "CB.jsonl", labels=_CB_LABELS, aliases=("CommitmentBank",),
               description="3-way entailment, CommitmentBank"),
    _superglue("COPA", "COPA", "superglue_copa", _copa, "multiple_choice", ("accuracy",), "COPA.jsonl",
               description="choose the more plausible cause/effect of the premise"),
    _superglue("MultiRC", "MultiRC", "superglue_multirc", _multirc, "answer_scoring", ("f1a", "em"),
               "MultiRC.jsonl", writer=writers.multirc_jsonl,
               description="multi-sentence reading comprehension: each answer option is true or false"),
    _superglue("ReCoRD", "ReCoRD", "superglue_record", _record, "candidate_ranking", ("f1", "em"),
               "ReCoRD.jsonl", writer=writers.record_jsonl,
               description="cloze: pick the passage entity that fills @placeholder"),
    _superglue("SuperGLUERTE", "RTE", "superglue_rte", _pair("premise", "hypothesis"), "classification",
               ("accuracy",), "RTE.jsonl", labels=_ENTAILMENT, aliases=("SuperGLUE-RTE", "RTE-SuperGLUE"),
               description="textual entailment (SuperGLUE version)"),
    _superglue("WiC", "WiC", "superglue_wic", _wic, "classification", ("accuracy",), "WiC.jsonl",
               labels=_BOOL_LABELS, description="is the word used with the same sense in both sentences"),
    _superglue("WSC", "WSC", "superglue_wsc", _wsc, "classification", ("accuracy",), "WSC.jsonl",
               labels=_BOOL_LABELS, writer=writers.superglue_jsonl({"false": "False", "true": "True"}),
               description="Winograd schema: does the pronoun refer to the noun phrase"),
    _superglue("AXb", "AX-b", "superglue_axb", _pair("sentence1", "sentence2"), "classification", ("mcc",),
               "AX-b.jsonl", labels=_ENTAILMENT, files={"test": "AX-b.jsonl"}, train_task_name="SuperGLUERTE",
               aliases=("AX-b",), description="SuperGLUE broad-coverage diagnostic, predicted by the RTE model"),
    _superglue("AXg", "AX-g", "superglue_axg", None, "classification", ("gender_parity", "accuracy"),
               "AX-g.jsonl", labels=_ENTAILMENT, files={"test": "AX-g.jsonl"}, train_task_name="SuperGLUERTE",
               aliases=("AX-g",), description="Winogender diagnostic, predicted by the RTE model", parse=parse_axg),
)
