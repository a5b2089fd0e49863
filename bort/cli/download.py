"""Download Bort's released weights (bort.params) and RoBERTa's vocabulary into one directory, and check them.

Files go to OUT/<name>.part first and get their final name only when complete (and checked); running the
command again resumes an interrupted download and skips files that are already there.
"""
import argparse
import os

from bort.cli.common import run_main, str2bool
from bort.cli.flags import ArgumentParser


def main(argv=None):
    from bort.download import BORT_PARAMS_URL, GLUON_REPO_URL, HF_ROBERTA_URL, MIRROR_ENV, download_model

    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"sources:\n  {BORT_PARAMS_URL}  (no published checksum: checked by reading it as Bort "
               f"parameters)\n  {HF_ROBERTA_URL.format('{vocab.json,merges.txt}')}  (checked by loading them)\n"
               f"  {GLUON_REPO_URL}gluon/dataset/vocab/  (GluonNLP's zipped files, sha1-checked)")
    parser.add_argument("--output_dir", "--out", dest="out", default="model", metavar="DIR",
                        help="directory to write into, created if needed (default: %(default)s; the shell "
                             "scripts look for model/bort.params and model/vocab.json + model/merges.txt)")
    parser.add_argument("--what", default="params,vocab",
                        help="comma-separated: 'params' (the released bort.params) and/or 'vocab' (RoBERTa's BPE "
                             "vocabulary, about 1.3 MB) (default: %(default)s)")
    parser.add_argument("--vocab_format", dest="vocab_format", choices=("hf", "gluonnlp"),
                        default="hf",
                        help="'hf': vocab.json + merges.txt from the Hugging Face repository "
                             "FacebookAI/roberta-base; 'gluonnlp': GluonNLP's "
                             "openwebtext_ccnews_stories_books_cased-2b804f8f.vocab + "
                             "openai_webtext_bpe_ranks-396d4d8e.json (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace existing files that differ from the download (without it they are an "
                             "error; files that match are always skipped)")
    parser.add_argument("--mirror", default=None, metavar="URL",
                        help=f"fetch from this server instead: replaces the scheme and host of every URL and "
                             f"keeps the path, e.g. http://host:8000/prefix (default: ${MIRROR_ENV} if set)")
    parser.add_argument("--progress", type=str2bool, default=True, metavar="BOOL",
                        help="show a progress bar per file on stderr (default: %(default)s)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        from bort.errors import OutputError
        raise OutputError(f"--output_dir {args.out} is an existing file; give a directory for the model files")

    results = download_model(out_dir=args.out, what=args.what, vocab_format=args.vocab_format, force=args.force,
                             mirror=args.mirror, progress=args.progress, log=print)
    downloaded = sum(result.status == "downloaded" for result in results)
    print(f"done: {downloaded} downloaded, {len(results) - downloaded} already there, in {args.out}")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
