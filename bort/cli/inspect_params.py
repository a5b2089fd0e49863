"""Describe a Bort .params file (architecture, dtype, decoder, head) and optionally check that it loads."""
import argparse

from bort.cli.common import run_main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("params", help="a .params file: bort.params, a pretraining or a fine-tuning checkpoint")
    parser.add_argument("--model", default="bort_4_8_768_1024",
                        help="architecture to try loading into (the head count is not stored in the file); "
                             "its layers, widths and vocabulary are taken from the file")
    parser.add_argument("--num_heads", type=int, default=None, help="override the architecture's head count")
    args = parser.parse_args(argv)

    from bort.model import get_bort_model
    from bort.params import inspect_params, load_parameters

    info = inspect_params(args.params)
    print(f"file:        {info.path}")
    print(f"layout:      {'fine-tuned checkpoint (bort. + classifier.)' if info.prefix else 'Bort model'}")
    print(f"dtype:       {info.dtype}")
    print(f"layers:      {info.num_layers}   units: {info.units}   FFN: {info.hidden_size}   "
          f"positions: {info.max_length}   vocabulary: {info.vocab_size}")
    print(f"MLM decoder: {'yes' if info.has_decoder else 'no'}")
    if info.num_classes is not None:
        print(f"classifier:  {info.num_classes} outputs")
    model, _ = get_bort_model(args.model, use_decoder=info.has_decoder, num_heads=args.num_heads,
                              **info.config_overrides())
    print(load_parameters(model, args.params).summary())
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
