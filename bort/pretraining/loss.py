"""The distillation objective over masked positions.

    loss = mlm_weight * MLM + teacher_ce_weight * T^2 * KD

MLM = sum_i w_i * CE(student_i, label_i) / sum_i w_i, and KD = sum_i w_i * KL(p_t,i || p_s,i) / sum_i w_i with
p_t = softmax(teacher / T) and p_s = softmax(student / T): the textbook (Hinton et al.) soft-target term, whose
gradient with respect to the student logits is T * w_i * (p_s - p_t) / sum w after the T^2 factor.

`release_compatible=True` computes instead what the original release did (docs/release_bugs.md): MXNet 1.5's
`KLDivLoss(from_logits=False)` applied to `softmax(student / T)`, i.e. a second softmax over probabilities,
and averaged over the vocabulary instead of summed:
    KD_release_i = mean_v p_t,v * (log(p_t,v + 1e-12) - log_softmax(p_s)_v).
(MXNet >= 1.7 sums over the vocabulary in KLDivLoss; the release ran on 1.5, which averaged.)
In both modes the release's normaliser sum_i w_i + 1e-8 is used, and `teacher_mse` (logged only, never in the
loss, as in the release) is T^2 * sum_i w_i * mean_v 0.5 * (p_s - p_t)^2 / sum w.

All functions take MXNet NDArrays (any float dtype; computed in float32 or float64) and work under autograd.
`fused=True` computes the per-position terms (textbook mode, float32) with Bort's CPU kernel
`bort_distillation_terms` (bort/kernels: a few passes per vocabulary row instead of a dozen whole-tensor
operators, same values to float rounding); the training loop asks for it where `use_kernels` loaded it.
"""
import mxnet as mx
import numpy as np

NORMALISER_EPS = 1e-8


def _flat(logits, labels, weights):
    vocab = logits.shape[-1]
    return logits.reshape((-1, vocab)), labels.reshape((-1,)), weights.reshape((-1,))


def _float_dtype(array):
    """float64 stays float64 (for exact checks); float16/float32 logits are computed in float32."""
    return "float64" if np.dtype(array.dtype) == np.float64 else "float32"


def masked_lm_terms(student_logits, labels, weights):
    """Per-position cross-entropy (N,) and correctness (N,) of the student; inputs (..., V), (...), (...)."""
    logits, labels, _ = _flat(student_logits, labels, weights)
    logits = logits.astype(_float_dtype(logits), copy=False)
    log_probs = mx.nd.log_softmax(logits, axis=-1)
    cross_entropy = -mx.nd.pick(log_probs, labels.astype(logits.dtype, copy=False), axis=-1)
    correct = mx.nd.argmax(logits, axis=-1) == labels.astype(logits.dtype, copy=False)
    return cross_entropy, correct


def kd_terms(student_logits, teacher_logits, temperature, release_compatible=False):
    """Per-position distillation term (N,) before the T^2 factor, and the logged MSE term (N,)."""
    vocab = student_logits.shape[-1]
    dtype = _float_dtype(student_logits)
    student = student_logits.reshape((-1, vocab)).astype(dtype, copy=False)
    teacher = teacher_logits.reshape((-1, vocab)).astype(dtype, copy=False)
    teacher_log_probs = mx.nd.log_softmax(teacher / temperature, axis=-1)
    teacher_probs = mx.nd.exp(teacher_log_probs)
    student_probs = mx.nd.softmax(student / temperature, axis=-1)
    if release_compatible:
        per_class = teacher_probs * (mx.nd.log(teacher_probs + 1e-12) - mx.nd.log_softmax(student_probs, axis=-1))
        kd = mx.nd.mean(per_class, axis=-1)
    else:
        per_class = teacher_probs * (teacher_log_probs - mx.nd.log_softmax(student / temperature, axis=-1))
        kd = mx.nd.sum(per_class, axis=-1)
    mse = mx.nd.mean(0.5 * mx.nd.square(student_probs - teacher_probs), axis=-1)
    return kd, mse


def fused_terms(student_logits, teacher_logits, labels, temperature):
    """(cross-entropy, correct, KD, MSE) per position, (N,) each, from the `bort_distillation_terms` kernel."""
    vocab = student_logits.shape[-1]
    ce, kd, mse, correct, *_ = mx.nd.bort_distillation_terms(
        student_logits.reshape((-1, vocab)), teacher_logits.reshape((-1, vocab)),
        labels.reshape((-1,)).astype("float32", copy=False), temperature=temperature)
    return ce, correct, kd, mse


def can_fuse(student_logits, teacher_logits, release_compatible):
    """Whether the fused kernel computes this case: loaded, textbook mode, float32 logits of a teacher."""
    return (teacher_logits is not None and not release_compatible and hasattr(mx.nd, "bort_distillation_terms")
            and np.dtype(student_logits.dtype) == np.float32 and np.dtype(teacher_logits.dtype) == np.float32)


def distillation_loss(student_logits, labels, weights, teacher_logits=None, mlm_weight=0.1,
                      teacher_ce_weight=0.5, temperature=2.0, release_compatible=False, fused=False):
    """The training loss and its parts, as a dict of scalar NDArrays:
    loss, mlm, teacher_ce (T^2 * KD), teacher_mse, num_masks (sum of weights), correct (weighted).

    student_logits/teacher_logits: (B, M, V); labels, weights: (B, M). Without a teacher, KD terms are 0.
    `fused`: use the CPU kernel where `can_fuse` says it applies (the formulas below otherwise).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if fused and can_fuse(student_logits, teacher_logits, release_compatible):
        cross_entropy, correct, kd, mse = fused_terms(student_logits, teacher_logits, labels, temperature)
        return _weighted_parts(cross_entropy, correct, kd, mse, weights, mlm_weight, teacher_ce_weight, temperature)
    cross_entropy, correct = masked_lm_terms(student_logits, labels, weights)
    kd, mse = (None, None) if teacher_logits is None else kd_terms(student_logits, teacher_logits, temperature,
                                                                   release_compatible)
    return _weighted_parts(cross_entropy, correct, kd, mse, weights, mlm_weight, teacher_ce_weight, temperature)


def _weighted_parts(cross_entropy, correct, kd, mse, weights, mlm_weight, teacher_ce_weight, temperature):
    """The scalar parts from per-position terms: weighted means with the release's normaliser (KD terms 0
    without a teacher)."""
    weights = weights.reshape((-1,)).astype(cross_entropy.dtype, copy=False)
    num_masks = mx.nd.sum(weights)
    normaliser = num_masks + NORMALISER_EPS
    mlm = mx.nd.sum(cross_entropy * weights) / normaliser
    parts = dict(mlm=mlm, num_masks=num_masks, correct=mx.nd.sum(correct.astype(weights.dtype) * weights))
    if kd is None:
        zero = mx.nd.zeros((1,), dtype=weights.dtype, ctx=weights.context).reshape(())
        parts.update(teacher_ce=zero, teacher_mse=zero, loss=mlm_weight * mlm)
        return parts
    scale = temperature ** 2
    parts["teacher_ce"] = scale * mx.nd.sum(kd * weights) / normaliser
    parts["teacher_mse"] = scale * mx.nd.sum(mse * weights) / normaliser
    parts["loss"] = mlm_weight * mlm + teacher_ce_weight * parts["teacher_ce"]
    return parts
