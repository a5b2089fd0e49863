"""Convert RoBERTa's byte-level BPE vocabulary between GluonNLP's and Hugging Face's file formats.

  gluonnlp -> hf:  --to hf --vocab X.vocab --merges openai_webtext_bpe_ranks-Y.json --output_dir DIR
                   writes DIR/vocab.json and DIR/merges.txt
  hf -> gluonnlp:  --to gluonnlp --vocab vocab.json --merges merges.txt --output_dir DIR
                   writes DIR/<--name>.vocab (gluonnlp.Vocab JSON) and DIR/<--ranks_name> (BPE ranks)
The files are checked as the tokenizer checks them; tokens, ids, merges and special tokens are kept exactly.
"""
import argparse
import os

from bort.cli.common import run_main
from bort.cli.flags import ArgumentParser


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", choices=("hf", "gluonnlp"), required=True,
                        help="target format; the source is the other one")
    parser.add_argument("--vocab", required=True,
                        help="source vocabulary: GluonNLP vocab JSON (for --to hf) or HF vocab.json")
    parser.add_argument("--merges", required=True,
                        help="source merges: GluonNLP BPE ranks file (for --to hf) or HF merges.txt")
    parser.add_argument("--output_dir", required=True, help="directory for the converted files")
    parser.add_argument("--name", default="roberta_vocab.vocab",
                        help="file name of the GluonNLP vocabulary written with --to gluonnlp "
                             "(default: %(default)s)")
    parser.add_argument("--ranks_name", default="roberta_bpe_ranks.json",
                        help="file name of the GluonNLP BPE ranks written with --to gluonnlp "
                             "(default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite converted files that already exist in --output_dir (default: refuse)")
    return parser


def _check_targets(output_dir, names, force):
    """Refuse to write into a file, or over a vocabulary that is already there unless --force."""
    from bort.errors import OutputError

    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"--output_dir {output_dir} is an existing file; choose a directory")
    existing = [os.path.join(output_dir, name) for name in names if os.path.exists(os.path.join(output_dir, name))]
    if existing and not force:
        raise OutputError(f"{', '.join(existing)} already exist(s); pass --force to overwrite, or choose another "
                          "--output_dir")


def main(argv=None):
    from bort.tokenizer import gluonnlp_to_hf, hf_to_gluonnlp

    args = build_parser().parse_args(argv)
    names = ("vocab.json", "merges.txt") if args.to == "hf" else (args.name, args.ranks_name)
    _check_targets(args.output_dir, names, args.force)
    if args.to == "hf":
        written = gluonnlp_to_hf(args.vocab, args.merges, args.output_dir)
    else:
        written = hf_to_gluonnlp(args.vocab, args.merges, os.path.join(args.output_dir, args.name),
                                 os.path.join(args.output_dir, args.ranks_name))
    for path in written:
        print(f"wrote {path}")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
