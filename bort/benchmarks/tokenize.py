"""`scripts/benchmark.py tokenize`: tokens per second of `BortTokenizer` against transformers'
`RobertaTokenizer` and GluonNLP's `GPT2BPETokenizer` (what the original Bort used) on the same text and the
same vocabulary, in one run. Also checks that all of them produce the same ids."""
import dataclasses
import os
import tempfile
import time

from ..cli import str2bool
from ..errors import ConfigError

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLUONNLP = "gluonnlp GPT2BPETokenizer + Vocab"
WARM_UP_LINES = 256
DEFAULT_TEXT = [os.path.join(_REPO, "tests", "data", "tokenizer_multilingual.txt"),
                os.path.join(_REPO, "tests", "data", "vim_tutor_excerpts.txt"),
                os.path.join(_REPO, "data", "sample_text.txt")]


def add_arguments(parser):
    parser.add_argument("--text", nargs="+", metavar="FILE", default=None,
                        help="UTF-8 text files to tokenize, one text per line (default: the repository's "
                             "tests/data/{tokenizer_multilingual,vim_tutor_excerpts}.txt and "
                             "data/sample_text.txt)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="tokenize the lines this many times over, for a workload long enough to time "
                             "(default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1,
                        help="time each tokenizer this many times over the same lines and report its fastest "
                             "run (steadier on a shared machine; GluonNLP's word cache is warm after the first) "
                             "(default: %(default)s)")
    parser.add_argument("--vocab_dir", default=None,
                        help="directory with vocab.json + merges.txt (e.g. roberta-base's); default: train a "
                             "byte-level BPE of --train_vocab_size on the text in a temporary directory")
    parser.add_argument("--gluonnlp_vocab", default=None,
                        help="GluonNLP vocabulary JSON to use instead of --vocab_dir (with --bpe_ranks)")
    parser.add_argument("--bpe_ranks", default=None, help="GluonNLP BPE ranks file (with --gluonnlp_vocab)")
    parser.add_argument("--train_vocab_size", type=int, default=5000,
                        help="size of the vocabulary trained when none is given (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=16384,
                        help="texts per call of the batch encoder; the tiktoken engine splits batches of more "
                             "than 2048 texts over the cores (default: %(default)s)")
    parser.add_argument("--with_engines", type=str2bool, default=True,
                        help="also time the batch encoder with its piece cache emptied before each run, on the "
                             "tiktoken engine (all cores and one thread), on the `tokenizers` engine, and with "
                             "ids that do not follow the merges' order (RoBERTa's case: tiktoken's ranks are "
                             "mapped back to ids) (default: %(default)s)")
    parser.add_argument("--with_transformers", type=str2bool, default=True,
                        help="also time transformers.RobertaTokenizer (default: %(default)s)")
    parser.add_argument("--with_gluonnlp", type=str2bool, default=True,
                        help="also time gluonnlp.data.GPT2BPETokenizer + Vocab lookup (default: %(default)s)")


def _timed(function):
    """(wall seconds, CPU seconds of this process over all its threads, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _prepare_vocabulary(args, scratch):
    """(HF vocab.json, merges.txt, GluonNLP vocab, ranks) for one vocabulary, converting or training."""
    from ..tokenizer import gluonnlp_to_hf, hf_to_gluonnlp, train_byte_level_bpe

    if args.gluonnlp_vocab or args.bpe_ranks:
        if not (args.gluonnlp_vocab and args.bpe_ranks):
            raise ConfigError("--gluonnlp_vocab and --bpe_ranks go together")
        hf_vocab, hf_merges = gluonnlp_to_hf(args.gluonnlp_vocab, args.bpe_ranks, os.path.join(scratch, "hf"))
        return hf_vocab, hf_merges, args.gluonnlp_vocab, args.bpe_ranks
    if args.vocab_dir:
        hf_vocab = os.path.join(args.vocab_dir, "vocab.json")
        hf_merges = os.path.join(args.vocab_dir, "merges.txt")
    else:
        train_byte_level_bpe(args.text, os.path.join(scratch, "hf"), args.train_vocab_size)
        hf_vocab, hf_merges = os.path.join(scratch, "hf", "vocab.json"), os.path.join(scratch, "hf", "merges.txt")
    gluonnlp_vocab, ranks = hf_to_gluonnlp(hf_vocab, hf_merges, os.path.join(scratch, "gluonnlp.vocab"),
                                           os.path.join(scratch, "bpe_ranks.json"))
    return hf_vocab, hf_merges, gluonnlp_vocab, ranks


def _cold_cache(tokenizer, batched):
    """The batch encoder with the native engine's piece cache emptied before each run (what a corpus of new
    words costs), or None on another engine."""
    native = getattr(tokenizer._backend, "_native", None)
    if native is None:
        return None
    encode_warm = batched(tokenizer)

    def encode_all(texts):
        native.piece_cache().clear()
        return encode_warm(texts)

    return encode_all


def _engine_variants(hf_vocab, hf_merges, batched):
    """The batch encoder on tiktoken without the native engine (all cores and one thread), on `tokenizers`,
    and with the vocabulary's ids reversed (RoBERTa's ids follow fairseq's frequency order, so its tiktoken
    ranks go through the id table)."""
    from ..tokenizer import BortTokenizer, load_hf_files
    from ..tokenizer.bpe_backend import ByteLevelBPEBackend

    vocabulary = load_hf_files(hf_vocab, hf_merges)
    on_tiktoken = BortTokenizer(ByteLevelBPEBackend(vocabulary, use_native=False))
    on_tokenizers = BortTokenizer(ByteLevelBPEBackend(vocabulary, use_tiktoken=False))
    specials = set(vocabulary.special_tokens.values())
    ordinary = sorted((token for token in vocabulary.token_to_id if token not in specials),
                      key=vocabulary.token_to_id.get)
    free_ids = sorted(vocabulary.token_to_id[token] for token in ordinary)
    reversed_ids = dict(vocabulary.token_to_id)
    reversed_ids.update(zip(reversed(ordinary), free_ids))
    reordered = BortTokenizer(ByteLevelBPEBackend(dataclasses.replace(vocabulary, token_to_id=reversed_ids)))
    back = [0] * len(reversed_ids)
    for token, idx in reversed_ids.items():
        back[idx] = vocabulary.token_to_id[token]
    return {f"bort encode_many (batch, {on_tiktoken.engine}, all cores)": (batched(on_tiktoken), None),
            f"bort encode_many (batch, {on_tiktoken.engine}, 1 thread)": (batched(on_tiktoken, 1), None),
            f"bort encode_many (batch, {reordered.engine}, 1 thread, ids not in merge order)":
            (batched(reordered, 1), back),
            "bort encode_many (batch, tokenizers)": (batched(on_tokenizers), None)}


def run(args):
    from ..tokenizer import BortTokenizer, read_utf8_lines

    args.text = args.text or [path for path in DEFAULT_TEXT if os.path.exists(path)]
    if not args.text:
        raise ConfigError("no text to tokenize: pass --text FILE")
    lines = [line for path in args.text for line in read_utf8_lines(path)] * max(1, args.repeat)
    with tempfile.TemporaryDirectory() as scratch:
        hf_vocab, hf_merges, gluonnlp_vocab, ranks = _prepare_vocabulary(args, scratch)
        tokenizer = BortTokenizer.from_hf(hf_vocab, hf_merges)
        encoders = {}  # name -> (encode all lines, translate its ids to the vocabulary's or None)

        def batched(bort_tokenizer, num_threads=None):
            def encode_all(texts):
                out = []
                for start in range(0, len(texts), args.batch_size):
                    out.extend(bort_tokenizer.encode_many(texts[start:start + args.batch_size],
                                                          num_threads=num_threads))
                return out
            return encode_all

        # The native engine runs on one thread whatever num_threads says; tiktoken splits large batches.
        threads = "1 thread" if tokenizer.engine == "native" else "all cores"
        encoders[f"bort encode_many (batch, {tokenizer.engine}, {threads})"] = (batched(tokenizer), None)
        if args.with_engines:
            cold = _cold_cache(tokenizer, batched)
            if cold is not None:
                encoders[f"bort encode_many (batch, {tokenizer.engine}, cache emptied before each run)"] = (
                    cold, None)
            encoders.update(_engine_variants(hf_vocab, hf_merges, batched))
        encoders["bort encode (one by one)"] = (
            lambda texts: [tokenizer.encode(text, add_special_tokens=False) for text in texts], None)
        if args.with_transformers:
            from transformers import RobertaTokenizer

            # split_special_tokens: literal "<s>" in the text stays text, as in the other two.
            reference = RobertaTokenizer(vocab=hf_vocab, merges=hf_merges, split_special_tokens=True)
            encoders["transformers RobertaTokenizer (one by one)"] = (lambda texts: [
                reference.encode(text, add_special_tokens=False) for text in texts], None)
        if args.with_gluonnlp:
            from ..tokenizer.gluonnlp_reference import gluonnlp_gpt2_encoder

            gluonnlp_encode = gluonnlp_gpt2_encoder(gluonnlp_vocab, ranks)
            encoders[GLUONNLP] = (lambda texts: [gluonnlp_encode(text) for text in texts], None)

        results, expected = {}, None
        for name, (encode, translate) in encoders.items():
            encode(lines[:WARM_UP_LINES])  # first-call costs (thread-local regex copies, imports) are not timed
            best = None
            for _ in range(max(1, args.runs)):
                timing = _timed(lambda: encode(lines))
                best = timing if best is None or timing[1] < best[1] else best
                del timing
            wall, cpu, ids = best
            if translate is not None:
                ids = [[translate[idx] for idx in row] for row in ids]
            expected = ids if expected is None else expected
            tokens = sum(len(row) for row in ids)
            results[name] = {"seconds": wall, "cpu_seconds": cpu, "tokens": tokens,
                             "tokens_per_s": tokens / max(wall, 1e-9), "tokens_per_cpu_s": tokens / max(cpu, 1e-9),
                             "same_ids": ids == expected}
    baseline = results.get(GLUONNLP)
    for entry in results.values():
        entry["speedup_vs_gluonnlp"] = entry["tokens_per_s"] / baseline["tokens_per_s"] if baseline else None
        entry["cpu_speedup_vs_gluonnlp"] = (entry["tokens_per_cpu_s"] / baseline["tokens_per_cpu_s"]
                                            if baseline else None)
    summary = {"lines": len(lines), "tokens": results["bort encode (one by one)"]["tokens"],
               "vocab_size": tokenizer.vocab_size, "engine": tokenizer.engine, "text": args.text,
               "results": results}
    _print_table(summary)
    return summary


def _print_table(summary):
    print(f"{summary['lines']} lines, {summary['tokens']} tokens, vocabulary of {summary['vocab_size']}, "
          f"{os.cpu_count()} cores")
    header = (f"{'tokenizer':68s} {'wall s':>8s} {'tokens/s':>11s} {'x gluonnlp':>10s} {'CPU s':>8s} "
              f"{'tokens/CPU s':>12s} {'x gluonnlp':>10s} {'same ids':>8s}")
    print(header)
    print("-" * len(header))
    for name, entry in summary["results"].items():
        speedups = ["" if entry[key] is None else f"{entry[key]:.1f}"
                    for key in ("speedup_vs_gluonnlp", "cpu_speedup_vs_gluonnlp")]
        print(f"{name:68s} {entry['seconds']:8.2f} {entry['tokens_per_s']:11,.0f} {speedups[0]:>10s} "
              f"{entry['cpu_seconds']:8.2f} {entry['tokens_per_cpu_s']:12,.0f} {speedups[1]:>10s} "
              f"{'yes' if entry['same_ids'] else 'NO':>8s}")
