#!/usr/bin/env python
"""Train a SentencePiece vocabulary (BPE or unigram) for pretraining Bort on a new corpus.

Writes <model_prefix>.model and <model_prefix>.vocab with the special tokens at fixed ids:
<s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4. Load the result with
`BortTokenizer.from_sentencepiece("<model_prefix>.model")`; the model's vocabulary size follows the file.
"""
import argparse

from bort.cli import run_main, str2bool


def build_parser():
    from bort.tokenizer.sentencepiece_training import MODEL_TYPES, NORMALIZATIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE",
                        help="UTF-8 text files, one sentence per line (blank lines are ignored)")
    parser.add_argument("--model_prefix", required=True,
                        help="output path without suffix: writes PREFIX.model and PREFIX.vocab")
    parser.add_argument("--vocab_size", type=int, required=True,
                        help="total vocabulary size, the 5 special tokens included")
    parser.add_argument("--model_type", choices=MODEL_TYPES, default="unigram",
                        help="SentencePiece algorithm (default: %(default)s)")
    parser.add_argument("--character_coverage", type=float, default=0.9995,
                        help="share of characters the vocabulary must cover; 1.0 for small alphabets, "
                             "0.9995 for CJK (default: %(default)s)")
    parser.add_argument("--byte_fallback", type=str2bool, default=True,
                        help="spell characters outside the vocabulary as UTF-8 byte pieces instead of <unk> "
                             "(default: %(default)s)")
    parser.add_argument("--normalization_rule_name", choices=NORMALIZATIONS, default="nmt_nfkc",
                        help="Unicode normalization applied before tokenizing; 'identity' keeps text as is "
                             "(default: %(default)s)")
    parser.add_argument("--input_sentence_size", type=int, default=0,
                        help="train on a random sample of this many lines; 0 uses all (default: %(default)s)")
    parser.add_argument("--max_sentence_length", type=int, default=4192,
                        help="lines longer than this many bytes are skipped in training (default: %(default)s)")
    parser.add_argument("--num_threads", type=int, default=1, help="training threads (default: %(default)s)")
    return parser


def main(argv=None):
    from bort.tokenizer import BortTokenizer, train_sentencepiece

    args = build_parser().parse_args(argv)
    model_file = train_sentencepiece(
        args.input, args.model_prefix, args.vocab_size, model_type=args.model_type,
        character_coverage=args.character_coverage, byte_fallback=args.byte_fallback,
        normalization_rule_name=args.normalization_rule_name, input_sentence_size=args.input_sentence_size,
        max_sentence_length=args.max_sentence_length, num_threads=args.num_threads)
    tokenizer = BortTokenizer.from_sentencepiece(model_file)
    print(f"wrote {model_file} ({tokenizer.vocab_size} pieces; special ids {tokenizer.special_ids})")
    return 0


if __name__ == "__main__":
    run_main(main)
