"""The distillation pretraining loop.

One step: for each of `accumulate` micro-batches, forward the student (recorded) and the frozen teacher,
build the loss and backprop it (times the loss scale); then average gradients across workers, unscale, clip
to `max_grad_norm`, and apply BERTAdam/LAMB with the warm-up/linear-decay learning rate. A step whose
gradient is not finite is skipped (with fp16 the loss scale also halves).

Resuming is exact: a checkpoint holds the weights, the optimizer state, the loss scaler, and every worker's
data position; MXNet's random state (dropout) cannot be saved, so it is reseeded from (seed, step, rank) at
every step instead. Killing the run loses at most the steps since the last checkpoint.
"""
import hashlib
import os
import time

import mxnet as mx
import numpy as np

from .. import distributed
from ..errors import CheckpointError, ConfigError, TrainingError
from ..gpu.preflight import require_usable_gpu
from ..kernels import use_kernels
from ..locking import output_lock
from ..training.checkpoint import latest_checkpoint, load_checkpoint, remove_stale_temporaries, save_checkpoint
from ..training.logs import JsonlLogger
from ..training.optim import (
    clipping_factor,
    global_grad_norm,
    make_trainer,
    scale_gradients,
    set_gradient_mode,
    trainable_parameters,
    zero_gradients,
)
from ..training.schedule import WarmupLinearSchedule
from .config import PretrainConfig  # noqa: F401  (bort.pretraining.trainer.PretrainConfig, as before)
from .dataset import DataPosition, PretrainingData
from .loss import distillation_loss
from .loss_scaler import DynamicLossScaler, NoLossScaler
from .shards import read_metadata

LOG_FILE = "train_log.jsonl"
METRICS = ("loss", "mlm", "teacher_ce", "teacher_mse", "correct", "num_masks")


def resolve_vocabulary(cfg):
    """(vocab_size, special ids or None) from the flags, the tokenizer, the shards' metadata or the parameter
    files. The model's size comes from --vocab_size or the parameter files, which must agree; the tokenizer and
    the shards' metadata must agree with each other and fit in it (a model may have spare rows)."""
    from ..checkpoint import inspect_params
    from ..params import read_params_shapes

    model_sources, text_sources, specials = [], [], None
    if cfg.vocab_size:
        model_sources.append(("--vocab_size", cfg.vocab_size))
    if cfg.student_params:
        size = inspect_params(cfg.student_params).vocab_size
        if size:
            model_sources.append((cfg.student_params, size))
    if cfg.teacher_params and cfg.teacher_ce_weight:
        embedding = read_params_shapes(cfg.teacher_params).get("word_embed.0.weight")  # headers only
        if embedding is not None:
            model_sources.append((f"the teacher {cfg.teacher_params}", int(embedding.shape[0])))
    if cfg.vocab:
        from ..tokenizer import BortTokenizer

        tokenizer = BortTokenizer.from_directory(cfg.vocab)
        text_sources.append((f"the tokenizer in {cfg.vocab}", tokenizer.vocab_size))
        specials = tokenizer.special_ids
    metadata = read_metadata(cfg.train_files)
    if metadata:
        text_sources.append(("the training shards' metadata.json", int(metadata["vocab_size"])))
        specials = specials or metadata.get("special_ids")
    described = ", ".join(f"{name}: {size}" for name, size in model_sources + text_sources)
    for sources in (model_sources, text_sources):
        if len({size for _, size in sources}) > 1:
            raise ConfigError(f"vocabulary sizes disagree: {described}")
    if model_sources and text_sources and text_sources[0][1] > model_sources[0][1]:
        raise ConfigError(f"the model's vocabulary is smaller than the tokenizer's: {described}")
    if not model_sources + text_sources:
        raise ConfigError("the vocabulary size is unknown: pass --vocab (tokenizer directory) or --vocab_size, or use "
                          "shards made by scripts/create_pretraining_data.py (they carry metadata.json)")
    return (model_sources or text_sources)[0][1], specials


def _context(cfg, dist):
    if cfg.device != "gpu":
        return mx.cpu()
    require_usable_gpu(dist.local_rank)  # stops before any work on a GPU the installed wheel cannot run
    return mx.gpu(dist.local_rank)


def _build_data(cfg, dist, vocab_size, specials, max_length):
    from .masking import MaskingPolicy

    pad_id = int(specials["pad"]) if specials else min(1, vocab_size - 1)
    policy = None
    if cfg.dynamic_masking:
        if not specials:
            raise ConfigError("dynamic masking needs the special token ids: pass --vocab or use shards with "
                              "metadata.json")
        policy = MaskingPolicy(vocab_size, specials["mask"], specials.values(), cfg.masked_lm_prob,
                               cfg.max_predictions_per_seq)
    common = dict(rank=dist.rank, size=dist.size, vocab_size=vocab_size, max_length=max_length, pad_id=pad_id,
                  num_buckets=cfg.num_buckets, seed=cfg.seed)
    train = PretrainingData(cfg.train_files, cfg.batch_size, cfg.use_avg_len, shuffle=True,
                            masking_policy=policy, **common)
    evaluation = (PretrainingData(cfg.eval_files, cfg.batch_size_eval, False, shuffle=False, **common)
                  if cfg.eval_files else None)
    return train, evaluation


def batch_to_device(batch, ctx, dtype):
    """A batch's (input ids, valid lengths, masked positions, masked ids, masked weights) as NDArrays on `ctx`."""
    return (mx.nd.array(batch.input_ids, ctx=ctx, dtype="int32"),
            mx.nd.array(batch.valid_length, ctx=ctx, dtype=dtype),
            mx.nd.array(batch.masked_positions, ctx=ctx, dtype="int32"),
            mx.nd.array(batch.masked_ids, ctx=ctx, dtype="int32"),
            mx.nd.array(batch.masked_weights, ctx=ctx, dtype="float32"))


def forward(student, teacher, batch, ctx, cfg, train=True, objective_scale=1.0, fused_loss=False):
    """The loss parts (dict of scalar NDArrays) of one batch; when `train`, recorded for backward, with
    `objective` = loss * objective_scale (loss scale / accumulation) to call backward on. `fused_loss`: the
    per-position terms from Bort's CPU kernel (bort.kernels), where it applies."""
    inputs, valid_length, positions, labels, weights = batch_to_device(batch, ctx, cfg.dtype)
    teacher_logits = teacher(inputs, valid_length, positions) if teacher is not None else None
    with mx.autograd.record(train_mode=True) if train else mx.autograd.predict_mode():
        _, logits = student(inputs, valid_length, positions)
        parts = distillation_loss(logits, labels, weights, teacher_logits, cfg.mlm_weight, cfg.teacher_ce_weight,
                                  cfg.temperature, cfg.release_kd_loss, fused=fused_loss)
        if train:
            parts["objective"] = parts["loss"] * objective_scale
    return parts


def evaluate(student, teacher, data, ctx, cfg, dist):
    """MLM loss and accuracy, distillation loss, total loss on the evaluation shards (all workers together)."""
    sums = np.zeros(len(METRICS))
    for count, (batch, _) in enumerate(data.batches(epochs=1)):
        if cfg.max_eval_batches is not None and count >= cfg.max_eval_batches:
            break
        parts = forward(student, teacher, batch, ctx, cfg, train=False)
        masks = float(parts["num_masks"].asscalar())
        sums += [float(parts[key].asscalar()) * (masks if key not in ("correct", "num_masks") else 1)
                 for key in METRICS]
    sums = np.array(dist.allreduce_sum(sums.tolist()))
    masks = max(sums[METRICS.index("num_masks")], 1e-8)
    return dict(eval_loss=sums[0] / masks, eval_mlm_loss=sums[1] / masks, eval_teacher_ce=sums[2] / masks,
                eval_teacher_mse=sums[3] / masks, eval_mlm_accuracy=sums[4] / masks, eval_num_masks=int(sums[5]))


def _gather_positions(dist, position):
    """Every worker's data position, on every worker (row r belongs to rank r)."""
    rows = dist.gather_shares(dist.size, 3, {dist.rank: position.to_list()})
    return [[int(value) for value in row] for row in rows]


def parameters_digest(block):
    digest = hashlib.sha256()
    for name, param in sorted(block._collect_params_with_prefix().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(param.data().asnumpy()).tobytes())
    return digest.hexdigest()


def _step_seed(seed, step, rank):
    return (seed * 1000003 + step * 1009 + rank) % (2 ** 31 - 1)


# ------------------------------------------------------------------------------------------------- the loop
def pretrain(cfg: PretrainConfig):
    """Run (or resume) pretraining; returns a summary dict (final step, metrics, throughput, checkpoint)."""
    cfg.validate()
    dist = distributed.init_distributed(cfg.horovod)
    # One run per --ckpt_dir: a second one would overwrite the checkpoints and interleave train_log.jsonl.
    with output_lock(cfg.ckpt_dir, what="pretraining run", enabled=dist.is_main):
        check_fresh_start(cfg)
        if dist.is_main:
            remove_stale_temporaries(cfg.ckpt_dir)
        return _pretrain(cfg, dist)


def check_fresh_start(cfg):
    """Without --resume, refuse a --ckpt_dir that already holds a run (checkpoints or a training log)."""
    if cfg.resume:
        return
    found = latest_checkpoint(cfg.ckpt_dir)
    log = os.path.join(cfg.ckpt_dir, LOG_FILE)
    if found or (os.path.isfile(log) and os.path.getsize(log) > 0):
        raise ConfigError(f"{cfg.ckpt_dir} already holds a pretraining run ({found or log}); pass --resume true "
                          "to continue it, or choose another --ckpt_dir (or delete the old one)")


def check_finite(step, parts, grad_norm, scaler):
    """Stop once the loss, or a gradient the loss scaler cannot fix, is no longer finite.

    float32 has no loss scale to lower, so any non-finite gradient stops the run; with dynamic loss scaling an
    overflow only skips the step and halves the scale, until the scale is already at its minimum."""
    loss = float(parts["loss"].asscalar())
    if not np.isfinite(loss):
        raise TrainingError(f"step {step}: the loss is {loss}; training stopped. Check --student_params and the "
                            "teacher for NaN/Inf weights, or lower --lr")
    scalable = not isinstance(scaler, NoLossScaler)  # NoLossScaler is the DynamicLossScaler that never scales
    if not np.isfinite(grad_norm) and not (scalable and scaler.scale > scaler.min_scale):
        hint = "even at the smallest loss scale" if scalable else "(float32 has no loss scale to lower)"
        raise TrainingError(f"step {step}: the gradient norm is {grad_norm} {hint}; training stopped. Lower --lr "
                            "or keep --max_grad_norm on")


def _pretrain(cfg, dist):
    from bort.progress import tqdm

    from ..checkpoint import get_bort_model, make_record, vocabulary_identity
    from ..tokenizer import BortTokenizer
    from .teacher import load_teacher

    ctx = _context(cfg, dist)
    vocab_size, specials = resolve_vocabulary(cfg)
    mx.random.seed(_step_seed(cfg.seed, 0, 0))  # identical initial weights on every worker before the broadcast
    student, _ = get_bort_model(cfg.model, vocab_size=vocab_size, params_path=cfg.student_params, use_decoder=True,
                                ctx=ctx, **cfg.model_overrides)
    teacher = None
    if cfg.teacher_model and cfg.teacher_ce_weight:
        teacher = load_teacher(cfg.teacher_model, cfg.teacher_params, vocab_size, ctx, cfg.teacher_num_heads,
                               cfg.teacher_overrides)
    if cfg.dtype == "float16":
        student.cast("float16")
        if teacher is not None:
            teacher.cast("float16")
    # Bort's CPU kernels (LayerNorm, attention, the loss's per-position terms) where they can run (bort/kernels);
    # the loss takes the kernel path when the student's kernels loaded.
    fused = use_kernels(student, ctx, cfg.dtype)
    if teacher is not None:
        use_kernels(teacher.block, ctx, cfg.dtype)
    params = trainable_parameters(student)
    set_gradient_mode(params, cfg.accumulate)
    trainer = make_trainer(student, cfg.optimizer, cfg.lr, cfg.epsilon, cfg.weight_decay,
                           multi_precision=cfg.dtype == "float16")
    schedule = WarmupLinearSchedule(cfg.lr, cfg.num_steps, cfg.warmup_ratio, min_lr=0.0)
    scaling = cfg.dtype == "float16" if cfg.dynamic_loss_scale is None else cfg.dynamic_loss_scale
    scaler = DynamicLossScaler(cfg.init_loss_scale, window=cfg.loss_scale_window) if scaling else NoLossScaler()
    train_data, eval_data = _build_data(cfg, dist, vocab_size, specials, student.config.max_length)
    logger = JsonlLogger(os.path.join(cfg.ckpt_dir, LOG_FILE), enabled=dist.is_main)

    step, position = 0, DataPosition()
    checkpoint = latest_checkpoint(cfg.ckpt_dir) if cfg.resume else None
    if checkpoint:
        state = load_checkpoint(checkpoint, student, trainer, ctx=ctx)
        if state.get("num_workers", 1) != dist.size:
            raise CheckpointError(f"{checkpoint} was written by {state.get('num_workers')} workers; resume it with "
                                  f"the same number (this run has {dist.size}) so each gets its data position back")
        step = int(state["step"])
        position = DataPosition.from_list(state["data_positions"][dist.rank])
        scaler.load_state_dict(state["loss_scaler"])
        logger.log(event="resumed", step=step, checkpoint=checkpoint)
    elif cfg.resume and dist.is_main:
        logger.log(event="resume_requested_but_no_checkpoint", ckpt_dir=cfg.ckpt_dir)
    dist.broadcast_parameters(student)

    # Each checkpoint's record (model.json, bort.checkpoint) names the vocabulary besides the architecture.
    vocabulary = vocabulary_identity(BortTokenizer.from_directory(cfg.vocab)) if cfg.vocab and dist.is_main else None

    def write_checkpoint():
        positions = _gather_positions(dist, position)
        if dist.is_main:
            state = dict(data_positions=positions, num_workers=dist.size, loss_scaler=scaler.state_dict(),
                         seed=cfg.seed, vocab_size=vocab_size, model=cfg.model)
            return save_checkpoint(cfg.ckpt_dir, step, student, trainer, state, keep=cfg.keep_checkpoints,
                                   record=make_record(student, vocabulary=vocabulary))
        return None

    stream = train_data.batches(position)
    window = dict(sums=np.zeros(len(METRICS)), tokens=0, start=time.time(), steps=0)
    summary = dict(start_step=step)
    last_saved = step if checkpoint else None
    with tqdm(total=cfg.num_steps, initial=step, desc="pretraining", unit="step",
              disable=not (cfg.progress and dist.is_main)) as bar:
        while step < cfg.num_steps:
            step += 1
            mx.random.seed(_step_seed(cfg.seed, step, dist.rank))
            if cfg.accumulate > 1:
                zero_gradients(params)
            for _ in range(cfg.accumulate):
                batch, position = next(stream)
                parts = forward(student, teacher, batch, ctx, cfg, objective_scale=scaler.scale / cfg.accumulate,
                                fused_loss=fused)
                parts["objective"].backward()
                masks = float(parts["num_masks"].asscalar())
                window["sums"] += [float(parts[key].asscalar()) * (masks if key not in ("correct", "num_masks") else 1)
                                   for key in METRICS]
                window["tokens"] += batch.num_tokens
            dist.allreduce_gradients(params)
            if scaler.scale != 1.0:
                scale_gradients(params, 1.0 / scaler.scale)
            norm = global_grad_norm(params)
            check_finite(step, parts, norm, scaler)
            skipped = scaler.update(not np.isfinite(norm))
            learning_rate = schedule(step)
            if not skipped:
                trainer.set_learning_rate(learning_rate)
                # Clipping through the optimizer's gradient rescaling: no extra pass over every gradient.
                trainer.update(1.0 / clipping_factor(norm, cfg.max_grad_norm))
            window["steps"] += 1
            bar.update(1)

            if step % cfg.log_interval == 0 or step == cfg.num_steps:
                sums = np.array(dist.allreduce_sum(window["sums"].tolist() + [window["tokens"]]))
                masks = max(sums[METRICS.index("num_masks")], 1e-8)
                elapsed = time.time() - window["start"]
                record = dict(step=step, lr=learning_rate, grad_norm=norm, loss=sums[0] / masks,
                              mlm_loss=sums[1] / masks,
                              teacher_ce=sums[2] / masks, teacher_mse=sums[3] / masks, mlm_accuracy=sums[4] / masks,
                              loss_scale=scaler.scale, skipped_steps=scaler.skipped_steps,
                              tokens_per_second=sums[-1] / max(elapsed, 1e-9),
                              steps_per_second=window["steps"] / max(elapsed, 1e-9))
                logger.log(**record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", mlm=f"{record['mlm_loss']:.3f}")
                summary.update(last_log=record)
                window = dict(sums=np.zeros(len(METRICS)), tokens=0, start=time.time(), steps=0)
            if eval_data is not None and cfg.eval_interval and step % cfg.eval_interval == 0:
                record = dict(step=step, **evaluate(student, teacher, eval_data, ctx, cfg, dist))
                logger.log(**record)
                summary.update(last_eval=record)
            if cfg.ckpt_interval and (step % cfg.ckpt_interval == 0 or step == cfg.num_steps):
                summary["checkpoint"] = write_checkpoint()
                last_saved = step
    if cfg.ckpt_interval and last_saved != step:
        summary["checkpoint"] = write_checkpoint()
    if eval_data is not None and not (cfg.eval_interval and step % cfg.eval_interval == 0):
        record = dict(step=step, **evaluate(student, teacher, eval_data, ctx, cfg, dist))
        logger.log(**record)
        summary.update(last_eval=record)
    if cfg.rank_digests:
        os.makedirs(os.path.join(cfg.ckpt_dir, "rank_digests"), exist_ok=True)
        with open(os.path.join(cfg.ckpt_dir, "rank_digests", f"rank-{dist.rank}.sha256"), "w") as handle:
            handle.write(parameters_digest(student) + "\n")
    summary.update(step=step, rank=dist.rank, num_workers=dist.size, vocab_size=vocab_size)
    logger.log(event="finished", **{k: v for k, v in summary.items() if k not in ("last_log", "last_eval")})
    return summary
