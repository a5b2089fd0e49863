"""Optimal subarchitecture extraction (OSE): find the Bort-shaped architecture with the best W-coefficient
(parameters x inference cost x error, each relative to the teacher T) in a search space, training only as many
candidates as the (1 - epsilon) guarantee needs (docs/extraction.md explains the algorithm and its readings).

The teacher is any Bort-format .params file with its MLM decoder (pretrained Bort, a user-defined model, or a
Hugging Face BERT/RoBERTa checkpoint after the import) plus its configuration. e* distils each candidate from it
for --steps steps on --train_files and scores it on the held-out --eval_files (pretraining shards, e.g. from
scripts/create_pretraining_data.py). Rerun with --resume to continue an interrupted run.

Examples:
  extract_subarchitecture.py --teacher_params teacher/roberta_large.params --teacher_config roberta_24_1024_16 \\
      --train_files 'shards/train/*.npz' --eval_files 'shards/heldout/*.npz' --steps 1000 --output_dir runs/ose
  extract_subarchitecture.py --surrogates_only --teacher_config roberta_24_1024_16 --mark bort=D4-A8-H1024-I768 \\
      --time_candidates D4-A8-H1024-I768,D2-A4-H512-I256 --output_dir runs/paper_space
  horovodrun -np 2 -H localhost:2 --gloo python scripts/extract_subarchitecture.py --horovod ...
"""
import argparse
import glob
import json
import os
import sys

from bort.cli.common import run_main, str2bool
from bort.cli.flags import ArgumentParser
from bort.errors import ConfigError


def _files(value):
    if not value:
        return []
    found = []
    for pattern in (p.strip() for p in value.split(",") if p.strip()):
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ConfigError(f"no file matches {pattern!r}")
        found += matches
    return found


def build_parser():
    from bort.extraction.coefficient import FORMS
    from bort.extraction.error import ErrorSettings
    from bort.extraction.loop import PARAM_KINDS, SPEED_KINDS, LoopSettings

    # The defaults are the settings objects' own (one set of defaults; ErrorSettings takes pretraining's).
    loop, error = LoopSettings(), ErrorSettings((), ())
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("teacher T (the maximum point)")
    g.add_argument("--teacher_params", help="Bort-format .params file of the teacher, with its MLM decoder")
    g.add_argument("--teacher_config", help="the teacher's BortConfig: a name (bort_4_8_768_1024, "
                   "roberta_24_1024_16, roberta_12_768_12, ...), inline JSON ('{\"num_heads\": 4}') or a JSON file; "
                   "shapes are read from --teacher_params, the number of heads from here or from the record this "
                   "package writes beside a checkpoint (x.json next to x.params)")
    g = p.add_argument_group("search space")
    g.add_argument("--space", default="paper", help="'paper' (A 4-16, D 2-12, H 512-1024, I 256-3072, H divisible "
                   "by A) or a JSON file: a grid {\"num_layers\": [...], ...} or a list of candidates "
                   "(default %(default)s)")
    g = p.add_argument_group("data (pretraining shards)")
    g.add_argument("--train_files", help="comma-separated globs of the shards the candidates are distilled on")
    g.add_argument("--eval_files", help="comma-separated globs of the held-out shards e* is measured on")
    g.add_argument("--max_eval_batches", type=int, default=error.max_eval_batches,
                   help="score on at most this many held-out batches "
                   "(default: all)")
    g = p.add_argument_group("the algorithm")
    g.add_argument("--steps", type=int, default=error.steps, help="step budget n: distillation steps per candidate "
                   "(default %(default)s)")
    g.add_argument("--epsilon", type=float, default=loop.epsilon,
                   help="tolerance of the guarantee: the pick's W is within a "
                   "factor (1 - epsilon) of the best in the space; 0 = exact (default %(default)s)")
    g.add_argument("--interval_size", type=int, default=loop.interval_size,
                   help="candidates trained between two stop checks "
                   "(split over the Horovod ranks; default %(default)s)")
    g.add_argument("--w_form", choices=FORMS, default=loop.w.form, help="W-coefficient: ratio e^c / ((1-p)^a (1-i)^b), "
                   "product p^a i^b e^c or weighted sum (default %(default)s)")
    g.add_argument("--w_alpha", type=float, default=loop.w.alpha,
                   help="weight of parameters in W (default %(default)s)")
    g.add_argument("--w_beta", type=float, default=loop.w.beta,
                   help="weight of inference cost in W (default %(default)s)")
    g.add_argument("--w_gamma", type=float, default=loop.w.gamma, help="weight of error in W (default %(default)s)")
    g.add_argument("--param_kind", choices=PARAM_KINDS, default=loop.param_kind, help="p*: parameters without the "
                   "embeddings (effective) or with them (total) (default %(default)s)")
    g.add_argument("--speed", choices=SPEED_KINDS, default=loop.speed_kind, help="i* in W: operation count or measured "
                   "inference time (default %(default)s)")
    g.add_argument("--seq_len", type=int, default=loop.seq_len, help="sequence length of i* (default %(default)s)")
    g.add_argument("--measure_times", type=str2bool, default=loop.measure_times,
                   help="also measure every candidate's inference "
                   "time for the report when --speed ops (default %(default)s)")
    g.add_argument("--timing_batch_size", type=int, default=loop.timing_batch_size,
                   help="batch size of the timed inference "
                   "(default %(default)s)")
    g.add_argument("--timing_repeats", type=int, default=loop.timing_repeats,
                   help="timed calls per model; the median is used "
                   "(default %(default)s)")
    g.add_argument("--exhaustive", type=str2bool, default=loop.exhaustive, help="train every candidate (no early stop) "
                   "(default %(default)s)")
    g = p.add_argument_group("distillation of each candidate (bort.pretraining)")
    g.add_argument("--batch_size", type=int, default=error.batch_size, help="sequences per step (default %(default)s)")
    g.add_argument("--batch_size_eval", type=int, default=error.batch_size_eval,
                   help="sequences per held-out batch (default %(default)s)")
    g.add_argument("--lr", type=float, default=error.lr, help="peak learning rate (default %(default)s)")
    g.add_argument("--warmup_ratio", type=float, default=error.warmup_ratio, help="share of steps of linear warm-up "
                   "(default %(default)s)")
    g.add_argument("--mlm_weight", type=float, default=error.mlm_weight,
                   help="weight of the MLM loss (default %(default)s)")
    g.add_argument("--teacher_ce_weight", type=float, default=error.teacher_ce_weight,
                   help="weight of the distillation loss "
                   "(default %(default)s)")
    g.add_argument("--temperature", type=float, default=error.temperature,
                   help="distillation temperature (default %(default)s)")
    g.add_argument("--seed", type=int, default=error.seed, help="seed of initialisation, dropout and data order "
                   "(default %(default)s)")
    g.add_argument("--device", choices=("cpu", "gpu"), default=error.device, help="where candidates train "
                   "(default %(default)s)")
    g.add_argument("--keep_models", type=str2bool, default=error.keep_models, help="keep every trained candidate's "
                   "model.params (default: only the scores)")
    g = p.add_argument_group("run")
    g.add_argument("--output_dir", default="runs/extraction", help="state, log, report (default %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue the extraction in --output_dir")
    g.add_argument("--force", action="store_true", help="delete an earlier extraction's outputs in --output_dir "
                   "and start over")
    g.add_argument("--horovod", action="store_true", help="split each interval over the ranks of horovodrun")
    g.add_argument("--progress", type=str2bool, default=True, help="show progress bars (default %(default)s)")
    g = p.add_argument_group("other modes")
    g.add_argument("--experiment", action="store_true", help="run the extraction AND the exhaustive search on the "
                   "space, plus random search with the extraction's cost; writes experiment.json/.md")
    g.add_argument("--random_draws", type=int, default=1000, help="random searches in --experiment "
                   "(default %(default)s)")
    g.add_argument("--experiment_forms", default=None, help="comma-separated W-coefficient forms the --experiment "
                   "runs the extraction with (one exhaustive search serves all; default: --w_form)")
    g.add_argument("--surrogates_only", action="store_true", help="no training: the p*/i* table and plot of the "
                   "space (the teacher's weights are not needed)")
    g.add_argument("--time_candidates", default="", help="with --surrogates_only: comma-separated candidate keys "
                   "(e.g. D4-A8-H1024-I768) to time, or 'all'")
    g.add_argument("--mark", action="append", default=[], help="with --surrogates_only: LABEL=KEY to mark in the "
                   "plot and table, e.g. bort=D4-A8-H1024-I768 (repeatable)")
    return p


def _loop_settings(args):
    from bort.extraction.coefficient import WCoefficient
    from bort.extraction.loop import LoopSettings

    return LoopSettings(w=WCoefficient(args.w_form, args.w_alpha, args.w_beta, args.w_gamma), epsilon=args.epsilon,
                        interval_size=args.interval_size, param_kind=args.param_kind, speed_kind=args.speed,
                        seq_len=args.seq_len, timing_batch_size=args.timing_batch_size,
                        timing_repeats=args.timing_repeats, measure_times=args.measure_times,
                        exhaustive=args.exhaustive)


def _surrogates_only(args, settings):
    import os

    from bort.extraction.api import prepare_output_dir, tabulate_space
    from bort.extraction.report import pareto_front, plot, write_table
    from bort.extraction.teacher import load_teacher_spec

    teacher = load_teacher_spec(args.teacher_params, args.teacher_config)
    marks = {}
    for item in args.mark:
        label, sep, key = item.partition("=")
        if not sep:
            raise ConfigError(f"--mark expects LABEL=KEY, got {item!r}")
        marks[label] = key
    out_dir = prepare_output_dir(args.output_dir, args.resume, args.force)
    os.makedirs(out_dir, exist_ok=True)
    timed = "all" if args.time_candidates == "all" else [k for k in args.time_candidates.split(",") if k]
    space, reference, rows = tabulate_space(args.space, teacher, settings, timed,
                                            os.path.join(out_dir, "timings.json"))
    missing = sorted(set(marks.values()) - {r["key"] for r in rows})
    if missing:
        raise ConfigError(f"--mark names candidates not in the space: {', '.join(missing)}")
    x_name = f"params_{settings.param_kind}"
    front = set(pareto_front(rows, x_name, "ops"))
    summary = dict(space=space.source, candidates=len(rows), rejected=len(space.rejected), reference=reference,
                   pareto_front_params_ops=sorted(front), output_dir=out_dir)
    rows.sort(key=lambda r: (r["ops"], r["key"]))
    timed_rows = [r for r in rows if r.get("time_s") is not None]
    for label, key in marks.items():
        row = next(r for r in rows if r["key"] == key)
        summary[label] = dict(key=key, on_pareto_front=key in front, **{
            f"rank_by_{name}": 1 + sum(r[name] < row[name] for r in rows) for name in (x_name, "params_total", "ops")},
            **{k: row[k] for k in (x_name, "params_total", "ops", "p_ratio", "i_ratio")},
            time_s=row.get("time_s"))
        if row.get("time_s") is not None:
            summary[label]["rank_by_time_among_timed"] = 1 + sum(r["time_s"] < row["time_s"] for r in timed_rows)
            summary[label]["timed"] = len(timed_rows)
    write_table(rows, os.path.join(out_dir, "surrogates.csv"), os.path.join(out_dir, "surrogates.md"),
                title=f"p* and i* of {space.source} (sequence length {settings.seq_len})",
                notes=[f"T: {teacher.description()}: p* effective {reference['params_effective']}, total "
                       f"{reference['params_total']}, ops {reference['ops']}"])
    plot(rows, reference, os.path.join(out_dir, "surrogates_ops.png"), settings.param_kind, "ops", marked=marks,
         title=f"{space.source}: parameters vs operations (L={settings.seq_len})")
    if timed_rows:
        plot(timed_rows, reference, os.path.join(out_dir, "surrogates_time.png"), settings.param_kind, "time",
             marked=marks, title=f"{len(timed_rows)} timed candidates (L={settings.seq_len}, batch "
             f"{settings.timing_batch_size}, {reference.get('isa') or ''})")
    from bort.io_utils import atomic_open

    with atomic_open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    return summary


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.resume and args.force:
        raise ConfigError("--resume and --force contradict each other; pass one")
    settings = _loop_settings(args)
    if args.surrogates_only:
        print(json.dumps(_surrogates_only(args, settings), indent=1, default=str))
        return 0
    if not args.teacher_params:
        raise ConfigError("--teacher_params is required (the teacher's .params file); --surrogates_only needs only "
                          "--teacher_config")
    from bort.extraction.error import ErrorSettings

    train, held_out = _files(args.train_files), _files(args.eval_files)
    errors = ErrorSettings(tuple(train), tuple(held_out), steps=args.steps, batch_size=args.batch_size,
                           batch_size_eval=args.batch_size_eval, max_eval_batches=args.max_eval_batches, lr=args.lr,
                           warmup_ratio=args.warmup_ratio, mlm_weight=args.mlm_weight,
                           teacher_ce_weight=args.teacher_ce_weight, temperature=args.temperature, seed=args.seed,
                           device=args.device, keep_models=args.keep_models)
    common = dict(teacher_params=args.teacher_params, teacher_config=args.teacher_config, train_files=train,
                  eval_files=held_out, space=args.space, error_settings=errors, horovod=args.horovod,
                  progress=args.progress)
    from bort.locking import output_lock

    # One run per output directory; under horovodrun only rank 0 holds the lock (it alone writes the outputs).
    # The lock sits beside the directory, since --force replaces the directory itself.
    is_main = not args.horovod or os.environ.get("HOROVOD_RANK", "0") == "0"
    with output_lock(args.output_dir, what="extraction run", sibling=True, enabled=is_main):
        return _run(args, settings, common)


def _run(args, settings, common):
    if args.experiment:
        if args.horovod:
            raise ConfigError("--experiment runs in one process (its wall times are part of the result)")
        from bort.extraction.experiment import run_experiment

        forms = [f for f in (args.experiment_forms or args.w_form).split(",") if f]
        numbers = run_experiment(args.output_dir, draws=args.random_draws, resume=args.resume, force=args.force,
                                 forms=forms, loop_settings=settings, **common)
        print(json.dumps(numbers, indent=1))
        return 0
    from bort.extraction.api import extract

    result, paths = extract(out_dir=args.output_dir, resume=args.resume, force=args.force, loop_settings=settings,
                            **common)
    if paths:
        pick = next(row for row in result.rows if row["key"] == result.pick)
        summary = dict(pick=result.pick, config={k: pick[k] for k in ("num_layers", "num_heads", "units",
                                                                       "hidden_size") if k in pick},
                       w=result.pick_w, evaluated=result.evaluated, space=result.space_size, stopped=result.stopped,
                       output_dir=result.out_dir, **paths)
        from bort.io_utils import atomic_open

        with atomic_open(os.path.join(result.out_dir, "summary.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=1)
        print(json.dumps(summary, indent=1))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)


if __name__ == "__main__":
    sys.exit(console_main())
