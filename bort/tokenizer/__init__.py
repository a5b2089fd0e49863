"""Tokenization for Bort: RoBERTa's byte-level BPE from GluonNLP or Hugging Face files, SentencePiece
vocabularies for new corpora, and conversion between the two BPE file formats.

`from bort.tokenizer import BortTokenizer` is the entry point; heavy libraries (`tokenizers`,
`sentencepiece`) load only when a tokenizer is built.
"""
from .bort_tokenizer import BortTokenizer
from .bpe_files import ROBERTA_SPECIAL_TOKENS, BPEVocabulary, load_gluonnlp_files, load_hf_files
from .bpe_training import train_byte_level_bpe
from .convert import gluonnlp_to_hf, hf_to_gluonnlp
from .layout import PAIR_LAYOUTS, truncate_seqs_equal
from .sentencepiece_training import SENTENCEPIECE_SPECIAL_IDS, train_sentencepiece
from .text_files import check_utf8_files, iter_utf8_lines, read_utf8_lines

__all__ = [
    "BortTokenizer", "BPEVocabulary", "ROBERTA_SPECIAL_TOKENS", "PAIR_LAYOUTS", "SENTENCEPIECE_SPECIAL_IDS",
    "load_hf_files", "load_gluonnlp_files", "gluonnlp_to_hf", "hf_to_gluonnlp", "truncate_seqs_equal",
    "train_sentencepiece", "train_byte_level_bpe", "check_utf8_files", "iter_utf8_lines", "read_utf8_lines",
]
