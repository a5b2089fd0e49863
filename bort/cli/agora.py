"""Agora: fine-tune Bort by growing the training set around the dev mistakes of the best candidate, labelled by
an already trained model S, while pruning the hyperparameter search space (docs/agora.md).

The flags of bort-finetune that describe the candidates are accepted (model shape, pretrained weights,
tokenizer, optimizer, max_len, ...), with the release preset's defaults; --lr, --weight_decay, --warmup_ratio,
--batch_size and --seed are taken from each hyperparameter set instead, and --budget replaces the flags of a
single training run (--epochs, --ramp_up_epochs, --training_steps, --early_stop, checkpoints, --resume). Rerunning
the same command resumes an interrupted run from <output_dir>/state.json.

Examples:
  agora.py --task_name RTE --data_dir ~/glue_data --pretrained_parameters model/bort.params \\
      --labeller_parameters rte_teacher/model_bort_RTE.params --budget 20000 --output_dir agora_rte
  agora.py --task_name SST --data_dir data/demo/glue --vocab data/demo/vocab/vocab.json \\
      --merges data/demo/vocab/merges.txt --grid my_grid.json --train_limit 24 ...
"""
import json
import sys

from bort.cli.common import run_main, str2bool
from bort.cli.finetune import build_parser as build_finetune_parser
from bort.errors import ConfigError

GRID_FLAGS = (("seeds", "seed", int), ("lrs", "lr", float), ("wds", "wd", float), ("warmups", "warmup", float),
              ("batch_sizes", "batch_size", int))


def comma_list(kind):
    def parse(value):
        try:
            return [kind(item) for item in value.split(",") if item.strip()]
        except ValueError:
            import argparse
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {value!r}")
    return parse


def build_parser():
    from bort.agora.grid import RELEASE_GRID
    from bort.agora.text_points import GENERATORS
    from bort.agora.token_edits import EDIT_OPERATIONS

    p = build_finetune_parser(preset_flags=False, run_flags=False)
    p.description = __doc__
    p.set_defaults(output_dir="./runs/agora", predict=False)
    g = p.add_argument_group("Agora: search space (default: the release's grid, 480 sets)")
    g.add_argument("--grid", help="JSON file: a grid {\"lr\": [...], \"seed\": [...], ...} or a list of sets "
                   "[{\"lr\": 1e-05, \"seed\": 0}, ...]; names: seed, lr, wd, warmup, batch_size")
    for flag, name, kind in GRID_FLAGS:
        g.add_argument(f"--{flag}", type=comma_list(kind), help=f"comma-separated {name} values replacing the "
                       f"release grid's {RELEASE_GRID[name]} (ignored with --grid)")
    g = p.add_argument_group("Agora: the loop")
    g.add_argument("--budget", type=int, default=None, help="training units (examples; questions for multiple "
                   "choice) each candidate processes; default: 3 epochs of the initial training set")
    g.add_argument("--points_per_mistake", type=int, default=4, help="points generated from each dev mistake "
                   "(default %(default)s)")
    g.add_argument("--replay", type=int, default=0, help="extra passes of every round with the same search space "
                   "on the grown data before pruning (default %(default)s)")
    g.add_argument("--prune_tolerance", type=float, default=0.0, help="dev scores within this of the worst count "
                   "as tied with it and are pruned together (default %(default)s)")
    g.add_argument("--max_rounds", type=int, default=None, help="stop after this many rounds (default: until "
                   "the search space is empty)")
    g.add_argument("--max_points_per_round", type=int, default=None, help="keep at most this many generated "
                   "points per round (a random subset; default: all)")
    g.add_argument("--agora_seed", type=int, default=0, help="seed of the data-generating function "
                   "(default %(default)s)")
    g.add_argument("--train_limit", type=int, default=None, help="use only the first N training examples "
                   "(scarce-data experiments)")
    g.add_argument("--dev_limit", type=int, default=None, help="use only the first N dev examples")
    g.add_argument("--held_out", type=int, default=0, help="with --train_limit: score the selected model (and the "
                   "baseline's) on the N training examples after the first --train_limit, which no candidate "
                   "trains on: the fair score, since dev both selects the model and seeds the generated data "
                   "(default: %(default)s, none)")
    g.add_argument("--regression_threshold", type=float, default=None, help="regression tasks: gold and "
                   "prediction on different sides of it make a mistake (default: median training score)")
    g.add_argument("--compare_baseline", type=str2bool, default=False, help="afterwards, fine-tune every set "
                   "on the original training set with the same total budget and report the best (default "
                   "%(default)s)")
    g = p.add_argument_group("Agora: data generation (f) and labelling (S)")
    g.add_argument("--generator", choices=GENERATORS, default="edits", help="token edits, MLM "
                   "refill (needs --mlm_parameters), or half and half (default %(default)s)")
    g.add_argument("--max_drift", type=float, default=0.2, help="largest fraction of a text's tokens a generated "
                   "point may change (default %(default)s)")
    g.add_argument("--edit_operations", type=comma_list(str), default=list(EDIT_OPERATIONS),
                   help="token edits to use, from delete,swap,substitute (default: all)")
    g.add_argument("--mlm_parameters", help="a Bort with its MLM decoder (e.g. model/bort.params) for --generator "
                   "mlm/mixed; it must use the candidates' vocabulary")
    g.add_argument("--mlm_temperature", type=float, default=1.0, help="sampling temperature (default %(default)s)")
    g.add_argument("--mlm_top_k", type=int, default=50, help="sample among the k likeliest tokens; 0: all "
                   "(default %(default)s)")
    g.add_argument("--labeller_parameters", help="S: a classifier fine-tuned on this task "
                   "(model_bort_<task>.params, any size this package loads, same vocabulary). Without it each "
                   "round's best candidate labels its own generated points (a weaker variant)")
    return p


def _search_space(args):
    from bort.agora.grid import RELEASE_GRID, expand_grid, load_search_space

    if args.grid:
        return load_search_space(args.grid)
    grid = dict(RELEASE_GRID)
    for flag, name, _ in GRID_FLAGS:
        if getattr(args, flag):
            grid[name] = getattr(args, flag)
    return expand_grid(grid, where="grid flags")


def _generator(args, candidates):
    from bort.agora.text_points import build_text_generator

    mlm = None
    if args.mlm_parameters and args.generator != "edits":
        from bort.agora.mlm_perturbation import load_mlm
        mlm = load_mlm(args.mlm_parameters, candidates.tokenizer, candidates.config.model, candidates.config.num_heads,
                       candidates.ctx)
    return build_text_generator(candidates.tokenizer, args.generator, args.max_drift, args.edit_operations, mlm,
                                args.mlm_temperature, args.mlm_top_k, candidates.ctx)


def main(argv=None):
    import dataclasses

    from bort.finetune.config import FinetuneConfig

    args = build_parser().parse_args(argv)
    if not args.task_name:
        raise ConfigError("--task_name is required")
    finetune_fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    config = FinetuneConfig(**{k: v for k, v in vars(args).items() if k in finetune_fields})
    if config.only_inference:
        raise ConfigError("--only_inference does not apply to Agora; use finetune_bort.py to predict")
    if args.held_out and not args.train_limit:
        raise ConfigError("--held_out N takes the N training examples after the first --train_limit; give both")

    from bort.locking import output_lock

    with output_lock(config.output_dir, what="Agora run"):
        summary = _run(args, config)
    print(json.dumps(summary, indent=1))
    return 0


def _run(args, config):
    """Agora (and the optional baseline and held-out scores) under the output directory's lock."""
    from bort.agora.baseline import grid_search
    from bort.agora.casting import TaskCasting
    from bort.agora.finetune_adapter import FinetuneCandidates, load_labeller, read_train_and_dev
    from bort.agora.loop import AgoraSettings, run_agora

    candidates = FinetuneCandidates(config, progress=config.progress)
    task = candidates.task
    # One read of the training file serves both: --held_out (which main() allows only with --train_limit) takes
    # the examples right after the first --train_limit.
    limit = args.train_limit + args.held_out if args.held_out else args.train_limit
    train, dev = read_train_and_dev(task, config.data_dir, limit, args.dev_limit)
    held_out = train[args.train_limit:] if args.held_out else []
    train = train[:args.train_limit]
    casting = TaskCasting(task, args.regression_threshold, train)
    labeller = None
    if args.labeller_parameters:
        labeller = load_labeller(candidates, args.labeller_parameters, casting)
    else:
        print("note: no --labeller_parameters; each round's best candidate labels its own points (weaker)",
              file=sys.stderr)
    space = _search_space(args)
    budget = args.budget if args.budget is not None else 3 * len(train)
    settings = AgoraSettings(budget=budget, points_per_mistake=args.points_per_mistake, replay=args.replay,
                             prune_tolerance=args.prune_tolerance, max_rounds=args.max_rounds,
                             max_points_per_round=args.max_points_per_round, seed=args.agora_seed)
    print(f"[Agora {task.name}] {len(space)} hyperparameter sets, {len(train)} training and {len(dev)} dev "
          f"examples, budget {budget} per candidate; output in {config.output_dir}", file=sys.stderr)
    result = run_agora(candidates, casting, _generator(args, candidates), space, train, dev, config.output_dir,
                       settings, labeller=labeller, resume=True, progress=config.progress)
    summary = dict(task=task.name, best_score=result.best_score, best_hparams=result.best_hparams,
                   best_round=result.best_round, rounds=result.rounds, trainings=result.trainings,
                   budget_spent=result.budget_spent, train_size=result.train_size, model_dir=result.model_dir,
                   log=result.log_path)
    if args.compare_baseline:
        baseline = grid_search(candidates, casting, space, train, dev, result.budget_spent)
        summary["baseline"] = dict(best_score=baseline.best_score, best_hparams=baseline.best_hparams,
                                   budget_per_set=baseline.budget_per_set)
    if held_out:
        summary["held_out"] = dict(size=len(held_out), agora=casting.score(
            held_out, candidates.predict(candidates.load(result.model_dir), held_out)))
        if args.compare_baseline:
            summary["held_out"]["baseline"] = casting.score(held_out, candidates.predict(baseline.model, held_out))
        print(f"[Agora {task.name}] held-out score on {len(held_out)} unused training examples (the fair one): "
              + ", ".join(f"{name} {score:.3f}" for name, score in summary["held_out"].items() if name != "size"),
              file=sys.stderr)
    return summary


def console_main():
    """Entry point of the console command."""
    run_main(main)
