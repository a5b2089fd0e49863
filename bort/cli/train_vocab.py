"""Train a vocabulary for pretraining Bort on a new corpus.

--model_type bpe | unigram: a SentencePiece model. Writes PREFIX.model and PREFIX.vocab with the special
  tokens at fixed ids <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4.
  Load it with `BortTokenizer.from_sentencepiece("PREFIX.model")`.
--model_type byte_level_bpe: a RoBERTa-style byte-level BPE. PREFIX is a directory that receives vocab.json
  and merges.txt with RoBERTa's ids <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=last.
  Load it with `BortTokenizer.from_directory("PREFIX")`.
Either way the model's vocabulary size follows the trained vocabulary.
"""
import argparse

from bort.cli.common import run_main, str2bool
from bort.cli.flags import ArgumentParser


def build_parser():
    from bort.tokenizer.sentencepiece_training import MODEL_TYPES, NORMALIZATIONS

    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE",
                        help="UTF-8 text files, one sentence per line (blank lines are ignored)")
    parser.add_argument("--model_prefix", required=True,
                        help="output path without suffix: writes PREFIX.model and PREFIX.vocab "
                             "(byte_level_bpe: the output directory)")
    parser.add_argument("--vocab_size", type=int, required=True,
                        help="total vocabulary size, the 5 special tokens included")
    parser.add_argument("--model_type", choices=MODEL_TYPES + ("byte_level_bpe",), default="unigram",
                        help="bpe or unigram: SentencePiece; byte_level_bpe: RoBERTa-style files "
                             "(default: %(default)s)")
    parser.add_argument("--min_frequency", type=int, default=2,
                        help="byte_level_bpe only: least count of a merge (default: %(default)s)")
    parser.add_argument("--character_coverage", type=float, default=0.9995,
                        help="SentencePiece only: share of characters the vocabulary must cover; 1.0 for "
                             "small alphabets, 0.9995 for CJK (default: %(default)s)")
    parser.add_argument("--byte_fallback", type=str2bool, default=True,
                        help="SentencePiece only: spell characters outside the vocabulary as UTF-8 byte "
                             "pieces instead of <unk> (default: %(default)s)")
    parser.add_argument("--normalization_rule_name", choices=NORMALIZATIONS, default="nmt_nfkc",
                        help="SentencePiece only: Unicode normalization applied before tokenizing; "
                             "'identity' keeps text as is (default: %(default)s)")
    parser.add_argument("--input_sentence_size", type=int, default=0,
                        help="SentencePiece only: train on a random sample of this many lines; 0 uses all "
                             "(default: %(default)s)")
    parser.add_argument("--max_sentence_length", type=int, default=4192,
                        help="SentencePiece only: lines longer than this many bytes are skipped in training "
                             "(default: %(default)s)")
    parser.add_argument("--num_threads", type=int, default=1,
                        help="SentencePiece only: training threads (default: %(default)s)")
    return parser


def main(argv=None):
    from bort.tokenizer import BortTokenizer, train_byte_level_bpe, train_sentencepiece

    args = build_parser().parse_args(argv)
    if args.model_type == "byte_level_bpe":
        train_byte_level_bpe(args.input, args.model_prefix, args.vocab_size, min_frequency=args.min_frequency)
        tokenizer = BortTokenizer.from_directory(args.model_prefix)
        print(f"wrote {args.model_prefix}/vocab.json and merges.txt ({tokenizer.vocab_size} tokens; "
              f"special ids {tokenizer.special_ids})")
        return 0
    model_file = train_sentencepiece(
        args.input, args.model_prefix, args.vocab_size, model_type=args.model_type,
        character_coverage=args.character_coverage, byte_fallback=args.byte_fallback,
        normalization_rule_name=args.normalization_rule_name, input_sentence_size=args.input_sentence_size,
        max_sentence_length=args.max_sentence_length, num_threads=args.num_threads)
    tokenizer = BortTokenizer.from_sentencepiece(model_file)
    print(f"wrote {model_file} ({tokenizer.vocab_size} pieces; special ids {tokenizer.special_ids})")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
