"""Optimizer construction and gradient handling shared by fine-tuning and pretraining."""
import math
import re

import mxnet as mx
from mxnet import gluon

from ..errors import ConfigError

# LayerNorm scales/shifts and biases get no weight decay (BERT's recipe, kept by the release).
NO_DECAY_PATTERN = re.compile(r".*(beta|gamma|bias)$")
OPTIMIZERS = ("bertadam", "lamb", "adam", "sgd")


def trainable_parameters(block):
    """The parameters to optimise, deduplicated (the tied decoder weight is the word embedding)."""
    seen, params = set(), []
    for param in block.collect_params().values():
        if param.grad_req != "null" and id(param) not in seen:
            seen.add(id(param))
            params.append(param)
    return params


def make_trainer(block, optimizer="bertadam", learning_rate=5e-5, epsilon=1e-6, weight_decay=0.01,
                 multi_precision=False):
    """A Gluon Trainer with no kvstore: gradients are averaged across workers explicitly by
    `bort.distributed` before the update, so clipping sees the true global gradient."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"learning rate must be a finite number > 0, got {learning_rate}")
    params = trainable_parameters(block)
    for param in params:
        if NO_DECAY_PATTERN.match(param.name):
            param.wd_mult = 0.0
    options = {"learning_rate": learning_rate, "wd": weight_decay}
    if optimizer in ("bertadam", "lamb", "adam"):
        options["epsilon"] = epsilon
    if multi_precision:
        options["multi_precision"] = True
    if optimizer == "bertadam":
        import gluonnlp  # noqa: F401  registers the 'bertadam' optimizer ('lamb' is MXNet's own)
    return gluon.Trainer(params, optimizer, options, kvstore=None, update_on_kvstore=False)


def _gradients(params):
    return [grad for p in params if p.grad_req != "null" for grad in p.list_grad()]


def global_grad_norm(params):
    """L2 norm of all gradients together, as a Python float (one fused pass over every gradient)."""
    grads = _gradients(params)
    # multi_sum_sq accumulates in float32 whatever the gradients' dtype.
    squares = mx.nd.multi_sum_sq(*grads, num_arrays=len(grads))
    return float(squares.sum().sqrt().asscalar())


def scale_gradients(params, factor):
    """Multiply every gradient by `factor`, in place."""
    for grad in _gradients(params):
        grad *= factor


def clip_gradients(params, max_norm):
    """Scale gradients so their global norm is at most `max_norm`; returns the norm before clipping.

    A non-finite norm is returned as is and the gradients are left alone, so the caller (e.g. a loss
    scaler) can skip the step.
    """
    norm = global_grad_norm(params)
    factor = clipping_factor(norm, max_norm)
    if factor != 1.0:
        scale_gradients(params, factor)
    return norm


def clipping_factor(norm, max_norm):
    """What clipping multiplies the gradients by: `max_norm / norm` when the norm exceeds a positive `max_norm`,
    else 1 (also for a non-finite norm, which the caller handles)."""
    if max_norm and max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        return max_norm / norm
    return 1.0


def zero_gradients(params):
    for param in params:
        if param.grad_req != "null":
            param.zero_grad()
