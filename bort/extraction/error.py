"""e*: the error surrogate. A candidate is distilled from the teacher T for at most n steps with this package's
pretraining loop (`bort.pretraining.trainer.pretrain`: same loss, optimizer and data pipeline as Bort's own
pretraining), then scored on a held-out slice: the cross-entropy of its MLM distribution against T's,

    e*(ξ) = Σ_i w_i H(p_T,i, p_ξ,i) / Σ_i w_i,   H(p, q) = -Σ_v p_v log q_v   (temperature 1, masked positions i)

and e*(T) = the same with ξ = T, i.e. T's own entropy; since H(p, q) >= H(p, p), every e*(ξ) >= e*(T).

Each candidate trains in its own directory with resumable checkpoints; its score is written there as
`result.json` (with the distillation's `train_log.jsonl`), so a rerun (or another rank) never trains it twice.
"""
import dataclasses
import json
import os
import shutil
import time
from typing import Optional

from ..errors import ConfigError
from ..io_utils import atomic_open
from ..pretraining.config import PretrainConfig

RESULT_FILE = "result.json"
MODEL_FILE = "model.params"


@dataclasses.dataclass(frozen=True)
class ErrorSettings:
    """How e* is measured. steps: the budget n of distillation steps per candidate."""
    train_files: tuple
    eval_files: tuple
    steps: int = 100
    # The distillation of each candidate is a pretraining run: its defaults are pretraining's.
    batch_size: int = PretrainConfig.batch_size
    batch_size_eval: int = PretrainConfig.batch_size_eval
    max_eval_batches: Optional[int] = None
    lr: float = PretrainConfig.lr
    warmup_ratio: float = PretrainConfig.warmup_ratio
    mlm_weight: float = PretrainConfig.mlm_weight
    teacher_ce_weight: float = PretrainConfig.teacher_ce_weight
    temperature: float = PretrainConfig.temperature
    seed: int = PretrainConfig.seed
    device: str = PretrainConfig.device
    keep_models: bool = False

    def validate(self):
        if self.steps < 1:
            raise ConfigError(f"the step budget n must be at least 1, got {self.steps}")
        if not self.train_files:
            raise ConfigError("e* needs training shards (--train_files)")
        if not self.eval_files:
            raise ConfigError("e* is measured on a held-out slice: pass --eval_files (shards not used for training)")
        shared = sorted(set(map(os.path.abspath, self.train_files)) & set(map(os.path.abspath, self.eval_files)))
        if shared:
            raise ConfigError(f"the held-out slice must not be trained on: {shared[0]} is in both --train_files and "
                              "--eval_files")
        for path in tuple(self.train_files) + tuple(self.eval_files):
            if not os.path.isfile(path):
                raise ConfigError(f"shard file {path} does not exist")


def _teacher_overrides(config):
    return dict(layer_norm_eps=config.layer_norm_eps, mlm_layer_norm_eps=config.mlm_layer_norm_eps,
                activation=config.activation)


def _eval_data(settings, vocab_size, max_length):
    from ..pretraining.dataset import PretrainingData
    from ..pretraining.shards import read_metadata

    metadata = read_metadata(list(settings.eval_files)) or {}
    pad_id = int((metadata.get("special_ids") or {}).get("pad", min(1, vocab_size - 1)))
    return PretrainingData(list(settings.eval_files), settings.batch_size_eval, False, shuffle=False, seed=0,
                           vocab_size=vocab_size, max_length=max_length, pad_id=pad_id)


def held_out_cross_entropy(model, teacher, settings, ctx):
    """e* of `model` (a BortModel with decoder) against `teacher` (bort.pretraining.teacher.Teacher)."""
    import mxnet as mx
    import numpy as np

    from ..pretraining.trainer import batch_to_device

    max_length = min(model.config.max_length, teacher.block.config.max_length)
    total, weight_sum = 0.0, 0.0
    for count, (batch, _) in enumerate(_eval_data(settings, teacher.vocab_size, max_length).batches(epochs=1)):
        if settings.max_eval_batches is not None and count >= settings.max_eval_batches:
            break
        inputs, valid_length, positions, _, _ = batch_to_device(batch, ctx, "float32")
        with mx.autograd.predict_mode():
            _, student_logits = model(inputs, valid_length, positions)
        teacher_logits = teacher(inputs, valid_length, positions)
        teacher_probs = mx.nd.softmax(teacher_logits.astype("float32"), axis=-1)
        cross_entropy = -mx.nd.sum(teacher_probs * mx.nd.log_softmax(student_logits.astype("float32"), axis=-1),
                                   axis=-1).asnumpy().astype(np.float64)
        weights = np.asarray(batch.masked_weights, dtype=np.float64)
        total += float((cross_entropy * weights).sum())
        weight_sum += float(weights.sum())
    if weight_sum == 0:
        raise ConfigError("the held-out slice has no masked positions; check --eval_files")
    return total / weight_sum, int(weight_sum)


class ErrorSurrogate:
    """e* for candidates and for T itself, with the teacher loaded once per process."""

    def __init__(self, teacher_spec, settings, work_root):
        settings.validate()
        if teacher_spec.params_path is None:
            raise ConfigError("e* needs the teacher's weights: pass --teacher_params")
        self.teacher_spec = teacher_spec
        self.settings = settings
        self.work_root = work_root
        self._teacher = None

    def _ctx(self):
        import mxnet as mx

        from ..distributed import launcher_local_rank

        # Under horovodrun each rank distils its own candidates (single-process pretraining): on its own GPU.
        return mx.gpu(launcher_local_rank()) if self.settings.device == "gpu" else mx.cpu()

    def teacher(self):
        if self._teacher is None:
            from ..pretraining.teacher import load_teacher

            config = self.teacher_spec.config
            self._teacher = load_teacher("bort", self.teacher_spec.params_path, config.vocab_size, self._ctx(),
                                         config.num_heads, _teacher_overrides(config))
        return self._teacher

    def reference(self):
        """e*(T): the teacher's cross-entropy against itself (its entropy) on the held-out slice."""
        value, masks = held_out_cross_entropy(self.teacher().block, self.teacher(), self.settings, self._ctx())
        return dict(e_star=value, eval_masks=masks)

    def candidate_dir(self, key):
        return os.path.join(self.work_root, key)

    def cached(self, key):
        path = os.path.join(self.candidate_dir(key), RESULT_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        return None

    def evaluate(self, candidate):
        """Distil `candidate` for n steps (resuming its own checkpoints), score it, record the result."""
        found = self.cached(candidate.key)
        if found is not None:
            return found
        from ..checkpoint import get_bort_model
        from ..pretraining.trainer import LOG_FILE, pretrain
        from ..training.checkpoint import latest_checkpoint, load_checkpoint

        s, teacher = self.settings, self.teacher_spec.config
        work_dir = self.candidate_dir(candidate.key)
        fields = {k: v for k, v in candidate.config.to_dict().items() if k != "vocab_size"}
        start = time.time()
        pretrain(PretrainConfig(
            train_files=list(s.train_files), ckpt_dir=os.path.join(work_dir, "training"), vocab_size=teacher.vocab_size,
            model=None, model_overrides=fields, teacher_model="bort", teacher_params=self.teacher_spec.params_path,
            teacher_num_heads=teacher.num_heads, teacher_overrides=_teacher_overrides(teacher),
            mlm_weight=s.mlm_weight, teacher_ce_weight=s.teacher_ce_weight, temperature=s.temperature, lr=s.lr,
            warmup_ratio=s.warmup_ratio, num_steps=s.steps, batch_size=s.batch_size, device=s.device, seed=s.seed,
            log_interval=s.steps, ckpt_interval=max(1, s.steps // 4), keep_checkpoints=1, resume=True,
            progress=False))
        trained_seconds = time.time() - start
        checkpoint = latest_checkpoint(os.path.join(work_dir, "training"))
        model, _ = get_bort_model(None, vocab_size=teacher.vocab_size, ctx=self._ctx(),
                                  **dict(fields, dropout=0.0, embed_dropout=0.0))
        from ..params import save_parameters

        load_checkpoint(checkpoint, model, ctx=self._ctx())
        value, masks = held_out_cross_entropy(model, self.teacher(), s, self._ctx())
        if s.keep_models:
            from ..checkpoint import make_record, read_record, write_record

            kept = save_parameters(model, os.path.join(work_dir, MODEL_FILE))
            # Its record (heads included) so every command rebuilds it; the vocabulary is the teacher's.
            vocabulary = (read_record(self.teacher_spec.params_path) or {}).get("vocabulary")
            write_record(kept, make_record(model, vocabulary=vocabulary))
        # The distillation log stays beside the score; checkpoints and optimizer state go.
        log = os.path.join(work_dir, "training", LOG_FILE)
        if os.path.exists(log):
            os.replace(log, os.path.join(work_dir, LOG_FILE))
        shutil.rmtree(os.path.join(work_dir, "training"), ignore_errors=True)
        result = dict(key=candidate.key, e_star=value, eval_masks=masks, steps=s.steps,
                      train_seconds=round(trained_seconds, 3), seconds=round(time.time() - start, 3))
        with atomic_open(os.path.join(work_dir, RESULT_FILE), "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1, sort_keys=True)
        return result
