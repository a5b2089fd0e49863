"""Converting RoBERTa's byte-level BPE vocabulary between GluonNLP's files and Hugging Face's.

The conversion is lossless both ways: the same tokens with the same ids, the same merges in the same order,
the same special tokens; both directions validate the input as the tokenizer does.
"""
from . import bpe_files


def gluonnlp_to_hf(vocab_file, bpe_ranks_file, output_dir):
    """GluonNLP vocabulary JSON + BPE ranks -> `output_dir/vocab.json` + `output_dir/merges.txt`.

    Returns the two written paths. GluonNLP's special tokens must be RoBERTa's names (what HF assumes).
    """
    vocabulary = bpe_files.load_gluonnlp_files(vocab_file, bpe_ranks_file)
    return bpe_files.write_hf_files(output_dir, vocabulary)


def hf_to_gluonnlp(vocab_json, merges_txt, vocab_out, bpe_ranks_out, special_tokens=None):
    """HF `vocab.json` + `merges.txt` -> GluonNLP vocabulary JSON + BPE ranks file; returns their paths.

    special_tokens: role -> token (bos, pad, eos, unk, mask); RoBERTa's by default.
    """
    vocabulary = bpe_files.load_hf_files(vocab_json, merges_txt, special_tokens)
    return bpe_files.write_gluonnlp_files(vocab_out, bpe_ranks_out, vocabulary)
