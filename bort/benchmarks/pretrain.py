"""`scripts/benchmark.py pretrain`: throughput of pretraining-data creation (sentences/s, with 1 and N worker
processes) and of distillation training steps on CPU (tokens/s, real tokens without padding)."""
import os
import tempfile

from ..cli import str2bool

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TEXT = os.path.join(_REPO, "data", "sample_text.txt")
DEFAULT_VOCAB = os.path.join(_REPO, "data", "demo", "vocab")


def add_arguments(parser):
    parser.add_argument("--text", default=DEFAULT_TEXT, help="corpus: one sentence per line, blank lines between "
                        "documents (default: the repository's data/sample_text.txt)")
    parser.add_argument("--vocab", default=DEFAULT_VOCAB, help="tokenizer directory (default: data/demo/vocab, "
                        "the small vocabulary of the demo data)")
    parser.add_argument("--repeat", type=int, default=200, help="copies of the corpus to process, for a workload long "
                        "enough to time (default: %(default)s)")
    parser.add_argument("--num_workers", type=int, default=2, help="worker processes for the second data-creation "
                        "run (default: %(default)s)")
    parser.add_argument("--max_seq_length", type=int, default=128, help="instance length (default: %(default)s)")
    parser.add_argument("--model", default="bort_4_8_768_1024", help="student architecture (default: %(default)s)")
    parser.add_argument("--vocab_size", type=int, default=50265, help="student vocabulary size; RoBERTa's by default, "
                        "since the embedding and its optimizer update dominate a CPU step (default: %(default)s)")
    parser.add_argument("--teacher", choices=("none", "student_copy"), default="student_copy",
                        help="distil from a random model of the student's shape, or train on MLM alone "
                        "(default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=8, help="sequences per step (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps, after as many warm-up steps "
                        "(default: %(default)s)")
    parser.add_argument("--train", type=str2bool, default=True, help="also time training; false: data creation "
                        "only (default: %(default)s)")


def _data_creation(args, scratch, tokenizer):
    from ..pretraining.data import create_pretraining_data
    from ..tokenizer import read_utf8_lines

    corpus = os.path.join(scratch, "corpus.txt")
    text = "\n".join(read_utf8_lines(args.text)).strip("\n")
    with open(corpus, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join([text] * max(1, args.repeat)) + "\n")
    results = {}
    for workers in sorted({1, max(1, args.num_workers)}):
        summary = create_pretraining_data(corpus, os.path.join(scratch, f"shards{workers}"), tokenizer,
                                          max_seq_length=args.max_seq_length, num_workers=workers,
                                          max_predictions_per_seq=max(1, round(args.max_seq_length * 0.15)),
                                          show_progress=False)
        results[f"data_sentences_per_second_{workers}_workers"] = summary["sentences_per_second"]
        results["data_sentences"] = summary["num_sentences"]
        results["data_instances"] = summary["num_instances"]
    return results, os.path.join(scratch, "shards1", "part-000.npz")


def _training(args, scratch, shard):
    from ..model import get_bort_model
    from ..params import save_parameters
    from ..pretraining.trainer import PretrainConfig, pretrain

    teacher_params = None
    if args.teacher == "student_copy":
        teacher, _ = get_bort_model(args.model, vocab_size=args.vocab_size)
        teacher_params = os.path.join(scratch, "teacher.params")
        save_parameters(teacher, teacher_params)
        del teacher
    cfg = PretrainConfig(train_files=[shard], ckpt_dir=os.path.join(scratch, "run"), vocab_size=args.vocab_size,
                         model=args.model, teacher_model=args.model if teacher_params else None,
                         teacher_params=teacher_params, teacher_ce_weight=0.5 if teacher_params else 0.0,
                         num_steps=2 * args.steps, log_interval=args.steps, batch_size=args.batch_size,
                         num_buckets=1, ckpt_interval=0, progress=False)
    summary = pretrain(cfg)
    steady = summary["last_log"]  # the second window: after the first steps' allocations
    return dict(train_tokens_per_second=round(steady["tokens_per_second"], 1),
                train_steps_per_second=round(steady["steps_per_second"], 3),
                train_model=args.model, train_vocab_size=args.vocab_size, train_teacher=args.teacher,
                train_batch_size=args.batch_size, train_max_seq_length=args.max_seq_length)


def run(args):
    from ..tokenizer import BortTokenizer

    tokenizer = BortTokenizer.from_directory(args.vocab)
    with tempfile.TemporaryDirectory() as scratch:
        results, shard = _data_creation(args, scratch, tokenizer)
        if args.train:
            if args.vocab_size < tokenizer.vocab_size:
                args.vocab_size = tokenizer.vocab_size
            results.update(_training(args, scratch, shard))
    results["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    width = max(len(key) for key in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    return results
