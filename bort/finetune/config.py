"""Every fine-tuning setting in one dataclass; `bort-finetune` exposes each field as a flag of the same name.

The field defaults are the release's `finetune_bort.py` argparse defaults, for library callers that set what
they need. The command line starts from a preset instead (`bort/presets.py`; `release` by default: the
release launcher's epochs 1, batch 8, lr 5e-5, weight decay 110, warm-up 0.45, early stop 200), so
`bort-finetune` and `run_finetune.sh` train the same way.
"""
import dataclasses
import json
import math
from typing import Optional

from ..errors import ConfigError

HEAD_INITS = ("gaussian", "uniform", "orthogonal", "xavier")
DTYPES = ("float32", "float16")


@dataclasses.dataclass
class FinetuneConfig:
    # ---- task and data
    task_name: str = "RTE"
    data_dir: Optional[str] = None  # None: $BORT_DATA, else $MXNET_HOME/datasets (see bort.tasks)
    output_dir: str = "./output_dir"
    # ---- schedule
    epochs: int = 3
    ramp_up_epochs: int = 3  # length of the LR schedule in epochs (the release's meaning)
    training_steps: Optional[int] = None  # overrides the schedule length in updates
    use_scheduler: bool = True
    warmup_ratio: float = 0.1
    early_stop: Optional[int] = None  # patience in epochs without a better dev score; None: never stop
    # ---- batches
    batch_size: int = 32  # examples per rank per micro-batch (multiple choice: questions, all options)
    dev_batch_size: int = 8  # sequences per evaluation batch
    accumulate: int = 1  # micro-batches per update
    max_len: int = 512
    pair_layout: str = "bort_release"  # '<s> A </s> B </s>' as the release fed the model; or 'roberta'
    # ---- optimiser
    optimizer: str = "bertadam"
    lr: float = 3e-5
    epsilon: float = 1e-6
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    # ---- model
    model: str = "bort_4_8_768_1024"
    num_layers: Optional[int] = None  # architecture overrides (tiny models for tests and the demo)
    num_heads: Optional[int] = None
    units: Optional[int] = None
    hidden_size: Optional[int] = None
    model_max_length: Optional[int] = None
    dropout: float = 0.1  # head and encoder dropout
    init: str = "uniform"  # classifier-head initialiser, the release's (docs/release_bugs.md)
    prob: float = 0.5  # its scale: Uniform(-prob, prob), Normal(0, prob), Orthogonal(scale=prob)
    pretrained_parameters: Optional[str] = None  # a pretrained Bort (e.g. model/bort.params)
    model_parameters: Optional[str] = None  # a fine-tuned classifier (model_bort_<task>.params)
    # ---- tokenizer (None everywhere: model/vocab.json+merges.txt, else GluonNLP's cache)
    vocab: Optional[str] = None
    merges: Optional[str] = None
    gluonnlp_vocab: Optional[str] = None
    bpe_ranks: Optional[str] = None
    spm_model: Optional[str] = None
    # ---- run
    seed: int = 2
    gpu: Optional[int] = None  # None: CPU
    dtype: str = "float32"
    distributed: bool = False
    resume: bool = False
    only_inference: bool = False
    predict: bool = True  # write test-set predictions after training
    log_interval: int = 10
    checkpoint_steps: int = 0  # also checkpoint every N updates within an epoch (0: per epoch only)
    keep_checkpoints: int = 2
    progress: bool = True
    hybridize: bool = True  # run the model as a cached MXNet graph (faster; same results)

    def __post_init__(self):
        self.validate()

    def validate(self):
        positive = ("epochs", "ramp_up_epochs", "batch_size", "dev_batch_size", "accumulate", "max_len",
                    "log_interval")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        for name in ("training_steps", "early_stop"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        for name in ("checkpoint_steps", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ConfigError(f"--warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight_decay must be >= 0, got {self.weight_decay}")
        if self.init not in HEAD_INITS:
            raise ConfigError(f"--init must be one of {', '.join(HEAD_INITS)}, got {self.init!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.dtype == "float16" and self.gpu is None:
            raise ConfigError("--dtype float16 needs a GPU (--gpu N): MXNet AMP runs float16 on GPUs only")
        if self.only_inference and not self.model_parameters:
            raise ConfigError("--only_inference needs --model_parameters (a fine-tuned model_bort_<task>.params)")
        if (self.vocab is None) != (self.merges is None):
            raise ConfigError("--vocab and --merges go together (Hugging Face vocab.json + merges.txt)")
        if (self.gluonnlp_vocab is None) != (self.bpe_ranks is None):
            raise ConfigError("--gluonnlp_vocab and --bpe_ranks go together (GluonNLP vocabulary + BPE ranks)")
        sources = [self.vocab is not None, self.gluonnlp_vocab is not None, self.spm_model is not None]
        if sum(sources) > 1:
            raise ConfigError("give one vocabulary: --vocab/--merges, --gluonnlp_vocab/--bpe_ranks or --spm_model")
        from ..tokenizer.layout import check_pair_layout
        check_pair_layout(self.pair_layout)

    def model_overrides(self):
        """BortConfig fields set by flags (dropout included)."""
        overrides = dict(num_layers=self.num_layers, num_heads=self.num_heads, units=self.units,
                         hidden_size=self.hidden_size, max_length=self.model_max_length,
                         dropout=self.dropout, embed_dropout=self.dropout)
        return {k: v for k, v in overrides.items() if v is not None}

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)
