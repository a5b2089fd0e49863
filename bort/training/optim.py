"""Optimizer construction and gradient handling shared by fine-tuning and pretraining."""
import math
import re

import mxnet as mx
import numpy as np
from mxnet import gluon

from ..errors import ConfigError
from ..kernels import kernels_loaded

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

        if not multi_precision and kernels_loaded():
            # The same update in Bort's CPU kernel (bort/kernels/adamw.cc), loaded by use_kernels before this.
            from ..kernels.optimizer import fast_bertadam

            return gluon.Trainer(params, fast_bertadam(**options), kvstore=None, update_on_kvstore=False)
    return gluon.Trainer(params, optimizer, options, kvstore=None, update_on_kvstore=False)


def _gradients(params):
    return [grad for p in params if p.grad_req != "null" for grad in p.list_grad()]


# Elements per partial sum of squares. One float32 accumulator per whole array loses small terms once the sum has
# grown: on full-size Bort (a 51M-element word-embedding gradient) multi_sum_sq came out 5% below the float64
# norm. Partial sums of 65536 elements, added in float64, stay within 1e-7 of it.
NORM_CHUNK = 1 << 16
MULTI_SUM_SQ_LIMIT = 500  # arrays per multi_sum_sq call


def global_grad_norm(params):
    """L2 norm of all gradients together, as a Python float, from float32 partial sums of NORM_CHUNK elements
    added in float64 (one read of every gradient, one device sync); float32 CPU gradients go to Bort's kernel
    (`bort_sum_squares`: a float64 sum in one pass) where the kernels are loaded."""
    grads = _gradients(params)
    if (grads and kernels_loaded() and all(g.dtype == np.float32 and g.context.device_type == "cpu"
                                           and g.stype == "default" for g in grads)):
        return math.sqrt(float(mx.nd.bort_sum_squares(*grads, num_arrays=len(grads)).asscalar()))
    pieces = []
    for grad in grads:
        flat = grad.reshape(-1)
        size = flat.shape[0]
        pieces.extend(flat[start:min(size, start + NORM_CHUNK)] for start in range(0, size, NORM_CHUNK))
    if all(piece.dtype == np.float32 for piece in pieces):
        # BLAS dot of a piece with itself: the fastest sum of squares MXNet has on CPU.
        partial = [mx.nd.dot(piece, piece) for piece in pieces]
    else:  # float16 gradients: multi_sum_sq accumulates in float32 whatever the gradients' dtype
        partial = [mx.nd.multi_sum_sq(*pieces[i:i + MULTI_SUM_SQ_LIMIT],
                                      num_arrays=len(pieces[i:i + MULTI_SUM_SQ_LIMIT]))
                   for i in range(0, len(pieces), MULTI_SUM_SQ_LIMIT)]
    return math.sqrt(float(mx.nd.concat(*partial, dim=0).asnumpy().astype(np.float64).sum()))


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


def set_gradient_mode(params, micro_batches):
    """grad_req for an update of `micro_batches` backward passes: "add" when several must add up (then
    `zero_gradients` clears them after each update), else "write", which needs no clearing (about 50 ms per
    update at full size: the 50265x1024 embedding's gradient)."""
    mode = "add" if micro_batches > 1 else "write"
    for param in params:
        param.grad_req = mode
    return mode


def zero_gradients(params):
    """Clear the gradients that backward adds to (grad_req "add"); "write" gradients are overwritten anyway."""
    for param in params:
        if param.grad_req == "add":
            param.zero_grad()
