"""Training a new RoBERTa-style byte-level BPE vocabulary (Hugging Face `vocab.json` + `merges.txt`) with
RoBERTa's special ids: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`=last."""
import json
import os

from ..errors import ConfigError
from . import bpe_files
from .text_files import check_utf8_files


def train_byte_level_bpe(input_files, output_dir, vocab_size, min_frequency=2):
    """Train on UTF-8 text files and write `output_dir/vocab.json` + `merges.txt`; returns a `BPEVocabulary`.

    vocab_size counts every token, `<mask>` included; a small corpus may yield fewer merges than asked for.
    """
    from tokenizers import ByteLevelBPETokenizer

    input_files = [os.fspath(path) for path in input_files]
    if not input_files:
        raise ConfigError("no input files given")
    specials = bpe_files.ROBERTA_SPECIAL_TOKENS
    if vocab_size < 256 + len(specials):
        raise ConfigError(f"vocab_size={vocab_size} is too small: a byte-level BPE needs the 256 byte tokens "
                          f"plus {len(specials)} special tokens")
    check_utf8_files(input_files)
    trainer = ByteLevelBPETokenizer()
    # The trainer numbers special tokens first, in the order given; <mask> goes last afterwards, as in RoBERTa.
    trainer.train(input_files, vocab_size=vocab_size - 1, min_frequency=min_frequency, show_progress=False,
                  special_tokens=[specials[role] for role in ("bos", "pad", "eos", "unk")])
    model = json.loads(trainer._tokenizer.to_str())["model"]
    token_to_id = dict(model["vocab"])
    token_to_id[specials["mask"]] = len(token_to_id)
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in model["merges"]]
    vocabulary = bpe_files.BPEVocabulary(token_to_id, merges, dict(specials), source=", ".join(input_files))
    bpe_files.write_hf_files(output_dir, vocabulary)
    return vocabulary
