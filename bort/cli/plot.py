"""Draw training curves (loss, learning rate, dev metric against steps) of one or more runs to a PNG.

A run is the output directory of fine-tuning (metrics.jsonl), pretraining (train_log.jsonl), Agora or extraction
(log.jsonl), or the log file itself. Several runs are drawn on the same panels, one colour per run.

Examples:
  bort-plot runs/finetune/RTE-20260101-120000
  bort-plot runs/a runs/b --output compare.png --tensorboard runs/tb
"""
import argparse
import os

from bort.cli.common import run_main
from bort.cli.flags import ArgumentParser


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or their JSON-lines logs")
    parser.add_argument("--output", default=None, metavar="PNG",
                        help="the picture to write (default: curves.png in the first run's directory)")
    parser.add_argument("--title", default=None, help="a title above the panels")
    parser.add_argument("--force", action="store_true", help="replace an existing --output")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also write the curves as TensorBoard scalars under DIR/<run>/ (needs tensorboardX "
                             "or torch)")
    return parser


def default_output(run):
    directory = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    return os.path.join(directory, "curves.png")


def main(argv=None):
    from bort.errors import OutputError
    from bort.io_utils import check_output_file
    from bort.plotting import draw, load_runs, write_tensorboard

    args = build_parser().parse_args(argv)
    output = check_output_file(args.output or default_output(args.runs[0]))
    if os.path.exists(output) and not args.force:
        raise OutputError(f"{output} already exists; pass --force to replace it or choose another --output")
    loaded = load_runs(args.runs)
    panels = draw(loaded, output, title=args.title)
    print(f"wrote {output}: {', '.join(panels)} of {len(loaded)} run(s)")
    if args.tensorboard:
        points = write_tensorboard(loaded, args.tensorboard)
        print(f"wrote {points} TensorBoard scalars under {args.tensorboard}")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
