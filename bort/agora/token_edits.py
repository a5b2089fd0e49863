"""Data-generating functions on token ids: each turns one id sequence into a nearby one, changing at most
`max_drift` of its tokens (see drift.py), or returns None when the sequence is too short to change within
that limit. They never insert special tokens (bos/eos/pad/mask/unk) and never touch existing ones.

`vocab` is anything with `vocab_size` and `special_ids` (a dict role -> id, or an iterable of ids) and, for the
MLM perturbation, `mask_id` (and optionally `bos_id`, `eos_id`, `pad_id`): a `BortTokenizer`, or `IdVocabulary`.
"""
import dataclasses
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .drift import max_edits

EDIT_OPERATIONS = ("delete", "swap", "substitute")


@dataclasses.dataclass(frozen=True)
class IdVocabulary:
    """A vocabulary described by ids only, for id-level tasks that have no tokenizer files."""
    vocab_size: int
    special_ids: dict
    mask_id: Optional[int] = None
    bos_id: Optional[int] = None
    eos_id: Optional[int] = None
    pad_id: Optional[int] = None


def special_id_set(vocab):
    specials = vocab.special_ids
    values = specials.values() if isinstance(specials, dict) else specials
    return {int(idx) for idx in values if idx is not None}


def check_max_drift(max_drift):
    if not 0.0 < max_drift <= 1.0:
        raise ConfigError(f"max_drift must be in (0, 1] (the fraction of a sequence's tokens a generated point "
                          f"may change), got {max_drift}")
    return float(max_drift)


def substitution_pool(vocab, candidate_ids=None):
    """Ids a substitution or refill may write: `candidate_ids` (e.g. the ids seen in training data), else the
    whole vocabulary, minus the special ids."""
    special = special_id_set(vocab)
    ids = range(vocab.vocab_size) if candidate_ids is None else sorted({int(i) for i in candidate_ids})
    pool = np.array([idx for idx in ids if idx not in special and 0 <= idx < vocab.vocab_size], dtype=np.int64)
    if pool.size < 2:
        raise ConfigError(f"the substitution pool has {pool.size} usable ids; it needs at least 2")
    return pool


class TokenEdits:
    """Random deletions, adjacent swaps and substitutions from the vocabulary (no synonyms: any id of the
    pool), at distinct positions, with 1..max_edits(len, max_drift) edits of total cost (a swap costs 2)."""

    def __init__(self, vocab, max_drift=0.2, operations=EDIT_OPERATIONS, candidate_ids=None):
        self.max_drift = check_max_drift(max_drift)
        unknown = sorted(set(operations) - set(EDIT_OPERATIONS))
        if unknown or not operations:
            raise ConfigError(f"unknown or no edit operations {list(operations)}; choose from {EDIT_OPERATIONS}")
        self.operations = tuple(operations)
        self.special = special_id_set(vocab)
        self.pool = substitution_pool(vocab, candidate_ids)

    def perturb_one(self, ids: Sequence[int], rng):
        ids = [int(i) for i in ids]
        editable = [p for p, idx in enumerate(ids) if idx not in self.special]
        limit = max_edits(len(ids), self.max_drift)
        cheapest = 2 if self.operations == ("swap",) else 1
        if limit < cheapest or not editable:
            return None
        budget = int(rng.integers(cheapest, limit + 1))
        touched, deleted = set(), set()
        out = list(ids)
        for _ in range(4 * budget + 8):  # bounded retries; each success spends at least 1 of the budget
            if budget <= 0:
                break
            operation = self.operations[int(rng.integers(len(self.operations)))]
            free = [p for p in editable if p not in touched]
            if not free:
                break
            position = free[int(rng.integers(len(free)))]
            if operation == "swap":
                right = position + 1
                if (budget < 2 or right in touched or right not in editable
                        or out[position] == out[right]):
                    continue
                out[position], out[right] = out[right], out[position]
                touched.update((position, right))
                budget -= 2
            elif operation == "substitute":
                choice = out[position]
                while choice == out[position]:
                    choice = int(self.pool[int(rng.integers(self.pool.size))])
                out[position] = choice
                touched.add(position)
                budget -= 1
            else:
                if len(ids) - len(deleted) <= 1:
                    continue  # never produce an empty sequence
                deleted.add(position)
                touched.add(position)
                budget -= 1
        if not touched:
            return None
        return [idx for p, idx in enumerate(out) if p not in deleted]

    def perturb(self, sequences, rng):
        return [self.perturb_one(ids, rng) for ids in sequences]


class MixedPerturbation:
    """Each sequence goes to one of `perturbations`, drawn with probability proportional to `weights`."""

    def __init__(self, perturbations, weights=None):
        if not perturbations:
            raise ConfigError("MixedPerturbation needs at least one perturbation")
        weights = np.ones(len(perturbations)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(perturbations),) or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(f"weights must be {len(perturbations)} non-negative numbers, not all 0")
        self.perturbations = list(perturbations)
        self.weights = weights / weights.sum()

    def perturb(self, sequences, rng):
        choices = rng.choice(len(self.perturbations), size=len(sequences), p=self.weights)
        out = [None] * len(sequences)
        for which, perturbation in enumerate(self.perturbations):
            indices = [i for i, c in enumerate(choices) if c == which]
            if indices:
                for i, new in zip(indices, perturbation.perturb([sequences[i] for i in indices], rng)):
                    out[i] = new
        return out
