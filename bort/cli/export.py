"""Export Bort weights to Hugging Face Transformers, ONNX or an MXNet symbol, or import them back from HF.

  to HF:      --params bort.params --format hf --out DIR [--vocab vocab.json --merges merges.txt]
  to ONNX:    --params bort.params --format onnx --out DIR
  to symbol:  --params bort.params --format symbol --out DIR
  from HF:    --from-hf DIR --out bort.params

After every export the result is run on the same inputs as the MXNet model (several lengths, padding
included) and the largest differences are printed; a float32 export that misses its bound (1e-5 HF and
symbol, 1e-4 ONNX) is an error and nothing is written. The output appears only when complete.
"""
import argparse

from bort.cli.common import run_main, str2bool
from bort.config import PREDEFINED


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--params", help="Bort .params file to export: pretrained (with or without the MLM "
                                         "decoder) or a fine-tuned classifier checkpoint (bort.* + classifier.*)")
    source.add_argument("--from-hf", dest="from_hf", metavar="DIR",
                        help="import: a Hugging Face BERT directory (config.json + model.safetensors), "
                             "written to the .params file named by --out")
    parser.add_argument("--format", choices=("hf", "onnx", "symbol"),
                        help="export target (with --params): hf = config.json + model.safetensors for "
                             "transformers; onnx = model.onnx for onnxruntime; symbol = MXNet "
                             "bort-symbol.json + bort-0000.params")
    parser.add_argument("--out", required=True,
                        help="export: output directory (must not exist unless --force); "
                             "--from-hf: the .params file to write")
    parser.add_argument("--model", default="bort_4_8_768_1024", choices=sorted(PREDEFINED),
                        help="architecture the file was trained as; only its number of heads is used, the "
                             "other sizes are read from the file (default: %(default)s)")
    parser.add_argument("--num_heads", type=int, default=None,
                        help="number of attention heads, overriding --model's (a .params file does not "
                             "record it)")
    parser.add_argument("--vocab", default=None,
                        help="vocabulary to ship with the export: HF vocab.json, or GluonNLP's vocabulary "
                             "JSON; needs --merges. Without both, no tokenizer files are written")
    parser.add_argument("--merges", default=None,
                        help="merges for --vocab: HF merges.txt (a .txt name), or GluonNLP's BPE ranks file")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                        help="weight dtype written for --format hf (default: %(default)s); float16 exports "
                             "report their error instead of being held to the float32 bound")
    parser.add_argument("--with-mlm", dest="with_mlm", type=str2bool, nargs="?", const=True, default=None,
                        help="include the masked-LM head (true/false). Default: when the file has one. "
                             "HF: with it the export is BertForMaskedLM, without it BertModel (with an "
                             "identity pooler); ONNX adds an mlm_logits output; symbol a masked-positions input")
    parser.add_argument("--force", type=str2bool, nargs="?", const=True, default=False,
                        help="replace an existing --out (only after the new export is complete)")
    return parser


def main(argv=None):
    from bort.errors import ConfigError
    from bort.export.commands import export, import_from_hf

    args = build_parser().parse_args(argv)
    if args.from_hf:
        if args.format or args.vocab or args.merges or args.with_mlm is not None:
            raise ConfigError("--from-hf takes only --out (a .params file) and --force")
        lines = import_from_hf(args.from_hf, args.out, force=args.force)
    else:
        if not args.format:
            raise ConfigError("--params needs --format hf, onnx or symbol")
        result = export(args.params, args.format, args.out, model_name=args.model, num_heads=args.num_heads,
                        vocab=args.vocab, merges=args.merges, dtype=args.dtype, with_mlm=args.with_mlm,
                        force=args.force)
        lines = result.lines()
    print("\n".join(lines))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
