"""RACE-H and RACE-M: 4-way multiple-choice reading comprehension (middle- and high-school English exams).

Files: `<data_dir>/RACE/{train,dev,test}/{high,middle}/*.txt`, each one JSON object
`{"id": "high123.txt", "article": str, "questions": [str], "options": [[str x 4]], "answers": ["A".."D"]}`.
Articles are read in natural file-name order (2.txt before 10.txt). One `Example` per question:
`idx = "<id>-<question number>"`, `group = <id>`, one segment per option: article / question with its `_`
blank filled by the option (or `"<question> <option>"` when there is no blank); `label` = option index.
"""
import os
import re

from ..errors import DataError
from . import writers
from .base import Example, Task
from .readers import field, read_json

_LETTERS = "ABCDEFGH"


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _question_with_option(question, option):
    return question.replace("_", option) if "_" in question else f"{question} {option}"


def parse_race(task, path, split):
    names = sorted((n for n in os.listdir(path) if n.endswith(".txt")), key=_natural_key)
    examples = []
    for name in names:
        file_path = os.path.join(path, name)
        record = read_json(file_path)
        examples.extend(_article_examples(record, file_path, name, split))
    return examples


def _article_examples(record, where, name, split):
    article = field(record, "article", where, str)
    questions = field(record, "questions", where, list)
    options = field(record, "options", where, list)
    answers = record.get("answers")
    article_id = record.get("id", name)
    if len(options) != len(questions) or (answers is not None and len(answers) != len(questions)):
        raise DataError(f"{where}: {len(questions)} questions but {len(options)} option lists"
                        + ("" if answers is None else f" and {len(answers)} answers"))
    if answers is None and not split.startswith("test"):
        raise DataError(f"{where}: field 'answers' missing")
    examples = []
    for number, (question, choices) in enumerate(zip(questions, options)):
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: question {number} should have a list of option strings, got {choices!r:.80}")
        keys = tuple(_LETTERS[:len(choices)])
        label = None
        if answers is not None:
            if answers[number] not in keys:
                raise DataError(f"{where}: question {number}: unknown answer {answers[number]!r} "
                                f"(expected one of {', '.join(keys)})")
            label = keys.index(answers[number])
        examples.append(Example(split=split, idx=f"{article_id}-{number}", text_a=article, text_b=question,
                                label=label, option_keys=keys, group=article_id,
                                options=tuple((article, _question_with_option(question, c)) for c in choices)))
    return examples


def _race(name, level, alias):
    return Task(name=name, benchmark="race", head="multiple_choice",
                files={split: os.path.join(split, level) for split in ("train", "dev", "test")},
                sub_dirs=("RACE", "race"), parse=parse_race, metrics=("accuracy",),
                submission={"test": f"{name}.jsonl"}, writer=writers.race_jsonl, aliases=(alias,),
                description=f"RACE {level}-school reading comprehension, 4 options per question")


RACE_TASKS = (_race("RACE-H", "high", "RACE-high"), _race("RACE-M", "middle", "RACE-middle"))
