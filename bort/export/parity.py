"""Does an export compute what the MXNet model computes? Same inputs, several lengths, padding included.

Every comparison is against the MXNet `BortModel`/`BortClassifier` in float32 on the same token ids:
- `sequence_output` over *valid* positions only: Bort's encoder zeroes its output at padded positions (like the
  release), HF BERT and the ONNX model return whatever the padded tokens computed there;
- `mlm_logits` at the masked positions (always inside the valid length);
- `classifier_logits`.
"""
import dataclasses

import numpy as np

from .source import CLASSIFIER, MLM

DEFAULT_LENGTHS = (7, 32, 128)
PAD_ID = 1


def parity_batches(vocab_size, max_length, lengths=DEFAULT_LENGTHS, batch_size=3, num_masked=3, seed=0,
                   pad_id=PAD_ID):
    """One batch per length: row 0 full, the others padded (the last has a single real token)."""
    rng = np.random.RandomState(seed)
    batches = []
    for length in sorted({min(int(length), max_length) for length in lengths}):
        valid = np.array([length] + list(rng.randint(1, length + 1, size=batch_size - 2)) + [1])[:batch_size]
        ids = rng.randint(0, vocab_size, size=(len(valid), length))
        ids[np.arange(length)[None, :] >= valid[:, None]] = pad_id
        masked = np.stack([rng.randint(0, v, size=num_masked) for v in valid])
        batches.append(dict(input_ids=ids.astype(np.int64), valid_length=valid.astype(np.int64),
                            attention_mask=(np.arange(length)[None, :] < valid[:, None]).astype(np.int64),
                            masked_positions=masked.astype(np.int64)))
    return batches


def gather_masked(logits, masked_positions):
    """(B, L, V) logits over every position -> (B, M, V) at the masked positions."""
    return np.take_along_axis(logits, masked_positions[:, :, None], axis=1)


def mxnet_outputs(model, kind, batch):
    """The reference outputs of the MXNet model (a BortModel or BortClassifier) for one batch."""
    import mxnet as mx

    ids = mx.nd.array(batch["input_ids"], dtype="int32")
    valid = mx.nd.array(batch["valid_length"], dtype="int32")
    if kind == CLASSIFIER:
        sequence = model.bort.encoder(model.bort.word_embed(ids), valid)
        return dict(sequence_output=sequence.asnumpy(), classifier_logits=model(ids, valid).asnumpy())
    if kind == MLM:
        sequence, logits = model(ids, valid, mx.nd.array(batch["masked_positions"], dtype="int32"))
        return dict(sequence_output=sequence.asnumpy(), mlm_logits=logits.asnumpy())
    return dict(sequence_output=model(ids, valid).asnumpy())


def max_abs_diffs(reference, candidate, valid_length):
    """Largest absolute difference per output the candidate gives; the sequence output over valid positions only."""
    diffs = {}
    for name, value in candidate.items():
        expected = reference[name]
        got = np.asarray(value, dtype=np.float64)
        if got.shape != expected.shape:
            raise ValueError(f"{name}: shape {got.shape} differs from the reference {expected.shape}")
        delta = np.abs(got - expected)
        if name == "sequence_output":
            delta = delta[np.arange(expected.shape[1])[None, :] < valid_length[:, None]]
        diffs[name] = float(delta.max()) if delta.size else 0.0
    return diffs


@dataclasses.dataclass
class ParityReport:
    target: str  # what was compared, e.g. "HF BertForMaskedLM (float32)"
    bound: float  # None: reported only (float16 exports)
    lengths: tuple
    diffs: dict  # output name -> max abs difference over all batches
    checked: tuple  # the outputs the bound applies to
    notes: tuple = ()

    @property
    def ok(self):
        return self.bound is None or all(self.diffs[name] <= self.bound for name in self.checked)

    def lines(self):
        bound = f"bound {self.bound:g}" if self.bound is not None else "no bound (reported only)"
        out = [f"parity vs MXNet, {self.target}, lengths {', '.join(map(str, self.lengths))} (padding included), "
               f"{bound}:"]
        for name, value in self.diffs.items():
            if self.bound is None or name not in self.checked:
                verdict = "(reported)"
            else:
                verdict = "ok" if value <= self.bound else "EXCEEDS BOUND"
            out.append(f"  max |diff| {name:<32} {value:.3e} {verdict}")
        out.extend(f"  note: {note}" for note in self.notes)
        return out


def run_parity(reference_model, kind, candidate, batches, target, bound, extra=None, notes=()):
    """Compare `candidate(batch) -> dict of outputs` with the MXNet model over `batches`.

    `extra`: name -> (reference output name, function(batch) -> array) for additional reported comparisons
    (e.g. MLM logits under another LayerNorm epsilon). Returns a ParityReport; raises nothing on a mismatch:
    the caller decides.
    """
    totals = {}
    for batch in batches:
        reference = mxnet_outputs(reference_model, kind, batch)
        got = candidate(batch)
        diffs = max_abs_diffs(reference, got, batch["valid_length"])
        for name, (reference_name, compute) in (extra or {}).items():
            diffs[name] = max_abs_diffs({reference_name: reference[reference_name]},
                                        {reference_name: compute(batch)}, batch["valid_length"])[reference_name]
        for name, value in diffs.items():
            totals[name] = max(totals.get(name, 0.0), value)
    lengths = tuple(batch["input_ids"].shape[1] for batch in batches)
    checked = tuple(name for name in totals if name not in (extra or {}))
    return ParityReport(target=target, bound=bound, lengths=lengths, diffs=totals, checked=checked,
                        notes=tuple(notes))
