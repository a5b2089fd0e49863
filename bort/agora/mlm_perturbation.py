"""MLM-based perturbation: mask some tokens of a point and refill them with samples from a masked language
model's predictions, so the new point stays near the old one and reads like the model's language.

Any `BortModel` built with its decoder works (the pretrained Bort, or a tiny random one for tests: the
mechanics are the same, only the samples are worse).
"""
import mxnet as mx
import numpy as np

from ..errors import ConfigError
from .drift import max_edits
from .token_edits import check_max_drift, special_id_set, substitution_pool


class MLMPerturbation:
    """Mask 1..max_edits(len, max_drift) distinct non-special positions and refill all of them in one pass,
    sampling each from softmax(logits / temperature) restricted to `top_k` ids of the substitution pool and
    never the id that was there (so every masked position really changes).

    Sequences are content ids without special tokens; when the vocabulary has bos/eos ids the model sees
    `<s> ids </s>`, as in pretraining. Tokens beyond the model's window are kept unchanged.
    """

    def __init__(self, model, vocab, max_drift=0.2, temperature=1.0, top_k=50, candidate_ids=None,
                 batch_size=32, ctx=None):
        if not getattr(model, "use_decoder", False):
            raise ConfigError("MLM perturbation needs a BortModel built with its MLM decoder (use_decoder=True)")
        if getattr(vocab, "mask_id", None) is None:
            raise ConfigError("MLM perturbation needs a vocabulary with a mask token (mask_id)")
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        self.model = model
        self.max_drift = check_max_drift(max_drift)
        self.temperature = float(temperature)
        self.top_k = int(top_k) if top_k else 0
        self.batch_size = int(batch_size)
        self.ctx = ctx or mx.cpu()
        self.mask_id = int(vocab.mask_id)
        self.bos_id = getattr(vocab, "bos_id", None)
        self.eos_id = getattr(vocab, "eos_id", None)
        self.pad_id = getattr(vocab, "pad_id", None) or 0
        self.special = special_id_set(vocab) | {self.mask_id}
        allowed = np.zeros(vocab.vocab_size, dtype=bool)
        allowed[substitution_pool(vocab, candidate_ids)] = True
        self.allowed = allowed

    def _window(self):
        reserved = (self.bos_id is not None) + (self.eos_id is not None)
        return self.model.config.max_length - reserved

    def _plan(self, ids, rng):
        """Positions (in the content ids) to mask, or None when nothing may change."""
        window = self._window()
        editable = [p for p, idx in enumerate(ids[:window]) if idx not in self.special]
        limit = min(max_edits(len(ids), self.max_drift), len(editable))
        if limit < 1:
            return None
        count = int(rng.integers(1, limit + 1))
        return sorted(int(p) for p in rng.choice(editable, size=count, replace=False))

    def perturb(self, sequences, rng):
        sequences = [[int(i) for i in ids] for ids in sequences]
        plans = [self._plan(ids, rng) for ids in sequences]
        out = [None] * len(sequences)
        todo = [i for i, plan in enumerate(plans) if plan]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            logits = self._masked_logits([sequences[i] for i in batch], [plans[i] for i in batch])
            for row, index in enumerate(batch):
                new = list(sequences[index])
                for column, position in enumerate(plans[index]):
                    new[position] = self._sample(logits[row, column], new[position], rng)
                out[index] = new
        return out

    def _masked_logits(self, sequences, plans):
        offset = 1 if self.bos_id is not None else 0
        window = self._window()
        rows = []
        for ids, plan in zip(sequences, plans):
            content = list(ids[:window])
            for position in plan:
                content[position] = self.mask_id
            row = ([self.bos_id] if self.bos_id is not None else []) + content
            rows.append(row + ([self.eos_id] if self.eos_id is not None else []))
        width = max(len(r) for r in rows)
        masks = max(len(p) for p in plans)
        inputs = np.full((len(rows), width), self.pad_id, dtype=np.float32)
        positions = np.zeros((len(rows), masks), dtype=np.float32)
        for r, (row, plan) in enumerate(zip(rows, plans)):
            inputs[r, :len(row)] = row
            # Rows with fewer masks repeat their first position; the extra columns are never read.
            positions[r] = [p + offset for p in plan] + [plan[0] + offset] * (masks - len(plan))
        valid = np.array([len(r) for r in rows], dtype=np.float32)
        _, logits = self.model(mx.nd.array(inputs, ctx=self.ctx), mx.nd.array(valid, ctx=self.ctx),
                               mx.nd.array(positions, ctx=self.ctx))
        return logits.asnumpy().astype(np.float64)

    def _sample(self, logits, current, rng):
        allowed = self.allowed.copy()
        allowed[current] = False
        scores = np.where(allowed, logits / self.temperature, -np.inf)
        if self.top_k and self.top_k < allowed.sum():
            threshold = np.partition(scores[allowed], -self.top_k)[-self.top_k]
            scores = np.where(scores >= threshold, scores, -np.inf)
        scores = scores - scores[np.isfinite(scores)].max()
        probs = np.exp(scores)
        probs /= probs.sum()
        return int(rng.choice(probs.size, p=probs))


def load_mlm(params_path, vocab, model_name="bort_4_8_768_1024", num_heads=None, ctx=None):
    """A `BortModel` with its MLM decoder from a pretrained `.params` file; the file decides the shape and its
    record the number of heads (`num_heads`, else `model_name`'s, for a file without a record)."""
    from ..checkpoint import get_bort_model

    model, _ = get_bort_model(model_name, vocab=vocab, params_path=params_path, use_decoder=True, ctx=ctx,
                              num_heads=num_heads)
    return model
