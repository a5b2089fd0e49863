"""Export Bort weights to Hugging Face Transformers, ONNX or an MXNet symbol, or import them back from HF.

  to HF:      --params bort.params --format hf --output DIR [--vocab vocab.json --merges merges.txt]
  to ONNX:    --params bort.params --format onnx --output DIR
  to symbol:  --params bort.params --format symbol --output DIR
  from HF:    --from_hf DIR --output teacher.params   (BERT or RoBERTa; the architecture goes to teacher.json)

After every export the result is run on the same inputs as the MXNet model (several lengths, padding
included) and the largest differences are printed; a float32 export that misses its bound (1e-5 HF and
symbol, 1e-4 ONNX) is an error and nothing is written. The output appears only when complete.
"""
import argparse

from bort.cli.common import run_main, str2bool
from bort.cli.flags import ArgumentParser, add_checkpoint_flags


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--params", help="Bort .params file to export: pretrained (with or without the MLM "
                                         "decoder) or a fine-tuned classifier checkpoint (bort.* + classifier.*)")
    source.add_argument("--from_hf", dest="from_hf", metavar="DIR",
                        help="import: a Hugging Face BERT or RoBERTa directory (config.json + "
                             "model.safetensors or pytorch_model.bin, sharded or not), written to the .params "
                             "file named by --output with the architecture in <out>.json")
    parser.add_argument("--format", choices=("hf", "onnx", "symbol"),
                        help="export target (with --params): hf = config.json + model.safetensors for "
                             "transformers; onnx = model.onnx for onnxruntime; symbol = MXNet "
                             "bort-symbol.json + bort-0000.params")
    parser.add_argument("--output", "--out", "--output_dir", dest="out", required=True,
                        help="export: output directory (must not exist unless --force); "
                             "--from_hf: the .params file to write")
    add_checkpoint_flags(parser)
    parser.add_argument("--vocab", default=None,
                        help="vocabulary to ship with the export: HF vocab.json, or GluonNLP's vocabulary "
                             "JSON; needs --merges. Without both, no tokenizer files are written")
    parser.add_argument("--merges", default=None,
                        help="merges for --vocab: HF merges.txt (a .txt name), or GluonNLP's BPE ranks file")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                        help="weight dtype written for --format hf (default: %(default)s); float16 exports "
                             "report their error instead of being held to the float32 bound")
    parser.add_argument("--with_mlm", dest="with_mlm", type=str2bool, nargs="?", const=True, default=None,
                        help="include the masked-LM head (true/false). Default: when the file has one. "
                             "HF: with it the export is BertForMaskedLM, without it BertModel (with an "
                             "identity pooler); ONNX adds an mlm_logits output; symbol a masked-positions input")
    parser.add_argument("--force", type=str2bool, nargs="?", const=True, default=False,
                        help="replace an existing --output (only after the new export is complete); also lets "
                             "--num_heads or --vocab contradict the checkpoint's record")
    return parser


def main(argv=None):
    from bort.errors import ConfigError
    from bort.export.commands import export, import_from_hf

    args = build_parser().parse_args(argv)
    if args.from_hf:
        if args.format or args.vocab or args.merges or args.with_mlm is not None:
            raise ConfigError("--from_hf takes only --output (a .params file) and --force")
        lines = import_from_hf(args.from_hf, args.out, force=args.force)
    else:
        if not args.format:
            raise ConfigError("--params needs --format hf, onnx or symbol")
        result = export(args.params, args.format, args.out, model_name=args.model, num_heads=args.num_heads,
                        vocab=args.vocab, merges=args.merges, dtype=args.dtype, with_mlm=args.with_mlm,
                        force=args.force, allow_nonfinite=args.allow_nonfinite)
        lines = result.lines()
    print("\n".join(lines))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
