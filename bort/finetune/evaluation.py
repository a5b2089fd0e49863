"""Scoring a tokenized split with a classifier: dev metrics and test predictions.

Ranks score disjoint batches of sequences and add their results into one table (an allreduce of
zero-filled arrays), so every rank ends with the same scores at 1/N of the cost.
"""
import mxnet as mx
import numpy as np
from mxnet import autograd

from .features import eval_batches, pad_rows
from .heads import example_scores


def score_split(model, encoded, pad_id, batch_size, ctx, dist):
    """Per-example scores for `encoded` (see `heads.example_scores`)."""
    rows = [row for segments in encoded.rows for row in segments]
    outputs = np.zeros((len(rows), encoded.task.num_labels), dtype=np.float64)
    batches = eval_batches([len(row) for row in rows], batch_size)
    with autograd.predict_mode():
        for batch in batches[dist.rank::dist.size]:
            ids, valid_length = pad_rows([rows[i] for i in batch], pad_id)
            scores = model(mx.nd.array(ids, ctx=ctx, dtype=np.int32), mx.nd.array(valid_length, ctx=ctx))
            outputs[batch] = scores.astype("float32").asnumpy()
    if dist.size > 1:
        outputs = np.asarray(dist.allreduce_sum(outputs.reshape(-1)), dtype=np.float64).reshape(outputs.shape)
    return example_scores(encoded.task.head, outputs, [len(segments) for segments in encoded.rows])


def predict_split(model, encoded, pad_id, batch_size, ctx, dist):
    """Predictions (labels, values, option indices, entity texts) for every example of `encoded`."""
    scores = score_split(model, encoded, pad_id, batch_size, ctx, dist)
    return encoded.task.predictions_from_scores(encoded.examples, scores)


def evaluate_split(model, encoded, pad_id, batch_size, ctx, dist):
    """`(metrics, predictions)` for a labelled split; metrics main first, as the task defines them."""
    predictions = predict_split(model, encoded, pad_id, batch_size, ctx, dist)
    return encoded.task.evaluate(encoded.examples, predictions), predictions


def is_labelled(encoded):
    return all(label is not None for label in encoded.labels)


def mean_main_metric(dev_results):
    """The model-selection score: the task's main metric averaged over its dev splits (MNLI: matched and
    mismatched), instead of the release's first metric of the last split
    (docs/release_bugs.md, "Best-epoch selection")."""
    values = [metrics[next(iter(metrics))] for metrics in dev_results.values()]
    return float(np.mean(values))
