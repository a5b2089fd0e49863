"""Named sets of fine-tuning settings: the one place that says what `bort-finetune` and `run_finetune.sh` do when
a flag is not given. A flag given on the command line always wins over the preset.

- `release`: the settings of the original release's launcher (`run_finetune.sh`), the ones its published
  fine-tuning used: 1 epoch, batch 8, lr 5e-5, weight decay 110, warm-up 0.45, early stop 200, seed 2, 512
  tokens, the first GPU if MXNet sees one. Bort's weight decay is large because BERTAdam multiplies it by the
  learning rate (110 x 5e-5 = 0.0055 per update); the release's recommended search space has weight decays
  of 0 to 350 and warm-ups of 0.35 to 0.5. The fine-tuning script's own argparse defaults in the release
  (3 epochs, weight decay 0.01, warm-up 0.1) are GluonNLP's BERT defaults, which the release never ran.
- `demo`: a small bundled sentiment task (data/demo/glue, SST) that trains on a CPU in minutes: 3 epochs, 64
  tokens, weight decay 0.01, warm-up 0.1.
- `smoke`: the release's smoke tests (its TEST1/TEST2): the release settings on a CPU, one process.

`demo` and `smoke` use the released model when model/bort.params and RoBERTa's vocabulary are there, and
otherwise a small randomly initialised model with the bundled vocabulary (data/demo/vocab), saying so.

Pretraining (`bort-pretrain --preset`, `run_pretrain.sh`) has its own two:
- `release`: the release's distillation run: Bort from RoBERTa-large, 2M steps of 1024-token batches (by average
  length, 20 buckets), BERTAdam lr 1e-4, loss weights 0.1 MLM / 0.5 distillation at temperature 2, a checkpoint
  and an evaluation every 1000 steps. The device and dtype are not part of it: the launcher follows the machine.
- `test`: the release's smoke test on a CPU: 4 steps of 2 sequences, the bundled vocabulary, a small Bort-shaped
  teacher, a checkpoint and an evaluation every 2 steps, and a digest of every worker's final weights.
Without `--preset`, `bort-pretrain` takes the library's defaults (`PretrainConfig`: a short run).
"""
import glob
import os
import time

from .errors import ConfigError

PRESETS = ("release", "demo", "smoke")
DEFAULT_PRESET = "release"
MODEL_DIR = "model"  # where bort-download puts bort.params, vocab.json and merges.txt

RELEASE = dict(epochs=1, ramp_up_epochs=1, batch_size=8, seed=2, lr=5e-5, max_len=512, weight_decay=110.0,
               warmup_ratio=0.45, early_stop=200, gpu="auto", dtype="float32",
               output_dir=os.path.join("runs", "finetune", "{task_name}-{time}"))
DEMO = dict(RELEASE, task_name="SST", epochs=3, ramp_up_epochs=3, max_len=64, weight_decay=0.01, warmup_ratio=0.1,
            dev_batch_size=64, output_dir=os.path.join("runs", "finetune", "DEMO-{time}"))
SMOKE = dict(RELEASE, gpu="cpu", distributed=False)
# A small architecture the bundled vocabulary fits, for runs without the released weights.
SMALL_MODEL = dict(num_layers=2, units=64, hidden_size=128, num_heads=4, model_max_length=128, init="gaussian",
                   prob=0.02)
ARCHITECTURE_OVERRIDES = ("num_layers", "num_heads", "units", "hidden_size", "model_max_length")


def bundled_data_dir():
    """data/demo of a clone (the demo task, its vocabulary and the smoke tests' files)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "demo")


def _have_roberta_vocab(model_dir):
    if os.path.isfile(os.path.join(model_dir, "vocab.json")) and os.path.isfile(os.path.join(model_dir,
                                                                                               "merges.txt")):
        return True
    cache = os.path.join(os.environ.get("MXNET_HOME", os.path.expanduser("~/.mxnet")), "models")
    return bool(glob.glob(os.path.join(cache, "openwebtext_ccnews_stories_books_cased-*.vocab")))


def _bundled_model(model_dir, notes):
    """The released model when it and its vocabulary are there, else the small random one (and why)."""
    params = os.path.join(model_dir, "bort.params")
    if os.path.isfile(params) and _have_roberta_vocab(model_dir):
        return dict(pretrained_parameters=params), True
    if not os.path.isfile(params):
        notes.append(f"{params} not found: download the released weights and RoBERTa's vocabulary with "
                     f"`bort-download --output_dir {model_dir}`")
    else:
        notes.append(f"{params} found but no RoBERTa vocabulary: get vocab.json and merges.txt with "
                     f"`bort-download --output_dir {model_dir} --what vocab`")
    notes.append("continuing with a small randomly initialised model and the bundled vocabulary")
    vocab_dir = os.path.join(bundled_data_dir(), "vocab")
    return dict(SMALL_MODEL, vocab=os.path.join(vocab_dir, "vocab.json"),
                merges=os.path.join(vocab_dir, "merges.txt")), False


def finetune_preset(name, model_dir=MODEL_DIR):
    """(settings, notes): the preset's flag values and the lines to tell the user about how it was resolved."""
    if name not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}")
    notes = []
    if name == "release":
        return dict(RELEASE), notes
    demo_dir = bundled_data_dir()
    if not os.path.isdir(demo_dir):
        raise ConfigError(f"--preset {name} needs the bundled demo files ({demo_dir}), which come with a clone of "
                          "the repository")
    model, pretrained = _bundled_model(model_dir, notes)
    if name == "demo":
        # A small model from scratch needs a larger learning rate than fine-tuning the released one.
        return dict(DEMO, data_dir=os.path.join(demo_dir, "glue"), lr=5e-5 if pretrained else 5e-4, **model), notes
    settings = dict(SMOKE, **model)
    if not pretrained:
        settings["max_len"] = 128
    return settings, notes


def resolve_finetune_settings(values, preset, model_dir=MODEL_DIR):
    """Fill in what depends on other flags: the released weights when present (the release preset, no
    architecture override, nothing else to start from) and the output directory's name. Returns notes."""
    notes = []
    starts_elsewhere = values.get("pretrained_parameters") or values.get("model_parameters")
    overridden = any(values.get(name) is not None for name in ARCHITECTURE_OVERRIDES)
    params = os.path.join(model_dir, "bort.params")
    if preset == "release" and not starts_elsewhere and not overridden:
        if os.path.isfile(params):
            values["pretrained_parameters"] = params
        else:
            notes.append(f"{params} not found: fine-tuning from random weights (get the released weights with "
                         f"`bort-download --output_dir {model_dir}`)")
    if "{" in values.get("output_dir", ""):
        values["output_dir"] = values["output_dir"].format(task_name=values.get("task_name"),
                                                           time=time.strftime("%Y%m%d-%H%M%S"))
    return notes


PRETRAIN_PRESETS = ("release", "test")
PRETRAIN_RELEASE = dict(model="bort_4_8_768_1024", teacher_model="roberta_24_1024_16", mlm_weight=0.1,
                        teacher_ce_weight=0.5, distillation_temperature=2.0, num_steps=2_000_000, lr=1e-4,
                        batch_size=1024, use_avg_len=True, num_buckets=20, batch_size_eval=16, accumulate=1,
                        log_interval=10, ckpt_interval=1000, eval_interval=1000,
                        ckpt_dir=os.path.join("runs", "pretraining", "bort_4_8_768_1024"))
PRETRAIN_TEST = dict(PRETRAIN_RELEASE, teacher_model="bort", teacher_num_heads=4, num_steps=4, batch_size=2,
                     use_avg_len=False, num_buckets=10, batch_size_eval=2, log_interval=2, ckpt_interval=2,
                     eval_interval=2, dtype="float32", device="cpu", progress=False, rank_digests=True,
                     ckpt_dir=os.path.join("runs", "pretraining_test", "bort_4_8_768_1024_model"))
# The small teacher `test` distils from (random weights of the bundled vocabulary's size; no download).
PRETRAIN_TEST_TEACHER = dict(num_layers=2, num_heads=4, units=128, hidden_size=256)


def pretrain_preset(name):
    """The flag values of a pretraining preset."""
    if name not in PRETRAIN_PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRETRAIN_PRESETS)}, got {name!r}")
    if name == "release":
        return dict(PRETRAIN_RELEASE)
    return dict(PRETRAIN_TEST, vocab=os.path.join(bundled_data_dir(), "vocab"))
