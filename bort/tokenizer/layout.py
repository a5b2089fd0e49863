"""Where special tokens go around one or two sequences, and how pairs are truncated to fit.

Two pair layouts exist in the Bort/RoBERTa world:
- 'roberta' (default): `<s> A </s></s> B </s>`, what RoBERTa was pretrained with and what Hugging Face's
  `RobertaTokenizer` builds (4 special tokens per pair).
- 'bort_release': `<s> A </s> B </s>`, what the original Bort fine-tuning code fed the model (GluonNLP's
  BERT-style transform with bos/eos standing in for [CLS]/[SEP]; 3 special tokens per pair). Use it to
  reproduce the released fine-tuning numbers.
A single text is `<s> A </s>` in both.
"""
from ..errors import ConfigError

PAIR_LAYOUTS = ("roberta", "bort_release")


def check_pair_layout(pair_layout):
    if pair_layout not in PAIR_LAYOUTS:
        raise ConfigError(f"pair_layout must be one of {', '.join(PAIR_LAYOUTS)}, got {pair_layout!r}")
    return pair_layout


def num_special_tokens(pair, pair_layout):
    if not pair:
        return 2
    return 4 if check_pair_layout(pair_layout) == "roberta" else 3


def truncate_seqs_equal(seqs, max_len):
    """Cut the sequences so their total length is at most `max_len`, shortening the longest ones first.

    Same result as GluonNLP's `truncate_seqs_equal` (used by the original Bort fine-tuning): sequences short
    enough to fit an equal share are kept whole; the rest share what is left equally, earlier sequences taking
    the remainder one token each. For two sequences this equals popping a token from the longer one (the
    second one on ties) until the total fits.
    """
    if max_len < 0:
        raise ConfigError(f"max_len must be >= 0, got {max_len}")
    lengths = [len(seq) for seq in seqs]
    if sum(lengths) <= max_len:
        return list(seqs)
    budget = max_len
    open_indices = list(range(len(seqs)))
    new_lengths = list(lengths)
    while True:
        shortest = min(open_indices, key=lambda index: (lengths[index], index))
        share, remainder = divmod(budget, len(open_indices))
        if lengths[shortest] <= share:
            open_indices.remove(shortest)
            budget -= lengths[shortest]
            continue
        for rank, index in enumerate(open_indices):
            new_lengths[index] = share + 1 if rank < remainder else share
        break
    return [seq[:length] for seq, length in zip(seqs, new_lengths)]


def assemble(ids_a, ids_b, bos_id, eos_id, pair_layout, max_length=None):
    """Special tokens around `ids_a` (and `ids_b`), truncated so the result has at most `max_length` ids."""
    pair = ids_b is not None
    specials = num_special_tokens(pair, pair_layout)
    if max_length is not None:
        if max_length < specials:
            raise ConfigError(f"max_length={max_length} leaves no room for the {specials} special tokens")
        if pair:
            ids_a, ids_b = truncate_seqs_equal([ids_a, ids_b], max_length - specials)
        else:
            ids_a = ids_a[:max_length - specials]
    out = [bos_id]
    out.extend(ids_a)
    out.append(eos_id)
    if pair:
        if pair_layout == "roberta":
            out.append(eos_id)
        out.extend(ids_b)
        out.append(eos_id)
    return out
