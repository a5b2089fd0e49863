"""Run a Bort model on a file of texts: classify, fill-mask or embed.

    python scripts/predict.py classify  --params finetuned.params --vocab vocab.json --merges merges.txt \
        --input texts.jsonl --output predictions.jsonl --labels negative,positive
    python scripts/predict.py fill-mask --params bort.params --vocab vocab.json --merges merges.txt \
        --input masked.tsv --output fills.jsonl --top_k 5
    python scripts/predict.py embed     --params bort.params --vocab vocab.json --merges merges.txt \
        --input texts.tsv --output vectors.npy --pooling mean

Input: JSON lines (`{"text": ..., "text_b": ...}`) or TSV (one column, or two for text pairs). Examples are
batched by length; outputs are written atomically (a failed run leaves no partial file).
"""
import argparse
import json
import sys

from bort.cli.common import run_main, str2bool  # light imports only: MXNet loads after --threads is set
from bort.cli.flags import ArgumentParser, add_checkpoint_flags, add_vocabulary_flags
from bort.errors import ConfigError
from bort.inference.backends import BACKENDS  # MXNet is imported lazily
from bort.threads import configure_threads


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True)
    for task, help_text in (("classify", "labels and class probabilities from a fine-tuned checkpoint"),
                            ("fill-mask", "top-k tokens for each <mask> with the MLM head"),
                            ("embed", "one vector per text, written to a .npy file")):
        command = sub.add_parser(task, help=help_text, description=help_text)
        _add_common(command)
        if task == "classify":
            command.add_argument("--labels", default=None,
                                 help="comma-separated label names in class-id order (default: the names in the "
                                      "checkpoint's record, else the class ids)")
        elif task == "fill-mask":
            command.add_argument("--top_k", type=int, default=5,
                                 help="predictions per <mask> (default: %(default)s)")
        else:
            command.add_argument("--pooling", choices=("first", "mean"), default="first",
                                 help="'first': the <s> token's output; 'mean': the mean over the text's tokens "
                                      "(default: %(default)s)")
    return parser


def _add_common(parser):
    parser.add_argument("--params", required=True,
                        help="Bort .params file: a fine-tuned checkpoint for classify, a pretrained model with its "
                             "MLM decoder for fill-mask, any Bort file for embed")
    parser.add_argument("--input", required=True, help="input file: .jsonl (JSON lines) or .tsv")
    parser.add_argument("--output", required=True,
                        help="output file: JSON lines for classify and fill-mask, .npy for embed")
    parser.add_argument("--format", choices=("auto", "jsonl", "tsv"), default="auto",
                        help="input format; 'auto' decides by the file extension (default: %(default)s)")
    parser.add_argument("--header", type=str2bool, default=False,
                        help="TSV input: the first line holds column names and is skipped (default: %(default)s)")
    parser.add_argument("--text_field", default="text", help="JSON field of the text (default: %(default)s)")
    parser.add_argument("--pair_field", default="text_b",
                        help="JSON field of the second text of a pair, if any (default: %(default)s)")
    add_vocabulary_flags(parser)
    parser.add_argument("--pair_layout", choices=("roberta", "bort_release"), default=None,
                        help="special tokens around text pairs: 'roberta' <s> A </s></s> B </s>, 'bort_release' "
                             "<s> A </s> B </s> (default: the layout the checkpoint's record says the model was "
                             "trained with; without a record, 'bort_release' for a classifier, else 'roberta')")
    add_checkpoint_flags(parser, "--model_name")
    parser.add_argument("--force", type=str2bool, nargs="?", const=True, default=False,
                        help="use --num_heads, --labels, --pair_layout or a vocabulary that contradict the "
                             "checkpoint's record (each is otherwise an error)")
    parser.add_argument("--backend", choices=BACKENDS, default="fused",
                        help="how to run the encoder: 'fused' (one Q/K/V GEMM + oneDNN fused attention, and the "
                             "last layer only where the task reads it: the fastest exact path), 'hybrid' (MXNet "
                             "static graph), 'mkldnn' (oneDNN fused graph), 'int8' (quantized, "
                             "calibrated on the first inputs), 'mxnet' (imperative), "
                             "'onnxruntime' / 'onnxruntime-int8' (needs --onnx), 'torch' / 'torch-int8' (the same "
                             "weights in transformers' BertModel on torch, float32 or dynamic int8; needs torch "
                             "and transformers) (default: %(default)s)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8", "auto"), default="fp32",
                        help="number format of the encoder: 'fp32' (--backend, exact), 'int8' (the int8 backend, "
                             "or onnxruntime-int8 with an onnxruntime --backend), 'auto' (times --backend, MXNet "
                             "int8 where the CPU has AVX512-VNNI or AMX-INT8, and torch float32/int8 through the "
                             "Hugging Face export when torch is installed, on the first inputs, and serves the "
                             "fastest whose outputs keep cosine >= --min_cosine to float32; the choice and every "
                             "candidate's time are printed), 'bf16' (explains why MXNet 1.9.1 has no faster bf16 "
                             "path) (default: %(default)s)")
    parser.add_argument("--min_cosine", type=float, default=0.999,
                        help="--precision auto: the accuracy bound every engine other than the float one must meet "
                             "(default: %(default)s)")
    parser.add_argument("--onnx", default=None,
                        help="ONNX file of the same model for the onnxruntime backends (scripts/export_weights.py "
                             "--format onnx writes model.onnx)")
    parser.add_argument("--calibration_examples", type=int, default=32,
                        help="int8: how many of the inputs calibrate the quantization (default: %(default)s)")
    parser.add_argument("--calib_mode", choices=("naive", "entropy"), default="naive",
                        help="int8 calibration: 'naive' min/max or 'entropy' KL thresholds (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for MXNet/onnxruntime (default: the cores this process may use, see "
                             "docs/threads.md)")
    parser.add_argument("--batch_size", type=int, default=32, help="sequences per batch (default: %(default)s)")
    parser.add_argument("--sort_by_length", type=str2bool, default=True,
                        help="batch texts of similar length together, so less padding is computed; outputs keep "
                             "the input order either way (default: %(default)s)")
    parser.add_argument("--max_len", "--max_length", dest="max_length", type=int, default=None,
                        help="truncate inputs to this many tokens, special tokens included (default: the "
                             "length the model was trained on, from its record, else its max_length)")
    parser.add_argument("--progress", type=str2bool, default=True, help="show a progress bar (default: %(default)s)")


def load_tokenizer(args, parse_special_tokens):
    from bort.tokenizer import BortTokenizer

    hf_files = (args.vocab, args.merges)
    gluonnlp_files = (args.gluonnlp_vocab, args.bpe_ranks)
    if all(hf_files) and not any(gluonnlp_files):
        return BortTokenizer.from_hf(*hf_files, pair_layout=args.pair_layout,
                                     parse_special_tokens=parse_special_tokens)
    if all(gluonnlp_files) and not any(hf_files):
        return BortTokenizer.from_gluonnlp(*gluonnlp_files, pair_layout=args.pair_layout,
                                           parse_special_tokens=parse_special_tokens)
    raise ConfigError("pass the vocabulary as --vocab and --merges (Hugging Face files) or as --gluonnlp_vocab "
                      "and --bpe_ranks (GluonNLP files)")


def _filled_text(tokenizer, sequence, filled, pair):
    """The text with every <mask> filled in. The two texts of a pair are joined by the separator tokens the
    model saw between them (`A</s></s>B` or `A</s>B`), not run together; the positions come from the input
    `sequence`, since a filled-in token may itself be a special token."""
    if not pair:
        return tokenizer.decode(filled, skip_special_tokens=True)
    end_a = sequence.index(tokenizer.eos_id)
    start_b = end_a + tokenizer.num_special_tokens(pair=True) - 2
    decode = tokenizer.decode
    return (decode(filled[1:end_a], skip_special_tokens=True) + decode(filled[end_a:start_b])
            + decode(filled[start_b:-1], skip_special_tokens=True))


def main(argv=None):
    args = build_parser().parse_args(argv)
    configure_threads(args.threads)  # an explicit --threads wins; before MXNet is imported
    from bort.io_utils import check_output_file

    check_output_file(args.output)  # before any inference, not after it
    from bort.checkpoint import check_vocabulary
    from bort.inference import predict
    from bort.inference.backends import ONNX_BACKENDS, calibration_batches, make_backend, verify_onnx_backend
    from bort.inference.batching import pad_batch
    from bort.inference.inputs import read_examples
    from bort.io_utils import atomic_open

    if args.batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {args.batch_size}")
    # <mask> written in the text must become the mask id for fill-mask; elsewhere it is ordinary text.
    loaded = predict.load_model(args.params, args.task, args.model_name, args.num_heads, force=args.force,
                                allow_nonfinite=args.allow_nonfinite)
    checkpoint = loaded.checkpoint
    # Pairs are built the way the model was trained (its record), whatever the tokenizer's own default.
    args.pair_layout = checkpoint.pair_layout(args.pair_layout, force=args.force)
    tokenizer = load_tokenizer(args, parse_special_tokens=args.task == "fill-mask")
    if len(tokenizer) != loaded.config.vocab_size:
        raise ConfigError(f"the vocabulary has {len(tokenizer)} tokens but {args.params} has a word embedding of "
                          f"{loaded.config.vocab_size} rows; pass the vocabulary the model was trained with")
    check_vocabulary(checkpoint.record, tokenizer, checkpoint.record_file, force=args.force)
    # Default: the length the model was trained on (its record), within its positions.
    trained_length = checkpoint.recorded("max_seq_length") or loaded.config.max_length
    max_length = min(trained_length, loaded.config.max_length) if args.max_length is None else args.max_length
    examples = read_examples(args.input, args.format, args.text_field, args.pair_field, args.header)
    # Room for the special tokens of the longest layout among the inputs plus one token of text.
    shortest = tokenizer.num_special_tokens(pair=any(example.text_b is not None for example in examples)) + 1
    if not shortest <= max_length <= loaded.config.max_length:
        raise ConfigError(f"--max_len must lie in [{shortest}, {loaded.config.max_length}] for these inputs "
                          f"(special tokens plus one token of text), got {max_length}")
    sequences, truncated = predict.tokenize_examples(tokenizer, examples, max_length)
    if truncated:
        print(f"note: {truncated} of {len(sequences)} inputs were longer than {max_length} tokens and were "
              "truncated", file=sys.stderr)
    from bort.inference.precision import resolve

    def build(name):
        calibration = None
        if name == "int8":
            calibration = calibration_batches(sequences[:args.calibration_examples], tokenizer.pad_id)
        built = make_backend(name, loaded.encoder, onnx_path=args.onnx, calibration=calibration,
                             calib_mode=args.calib_mode, threads=args.threads)
        if name in ONNX_BACKENDS:
            verify_onnx_backend(built, loaded.encoder, *pad_batch(sequences[:4], tokenizer.pad_id), args.onnx)
        return built

    import numpy as np

    check_batch = pad_batch(sequences[:8], tokenizer.pad_id)
    # --precision auto times each engine the way this task calls it: classify and first-token embeddings read
    # position 0 only (the fused backend then skips most of the last layer).
    reads_first = args.task == "classify" or (args.task == "embed" and args.pooling == "first")
    first_rows = np.zeros((len(check_batch[0]), 1), dtype=np.int32) if reads_first else None
    backend, chosen = resolve(args.precision, args.backend, build, loaded.encoder, check_batch, args.min_cosine,
                              positions=first_rows)
    print(f"precision: {chosen}", file=sys.stderr)
    common = dict(batch_size=args.batch_size, sort_by_length=args.sort_by_length, progress=args.progress)

    if args.task == "embed":
        vectors = predict.embed(backend, sequences, tokenizer.pad_id, args.pooling, **common)
        with atomic_open(args.output, "wb") as handle:
            np.save(handle, vectors)
        print(f"wrote {vectors.shape[0]} vectors of size {vectors.shape[1]} to {args.output}")
        return 0

    def with_extra(example, record):
        return dict(example.extra, line=example.line, **record)

    if args.task == "classify":
        labels = checkpoint.labels(args.labels.split(",") if args.labels else None, force=args.force)
        probabilities = predict.classify(backend, loaded.head, sequences, tokenizer.pad_id, **common)
        records = [with_extra(example, dict(label=labels[int(row.argmax())], label_id=int(row.argmax()),
                                            probabilities=[round(float(p), 6) for p in row]))
                   for example, row in zip(examples, probabilities)]
    else:
        filled = predict.fill_mask(backend, loaded.head, sequences, tokenizer.mask_id, tokenizer.pad_id,
                                   args.top_k, **common)
        records = []
        for example, sequence, predictions in zip(examples, sequences, filled):
            best = list(sequence)
            for prediction in predictions:
                best[prediction.position] = prediction.ids[0]
            masks = [dict(position=p.position, predictions=[
                dict(token=tokenizer.decode([token_id]), id=token_id, probability=round(prob, 6))
                for token_id, prob in zip(p.ids, p.probabilities)]) for p in predictions]
            text = _filled_text(tokenizer, list(sequence), best, example.text_b is not None)
            records.append(with_extra(example, dict(text=example.text, filled=text, masks=masks)))
    with atomic_open(args.output, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} predictions to {args.output} (backend {backend.name})")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
