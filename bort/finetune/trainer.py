"""The fine-tuning loop, start to finish:

    settings -> tokenizer, data, model -> for each epoch: updates (accumulated micro-batches, gradients
    averaged over ranks, clipped, warm-up/decay LR) -> dev metrics -> keep the best epoch, checkpoint,
    early stop -> best weights -> test predictions.

One update takes `batch_size * ranks * accumulate` units, cut into `accumulate` micro-batches, each shared
out to the ranks. Every rank sums its per-unit losses and divides by the number of units in the whole
update, times the world size; averaging gradients over ranks then gives exactly the gradient of the mean
loss over the update's units, however they were split. Hence N ranks with `--batch_size B`, or one process
with `--batch_size B --accumulate N`, compute what one process computes with `--batch_size N*B`.

Repeatability: python/numpy/MXNet are seeded from `--seed`; MXNet's generator is reseeded from
(seed, rank, update, micro-batch) before every forward pass, so dropout masks do not depend on what ran
before, and a resumed run continues exactly. Data order depends only on (seed, epoch).

float16 (`--dtype float16`, GPU only) uses MXNet AMP: dynamic loss scaling, gradients unscaled before
clipping (the release clipped scaled gradients: docs/release_bugs.md), overflowing updates skipped. This path
cannot run on the CPU-only machines the tests run on and is untested here.
"""
import dataclasses
import math
import os
import sys

import mxnet as mx
from mxnet import autograd

from ..checkpoint import load_parameters, make_record, write_record
from ..distributed import init_distributed
from ..errors import CheckpointError, ConfigError, TrainingError
from ..kernels import use_kernels
from ..locking import output_lock
from ..params import save_parameters
from ..tasks import get_task
from ..training.checkpoint import latest_checkpoint, load_checkpoint, remove_stale_temporaries, save_checkpoint
from ..training.logs import JsonlLogger
from ..training.optim import (
    clipping_factor,
    global_grad_norm,
    make_trainer,
    set_gradient_mode,
    trainable_parameters,
    zero_gradients,
)
from ..training.schedule import WarmupLinearSchedule
from .build import build_classifier, build_tokenizer, device, seed_everything
from .evaluation import evaluate_split, mean_main_metric
from .features import encode_split, global_batches, local_share, training_units
from .heads import batch_arrays, summed_loss
from .predict import evaluate_dev, write_test_predictions

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"


@dataclasses.dataclass
class RunState:
    """Everything besides weights and optimizer state that a resumed run needs (saved as state.json)."""
    epoch: int = 0  # epochs completed
    update_in_epoch: int = 0  # updates done in the current epoch (mid-epoch checkpoints)
    step: int = 0  # updates done in total
    best_score: float = -math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    history: list = dataclasses.field(default_factory=list)


def best_model_path(output_dir, task):
    return os.path.join(output_dir, f"model_bort_{task.name}.params")


def finetune(config, on_update=None):
    """Run fine-tuning (or, with `config.only_inference`, prediction) as `config` says; returns a summary
    dict. `on_update(step)` is called after every update (tests use it to interrupt a run)."""
    dist = init_distributed(config.distributed)
    # One run per output directory: a second one would replace the model and mix metrics.jsonl.
    with output_lock(config.output_dir, what="fine-tuning run", enabled=dist.is_main):
        return _finetune(config, on_update, dist)


def _finetune(config, on_update, dist):
    task = get_task(config.task_name)
    if config.only_inference:
        return run_inference(config, task, dist)
    train_task = get_task(task.train_task)
    seed_everything(config.seed)
    ctx = device(config, dist)
    use_amp = config.dtype == "float16"
    if use_amp:
        from mxnet.contrib import amp
        amp.init()

    tokenizer = build_tokenizer(config)
    train = encode_split(train_task, "train", config.data_dir, tokenizer, config.max_len)
    devs = {split: encode_split(train_task, split, config.data_dir, tokenizer, config.max_len)
            for split in train_task.dev_splits}
    units = training_units(train)
    model = build_classifier(config, train_task, tokenizer.vocab_size, ctx)
    use_kernels(model, ctx, "float16" if use_amp else "float32")
    dist.broadcast_parameters(model)
    params = trainable_parameters(model)
    set_gradient_mode(params, config.accumulate)  # the micro-batches of one update add up
    trainer = make_trainer(model, config.optimizer, config.lr, config.epsilon, config.weight_decay,
                           multi_precision=use_amp)
    if use_amp:
        amp.init_trainer(trainer)

    global_batch = config.batch_size * dist.size
    total_steps = config.training_steps or max(
        1, int(len(units) / (global_batch * config.accumulate) * config.ramp_up_epochs))
    schedule = WarmupLinearSchedule(config.lr, total_steps, config.warmup_ratio) if config.use_scheduler else None
    checkpoints = os.path.join(config.output_dir, CHECKPOINT_DIR)
    state = _start_state(config, train_task, dist, checkpoints, model, trainer, ctx)
    logger = JsonlLogger(os.path.join(config.output_dir, METRICS_FILE), enabled=dist.is_main)
    if dist.is_main:
        logger.log(event="start", task=train_task.name, world_size=dist.size, train_units=len(units),
                   total_steps=total_steps, resumed_at_step=state.step, config=config.to_dict())
        print(f"[{train_task.name}] {len(train.examples)} training examples ({len(units)} units), "
              f"{dist.size} worker(s), {total_steps} scheduled updates", file=sys.stderr)

    best_weights = None
    if state.best_epoch >= 0:  # resumed: the best model so far is the file written when it was found
        current = _copy_weights(model)
        load_parameters(model, best_model_path(config.output_dir, train_task), ctx=ctx, allow_missing_head=False)
        best_weights = _copy_weights(model)
        _set_weights(model, current)
    lengths = [unit.length for unit in units]
    while state.epoch < config.epochs:
        if config.early_stop and state.epochs_without_improvement >= config.early_stop:
            _say(dist, f"early stop: no better dev score for {state.epochs_without_improvement} epochs")
            break
        updates = [[update[i:i + global_batch] for i in range(0, len(update), global_batch)]
                   for update in global_batches(lengths, global_batch * config.accumulate, config.seed, state.epoch)]
        bar = _progress(config, dist, len(updates), state)
        running = []
        for update_index in range(state.update_in_epoch, len(updates)):
            lr = schedule(state.step + 1) if schedule else config.lr
            loss, grad_norm = train_step(model, trainer, params, [[units[i] for i in b] for b in updates[update_index]],
                                         train_task.head, tokenizer.pad_id, lr, config, dist, ctx, state.step, use_amp)
            state.step += 1
            state.update_in_epoch = update_index + 1
            running.append(loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            if state.step % config.log_interval == 0 or state.update_in_epoch == len(updates):
                mean_loss = dist.allreduce_mean([sum(running) / len(running)])[0]
                running = []
                logger.log(event="train", epoch=state.epoch, step=state.step, loss=mean_loss, lr=lr,
                           grad_norm=grad_norm)
            if (config.checkpoint_steps and state.step % config.checkpoint_steps == 0
                    and state.update_in_epoch < len(updates)):
                _checkpoint(dist, checkpoints, model, trainer, state, config, train_task)
            if on_update is not None:
                on_update(state.step)
        if bar is not None:
            bar.close()

        best_weights = (end_of_epoch(model, devs, tokenizer, config, ctx, dist, state, train_task, logger)
                        or best_weights)
        state.epoch += 1
        state.update_in_epoch = 0
        _checkpoint(dist, checkpoints, model, trainer, state, config, train_task)

    _set_weights(model, best_weights)
    result = dict(task=train_task.name, steps=state.step, best_epoch=state.best_epoch,
                  best_score=state.best_score, history=state.history,
                  model_path=best_model_path(config.output_dir, train_task), predictions={}, model=model)
    if state.best_epoch >= 0:
        _say(dist, f"[{train_task.name}] best epoch {state.best_epoch}: score {state.best_score:.4f}")
        logger.log(event="best", epoch=state.best_epoch, score=state.best_score)
    if config.predict:
        result["predictions"] = write_test_predictions(model, task, tokenizer, config, ctx, dist, logger)
    logger.log(event="end", steps=state.step)
    return result


def end_of_epoch(model, devs, tokenizer, config, ctx, dist, state, task, logger):
    """Dev metrics; if the score (main metric averaged over dev splits) is the best so far, save
    the model and return a copy of its weights; else count an epoch without improvement."""
    dev_results = {split: evaluate_split(model, encoded, tokenizer.pad_id, config.dev_batch_size, ctx, dist)[0]
                   for split, encoded in devs.items()}
    state.history.append(dict(epoch=state.epoch, step=state.step, dev=dev_results))
    for split, metrics in dev_results.items():
        logger.log(event="dev", epoch=state.epoch, step=state.step, split=split, metrics=metrics)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        _say(dist, f"[{task.name} epoch {state.epoch}] {split}: {shown}")
    score = mean_main_metric(dev_results)
    score = score if score == score else -math.inf  # a NaN metric (constant predictions) never wins
    if score <= state.best_score and state.best_epoch >= 0:
        state.epochs_without_improvement += 1
        return None
    state.best_score, state.best_epoch, state.epochs_without_improvement = score, state.epoch, 0
    if dist.is_main:
        save_classifier(model, best_model_path(config.output_dir, task), task, tokenizer, config.max_len)
    return _copy_weights(model)


def save_classifier(model, path, task, tokenizer, max_len):
    """A fine-tuned classifier's weights and, beside them, the record that rebuilds it (architecture, task,
    pair layout, sequence length, vocabulary)."""
    save_parameters(model, path)
    write_record(path, make_record(model, task=task, pair_layout=tokenizer.pair_layout, max_seq_length=max_len,
                                   tokenizer=tokenizer))


def train_step(model, trainer, params, micro_batches, head, pad_id, lr, config, dist, ctx, step, use_amp):
    """One update from a list of global micro-batches; returns (this rank's loss, gradient norm)."""
    total_units = sum(len(batch) for batch in micro_batches)
    if len(micro_batches) > 1 and params and params[0].grad_req != "add":
        raise ConfigError(f"{len(micro_batches)} micro-batches per update need grad_req 'add' "
                          "(set_gradient_mode(params, micro_batches))")
    loss_value = 0.0
    for micro, batch in enumerate(micro_batches):
        mine = local_share(batch, dist.rank, dist.size)
        # A rank without units (a short last batch) still runs one with weight 0, so that every rank has
        # fresh gradients and joins the allreduce.
        weight = dist.size / total_units if mine else 0.0
        mine = mine or batch[:1]
        mx.random.seed((config.seed * 1000003 + step * 1009 + micro * 101 + dist.rank) % 2 ** 31)
        ids, valid_length, labels, index = batch_arrays(mine, pad_id, ctx)
        with autograd.record():
            outputs = model(ids, valid_length)
            loss = summed_loss(head, outputs, labels, index, ctx) * weight
            if use_amp:
                from mxnet.contrib import amp
                with amp.scale_loss(loss, trainer) as scaled:
                    autograd.backward(scaled)
            else:
                loss.backward()
        loss_value += float(loss.asscalar())
    dist.allreduce_gradients(params)
    if use_amp:
        from mxnet.contrib import amp
        amp.unscale(trainer)
    grad_norm = global_grad_norm(params)
    # float16: an overflowing gradient is the loss scaler's business (it skips the update); a non-finite loss
    # is not. The norm is taken after the allreduce, so every rank stops together.
    check_finite(step + 1, loss_value, None if use_amp else grad_norm, lr)
    trainer.set_learning_rate(lr)
    # Clipping rides on the optimizer's gradient rescaling (Trainer.update multiplies every gradient by
    # 1 / its argument as it reads it): the same product as scaling the gradients first, without a pass that
    # reads and writes all of them (about 60 ms per update at full size on 2 cores).
    trainer.update(1.0 / clipping_factor(grad_norm, config.max_grad_norm))
    zero_gradients(params)
    return loss_value, grad_norm


def check_finite(step, loss, grad_norm, lr):
    """Stop training with a clear message once the loss or the gradient norm is no longer finite: every later
    update would only spread NaN through the weights."""
    bad = [f"the {what} is {value}" for what, value in (("loss", loss), ("gradient norm", grad_norm))
           if value is not None and not math.isfinite(value)]
    if bad:
        raise TrainingError(f"update {step}: {' and '.join(bad)} (learning rate {lr:g}); training stopped. Check "
                            "the starting weights for NaN/Inf, lower --lr, or keep --max_grad_norm on")


def run_inference(config, task, dist):
    """`--only_inference`: dev metrics and test predictions with a fine-tuned `--model_parameters`."""
    seed_everything(config.seed)
    ctx = device(config, dist)
    if config.dtype == "float16":
        from mxnet.contrib import amp
        amp.init()
    tokenizer = build_tokenizer(config)
    train_task = get_task(task.train_task)
    model = build_classifier(config, train_task, tokenizer.vocab_size, ctx)
    logger = JsonlLogger(os.path.join(config.output_dir, METRICS_FILE), enabled=dist.is_main)
    dev = evaluate_dev(model, task, tokenizer, config, ctx, dist, logger) if task is train_task else {}
    written = write_test_predictions(model, task, tokenizer, config, ctx, dist, logger, strict=True)
    return dict(task=task.name, dev=dev, predictions=written, model_path=config.model_parameters, model=model)


# ----------------------------------------------------------------------------------------------- helpers
def _start_state(config, task, dist, checkpoints, model, trainer, ctx):
    if dist.is_main:  # under the output lock: left by a run killed while writing a checkpoint
        remove_stale_temporaries(checkpoints)
    found = latest_checkpoint(checkpoints)
    if not config.resume:
        if found:
            raise ConfigError(f"{config.output_dir} already holds checkpoints of a run ({found}); pass "
                              "--resume true to continue it, or choose another --output_dir")
        return RunState()
    if not found:
        _say(dist, f"--resume: no checkpoint in {checkpoints}, starting from scratch")
        return RunState()
    saved = load_checkpoint(found, model, trainer, ctx=ctx)
    if saved.get("task") != task.name:
        raise CheckpointError(f"{found} is a checkpoint of task {saved.get('task')}, not {task.name}")
    for key in ("batch_size", "accumulate", "seed", "max_len", "world_size"):
        now = dist.size if key == "world_size" else getattr(config, key)
        if saved.get(key) != now:
            _say(dist, f"warning: resuming with {key}={now} but the checkpoint used {saved.get(key)}; "
                       "the run will not match an uninterrupted one")
    fields = {f.name for f in dataclasses.fields(RunState)}
    state = RunState(**{k: v for k, v in saved.items() if k in fields})
    if state.best_score is None:
        state.best_score = -math.inf
    _say(dist, f"resumed from {found}: epoch {state.epoch}, update {state.update_in_epoch}, step {state.step}")
    return state


def _checkpoint(dist, directory, model, trainer, state, config, task):
    if not dist.is_main:
        return
    saved = dataclasses.asdict(state)
    saved["best_score"] = None if saved["best_score"] == -math.inf else saved["best_score"]
    saved.update(task=task.name, batch_size=config.batch_size, accumulate=config.accumulate, seed=config.seed,
                 max_len=config.max_len, world_size=dist.size)
    save_checkpoint(directory, state.step, model, trainer, saved, keep=config.keep_checkpoints)


def _copy_weights(model):
    return {name: param.data().copy() for name, param in model._collect_params_with_prefix().items()}


def _set_weights(model, weights):
    if weights is None:
        return
    for name, param in model._collect_params_with_prefix().items():
        param.set_data(weights[name])


def _progress(config, dist, total, state):
    if not (config.progress and dist.is_main):
        return None
    from bort.progress import tqdm
    return tqdm(total=total, initial=state.update_in_epoch, desc=f"epoch {state.epoch}", unit="update",
                dynamic_ncols=True, file=sys.stderr)


def _say(dist, message):
    if dist.is_main:
        print(message, file=sys.stderr)
