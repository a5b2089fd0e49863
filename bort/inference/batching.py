"""Length bucketing: sort examples by length so each batch pads only to its own longest row.

Results come back in the input order, so callers never see the reordering.
"""
import numpy as np

from ..errors import InputError


def pad_batch(sequences, pad_id, multiple=1):
    """Token id lists -> (ids int32 (B, W), valid_length int32 (B,)); W is the longest row rounded up to
    `multiple` (fewer distinct shapes means fewer graph re-plans in a statically shaped MXNet graph)."""
    if not sequences:
        raise InputError("cannot pad an empty batch")
    lengths = np.array([len(seq) for seq in sequences], dtype=np.int32)
    if lengths.min() == 0:
        raise InputError(f"row {int(np.argmin(lengths))} of the batch has no tokens")
    width = int(lengths.max())
    width = -(-width // multiple) * multiple
    ids = np.full((len(sequences), width), pad_id, dtype=np.int32)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
    return ids, lengths


def length_batches(lengths, batch_size, sort_by_length=True):
    """Index arrays, one per batch; with sort_by_length the batches hold examples of similar length."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(np.asarray(lengths), kind="stable") if sort_by_length else np.arange(len(lengths))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def run_in_batches(fn, sequences, pad_id, batch_size, max_length=None, sort_by_length=True, pad_multiple=1,
                   progress=False, desc="batches"):
    """Call `fn(ids, valid_length)` on padded batches of `sequences` and return its per-row results in the
    order of `sequences` (a list with one entry per sequence: row `i` of whatever array fn returned).

    `max_length`, when given, is the longest sequence the model accepts: a longer one is an InputError naming
    its index (padding is never rounded up past it).
    """
    lengths = [len(seq) for seq in sequences]
    if max_length is not None:
        too_long = [index for index, length in enumerate(lengths) if length > max_length]
        if too_long:
            raise InputError(f"sequence {too_long[0]} has {lengths[too_long[0]]} tokens, more than the model's "
                             f"max_length {max_length} ({len(too_long)} such sequences); truncate them")
    batches = length_batches(lengths, batch_size, sort_by_length)
    results = [None] * len(sequences)
    iterator = batches
    if progress:
        from bort.progress import tqdm

        iterator = tqdm(batches, desc=desc, unit="batch")
    for indices in iterator:
        rows = [sequences[i] for i in indices]
        multiple = pad_multiple
        if max_length is not None and -(-max(len(r) for r in rows) // multiple) * multiple > max_length:
            multiple = 1
        ids, valid_length = pad_batch(rows, pad_id, multiple)
        output = fn(ids, valid_length)
        for position, index in enumerate(indices):
            results[index] = output[position]
    return results
