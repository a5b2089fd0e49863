"""BERT-style masked-LM corruption of one token sequence.

Special tokens are never candidates and never drawn as random replacements; random replacements are drawn
only from the ordinary ids of the vocabulary (so no id can fall outside it; docs/release_bugs.md,
"Out-of-range [CLS]/[SEP] ids").
"""
import numpy as np

from ..errors import ConfigError


class MaskingPolicy:
    """What to mask and how: `masked_lm_prob` of the non-special tokens (at least one, at most
    `max_predictions_per_seq`); of those, `mask_prob` become `<mask>`, `random_prob` a random ordinary id and
    the rest stay as they are (80/10/10 by default)."""

    def __init__(self, vocab_size, mask_id, special_ids, masked_lm_prob=0.15, max_predictions_per_seq=80,
                 mask_prob=0.8, random_prob=0.1):
        if not 0.0 < masked_lm_prob <= 1.0:
            raise ConfigError(f"masked_lm_prob must be in (0, 1], got {masked_lm_prob}")
        if max_predictions_per_seq < 1:
            raise ConfigError(f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq}")
        if mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1:
            raise ConfigError(f"mask_prob ({mask_prob}) and random_prob ({random_prob}) must be >= 0 and sum "
                              "to at most 1")
        special = sorted({int(i) for i in special_ids} | {int(mask_id)})
        if not 0 <= int(mask_id) < vocab_size or any(not 0 <= i < vocab_size for i in special):
            raise ConfigError(f"special ids {special} must lie inside the vocabulary (0..{vocab_size - 1})")
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.special_ids = np.array(special, dtype=np.int64)
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions_per_seq = int(max_predictions_per_seq)
        self.mask_prob = mask_prob
        self.random_prob = random_prob
        # The ids random replacement may draw: everything except the special tokens.
        self._ordinary_ids = np.setdiff1d(np.arange(self.vocab_size), self.special_ids)
        if not len(self._ordinary_ids):
            raise ConfigError("the vocabulary has no ordinary (non-special) tokens to draw replacements from")

    def num_to_predict(self, length):
        """How many positions a sequence of `length` tokens (special tokens included) gets masked, as BERT."""
        return min(self.max_predictions_per_seq, max(1, int(round(length * self.masked_lm_prob))))

    def mask(self, tokens, rng):
        """Corrupt `tokens` (1-D ints) with `rng` (a numpy Generator).

        Returns (input_ids int32, masked_lm_positions int32 ascending, masked_lm_ids int32 = the original
        tokens there). A sequence with no ordinary token gets no positions.
        """
        tokens = np.asarray(tokens, dtype=np.int32)
        candidates = np.flatnonzero(~np.isin(tokens, self.special_ids))
        count = min(len(candidates), self.num_to_predict(len(tokens)))
        positions = np.sort(rng.choice(candidates, size=count, replace=False)) if count else candidates[:0]
        output = tokens.copy()
        draw = rng.random(count)
        to_mask = draw < self.mask_prob
        to_random = (draw >= self.mask_prob) & (draw < self.mask_prob + self.random_prob)
        output[positions[to_mask]] = self.mask_id
        output[positions[to_random]] = rng.choice(self._ordinary_ids, size=int(to_random.sum()))
        return output, positions.astype(np.int32), tokens[positions].astype(np.int32)
