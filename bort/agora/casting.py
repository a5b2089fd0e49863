"""How each task head is cast into Agora's binary "right or wrong" world, for `bort.tasks` examples.

Agora is defined for binary classification. What the loop needs from a task is (a) a dev score to rank
hyperparameter sets, (b) which dev points are *mistakes*, the seeds of data generation, and (c) what label a
generated point gets. Our casting (the authors' own is unknown beyond "ReCoRD was cast to binary"):

| head | dev score | mistake | label of a generated point |
|---|---|---|---|
| classification, 2 classes | main metric | prediction != gold | S's class |
| classification, C > 2 (MNLI, CB) | main metric | prediction != gold ("correct vs. incorrect") | S's class (multi-class, not binarised) |
| regression (STS-B) | main metric (Pearson) | gold and prediction on different sides of a threshold | S's value |
| multiple_choice (COPA, RACE) | accuracy | chosen option != gold | S's option index |
| answer_scoring (MultiRC) | main metric | any answer's 0/1 wrong | S's 0/1 per answer |
| candidate_ranking (ReCoRD) | main metric | chosen candidate not a gold answer | (S's candidate,) |

For C classes the one-vs-rest casting flags exactly the same dev points (a point is wrong in some binary
one-vs-rest problem iff the argmax is wrong), so both readings of the brief give the same seeds. The regression
threshold defaults to the median gold score of the training set. Generated points are perturbed in their text
only (perturbation.py); for multi-segment heads, every distinct text of the example (context, question, each
option) is perturbed once and reused wherever it occurs, so options keep a shared context.
"""
import dataclasses
import math

import numpy as np

from ..errors import ConfigError
from ..tasks.base import Example


class TaskCasting:
    """`AgoraTask` (see interfaces.py) for a `bort.tasks.Task`."""

    def __init__(self, task, regression_threshold=None, train_examples=None):
        self.task = task
        self.regression_threshold = None
        if task.head == "regression":
            if regression_threshold is None:
                golds = [float(ex.label) for ex in (train_examples or []) if ex.label is not None]
                if not golds:
                    raise ConfigError(f"{task.name} is a regression task: give a regression threshold or "
                                      "labelled training examples to take the median of")
                regression_threshold = float(np.median(golds))
            self.regression_threshold = float(regression_threshold)

    def score(self, examples, predictions):
        value = float(self.task.evaluate(examples, predictions)[self.task.main_metric])
        # An undefined metric (e.g. Pearson of a constant prediction) ranks below every real score.
        return value if math.isfinite(value) else -math.inf

    def is_mistake(self, example, prediction):
        head, gold = self.task.head, example.label
        if gold is None:
            raise ConfigError(f"{self.task.name} dev example {example.idx!r} has no label; Agora needs a labelled "
                              "dev set")
        if head == "regression":
            return (float(gold) > self.regression_threshold) != (float(prediction) > self.regression_threshold)
        if head == "answer_scoring":
            return tuple(int(v) for v in prediction) != tuple(int(v) for v in gold)
        if head == "candidate_ranking":
            return prediction not in set(gold)
        return prediction != gold

    def without_label(self, example):
        return dataclasses.replace(example, label=None)

    def with_label(self, example, label, point_id):
        return dataclasses.replace(example, split="train", idx=point_id, label=label)

    def label_from_prediction(self, example, prediction):
        head = self.task.head
        if head == "regression":
            return float(prediction)
        if head == "multiple_choice":
            return int(prediction)
        if head == "answer_scoring":
            return tuple(int(v) for v in prediction)
        if head == "candidate_ranking":
            return (prediction,)
        return prediction

    def to_json(self, example):
        return dataclasses.asdict(example)

    def from_json(self, data):
        data = dict(data)
        data["options"] = tuple(tuple(option) for option in data.get("options") or ())
        data["option_keys"] = tuple(data.get("option_keys") or ())
        if isinstance(data.get("label"), list):
            data["label"] = tuple(data["label"])
        return Example(**data)


class ModelLabeller:
    """S as a `Labeller`: any trained model the trainer can run (a fine-tuned Bort or a larger model exported
    to this package's format), its predictions turned into labels by the casting."""

    def __init__(self, trainer, model, casting):
        self.trainer, self.model, self.casting = trainer, model, casting

    def label(self, examples):
        predictions = self.trainer.predict(self.model, examples)
        return [self.casting.label_from_prediction(ex, p) for ex, p in zip(examples, predictions)]
