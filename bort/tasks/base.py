"""The `Task` definition and the `Example` it reads: what the training loop builds on.

Every task is one declarative `Task(...)` (see glue.py, superglue.py, race.py). The training loop uses:

    task = get_task('RTE')
    examples = task.read(data_dir, 'train')            # list of Example; len == examples in the file
    inst = task.to_instances(examples[0])              # Instances(segments=[(text_a, text_b|None), ...], label)
    preds = task.predictions_from_scores(examples, scores)
    task.evaluate(examples, preds)                     # {'accuracy': 0.71, ...}, main metric first
    task.dev_score({split: task.evaluate(...) for split in task.dev_splits})  # epoch selection / early stop
    task.write_predictions(test_examples, preds, out_dir)  # official submission file, atomically

Heads (`task.head`), what one example turns into, what `scores[i]` must be, and what a prediction is:

| head | segments per example | `Instances.label` | `task.num_labels` | `scores[i]` | prediction |
|---|---|---|---|---|---|
| classification | 1 | class id (int) | C | (C,) logits | label name (str) |
| regression | 1 | float | 1 | scalar or (1,) | float |
| multiple_choice (COPA, RACE) | one per option | index of the right option | 1 | (n_options,) or (n_options, 1): one logit per option, softmax across options | option index (int) |
| answer_scoring (MultiRC) | one per answer | list of 0/1, one per answer | 2 | (n_answers, 2) logits, or (n_answers,) positive-class logits | tuple of 0/1 per answer |
| candidate_ranking (ReCoRD) | one per candidate entity | list of 0/1, one per candidate | 2 | (n_candidates, 2) logits, or (n_candidates,) scores | the best candidate's text |

`answer_scoring` and `candidate_ranking` train a binary classifier per segment (cross-entropy on 2 logits);
ReCoRD then picks, per query, the candidate with the highest P(class 1), i.e. the largest logit difference.
`Instances.label` is None for unlabelled examples (test files).

Example fields (frozen dataclass):
- `split`, `idx` (the id the submission file uses: the TSV `index`/`id` column or the row number, the
  JSONL `idx`, RACE `"<article id>-<question number>"`), `text_a`, `text_b` (None for single sentences);
- `label`: classification: label name (one of `task.labels`); regression: float; multiple_choice: option
  index; answer_scoring: tuple of 0/1 per answer; candidate_ranking: tuple of gold answer strings;
  None when the file has no label;
- `options`: the segments `(text_a, text_b)` of multi-segment heads; `option_keys`: what they stand for
  (MultiRC answer idx, ReCoRD candidate texts, RACE letters, COPA 0/1);
- `group`: MultiRC/ReCoRD passage idx, RACE article id, AX-g minimal pair (row // 2) (None elsewhere).
"""
import dataclasses
import functools
import os
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from ..errors import ConfigError, DataError, InputError
from . import metrics as M
from .readers import default_data_dir, find_path

HEADS = ("classification", "regression", "multiple_choice", "answer_scoring", "candidate_ranking")
_MULTI_SEGMENT_HEADS = ("multiple_choice", "answer_scoring", "candidate_ranking")


@dataclasses.dataclass(frozen=True)
class Example:
    split: str
    idx: Any
    text_a: str = ""
    text_b: Optional[str] = None
    label: Any = None
    options: Tuple[Tuple[str, Optional[str]], ...] = ()
    option_keys: Tuple[Any, ...] = ()
    group: Any = None


class Instances(NamedTuple):
    """Model inputs of one example: text segment pairs and the label(s) (None when unlabelled)."""
    segments: list
    label: Any


# eq=False: tasks compare and hash by identity (their mappings are not hashable).
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Task:
    """One task, declared once. Field meanings:

    - `name`: the release's key (`ALL_TASKS_DIC`); `aliases`: leaderboard names also accepted by `get_task`.
    - `benchmark`: 'glue', 'superglue' or 'race'. `head`: one of `HEADS`. `labels`: class names (classification).
    - `files`: split -> file name (RACE: split -> directory); the first split is 'train' unless test-only.
    - `sub_dirs`: folders under `data_dir` searched in order for those files (see docs/tasks.md).
    - `parse(task, path, split) -> list[Example]`: the reader.
    - `metrics`: metric names, main first. `positive_label`: for F1 (MRPC, QQP).
    - `submission`: test split -> official submission file name; `writer(task, examples, predictions, path)`.
    - `train_task`: the task whose fine-tuned model predicts this one (AX -> MNLI, AX-b/AX-g -> SuperGLUERTE).
    """
    name: str
    benchmark: str
    head: str
    files: Mapping[str, str]
    sub_dirs: Tuple[str, ...]
    parse: Callable
    metrics: Tuple[str, ...]
    submission: Mapping[str, str]
    writer: Callable
    labels: Optional[Tuple[str, ...]] = None
    aliases: Tuple[str, ...] = ()
    positive_label: Optional[str] = None
    train_task_name: Optional[str] = None
    description: str = ""

    def __post_init__(self):
        if self.head not in HEADS:
            raise ConfigError(f"task {self.name}: unknown head {self.head!r} (expected one of {HEADS})")
        if (self.head == "classification") != bool(self.labels):
            raise ConfigError(f"task {self.name}: classification tasks, and only they, declare labels")

    # ----- splits -------------------------------------------------------------------------------------
    @property
    def splits(self):
        return tuple(self.files)

    @property
    def test_only(self):
        return "train" not in self.files

    @property
    def dev_splits(self):
        return tuple(s for s in self.files if s == "dev" or s.startswith("dev_"))

    @property
    def test_splits(self):
        return tuple(s for s in self.files if s == "test" or s.startswith("test_"))

    @property
    def train_task(self):
        """Name of the task whose model predicts this one: itself, except for the diagnostics."""
        return self.train_task_name or self.name

    @property
    def main_metric(self):
        return self.metrics[0]

    # ----- labels ---------------------------------------------------------------------------------------
    @property
    def num_labels(self):
        """Width of the head's output per segment (see the table in the module docstring)."""
        if self.head == "classification":
            return len(self.labels)
        if self.head in ("answer_scoring", "candidate_ranking"):
            return 2
        return 1

    @functools.cached_property
    def label_to_id(self):
        return {label: i for i, label in enumerate(self.labels or ())}

    # ----- reading --------------------------------------------------------------------------------------
    def file_path(self, data_dir, split):
        """Where `split` is read from; `DataError` naming every place looked at when it is missing."""
        self._check_split(split)
        data_dir = default_data_dir() if data_dir is None else os.fspath(data_dir)
        return find_path(data_dir, self.sub_dirs, self.files[split], f"{self.name} {split}",
                         want_dir=self.benchmark == "race")

    def read(self, data_dir, split):
        """The split's examples, in file order; `data_dir` None means `default_data_dir()`."""
        path = self.file_path(data_dir, split)
        examples = self.parse(self, path, split)
        if not examples:
            raise DataError(f"{path}: no {self.name} examples in the {split} split (the file is empty)")
        if split.startswith("test"):
            _refuse_duplicate_ids(path, examples, per_group=self.head in ("answer_scoring", "candidate_ranking"))
        return examples

    def _check_split(self, split):
        if split not in self.files:
            raise ConfigError(f"task {self.name} has no split {split!r}; its splits are {', '.join(self.files)}")

    # ----- model inputs ---------------------------------------------------------------------------------
    def to_instances(self, example):
        """`Instances(segments, label)` for one example (see the module docstring for the label's form)."""
        if self.head in _MULTI_SEGMENT_HEADS:
            segments = list(example.options)
        else:
            segments = [(example.text_a, example.text_b)]
        label = example.label
        if label is not None:
            if self.head == "classification":
                label = self.label_to_id[label]
            elif self.head == "regression":
                label = float(label)
            elif self.head == "answer_scoring":
                label = [int(v) for v in label]
            elif self.head == "candidate_ranking":
                golds = set(label)
                label = [int(key in golds) for key in example.option_keys]
        return Instances(segments, label)

    # ----- predictions ----------------------------------------------------------------------------------
    def predictions_from_scores(self, examples, scores):
        """Turn the model's outputs (`scores[i]` for `examples[i]`, shapes in the docstring table) into predictions."""
        if len(examples) != len(scores):
            raise InputError(f"{self.name}: {len(examples)} examples but {len(scores)} score entries")
        return [self._prediction(example, np.asarray(score, dtype=np.float64))
                for example, score in zip(examples, scores)]

    def _prediction(self, example, score):
        if self.head == "classification":
            if score.shape != (self.num_labels,):
                raise InputError(f"{self.name} example {example.idx}: expected scores of shape ({self.num_labels},), "
                                 f"got {score.shape}")
            return self.labels[int(np.argmax(score))]
        if self.head == "regression":
            if score.size != 1:
                raise InputError(f"{self.name} example {example.idx}: expected one regression score, got {score.shape}")
            return float(score.reshape(-1)[0])
        count = len(example.options)
        if score.ndim == 2 and score.shape[1] == 1 and self.head == "multiple_choice":
            score = score[:, 0]
        if score.ndim == 2 and score.shape[1] == 2 and self.head != "multiple_choice":
            positive = score[:, 1] - score[:, 0]
        elif score.ndim == 1:
            positive = score
        else:
            raise InputError(f"{self.name} example {example.idx}: scores of shape {score.shape} do not fit the "
                             f"{self.head} head ({count} segments)")
        if positive.shape[0] != count:
            raise InputError(f"{self.name} example {example.idx}: {count} segments but {positive.shape[0]} scores")
        if self.head == "multiple_choice":
            return int(np.argmax(positive))
        if self.head == "answer_scoring":
            # Positive when P(1) > 0.5: a logit difference (or a positive-class logit) above 0.
            return tuple(int(v > 0) for v in positive)
        return example.option_keys[int(np.argmax(positive))]

    # ----- metrics --------------------------------------------------------------------------------------
    def evaluate(self, examples, predictions):
        """`{metric: value}` with the main metric first; `DataError` if the examples carry no labels."""
        if len(examples) != len(predictions):
            raise InputError(f"{self.name}: {len(examples)} examples but {len(predictions)} predictions")
        unlabelled = [ex.idx for ex in examples if ex.label is None]
        if unlabelled:
            raise DataError(f"{self.name} {examples[0].split if examples else ''}: {len(unlabelled)} examples have "
                            f"no gold label (e.g. idx {unlabelled[0]!r}); test files of GLUE/SuperGLUE are scored "
                            "by the leaderboard servers only")
        golds = [ex.label for ex in examples]
        results = {}
        for name in self.metrics:
            if name in results:
                continue
            if name in ("f1a", "em") and self.head == "answer_scoring":
                results["f1a"], results["em"] = M.multirc_scores(golds, predictions)
            elif name in ("f1", "em") and self.head == "candidate_ranking":
                results["f1"], results["em"] = M.record_scores(golds, predictions)
            elif name == "gender_parity":
                results[name] = M.gender_parity([ex.group for ex in examples], predictions)
            elif name == "f1":
                results[name] = M.binary_f1(golds, predictions, self.positive_label)
            else:
                results[name] = _SIMPLE_METRICS[name](golds, predictions)
        return {name: results[name] for name in self.metrics}

    def dev_score(self, results_by_split):
        """One number for best-epoch selection and early stopping: the main metric averaged over the dev
        splits (`{split: evaluate(...)}`); the release used only the last split's value
        (docs/release_bugs.md, "Best-epoch selection")."""
        missing = [s for s in self.dev_splits if s not in results_by_split]
        if missing or not self.dev_splits:
            raise InputError(f"{self.name}: dev results needed for {', '.join(self.dev_splits) or 'a dev split'}, "
                             f"got {', '.join(results_by_split) or 'none'}")
        return float(np.mean([results_by_split[s][self.main_metric] for s in self.dev_splits]))

    def __repr__(self):
        return f"Task({self.name!r}, benchmark={self.benchmark!r}, head={self.head!r})"

    # ----- submission files -----------------------------------------------------------------------------
    def submission_file(self, split):
        """Official file name for a test split; `<task name>_<split>.<ext>` for other splits (dev predictions)."""
        self._check_split(split)
        if split in self.submission:
            return self.submission[split]
        ext = os.path.splitext(next(iter(self.submission.values())))[1]
        return f"{self.name}_{split}{ext}"

    def write_predictions(self, examples, predictions, out_dir, split=None):
        """Write the submission file for `examples` (all of one split) into `out_dir`; returns its path."""
        if len(examples) != len(predictions):
            raise InputError(f"{self.name}: {len(examples)} examples but {len(predictions)} predictions")
        if not examples:
            raise InputError(f"{self.name}: no predictions to write")
        splits = {ex.split for ex in examples}
        if split is None:
            if len(splits) != 1:
                raise InputError(f"{self.name}: examples from several splits {sorted(splits)}; write one split at "
                                 "a time")
            split = splits.pop()
        path = os.path.join(os.fspath(out_dir), self.submission_file(split))
        self.writer(self, examples, predictions, path)
        return path


def _refuse_duplicate_ids(path, examples, per_group):
    """A test file whose ids repeat would give two rows of one id in the submission file."""
    seen = set()
    for example in examples:
        key = (example.group, example.idx) if per_group else example.idx  # MultiRC/ReCoRD: ids within a passage
        if key in seen:
            raise DataError(f"{path}: id {example.idx!r} appears more than once; the submission file needs one "
                            "prediction per id (fix or deduplicate the file)")
        seen.add(key)


_SIMPLE_METRICS = {
    "accuracy": M.accuracy,
    "mcc": M.matthews_corrcoef,
    "macro_f1": M.macro_f1,
    "pearson": M.pearson,
    "spearman": M.spearman,
}
