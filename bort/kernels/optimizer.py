"""BERTAdam (the release's optimizer, GluonNLP's `bertadam`) with its update in Bort's `bort_adamw_update`
kernel: the same arithmetic as MXNet's `multi_adamw_update`, bit for bit, streamed array by array (0.12 s instead
of 0.23 s for Bort's 59 M parameters on 2 cores). `bort.training.optim.make_trainer` uses it where the kernels are
loaded; float16 master weights, sparse gradients and other dtypes go to BERTAdam's own update, as does every
update in a process where the kernels are not loaded (a trainer state saved with this class resumes anywhere).

Imported only when a trainer is made (it loads GluonNLP); the class lives at module level so that
`Trainer.save_states` can pickle it."""
import mxnet as mx
import numpy as np
from gluonnlp.optimizer import BERTAdam


class FastBERTAdam(BERTAdam):
    """BERTAdam whose update of float32 dense parameters runs in one `bort_adamw_update` call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.aggregate_num = 1 << 16  # every parameter in one operator call

    def _update_impl(self, indices, weight, grad, state, multi_precision=False):
        listed = isinstance(indices, (tuple, list))
        indices, weights, grads, states = ((list(indices), list(weight), list(grad), list(state)) if listed
                                           else ([indices], [weight], [grad], [state]))
        plain = all(w.stype == "default" and g.stype == "default" and w.dtype == np.float32
                    and g.dtype == np.float32 for w, g in zip(weights, grads))
        if multi_precision or not plain or not hasattr(mx.nd, "bort_adamw_update"):
            return super()._update_impl(indices, weights, grads, states, multi_precision)
        self._update_count(indices)
        etas, wds = self._get_lrs(indices), self._get_wds(indices)
        if not isinstance(self.rescale_grad, mx.nd.NDArray):  # kept as an array, as BERTAdam keeps it
            self.rescale_grad = mx.nd.full(shape=(1,), val=self.rescale_grad, ctx=weights[0].context)
        else:
            self.rescale_grad = self.rescale_grad.as_in_context(weights[0].context)
        means, variances = zip(*states)
        mx.nd.bort_adamw_update(*weights, *grads, *means, *variances, self.rescale_grad,
                                num_weights=len(weights), beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon,
                                clip_gradient=self.clip_gradient if self.clip_gradient else -1.0,
                                etas=",".join(repr(float(v)) for v in etas),
                                wds=",".join(repr(float(v)) for v in wds))
        return None


def fast_bertadam(**options):
    """A BERTAdam optimizer whose update runs in the kernel (options as for 'bertadam')."""
    return FastBERTAdam(**options)
