"""Batches from pretraining shards, for one worker of a (possibly distributed) run.

- Shards are split across ranks by file when there are at least as many files as ranks, otherwise every
  rank reads every file and takes every `size`-th sample.
- Each shard's samples go into `num_buckets` buckets of similar length and are cut into batches of
  `batch_size` sequences, or with `use_avg_len` of at most `batch_size` tokens including padding (the
  release's "batch size is about the number of tokens"). Every batch of every shard is used, the last
  short one included (the release used only the first batch of each shard: docs/release_bugs.md).
- The order of shards and of batches is a pure function of (seed, epoch, shard), so the stream can resume
  from a `DataPosition` (epoch, shard cursor, batch cursor) without replaying anything.
- `dynamic_masking` restores the original tokens and masks them again for every epoch, as RoBERTa does.
"""
import dataclasses

import numpy as np

from ..errors import ConfigError, DataError
from .shards import check_ids_in_vocab, read_shard


@dataclasses.dataclass
class DataPosition:
    """Where the next batch comes from: epoch, index into the epoch's shard order, batch within the shard."""
    epoch: int = 0
    shard: int = 0
    batch: int = 0

    def to_list(self):
        return [self.epoch, self.shard, self.batch]

    @classmethod
    def from_list(cls, values):
        return cls(*[int(v) for v in values])


@dataclasses.dataclass
class Batch:
    """Padded arrays for the model and loss; `num_tokens` counts real (unpadded) tokens."""
    input_ids: np.ndarray  # (B, L) int32
    valid_length: np.ndarray  # (B,) int32
    masked_positions: np.ndarray  # (B, M) int32, padded with 0
    masked_ids: np.ndarray  # (B, M) int32, padded with 0
    masked_weights: np.ndarray  # (B, M) float32, 0 on padding

    @property
    def num_tokens(self):
        return int(self.valid_length.sum())


def restore_tokens(input_ids, positions, labels):
    """The unmasked sequence: masked positions get their original ids back."""
    original = np.array(input_ids, dtype=np.int32, copy=True)
    original[positions] = labels
    return original


class PretrainingData:
    """shard_paths: this run's shards (all ranks pass the same list). rank/size: this worker's place.
    masking_policy: a `MaskingPolicy` for dynamic masking, or None to use the shards' static masks."""

    def __init__(self, shard_paths, batch_size, use_avg_len=False, num_buckets=1, shuffle=True, seed=0, rank=0,
                 size=1, vocab_size=None, max_length=None, pad_id=1, masking_policy=None):
        if not shard_paths:
            raise DataError("no shard files given")
        if batch_size < 1 or num_buckets < 1:
            raise ConfigError(f"batch_size ({batch_size}) and num_buckets ({num_buckets}) must be >= 1")
        shard_paths = list(shard_paths)
        if len(shard_paths) >= size:
            self.paths, self._sample_slice = shard_paths[rank::size], None
        else:
            self.paths, self._sample_slice = shard_paths, (rank, size)
        self.batch_size = batch_size
        self.use_avg_len = use_avg_len
        self.num_buckets = num_buckets
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.pad_id = pad_id
        self.masking_policy = masking_policy
        self._cache = {}

    # -------------------------------------------------------------------------------------------- shards
    def _load(self, shard_index):
        """This rank's samples of a shard, validated; the most recent shard is kept in memory."""
        if shard_index not in self._cache:
            path = self.paths[shard_index]
            shard = read_shard(path)
            if self.vocab_size is not None:
                check_ids_in_vocab(path, shard, self.vocab_size)
            if self.max_length is not None:
                too_long = [i for i, ids in enumerate(shard["input_ids"]) if len(ids) > self.max_length]
                if too_long:
                    raise DataError(f"{path}, sample {too_long[0]}: {len(shard['input_ids'][too_long[0]])} tokens, "
                                    f"more than the model's max_length {self.max_length}")
            if self._sample_slice is not None:
                rank, size = self._sample_slice
                shard = {key: values[rank::size] for key, values in shard.items()}
                if not len(shard["input_ids"]):
                    raise DataError(f"{path} has fewer samples than there are workers ({size})")
            self._cache = {shard_index: shard}
        return self._cache[shard_index]

    def shard_order(self, epoch):
        order = np.arange(len(self.paths))
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        return order

    def plan_batches(self, lengths, epoch, shard_index):
        """Sample indices of each batch of one shard, in the order they are used."""
        rng = np.random.default_rng([self.seed, epoch, int(shard_index), 1])
        order = rng.permutation(len(lengths)) if self.shuffle else np.arange(len(lengths))
        # Buckets of similar length (equal counts) keep padding low; within a bucket the order stays random.
        by_length = order[np.argsort(lengths[order], kind="stable")]
        buckets = [b for b in np.array_split(by_length, min(self.num_buckets, len(by_length))) if len(b)]
        batches = []
        for bucket in buckets:
            members = rng.permutation(bucket) if self.shuffle else np.sort(bucket)
            if not self.use_avg_len:
                batches.extend(np.split(members, range(self.batch_size, len(members), self.batch_size)))
                continue
            current, longest = [], 0
            for index in members:
                grown = max(longest, int(lengths[index]))
                if current and grown * (len(current) + 1) > self.batch_size:
                    batches.append(np.array(current))
                    current, grown = [], int(lengths[index])
                current.append(index)
                longest = grown
            if current:
                batches.append(np.array(current))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    # -------------------------------------------------------------------------------------------- batches
    def _make_batch(self, shard, indices, epoch, shard_index):
        rows = []
        for index in indices:
            ids = shard["input_ids"][index]
            positions = shard["masked_lm_positions"][index]
            labels = shard["masked_lm_ids"][index]
            weights = shard["masked_lm_weights"][index]
            if self.masking_policy is not None:
                rng = np.random.default_rng([self.seed, epoch, int(shard_index), int(index), 2])
                original = restore_tokens(ids, positions, labels)
                valid = int(shard["valid_lengths"][index])
                masked, positions, labels = self.masking_policy.mask(original[:valid], rng)
                ids = np.concatenate([masked, original[valid:]])
                weights = np.ones(len(positions), np.float32)
            rows.append((ids, int(shard["valid_lengths"][index]), positions, labels, weights))
        width = max(len(r[0]) for r in rows)
        num_masked = max(1, max(len(r[2]) for r in rows))  # at least one column, with weight 0 if empty
        batch = Batch(input_ids=np.full((len(rows), width), self.pad_id, np.int32),
                      valid_length=np.array([r[1] for r in rows], np.int32),
                      masked_positions=np.zeros((len(rows), num_masked), np.int32),
                      masked_ids=np.zeros((len(rows), num_masked), np.int32),
                      masked_weights=np.zeros((len(rows), num_masked), np.float32))
        for row, (ids, _, positions, labels, weights) in enumerate(rows):
            batch.input_ids[row, :len(ids)] = ids
            batch.masked_positions[row, :len(positions)] = positions
            batch.masked_ids[row, :len(labels)] = labels
            batch.masked_weights[row, :len(weights)] = weights
        return batch

    def batches(self, position=None, epochs=None):
        """Yield `(batch, position_of_the_next_batch)` from `position` on, for `epochs` epochs (None: forever)."""
        position = DataPosition(**dataclasses.asdict(position)) if position else DataPosition()
        while epochs is None or position.epoch < epochs:
            order = self.shard_order(position.epoch)
            while position.shard < len(order):
                shard_index = int(order[position.shard])
                shard = self._load(shard_index)
                lengths = np.array([len(ids) for ids in shard["input_ids"]])
                plan = self.plan_batches(lengths, position.epoch, shard_index)
                while position.batch < len(plan):
                    batch = self._make_batch(shard, plan[position.batch], position.epoch, shard_index)
                    position.batch += 1
                    yield batch, DataPosition(**dataclasses.asdict(position))
                position.shard, position.batch = position.shard + 1, 0
            position.epoch, position.shard = position.epoch + 1, 0
