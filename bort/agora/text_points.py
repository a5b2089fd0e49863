"""f for text examples: tokenize every distinct text of an example, perturb the ids with an id-level
perturbation (token_edits.py, mlm_perturbation.py), decode back to text.

Each text is encoded without special tokens, so the drift limit applies to its own tokens: a point never
changes more than `max_drift` of any of its texts, hence of all its tokens together. A point is made only when at
least one of its texts changed; sources too short to change within the limit make no point.
"""
import dataclasses


def _texts_of(example):
    texts = [example.text_a] + ([example.text_b] if example.text_b is not None else [])
    for text_a, text_b in example.options:
        texts.append(text_a)
        if text_b is not None:
            texts.append(text_b)
    return list(dict.fromkeys(t for t in texts if t))  # distinct, in order of appearance


def _rebuild(example, mapping):
    def swap(text):
        return mapping.get(text, text) if text is not None else None

    return dataclasses.replace(example, text_a=swap(example.text_a), text_b=swap(example.text_b),
                               options=tuple((swap(a), swap(b)) for a, b in example.options))


class TextPointGenerator:
    """`PointGenerator` over `bort.tasks.Example`s, given a tokenizer and an id-level perturbation."""

    def __init__(self, tokenizer, perturbation):
        self.tokenizer = tokenizer
        self.perturbation = perturbation

    def generate(self, examples, points_per_example, rng):
        jobs, sequences = [], []  # (source index, texts), and all id sequences to perturb in one call
        for index, example in enumerate(examples):
            texts = _texts_of(example)
            encoded = self.tokenizer.encode_many(texts) if texts else []
            for _ in range(points_per_example):
                jobs.append((index, texts, len(sequences)))
                sequences.extend(encoded)
        perturbed = self.perturbation.perturb(sequences, rng) if sequences else []
        points = []
        for index, texts, start in jobs:
            mapping = {}
            for offset, text in enumerate(texts):
                new_ids = perturbed[start + offset]
                if new_ids is not None:
                    new_text = self.tokenizer.decode(new_ids)
                    if new_text != text:
                        mapping[text] = new_text
            if mapping:
                points.append((index, _rebuild(examples[index], mapping)))
        return points


GENERATORS = ("edits", "mlm", "mixed")


def build_text_generator(tokenizer, kind="edits", max_drift=0.2, operations=None, mlm_model=None,
                         temperature=1.0, top_k=50, ctx=None):
    """f for text by name: 'edits' (TokenEdits), 'mlm' (MLMPerturbation with `mlm_model`, a BortModel with its
    decoder), or 'mixed' (each point drawn from either with equal chance)."""
    from ..errors import ConfigError
    from .token_edits import EDIT_OPERATIONS, MixedPerturbation, TokenEdits

    if kind not in GENERATORS:
        raise ConfigError(f"unknown generator {kind!r}; choose one of {', '.join(GENERATORS)}")
    perturbations = []
    if kind in ("edits", "mixed"):
        perturbations.append(TokenEdits(tokenizer, max_drift, operations or EDIT_OPERATIONS))
    if kind in ("mlm", "mixed"):
        if mlm_model is None:
            raise ConfigError(f"generator {kind!r} needs a masked language model (--mlm_parameters)")
        from .mlm_perturbation import MLMPerturbation
        perturbations.append(MLMPerturbation(mlm_model, tokenizer, max_drift, temperature, top_k, ctx=ctx))
    perturbation = perturbations[0] if len(perturbations) == 1 else MixedPerturbation(perturbations)
    return TextPointGenerator(tokenizer, perturbation)
