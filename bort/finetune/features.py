"""From task examples to model inputs: token ids per segment, training units, length-bucketed batches.

A *unit* is what the loss is averaged over and what `--batch_size` counts:
- classification, regression: one example (one sequence);
- multiple_choice (COPA, RACE): one question with all its options (the softmax runs across them);
- answer_scoring (MultiRC), candidate_ranking (ReCoRD): one answer / candidate sequence (a binary decision).

Batches are built per *global* batch (`batch_size * world size` units) from a seeded order that every rank
computes identically, then split across ranks, so N ranks see exactly the units one process would see in a
global batch; `global_batches` is the one place that decides the data order.
"""
import dataclasses
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

ENCODE_CHUNK = 1024  # texts per call to the batch tokenizer


@dataclasses.dataclass
class EncodedSplit:
    """A split's examples and, per example, the token ids of each of its segments."""
    task: Any
    split: str
    examples: list
    rows: list  # rows[i][j]: int32 ids of segment j of example i
    labels: list  # Instances.label per example (None when unlabelled)


@dataclasses.dataclass
class Unit:
    rows: list  # int32 id arrays, one per sequence
    label: Any
    example: int

    @property
    def length(self):
        return max(len(row) for row in self.rows)


def encode_split(task, split, data_dir, tokenizer, max_len):
    """Read `split` of `task` and tokenize every segment (pairs truncated longest-first to `max_len`)."""
    examples = task.read(data_dir, split)
    instances = [task.to_instances(example) for example in examples]
    items, counts = [], []
    for example, instance in zip(examples, instances):
        if not instance.segments:
            raise DataError(f"{task.name} {split}: example {example.idx!r} has no text to classify")
        counts.append(len(instance.segments))
        items.extend(text_a if text_b is None else (text_a, text_b) for text_a, text_b in instance.segments)
    check_max_len(task, max_len, tokenizer.num_special_tokens(pair=any(isinstance(item, tuple) for item in items)))
    flat = []
    for start in range(0, len(items), ENCODE_CHUNK):
        ids, lengths = tokenizer.encode_batch(items[start:start + ENCODE_CHUNK], max_length=max_len)
        # int32 arrays, not lists: a large task (MNLI, ReCoRD) holds millions of ids.
        flat.extend(ids[row, :length].copy() for row, length in enumerate(lengths))
    rows, offset = [], 0
    for count in counts:
        rows.append(flat[offset:offset + count])
        offset += count
    return EncodedSplit(task, split, examples, rows, [instance.label for instance in instances])


def check_max_len(task, max_len, specials):
    """A sequence must hold the task's special tokens and at least one token of text (with fewer the model
    would train on `<s></s>` alone)."""
    if max_len is not None and max_len < specials + 1:
        raise ConfigError(f"--max_len {max_len} cannot hold the {specials} special tokens of a {task.name} sequence "
                          f"plus one token of text; use at least {specials + 1} (the release used 512)")


def training_units(encoded):
    """The units of a labelled split (see the module docstring)."""
    head = encoded.task.head
    units = []
    for index, (rows, label) in enumerate(zip(encoded.rows, encoded.labels)):
        if label is None:
            raise DataError(f"{encoded.task.name} {encoded.split}: example {encoded.examples[index].idx!r} has no "
                            "label, so it cannot be trained on")
        if head in ("classification", "regression", "multiple_choice"):
            units.append(Unit(rows if head == "multiple_choice" else rows[:1], label, index))
        else:
            units.extend(Unit([row], int(value), index) for row, value in zip(rows, label))
    if not units:
        raise DataError(f"{encoded.task.name} {encoded.split}: nothing to train on")
    return units


def global_batches(lengths, global_batch_size, seed, epoch, window=64):
    """Index lists of the epoch's global batches: a seeded shuffle, sorted by length within windows of
    `window` batches (so a batch pads little), batch order shuffled again. Same on every rank."""
    rng = np.random.RandomState((seed * 1000003 + epoch) % 2 ** 32)
    order = rng.permutation(len(lengths))
    span = global_batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort([-lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i:i + global_batch_size].tolist() for i in range(0, len(chunk), global_batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def local_share(batch, rank, size):
    """This rank's units of a global batch (ranks take turns, so lengths stay balanced)."""
    return batch[rank::size]


def eval_batches(lengths, batch_size):
    """Row indices sorted by length (longest first) and cut into batches: evaluation order is irrelevant."""
    order = np.argsort([-length for length in lengths], kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def pad_rows(rows, pad_id):
    """(ids (R, L) int32 padded with `pad_id`, valid_length (R,) float32) for a list of id lists."""
    lengths = np.array([len(row) for row in rows], dtype=np.float32)
    ids = np.full((len(rows), int(lengths.max())), pad_id, dtype=np.int32)
    for index, row in enumerate(rows):
        ids[index, :len(row)] = row
    return ids, lengths
