"""Fine-tune Bort on a GLUE, SuperGLUE or RACE task, evaluate on dev after every epoch, keep the best epoch
and write the test-set submission file(s). With --only_inference, predict with a fine-tuned model instead.

Settings not given as flags come from a preset (--preset, default release: the release launcher's settings;
see bort/presets.py); --print_config shows the resolved settings without training.

Examples:
  bort-finetune --task_name RTE --data_dir ~/glue_data --pretrained_parameters model/bort.params
  bort-finetune --preset demo
  finetune_bort.py --task_name AX --data_dir ~/glue_data --only_inference true \\
      --model_parameters output_dir/model_bort_MNLI.params
  horovodrun -np 4 -H localhost:4 python finetune_bort.py --task_name MNLI ... --distributed true
"""
import argparse
import json

from bort.cli.common import positive_float, run_main, str2bool
from bort.cli.flags import (
    ArgumentParser,
    add_architecture_overrides,
    add_output_dir,
    add_vocabulary_flags,
    chosen_preset,
)
from bort.errors import ConfigError

#: --gpu values that mean the CPU (999: the release's spelling); the launchers' GPU check reads them too.
CPU_SPELLINGS = ("cpu", "none", "", "999", "-1")


def gpu_choice(value):
    """--gpu N, or cpu / none / 999 (the release's spelling of CPU), or auto (GPU 0 when MXNet sees one)."""
    lowered = str(value).strip().lower()
    if lowered in CPU_SPELLINGS:
        return None
    if lowered == "auto":
        import mxnet as mx
        return 0 if mx.context.num_gpus() > 0 else None
    try:
        index = int(lowered)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a GPU index, 'cpu' or 'auto', got {value!r}") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"GPU index must be >= 0, got {index}")
    return index


def build_parser(preset=None, preset_flags=True, run_flags=True):
    """The fine-tuning flags, with the defaults of `preset` (default: the release preset). Commands that reuse
    them to describe candidates (Agora) leave out --preset/--print_config (`preset_flags=False`) and the flags of
    one training run: schedule length, early stop, checkpoints, resume, Horovod, prediction (`run_flags=False`)."""
    from bort.finetune.config import DTYPES, HEAD_INITS, FinetuneConfig
    from bort.tasks import TASKS
    from bort.tokenizer.layout import PAIR_LAYOUTS
    from bort.training.optim import OPTIMIZERS

    d = FinetuneConfig()
    from bort.presets import DEFAULT_PRESET, PRESETS, finetune_preset

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    unused = argparse.ArgumentParser(add_help=False)  # takes the flags a reusing command leaves out
    g = p.add_argument_group("preset") if preset_flags else unused
    g.add_argument("--preset", choices=PRESETS, default=preset or DEFAULT_PRESET, help="the settings used for "
                   "flags not given: release (the release's run_finetune.sh), demo (the bundled sentiment task on "
                   "a CPU) or smoke (the release's smoke tests) (default %(default)s)")
    g.add_argument("--print_config", action="store_true", help="print the resolved settings as JSON and exit "
                   "without training")
    g = p.add_argument_group("task and data")
    g.add_argument("--task_name", help=f"task to fine-tune or predict; one of {', '.join(TASKS)} "
                   "(leaderboard names such as SST-2, MNLI-m, AX-b are accepted too)")
    g.add_argument("--data_dir", default=d.data_dir, help="directory holding the official task files (GLUE TSVs, "
                   "SuperGLUE JSONL, RACE/); default $BORT_DATA, else $MXNET_HOME/datasets")
    add_output_dir(g, d.output_dir, "where the best model (model_bort_<task>.params), checkpoints/, "
                   "metrics.jsonl and the submission files go; {task_name} and {time} are filled in")
    g = p.add_argument_group("schedule")
    run = g if run_flags else unused
    run.add_argument("--epochs", type=int, default=d.epochs, help="epochs to train (default %(default)s)")
    run.add_argument("--ramp_up_epochs", type=int, default=d.ramp_up_epochs, help="length of the learning-rate "
                   "schedule in epochs; later epochs run at the 1e-7 floor, as in the release (default %(default)s)")
    run.add_argument("--training_steps", type=int, default=d.training_steps, help="length of the schedule in "
                   "updates, overriding --ramp_up_epochs")
    g.add_argument("--use_scheduler", type=str2bool, default=d.use_scheduler, help="linear warm-up then linear "
                   "decay; false keeps --lr constant (default %(default)s)")
    g.add_argument("--warmup_ratio", type=float, default=d.warmup_ratio, help="fraction of the schedule spent "
                   "warming up (default %(default)s)")
    run.add_argument("--early_stop", type=int, default=d.early_stop, help="stop after this many epochs without a "
                   "better dev score (default: never)")
    g = p.add_argument_group("batches")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="units per worker per micro-batch: "
                   "examples; for COPA/RACE questions (with all options); for MultiRC/ReCoRD answer/candidate "
                   "sequences (default %(default)s)")
    g.add_argument("--dev_batch_size", type=int, default=d.dev_batch_size, help="sequences per evaluation batch "
                   "(default %(default)s)")
    g.add_argument("--accumulate", type=int, default=d.accumulate, help="micro-batches per update (gradient "
                   "accumulation; default %(default)s)")
    g.add_argument("--max_len", type=int, default=d.max_len, help="tokens per sequence including special tokens; "
                   "pairs are cut longest-first (default %(default)s)")
    g.add_argument("--pair_layout", choices=PAIR_LAYOUTS, default=d.pair_layout, help="special tokens of a pair: "
                   "bort_release '<s> A </s> B </s>' (what the released fine-tuning used) or roberta "
                   "'<s> A </s></s> B </s>' (default %(default)s)")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="default %(default)s "
                   "(decoupled weight decay, no bias correction, as the release)")
    g.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate (default %(default)s)")
    g.add_argument("--epsilon", type=float, default=d.epsilon, help="Adam epsilon (default %(default)s)")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay, help="weight decay, not applied to "
                   "LayerNorm and biases; BERTAdam multiplies it by the learning rate (default %(default)s)")
    g.add_argument("--max_grad_norm", type=float, default=d.max_grad_norm, help="clip the global gradient norm "
                   "to this; 0 disables (default %(default)s)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=d.model, help="architecture: bort_4_8_768_1024 (the released model) or "
                   "bort_2_16_512_1024, changed by the flags below (default %(default)s)")
    add_architecture_overrides(g)
    g.add_argument("--dropout", type=float, default=d.dropout, help="dropout of the encoder and the classifier "
                   "head (default %(default)s)")
    g.add_argument("--init", choices=HEAD_INITS, default=d.init, help="classifier-head initializer "
                   "(default %(default)s, the release's)")
    g.add_argument("--prob", type=float, default=d.prob, help="its scale: Uniform(-prob, prob), Normal(0, prob), "
                   "Orthogonal(scale=prob); ignored by xavier (default %(default)s)")
    g.add_argument("--pretrained_parameters", default=d.pretrained_parameters, help="pretrained Bort weights, e.g. "
                   "model/bort.params; without them (and without --model_parameters) the encoder is random")
    g.add_argument("--model_parameters", default=d.model_parameters, help="a fine-tuned classifier "
                   "(model_bort_<task>.params) to continue from or, with --only_inference, to predict with")
    g = p.add_argument_group("vocabulary (default: model/vocab.json + model/merges.txt, else GluonNLP's cache)")
    add_vocabulary_flags(g)
    g.add_argument("--spm_model", help="SentencePiece model file")
    g = p.add_argument_group("run")
    run = g if run_flags else unused
    g.add_argument("--seed", type=int, default=d.seed, help="random seed; CPU runs with the same seed are "
                   "identical (default %(default)s)")
    g.add_argument("--gpu", type=gpu_choice, default=d.gpu, help="GPU index, 'auto' (GPU 0 if any) or 'cpu'; "
                   "999 also means CPU, as in the release (default: CPU). Under Horovod each rank uses its "
                   "local rank's GPU")
    g.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="float16 trains with MXNet AMP "
                   "(GPU only; default %(default)s)")
    run.add_argument("--distributed", type=str2bool, default=d.distributed, help="data-parallel training with "
                   "Horovod; launch with horovodrun (default %(default)s)")
    run.add_argument("--resume", type=str2bool, default=d.resume, help="continue from the newest checkpoint in "
                   "<output_dir>/checkpoints (default %(default)s)")
    run.add_argument("--only_inference", type=str2bool, default=d.only_inference, help="no training: dev metrics "
                   "and test predictions with --model_parameters (default %(default)s)")
    run.add_argument("--predict", type=str2bool, default=d.predict, help="write test predictions after training "
                   "(default %(default)s)")
    g.add_argument("--log_interval", type=int, default=d.log_interval, help="updates between lines of "
                   "metrics.jsonl (default %(default)s)")
    run.add_argument("--checkpoint_steps", type=int, default=d.checkpoint_steps, help="also checkpoint every N "
                   "updates inside an epoch; 0: at epoch ends only (default %(default)s)")
    run.add_argument("--keep_checkpoints", type=int, default=d.keep_checkpoints, help="checkpoints kept for "
                   "--resume; 0 keeps all (default %(default)s)")
    g.add_argument("--hybridize", type=str2bool, default=d.hybridize, help="run the model as a cached MXNet "
                   "graph: faster, same results (default %(default)s)")
    g.add_argument("--progress", type=str2bool, default=d.progress, help="show a progress bar (default %(default)s)")
    p.set_defaults(**finetune_preset(preset or DEFAULT_PRESET)[0])
    return p


def resolve_config(argv=None, parser_factory=build_parser, log=None):
    """(FinetuneConfig, print_config) from the command line: preset, then flags, then what depends on both."""
    import sys

    from bort.finetune.config import FinetuneConfig
    from bort.presets import PRESETS, finetune_preset, resolve_finetune_settings

    preset = chosen_preset(argv, PRESETS)
    parser = parser_factory(preset)
    args = parser.parse_args(argv)
    values = vars(args)
    preset, print_config = values.pop("preset"), values.pop("print_config")
    if not values.get("task_name"):
        parser.error("--task_name is required (or --preset demo)")
    notes = finetune_preset(preset)[1] + resolve_finetune_settings(values, preset)
    for note in notes:
        print(f"[{parser.prog}] {note}", file=log or sys.stderr)
    try:
        return FinetuneConfig(**values), print_config
    except TypeError as err:
        raise ConfigError(str(err)) from None


def main(argv=None):
    config, print_config = resolve_config(argv)
    if print_config:
        print(json.dumps(config.to_dict(), indent=1, sort_keys=True))
        return 0

    from bort.finetune.trainer import finetune

    result = finetune(config)
    if result.get("history") is not None or result.get("dev") is not None:
        summary = {k: v for k, v in result.items() if k not in ("history", "model")}
        print(json.dumps(summary, indent=1, default=str))
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
