"""Pretrain Bort by knowledge distillation from a frozen teacher (RoBERTa or any Bort-shaped model).

loss = mlm_weight * MLM + teacher_ce_weight * T^2 * KL(teacher || student at temperature T), over the masked
positions of shards made by scripts/create_pretraining_data.py (or the original release's shards).
Run it under `horovodrun -np N ... --horovod true` for N workers (run_pretrain.sh does this); checkpoints,
the JSON-lines log (train_log.jsonl) and `--resume` live in --ckpt_dir.

Settings not given as flags come from --preset when one is named (release: the release's run; test: its smoke
test; see bort/presets.py), else from the library's defaults. run_pretrain.sh names a preset.
"""
import argparse
import dataclasses
import json

from bort.cli.common import positive_float, run_main, str2bool
from bort.cli.flags import ArgumentParser, chosen_preset


def build_parser(preset=None):
    """The pretraining flags, with the defaults of `preset` (None: the library's defaults)."""
    from bort.presets import PRETRAIN_PRESETS, pretrain_preset
    from bort.pretraining.config import PretrainConfig

    d = PretrainConfig(train_files=[])
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("preset")
    g.add_argument("--preset", choices=PRETRAIN_PRESETS, default=preset, help="the settings used for every flag "
                   "not given: release (the release's 2M-step distillation from RoBERTa-large) or test (its 4-step "
                   "CPU smoke test) (default: none, the library's defaults)")
    g.add_argument("--print_config", action="store_true", help="print the resolved settings as JSON and exit "
                   "without training")
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="training shards: comma-separated globs of .npz files")
    g.add_argument("--data_eval", default=None, help="evaluation shards (comma-separated globs); none: no evaluation")
    g.add_argument("--vocab", default=None, help="tokenizer directory (vocab.json+merges.txt, *.model, or GluonNLP "
                   "files); gives the vocabulary size and special ids. Default: the shards' metadata.json")
    g.add_argument("--vocab_size", type=int, default=None, help="vocabulary size, when neither --vocab nor "
                   "metadata.json is available (e.g. the release's shards)")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="sequences per batch and worker, or with "
                   "--use_avg_len true the most tokens (padding included) per batch (default: %(default)s)")
    g.add_argument("--batch_size_eval", type=int, default=d.batch_size_eval, help="sequences per evaluation batch "
                   "(default: %(default)s)")
    g.add_argument("--use_avg_len", type=str2bool, default=d.use_avg_len, help="batch by token budget instead of "
                   "by count (default: %(default)s)")
    g.add_argument("--num_buckets", type=int, default=d.num_buckets, help="length buckets per shard, to cut "
                   "padding (default: %(default)s)")
    g.add_argument("--dynamic_masking", type=str2bool, default=d.dynamic_masking, help="mask the sequences again "
                   "every epoch (RoBERTa) instead of using the shards' static masks (default: %(default)s)")
    g.add_argument("--masked_lm_prob", type=float, default=d.masked_lm_prob, help="dynamic masking: share of "
                   "tokens to predict (default: %(default)s)")
    g.add_argument("--max_predictions_per_seq", type=int, default=d.max_predictions_per_seq, help="dynamic masking: "
                   "most predictions per sequence (default: %(default)s)")

    g = p.add_argument_group("student")
    g.add_argument("--model", default=d.model, help="student architecture: bort_4_8_768_1024, bort_2_16_512_1024, or "
                   "'custom' with all of --num_layers --num_heads --units --hidden_size (default: %(default)s)")
    for name, help_text in (("num_layers", "encoder layers"), ("num_heads", "attention heads"),
                            ("units", "model width"), ("hidden_size", "feed-forward width"),
                            ("max_length", "longest sequence (position embeddings)")):
        g.add_argument(f"--{name}", type=int, default=None, help=f"override the architecture's {help_text}")
    g.add_argument("--dropout", type=float, default=None, help="override the dropout (release: 0.1)")
    g.add_argument("--student_params", default=None, help="start from this .params file instead of Normal(0.02)")

    g = p.add_argument_group("teacher and loss")
    g.add_argument("--teacher_model", default=d.teacher_model, help="roberta_24_1024_16, roberta_12_768_12 "
                   "(GluonNLP), a Bort architecture name, or 'bort' for any Bort-shaped file (default: %(default)s)")
    g.add_argument("--teacher_params", default=None, help="the teacher's .params file (RoBERTa: default is "
                   "GluonNLP's model cache, $MXNET_HOME/models)")
    g.add_argument("--teacher_num_heads", type=int, default=None, help="attention heads of a 'bort' teacher")
    g.add_argument("--mlm_weight", type=float, default=d.mlm_weight,
                   help="weight of the MLM term (default: %(default)s)")
    g.add_argument("--teacher_ce_weight", type=float, default=d.teacher_ce_weight, help="weight of the distillation "
                   "term; 0 trains on MLM alone without a teacher (default: %(default)s)")
    g.add_argument("--distillation_temperature", type=float, default=d.temperature, help="softmax temperature T "
                   "(default: %(default)s)")
    g.add_argument("--release_kd_loss", type=str2bool, default=d.release_kd_loss, help="reproduce the original "
                   "release's double-softmax, vocabulary-averaged distillation term (docs/release_bugs.md) "
                   "(default: %(default)s)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", default=d.optimizer, choices=("bertadam", "lamb", "adam"),
                   help="(default: %(default)s)")
    g.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate (default: %(default)s)")
    g.add_argument("--epsilon", type=float, default=d.epsilon, help="Adam epsilon (default: %(default)s)")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay, help="decoupled weight decay; none on "
                   "LayerNorm and biases (default: %(default)s)")
    g.add_argument("--warmup_ratio", type=float, default=d.warmup_ratio, help="share of steps of linear warm-up, "
                   "then linear decay to 0 (default: %(default)s)")
    g.add_argument("--num_steps", type=int, default=d.num_steps, help="optimizer steps (default: %(default)s)")
    g.add_argument("--accumulate", type=int, default=d.accumulate, help="batches per step (gradient accumulation) "
                   "(default: %(default)s)")
    g.add_argument("--max_grad_norm", type=float, default=d.max_grad_norm, help="clip the global gradient norm; "
                   "0 disables (default: %(default)s)")
    g.add_argument("--dtype", default=d.dtype, choices=("float32", "float16"), help="float16 (GPU only) uses dynamic "
                   "loss scaling and float32 master weights (default: %(default)s)")
    g.add_argument("--dynamic_loss_scale", type=str2bool, default=None, help="dynamic loss scaling; default: on "
                   "with float16 only")
    g.add_argument("--init_loss_scale", type=float, default=d.init_loss_scale, help="float16: first loss scale "
                   "(default: %(default)s)")
    g.add_argument("--loss_scale_window", type=int, default=d.loss_scale_window, help="float16: clean steps before "
                   "the loss scale doubles (default: %(default)s)")
    g.add_argument("--device", default=d.device, choices=("cpu", "gpu"), help="gpu uses GPU <local rank> "
                   "(default: %(default)s)")
    g.add_argument("--horovod", type=str2bool, default=d.horovod, help="run as one Horovod worker (launch with "
                   "horovodrun) (default: %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed for initialisation, data order and dropout "
                   "(default: %(default)s)")

    g = p.add_argument_group("logging and checkpoints")
    g.add_argument("--ckpt_dir", "--output_dir", dest="ckpt_dir", default=d.ckpt_dir,
                   help="checkpoints and train_log.jsonl (default: %(default)s)")
    g.add_argument("--log_interval", type=int, default=d.log_interval, help="steps between log lines "
                   "(default: %(default)s)")
    g.add_argument("--eval_interval", type=int, default=d.eval_interval, help="steps between evaluations; 0: only "
                   "at the end (default: %(default)s)")
    g.add_argument("--max_eval_batches", type=int, default=None, help="evaluate on at most this many batches per "
                   "worker (default: all)")
    g.add_argument("--ckpt_interval", type=int, default=d.ckpt_interval, help="steps between checkpoints, and one at "
                   "the end; 0 writes none (default: %(default)s)")
    g.add_argument("--keep_checkpoints", type=int, default=d.keep_checkpoints, help="newest checkpoints to keep "
                   "(default: %(default)s)")
    g.add_argument("--resume", type=str2bool, default=d.resume, help="continue from the newest complete checkpoint "
                   "in --ckpt_dir (weights, optimizer, loss scale, data position) (default: %(default)s)")
    g.add_argument("--progress", type=str2bool, default=d.progress, help="show a progress bar (default: %(default)s)")
    g.add_argument("--rank_digests", type=str2bool, default=d.rank_digests, help="every worker writes a SHA-256 of "
                   "its final weights to ckpt_dir/rank_digests/ (to check that workers agree) (default: %(default)s)")
    if preset:
        p.set_defaults(**pretrain_preset(preset))
    return p


def main(argv=None):
    from bort.presets import PRETRAIN_PRESETS
    from bort.pretraining.data import expand_inputs
    from bort.pretraining.trainer import PretrainConfig, pretrain

    args = build_parser(chosen_preset(argv, PRETRAIN_PRESETS)).parse_args(argv)
    overrides = {k: getattr(args, k) for k in ("num_layers", "num_heads", "units", "hidden_size", "max_length",
                                               "dropout") if getattr(args, k) is not None}
    if args.dropout is not None:
        overrides["embed_dropout"] = args.dropout
    cfg = PretrainConfig(
        train_files=expand_inputs(args.data), eval_files=expand_inputs(args.data_eval) if args.data_eval else [],
        ckpt_dir=args.ckpt_dir, vocab=args.vocab, vocab_size=args.vocab_size,
        model=None if args.model == "custom" else args.model, model_overrides=overrides,
        student_params=args.student_params, teacher_model=args.teacher_model, teacher_params=args.teacher_params,
        teacher_num_heads=args.teacher_num_heads, mlm_weight=args.mlm_weight, teacher_ce_weight=args.teacher_ce_weight,
        temperature=args.distillation_temperature, release_kd_loss=args.release_kd_loss, optimizer=args.optimizer,
        lr=args.lr, epsilon=args.epsilon, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        num_steps=args.num_steps, accumulate=args.accumulate, max_grad_norm=args.max_grad_norm,
        batch_size=args.batch_size, batch_size_eval=args.batch_size_eval, use_avg_len=args.use_avg_len,
        num_buckets=args.num_buckets, dynamic_masking=args.dynamic_masking, masked_lm_prob=args.masked_lm_prob,
        max_predictions_per_seq=args.max_predictions_per_seq, dtype=args.dtype, device=args.device,
        horovod=args.horovod, seed=args.seed, log_interval=args.log_interval, eval_interval=args.eval_interval,
        max_eval_batches=args.max_eval_batches, ckpt_interval=args.ckpt_interval,
        keep_checkpoints=args.keep_checkpoints, resume=args.resume, dynamic_loss_scale=args.dynamic_loss_scale,
        init_loss_scale=args.init_loss_scale,
        loss_scale_window=args.loss_scale_window, progress=args.progress, rank_digests=args.rank_digests)
    if args.print_config:
        print(json.dumps(dataclasses.asdict(cfg), indent=1, sort_keys=True))
        return 0
    summary = pretrain(cfg)
    if summary["rank"] == 0:
        print(json.dumps(summary, default=float, sort_keys=True))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
