"""The frozen teacher of distillation: GluonNLP's RoBERTa (`roberta_24_1024_16`, `roberta_12_768_12`) built
without downloading anything and loaded from a local `.params` file, or any Bort-shaped parameter file.

The teacher runs in inference mode (no dropout) outside autograd, and must share the student's vocabulary:
its logits are compared id by id.
"""
import glob
import os

import mxnet as mx

from ..config import PREDEFINED
from ..errors import ConfigError, ParamsError
from ..params import read_params_shapes

ROBERTA_MODELS = ("roberta_24_1024_16", "roberta_12_768_12")
ROBERTA_DATASET = "openwebtext_ccnews_stories_books_cased"


class _SizedVocabulary:
    """GluonNLP's RoBERTa constructor only asks `len(vocab)`; the real vocabulary belongs to the tokenizer."""

    def __init__(self, size):
        self._size = size

    def __len__(self):
        return self._size


def find_zoo_params(model_name, root=None):
    """The teacher's weights in GluonNLP's model cache ($MXNET_HOME/models, default ~/.mxnet/models)."""
    root = os.path.expanduser(root or os.path.join(os.environ.get("MXNET_HOME", "~/.mxnet"), "models"))
    matches = sorted(glob.glob(os.path.join(root, f"{model_name}_{ROBERTA_DATASET}-*.params")))
    if not matches:
        raise ParamsError(f"no {model_name} weights in {root} (looked for {model_name}_{ROBERTA_DATASET}-*.params); "
                          "pass the teacher's .params file explicitly")
    return matches[-1]


class Teacher:
    """`teacher(inputs, valid_length, masked_positions) -> logits (B, M, V)`, never recorded by autograd."""

    def __init__(self, block, description, vocab_size):
        self.block = block
        self.description = description
        self.vocab_size = vocab_size
        for param in block.collect_params().values():
            param.grad_req = "null"

    def __call__(self, inputs, valid_length, masked_positions):
        with mx.autograd.pause(train_mode=False):
            _, logits = self.block(inputs, valid_length, masked_positions)
        return logits

    def cast(self, dtype):
        self.block.cast(dtype)


def _roberta_teacher(model_name, params_path, vocab_size, ctx, overrides):
    import gluonnlp

    # The headers say the vocabulary's size; GluonNLP's loader below is the one full read of the file.
    embedding = read_params_shapes(params_path).get("word_embed.0.weight")
    if embedding is None:
        raise ParamsError(f"{params_path} is not a GluonNLP RoBERTa parameter file (no word_embed.0.weight)")
    if embedding.shape[0] != vocab_size:
        raise ConfigError(f"the teacher {params_path} has a vocabulary of {embedding.shape[0]} tokens but the "
                          f"student's has {vocab_size}; distillation compares logits id by id, so both must use "
                          "the same vocabulary (RoBERTa's has 50265)")
    block, _ = gluonnlp.model.get_model(model_name, vocab=_SizedVocabulary(vocab_size), pretrained=False,
                                        use_decoder=True, ctx=ctx, hparam_allow_override=bool(overrides),
                                        **overrides)
    try:
        block.load_parameters(params_path, ctx=ctx)
    except (AssertionError, mx.base.MXNetError) as err:
        reason = str(err).splitlines()[0][:300]
        raise ParamsError(f"{params_path} does not fit GluonNLP's {model_name}: {reason}") from None
    return block


def load_teacher(model_name, params_path=None, vocab_size=None, ctx=None, num_heads=None, overrides=None):
    """Build the teacher.

    model_name: 'roberta_24_1024_16' / 'roberta_12_768_12' (GluonNLP; params_path None looks in GluonNLP's
    model cache), or a Bort architecture name ('bort_4_8_768_1024', ...) / 'bort' for a Bort-shaped file,
    whose layers, widths and length are read from the file (num_heads from the name, or `num_heads`).
    overrides: GluonNLP hyper-parameters for a RoBERTa teacher (for small test teachers); for a Bort-shaped
    teacher, BortConfig settings the file cannot tell (layer_norm_eps, mlm_layer_norm_eps, activation).
    """
    ctx = ctx or mx.cpu()
    if vocab_size is None:
        raise ConfigError("the teacher needs the student's vocabulary size")
    if model_name in ROBERTA_MODELS:
        params_path = params_path or find_zoo_params(model_name)
        block = _roberta_teacher(model_name, params_path, vocab_size, ctx, dict(overrides or {}))
    elif model_name in PREDEFINED or model_name == "bort":
        if params_path is None:
            raise ConfigError(f"a {model_name} teacher needs its parameter file")
        from ..checkpoint import get_bort_model, open_checkpoint

        checkpoint = open_checkpoint(params_path)  # read once: described here, loaded below
        info = checkpoint.info
        shape = {k: v for k, v in info.config_overrides().items() if k != "vocab_size"}
        heads = num_heads
        if heads is None and "num_heads" not in (checkpoint.recorded("architecture") or {}):
            heads = PREDEFINED[model_name]["num_heads"] if model_name in PREDEFINED else None
            if heads is None:
                raise ConfigError(f"a 'bort' teacher needs num_heads (--teacher_num_heads): {params_path} has no "
                                  "record of it")
        if info.vocab_size is not None and info.vocab_size != vocab_size:
            raise ConfigError(f"the teacher {params_path} has a vocabulary of {info.vocab_size} tokens but the "
                              f"student's has {vocab_size}; both must use the same vocabulary")
        base = model_name if model_name in PREDEFINED else None
        # Settings the file cannot tell (LayerNorm epsilons, activation) may come as overrides, e.g. for an
        # imported BERT teacher; the shapes always come from the file.
        extra = {k: v for k, v in (overrides or {}).items()
                 if k not in shape and k not in ("num_heads", "vocab_size", "dropout", "embed_dropout")}
        block, _ = get_bort_model(base, vocab_size=vocab_size, params_path=checkpoint, use_decoder=True, ctx=ctx,
                                  num_heads=heads, dropout=0.0, embed_dropout=0.0, **shape, **extra)
    else:
        raise ConfigError(f"unknown teacher model {model_name!r}; choose one of {', '.join(ROBERTA_MODELS)}, "
                          f"{', '.join(sorted(PREDEFINED))} or 'bort'")
    return Teacher(block, f"{model_name} from {params_path}", vocab_size)
