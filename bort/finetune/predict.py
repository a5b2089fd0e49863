"""Test-set predictions in the leaderboards' submission formats, after training or with `--only_inference`.

A task is predicted by the model fine-tuned for `task.train_task`: AX by the MNLI model, AX-b and AX-g by
the SuperGLUE RTE model, every other task by its own.
"""
import os
import sys
import warnings

from ..errors import DataError
from ..tasks import get_task
from .evaluation import evaluate_split, is_labelled, predict_split
from .features import encode_split


def tasks_to_predict(task):
    """The training task's own test splits, plus the diagnostic's when `task` is one."""
    train_task = get_task(task.train_task)
    return [train_task] if task is train_task else [train_task, task]


def write_test_predictions(model, task, tokenizer, config, ctx, dist, logger=None, strict=False):
    """Predict every test split of `task` (and its training task) and write the submission files into
    `config.output_dir`; returns {file name: path} (plus metrics where the test file has labels, as AX-b
    and AX-g do). A missing test file is a warning after training (the model is saved) and an error
    with `strict` (`--only_inference`)."""
    written = {}
    for target in tasks_to_predict(task):
        for split in target.test_splits:
            try:
                encoded = encode_split(target, split, config.data_dir, tokenizer, config.max_len)
            except DataError as err:
                if strict:
                    raise
                warnings.warn(f"no {target.name} {split} predictions: {err}")
                continue
            if is_labelled(encoded):
                metrics, predictions = evaluate_split(model, encoded, tokenizer.pad_id, config.dev_batch_size,
                                                      ctx, dist)
                _report(dist, logger, event="test_metrics", task=target.name, split=split, metrics=metrics)
            else:
                predictions = predict_split(model, encoded, tokenizer.pad_id, config.dev_batch_size, ctx, dist)
            if dist.is_main:
                path = target.write_predictions(encoded.examples, predictions, config.output_dir, split=split)
                written[os.path.basename(path)] = path
                _report(dist, logger, event="predictions", task=target.name, split=split, path=path,
                        count=len(predictions))
    return written


def evaluate_dev(model, task, tokenizer, config, ctx, dist, logger=None):
    """Dev metrics of the training task, per dev split."""
    train_task = get_task(task.train_task)
    results = {}
    for split in train_task.dev_splits:
        encoded = encode_split(train_task, split, config.data_dir, tokenizer, config.max_len)
        results[split], _ = evaluate_split(model, encoded, tokenizer.pad_id, config.dev_batch_size, ctx, dist)
        _report(dist, logger, event="dev", task=train_task.name, split=split, metrics=results[split])
    return results


def _report(dist, logger, **record):
    if not dist.is_main:
        return
    if logger is not None:
        logger.log(**record)
    if record["event"] == "predictions":
        print(f"[{record['task']} {record['split']}] wrote {record['count']} predictions to {record['path']}",
              file=sys.stderr)
    else:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in record["metrics"].items())
        print(f"[{record['task']} {record['split']}] {shown}", file=sys.stderr)
