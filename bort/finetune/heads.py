"""How each task head turns the classifier's outputs into a loss (training) and per-example scores
(evaluation). `BortClassifier` gives `task.num_labels` outputs per sequence:

| head | outputs per sequence | training loss per unit |
|---|---|---|
| classification | C logits | cross-entropy |
| regression (STS-B) | 1 value | 0.5 * squared error (Gluon's L2Loss, as the release) |
| multiple_choice (COPA, RACE) | 1 score per option | cross-entropy of the softmax across the question's options |
| answer_scoring (MultiRC), candidate_ranking (ReCoRD) | 2 logits | binary cross-entropy per answer / candidate |
"""
import mxnet as mx
import numpy as np

from .features import pad_rows

PAD_SCORE = -1e4  # score of a missing option when questions in a batch have different option counts


def batch_arrays(units, pad_id, ctx):
    """NDArrays for a list of units: ids, valid_length, labels, and for multiple choice the option index
    matrix (units, max options) into the flattened rows, -1 where a question has fewer options."""
    rows, option_index = [], []
    for unit in units:
        option_index.append(list(range(len(rows), len(rows) + len(unit.rows))))
        rows.extend(unit.rows)
    ids, valid_length = pad_rows(rows, pad_id)
    width = max(len(index) for index in option_index)
    index = np.full((len(units), width), -1, dtype=np.int32)
    for row, members in enumerate(option_index):
        index[row, :len(members)] = members
    labels = np.array([unit.label for unit in units], dtype=np.float32)
    return (mx.nd.array(ids, ctx=ctx, dtype=np.int32), mx.nd.array(valid_length, ctx=ctx),
            mx.nd.array(labels, ctx=ctx), index)


def option_scores(flat_scores, index, ctx):
    """(rows,) scores -> (units, max options), missing options at PAD_SCORE."""
    padded = mx.nd.concat(flat_scores.astype("float32"), mx.nd.array([PAD_SCORE], ctx=ctx), dim=0)
    sentinel = np.where(index < 0, flat_scores.shape[0], index)
    return mx.nd.take(padded, mx.nd.array(sentinel, ctx=ctx, dtype=np.int32))


def summed_loss(head, outputs, labels, index, ctx):
    """Sum over the batch's units of the per-unit loss (the caller divides by the global unit count)."""
    outputs = outputs.astype("float32")
    if head == "regression":
        return (0.5 * mx.nd.square(outputs[:, 0] - labels)).sum()
    if head == "multiple_choice":
        logits = option_scores(outputs[:, 0], index, ctx)
    else:
        logits = outputs
    return -mx.nd.pick(mx.nd.log_softmax(logits, axis=-1), labels, axis=-1).sum()


def example_scores(head, outputs, counts):
    """Per-example scores in the shapes `Task.predictions_from_scores` takes, from the (rows, num_labels)
    outputs of all segments in example order; `counts[i]` is example i's number of segments."""
    scores, offset = [], 0
    for count in counts:
        block = outputs[offset:offset + count]
        offset += count
        if head in ("classification", "regression"):
            scores.append(block[0])
        elif head == "multiple_choice":
            scores.append(block[:, 0])
        else:
            scores.append(block)
    return scores
