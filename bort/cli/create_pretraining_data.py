"""Turn text into masked-LM pretraining shards for Bort (.npz, the original release's keys and dtypes).

Input: UTF-8 text files, one sentence per line, a blank line between documents. Output: OUTPUT_DIR/part-NNN.npz
and OUTPUT_DIR/metadata.json (vocabulary size, special ids, settings). Instances are `<s> A </s></s> B </s>`
(RoBERTa; --pair_layout bort_release gives `<s> A </s> B </s>`), 15% of their non-special tokens selected for
prediction, of which 80% become <mask>, 10% a random ordinary token and 10% stay. The output depends only on
the inputs, the tokenizer and the seed, not on --num_workers.
"""
import argparse
import json

from bort.cli.common import run_main, str2bool
from bort.cli.flags import ArgumentParser


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_file", required=True, help="input text files: comma-separated globs, e.g. 'corpus/*.txt'")
    p.add_argument("--output_dir", required=True, help="directory for the shards and metadata.json")
    p.add_argument("--vocab", required=True, help="tokenizer directory: vocab.json+merges.txt (RoBERTa BPE), a "
                   "SentencePiece *.model, or GluonNLP's *.vocab + *bpe_ranks*.json")
    p.add_argument("--pair_layout", default="roberta", choices=("roberta", "bort_release"),
                   help="special tokens between the two segments (default: %(default)s)")
    p.add_argument("--max_seq_length", type=int, default=512, help="longest instance, special tokens included "
                   "(default: %(default)s)")
    p.add_argument("--max_predictions_per_seq", type=int, default=80, help="most masked positions per instance "
                   "(default: %(default)s)")
    p.add_argument("--masked_lm_prob", type=float, default=0.15,
                   help="share of tokens to predict (default: %(default)s)")
    p.add_argument("--short_seq_prob", type=float, default=0.1, help="probability of a shorter target length for a "
                   "document (default: %(default)s)")
    p.add_argument("--dupe_factor", type=int, default=1, help="passes over the data, each with different masks and "
                   "pairings (default: %(default)s)")
    p.add_argument("--random_seed", type=int, default=12345, help="seed of every random choice (default: %(default)s)")
    p.add_argument("--num_outputs", type=int, default=1, help="number of shards; give at least one per training "
                   "worker to split by file (default: %(default)s)")
    p.add_argument("--num_workers", type=int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument("--progress", type=str2bool, default=True, help="show progress bars (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --output_dir, removing the shards "
                   "and metadata of the earlier run there (default: refuse)")
    return p


def main(argv=None):
    from bort.locking import output_lock
    from bort.pretraining.data import create_pretraining_data, earlier_output
    from bort.tokenizer import BortTokenizer

    args = build_parser().parse_args(argv)
    if not args.force:
        earlier_output(args.output_dir, force=False)  # refuse a non-empty folder before tokenizing anything
    tokenizer = BortTokenizer.from_directory(args.vocab)
    with output_lock(args.output_dir, what="create_pretraining_data run"):
        summary = create_pretraining_data(
            args.input_file, args.output_dir, tokenizer, max_seq_length=args.max_seq_length,
            max_predictions_per_seq=args.max_predictions_per_seq, masked_lm_prob=args.masked_lm_prob,
            short_seq_prob=args.short_seq_prob, dupe_factor=args.dupe_factor, seed=args.random_seed,
            num_shards=args.num_outputs, num_workers=args.num_workers, pair_layout=args.pair_layout,
            show_progress=args.progress, force=args.force)
    print(json.dumps(summary, sort_keys=True))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
