"""Describe a Bort .params file (architecture, dtype, decoder, head) and optionally check that it loads."""

from bort.cli.common import run_main
from bort.cli.flags import ArgumentParser, add_checkpoint_flags


def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("params", help="a .params file: bort.params, a pretraining or a fine-tuning checkpoint")
    add_checkpoint_flags(parser, nonfinite=False)  # non-finite values are always reported here, never refused
    parser.add_argument("--force", action="store_true", help="let --num_heads contradict the checkpoint's record")
    args = parser.parse_args(argv)

    from bort.checkpoint import get_bort_model, open_checkpoint

    checkpoint = open_checkpoint(args.params, allow_nonfinite=True)
    print("\n".join(checkpoint.describe()))
    model, _ = get_bort_model(args.model, params_path=checkpoint, use_decoder=checkpoint.info.has_decoder,
                              num_heads=args.num_heads, force=args.force)
    print(f"loads into a {model.config.num_layers}-layer, {model.config.num_heads}-head BortModel "
          f"({len(checkpoint.arrays)} tensors checked by name and shape)")
    if checkpoint.nonfinite:
        print(f"error: {len(checkpoint.nonfinite)} tensors hold NaN or infinite values (listed above); other "
              "commands refuse this file unless --allow_nonfinite")
        return 1
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
