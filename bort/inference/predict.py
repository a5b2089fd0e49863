"""The three inference tasks on token id sequences: classify, fill-mask, embed.

Each takes a backend (`bort.inference.backends`), which computes the encoder's sequence output, and runs the
small task head after it in MXNet. Sequences are batched by length (`bort.inference.batching`); results come
back in input order.
"""
import dataclasses
from typing import Optional

import numpy as np

from ..errors import ConfigError, InputError, ParamsError
from .batching import run_in_batches

TASKS = ("classify", "fill-mask", "embed")
POOLINGS = ("first", "mean")
# Rounding batch widths up to a multiple of 8 bounds the number of distinct shapes a static graph sees.
PAD_MULTIPLE = 8


@dataclasses.dataclass
class LoadedModel:
    config: object  # BortConfig
    encoder: object  # BortModel whose encoder the backends run
    head: Optional[object]  # classifier head (classify) or MLM decoder (fill-mask); None for embed
    num_classes: Optional[int]
    path: str
    checkpoint: object = None  # bort.checkpoint.Checkpoint: the record (labels, pair layout, vocabulary)


def load_model(params_path, task, model_name=None, num_heads=None, force=False, allow_nonfinite=False):
    """Build the model `task` needs from a `.params` file (read once): a fine-tuned checkpoint for classify, a
    file with the MLM decoder for fill-mask, any Bort file for embed. The architecture comes from the file's
    shapes and record; `model_name` (its number of heads) is the fallback for a file without a record, and a
    `num_heads` that contradicts the record is an error unless `force`."""
    from ..checkpoint import CLASSIFIER, ENCODER, MLM, open_checkpoint

    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    checkpoint = open_checkpoint(params_path, allow_nonfinite=allow_nonfinite)
    info = checkpoint.info
    if task == "classify" and info.num_classes is None:
        raise ParamsError(f"{params_path} has no classification head (classifier.* parameters); classify needs "
                          "a fine-tuned checkpoint from scripts/finetune_bort.py")
    if task == "fill-mask" and not info.has_decoder:
        raise ParamsError(f"{params_path} has no MLM decoder (decoder.* parameters); fill-mask needs a "
                          "pretrained model saved with its decoder")
    config = checkpoint.config(model_name, num_heads=num_heads, force=force)
    # The file decides what it holds; the task decides which part of it to build (embed ignores any head).
    model = checkpoint.build({"classify": CLASSIFIER, "fill-mask": MLM, "embed": ENCODER}[task], config)
    if task == "classify":
        return LoadedModel(config, model.bort, model.classifier, info.num_classes, str(params_path), checkpoint)
    if task == "fill-mask":
        return LoadedModel(config, model, model.decoder, None, str(params_path), checkpoint)
    return LoadedModel(config, model, None, None, str(params_path), checkpoint)


def tokenize_examples(tokenizer, examples, max_length):
    """Token ids with special tokens for each `bort.inference.inputs.Example`, cut to `max_length`.
    Returns (sequences, number of examples that were truncated)."""
    sequences, truncated = [], 0
    for example in examples:
        if example.text_b is None:
            ids = tokenizer.encode(example.text)
            if len(ids) > max_length:
                ids = tokenizer.encode(example.text, max_length=max_length)
                truncated += 1
        else:
            ids = tokenizer.encode_pair(example.text, example.text_b)
            if len(ids) > max_length:  # pairs are cut the tokenizer's way (both sides in turn), not at the end
                ids = tokenizer.encode_pair(example.text, example.text_b, max_length=max_length)
                truncated += 1
        sequences.append(ids)
    return sequences, truncated


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _apply_head(head, vectors):
    import mxnet as mx

    return head(mx.nd.array(vectors, dtype="float32")).asnumpy()


def _first_positions(ids):
    """(B, 1) zeros: ask the backend for the first token's output only."""
    return np.zeros((ids.shape[0], 1), dtype=np.int64)


def classify(backend, head, sequences, pad_id, batch_size=32, sort_by_length=True, progress=False):
    """Class probabilities (N, num_classes) from the fine-tuned head over the first token (`<s>`)."""
    def run(ids, valid_length):
        first_token = backend(ids, valid_length, _first_positions(ids))[:, 0, :]
        return _softmax(_apply_head(head, first_token))

    rows = run_in_batches(run, sequences, pad_id, batch_size, backend.config.max_length, sort_by_length,
                          PAD_MULTIPLE, progress, desc="classify")
    return np.stack(rows).astype(np.float32)


def embed(backend, sequences, pad_id, pooling="first", batch_size=32, sort_by_length=True, progress=False):
    """One vector per sequence (N, units): the first token's output, or the mean over its real tokens."""
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")

    def run(ids, valid_length):
        if pooling == "first":
            return backend(ids, valid_length, _first_positions(ids))[:, 0, :]
        sequence = backend(ids, valid_length)
        # Padded positions are zero in the sequence output, so a plain sum covers only real tokens.
        return sequence.sum(axis=1) / valid_length[:, None].astype(np.float32)

    rows = run_in_batches(run, sequences, pad_id, batch_size, backend.config.max_length, sort_by_length,
                          PAD_MULTIPLE, progress, desc="embed")
    return np.stack(rows).astype(np.float32)


@dataclasses.dataclass
class MaskPrediction:
    position: int  # index in the token id sequence
    ids: list  # top-k token ids, most probable first
    probabilities: list


def fill_mask(backend, decoder, sequences, mask_id, pad_id, top_k=5, batch_size=32, sort_by_length=True,
              progress=False):
    """For each sequence, a list of `MaskPrediction`, one per `mask_id` in it (empty if it has none)."""
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if not any(mask_id in seq for seq in sequences):
        raise InputError(f"no input has a mask token (id {mask_id}); write <mask> where a word should be predicted")

    def run(ids, valid_length):
        rows, columns = np.nonzero((ids == mask_id) & (np.arange(ids.shape[1])[None, :] < valid_length[:, None]))
        per_row = [[] for _ in range(ids.shape[0])]
        if len(rows):
            # The encoder output is needed only at the masks: (B, P) positions, P the most masks in a row, rows
            # with fewer padded with position 0 (computed, then not read).
            slot = np.concatenate([np.arange(count) for count in np.bincount(rows, minlength=ids.shape[0])])
            positions = np.zeros((ids.shape[0], slot.max() + 1), dtype=np.int64)
            positions[rows, slot] = columns
            at_masks = backend(ids, valid_length, positions)[rows, slot]
            probabilities = _softmax(_apply_head(decoder, at_masks))
            k = min(top_k, probabilities.shape[1])
            best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
            for found, (row, column) in enumerate(zip(rows, columns)):
                per_row[row].append(MaskPrediction(int(column), [int(i) for i in best[found]],
                                                   [float(probabilities[found, i]) for i in best[found]]))
        return per_row

    return run_in_batches(run, sequences, pad_id, batch_size, backend.config.max_length, sort_by_length,
                          PAD_MULTIPLE, progress, desc="fill-mask")

