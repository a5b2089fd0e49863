"""Every setting of a pretraining run, in a module that loads no MXNet (the extraction's settings and the
command-line defaults read their defaults from here)."""
import dataclasses
from typing import Optional

import numpy as np

from ..errors import ConfigError


@dataclasses.dataclass
class PretrainConfig:
    """Every setting of a pretraining run; `scripts/run_pretraining_distillation.py --help` explains each."""
    train_files: list
    eval_files: list = dataclasses.field(default_factory=list)
    ckpt_dir: str = "pretraining_output"
    vocab: Optional[str] = None
    vocab_size: Optional[int] = None
    model: str = "bort_4_8_768_1024"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    student_params: Optional[str] = None
    teacher_model: Optional[str] = "roberta_24_1024_16"
    teacher_params: Optional[str] = None
    teacher_num_heads: Optional[int] = None
    teacher_overrides: dict = dataclasses.field(default_factory=dict)
    mlm_weight: float = 0.1
    teacher_ce_weight: float = 0.5
    temperature: float = 2.0
    release_kd_loss: bool = False
    optimizer: str = "bertadam"
    lr: float = 1e-4
    epsilon: float = 1e-6
    weight_decay: float = 0.01
    warmup_ratio: float = 0.01
    num_steps: int = 20
    accumulate: int = 1
    max_grad_norm: float = 1.0
    batch_size: int = 8
    batch_size_eval: int = 8
    use_avg_len: bool = False
    num_buckets: int = 10
    dynamic_masking: bool = False
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 80
    dtype: str = "float32"
    device: str = "cpu"
    horovod: bool = False
    seed: int = 0
    log_interval: int = 10
    eval_interval: int = 0
    max_eval_batches: Optional[int] = None
    ckpt_interval: int = 1000
    keep_checkpoints: int = 3
    resume: bool = False
    dynamic_loss_scale: Optional[bool] = None  # None: on for float16 only
    init_loss_scale: float = 2.0 ** 15
    loss_scale_window: int = 2000
    progress: bool = True
    rank_digests: bool = False

    def validate(self):
        if self.num_steps < 1 or self.accumulate < 1:
            raise ConfigError("num_steps and accumulate must be >= 1")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a finite number > 0, got {self.lr}")
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"dtype must be float32 or float16, got {self.dtype!r}")
        if self.device not in ("cpu", "gpu"):
            raise ConfigError(f"device must be cpu or gpu, got {self.device!r}")
        if self.dtype == "float16" and self.device == "cpu":
            raise ConfigError("float16 training needs --device gpu (MXNet's CPU float16 kernels are slow and partial)")
        if self.temperature <= 0:
            raise ConfigError(f"the distillation temperature must be positive, got {self.temperature}")
        if self.teacher_ce_weight and not self.teacher_model:
            raise ConfigError("teacher_ce_weight > 0 needs a teacher (--teacher_model)")


# ------------------------------------------------------------------------------------------------- set-up
