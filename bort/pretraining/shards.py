"""The `.npz` shard format of the original release, read and written.

A shard holds N samples under seven keys. Per-sample variable-length arrays are stored as 1-D object arrays
of 1-D arrays: `input_ids`, `segment_ids`, `masked_lm_positions`, `masked_lm_ids` (int32) and
`masked_lm_weights` (float32); plain arrays hold `next_sentence_labels` and `valid_lengths` (int32[N]).

Writing always produces 1-D object arrays, even when every sample has the same length (there numpy would
otherwise build a 2-D array: docs/release_bugs.md, "Equal-length shards"). Reading accepts the release's files
as they are, including such 2-D arrays, `valid_lengths` of shape (N, 1), and files without the optional keys.

Object arrays are pickled, so `np.load(allow_pickle=True)` is needed: only read shards you trust.
"""
import json
import os
import pickle
import zipfile

import numpy as np

from ..errors import DataError
from ..io_utils import atomic_open

SEQUENCE_KEYS = ("input_ids", "segment_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
SCALAR_KEYS = ("next_sentence_labels", "valid_lengths")
KEYS = SEQUENCE_KEYS + SCALAR_KEYS
DTYPES = dict(input_ids=np.int32, segment_ids=np.int32, masked_lm_positions=np.int32, masked_lm_ids=np.int32,
              masked_lm_weights=np.float32, next_sentence_labels=np.int32, valid_lengths=np.int32)
#: Sidecar written next to the shards: vocabulary size, special ids and the settings that made them.
METADATA_FILE = "metadata.json"


def _object_array(rows, dtype):
    out = np.empty(len(rows), dtype=object)
    for index, row in enumerate(rows):
        out[index] = np.ascontiguousarray(row, dtype=dtype)
    return out


def write_shard(path, samples):
    """Write `samples` (key -> list of per-sample values, every key of `KEYS`) to `path` atomically."""
    missing = [key for key in KEYS if key not in samples]
    if missing:
        raise DataError(f"cannot write {path}: samples lack {missing}")
    count = len(samples["input_ids"])
    arrays = {}
    for key in SEQUENCE_KEYS:
        if len(samples[key]) != count:
            raise DataError(f"cannot write {path}: {key} has {len(samples[key])} rows, input_ids {count}")
        arrays[key] = _object_array(samples[key], DTYPES[key])
    for key in SCALAR_KEYS:
        arrays[key] = np.asarray(samples[key], dtype=DTYPES[key]).reshape(-1)
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def _rows(path, key, value, count=None):
    """Per-sample 1-D arrays from whatever shape the file stored them in."""
    if value.dtype == object and value.ndim == 1:
        rows = [np.asarray(row).reshape(-1) for row in value]
    elif value.ndim == 2:  # every sample had the same length (the release), or a plain numeric 2-D array
        rows = [np.asarray(list(row)).reshape(-1) for row in value]
    elif value.ndim == 1 and count is not None and len(value) == count:
        rows = [np.asarray([v]) for v in value]
    else:
        raise DataError(f"{path}: key {key!r} has shape {value.shape} and dtype {value.dtype}; expected one "
                        "1-D array per sample")
    return [row.astype(DTYPES[key], copy=False) for row in rows]


def read_shard(path):
    """Load a shard written by this package or by the original release.

    Returns key -> list of per-sample arrays for `SEQUENCE_KEYS` and key -> int32[N] for `SCALAR_KEYS`.
    Missing `segment_ids`/`next_sentence_labels` become zeros, missing `masked_lm_weights` ones and missing
    `valid_lengths` the lengths of `input_ids`. Raises DataError naming the file and sample when something
    does not fit together.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"shard {path} does not exist")
    try:
        with np.load(path, allow_pickle=True) as loaded:
            stored = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as err:
        raise DataError(f"{path} is not a readable .npz shard (truncated?): {err}") from None
    for key in ("input_ids", "masked_lm_positions", "masked_lm_ids"):
        if key not in stored:
            raise DataError(f"{path} has no {key!r} array (keys: {sorted(stored)}); not a pretraining shard")
    input_ids = _rows(path, "input_ids", stored["input_ids"])
    count = len(input_ids)
    out = {"input_ids": input_ids}
    for key in ("masked_lm_positions", "masked_lm_ids"):
        out[key] = _rows(path, key, stored[key], count)
    if "masked_lm_weights" in stored:
        out["masked_lm_weights"] = _rows(path, "masked_lm_weights", stored["masked_lm_weights"], count)
    else:
        out["masked_lm_weights"] = [np.ones(len(p), np.float32) for p in out["masked_lm_positions"]]
    if "segment_ids" in stored:
        out["segment_ids"] = _rows(path, "segment_ids", stored["segment_ids"], count)
    else:
        out["segment_ids"] = [np.zeros(len(ids), np.int32) for ids in input_ids]
    lengths = np.array([len(ids) for ids in input_ids], dtype=np.int32)
    out["valid_lengths"] = (np.asarray(stored["valid_lengths"]).reshape(-1).astype(np.int32)
                            if "valid_lengths" in stored else lengths)
    out["next_sentence_labels"] = (np.asarray(stored["next_sentence_labels"]).reshape(-1).astype(np.int32)
                                   if "next_sentence_labels" in stored else np.zeros(count, np.int32))
    for key in KEYS:
        if len(out[key]) != count:
            raise DataError(f"{path}: {key!r} has {len(out[key])} samples but input_ids has {count}")
    for index in range(count):
        positions = out["masked_lm_positions"][index]
        if not len(positions) == len(out["masked_lm_ids"][index]) == len(out["masked_lm_weights"][index]):
            raise DataError(f"{path}, sample {index}: masked_lm_positions, masked_lm_ids and masked_lm_weights "
                            "differ in length")
        if not 1 <= out["valid_lengths"][index] <= lengths[index]:
            raise DataError(f"{path}, sample {index}: valid_length {out['valid_lengths'][index]} does not fit "
                            f"its {lengths[index]} input ids")
        if len(positions) and (positions.min() < 0 or positions.max() >= out["valid_lengths"][index]):
            raise DataError(f"{path}, sample {index}: masked_lm_positions {positions.tolist()} fall outside the "
                            f"sequence of length {out['valid_lengths'][index]}")
    return out


def check_ids_in_vocab(path, shard, vocab_size):
    """Raise DataError when any id of `shard` is outside [0, vocab_size) (e.g. the release's out-of-range
    [CLS]/[SEP] ids, or a shard made with another vocabulary)."""
    for key in ("input_ids", "masked_lm_ids"):
        for index, row in enumerate(shard[key]):
            if len(row) and (row.min() < 0 or row.max() >= vocab_size):
                raise DataError(f"{path}, sample {index}: {key} has ids from {row.min()} to {row.max()}, outside "
                                f"the vocabulary of {vocab_size} tokens; was the shard made with another "
                                "vocabulary (or by the original release, which wrote out-of-range ids)?")


def write_metadata(directory, metadata):
    with atomic_open(os.path.join(directory, METADATA_FILE), "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=1, sort_keys=True)


def read_metadata(shard_paths):
    """The metadata sidecar next to the first shard that has one, or None (e.g. for the release's shards)."""
    for directory in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in shard_paths):
        candidate = os.path.join(directory, METADATA_FILE)
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as handle:
                    return json.load(handle)
            except (OSError, ValueError) as err:
                raise DataError(f"{candidate} is unreadable: {err}") from None
    return None
