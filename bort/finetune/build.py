"""Building what a fine-tuning run needs from its settings: device, tokenizer, and the classifier."""
import os
import random

import mxnet as mx
import numpy as np

from ..checkpoint import check_record_task, check_vocabulary, open_checkpoint, read_record, record_path
from ..config import get_config
from ..errors import ConfigError, VocabError
from ..gpu.preflight import require_usable_gpu
from ..model import BortClassifier, BortModel

BORT_PARAMS_URL = "https://alexa-saif-bort.s3.amazonaws.com/bort.params"
ROBERTA_VOCAB_HINT = ("RoBERTa's vocab.json + merges.txt (e.g. from the Hugging Face repository amazon/bort or "
                      "roberta-base) in model/, or GluonNLP's cached vocabulary in ~/.mxnet/models")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    mx.random.seed(seed % 2 ** 31)


def device(config, dist):
    if config.gpu is None:
        return mx.cpu()
    if mx.context.num_gpus() == 0:
        from ..gpu.preflight import installed_mxnet

        wheel = installed_mxnet()
        why = (f"{wheel} is installed but the NVIDIA driver shows it no GPU (check nvidia-smi and "
               "CUDA_VISIBLE_DEVICES)" if wheel and wheel.startswith("mxnet-cu") else
               f"the installed MXNet build ({wheel or 'none'}) is CPU-only; install the GPU build with "
               "BORT_CUDA=cu117 scripts/setup_env.sh")
        raise ConfigError(f"--gpu {config.gpu} was given but MXNet sees no GPU: {why}; or leave --gpu out to "
                          "run on CPU")
    # One process per GPU under Horovod: the local rank picks the card; --gpu is the single-process choice.
    index = dist.local_rank if dist.size > 1 else config.gpu
    require_usable_gpu(index)  # stops here, before any work, on a GPU the installed wheel has no kernels for
    return mx.gpu(index)


def build_tokenizer(config, model_dir="model"):
    """The tokenizer named by the flags, else a vocabulary found in `model_dir`, else GluonNLP's cache.

    With a fine-tuned `--model_parameters`, its record must agree: pairs built the way the model was trained,
    and the same vocabulary."""
    tokenizer = _flagged_tokenizer(config, model_dir)
    if config.model_parameters:
        record = read_record(config.model_parameters)
        where = record_path(config.model_parameters)
        recorded_layout = (record or {}).get("pair_layout")
        if recorded_layout is not None and recorded_layout != config.pair_layout:
            raise ConfigError(f"--pair_layout {config.pair_layout} contradicts {where}, which records pair_layout "
                              f"{recorded_layout} (the layout the model was trained with); pass --pair_layout "
                              f"{recorded_layout}")
        check_vocabulary(record, tokenizer, where)
    return tokenizer


def _flagged_tokenizer(config, model_dir):
    from ..tokenizer import BortTokenizer

    layout = config.pair_layout
    if config.vocab:
        return BortTokenizer.from_hf(config.vocab, config.merges, pair_layout=layout)
    if config.gluonnlp_vocab:
        return BortTokenizer.from_gluonnlp(config.gluonnlp_vocab, config.bpe_ranks, pair_layout=layout)
    if config.spm_model:
        return BortTokenizer.from_sentencepiece(config.spm_model, pair_layout=layout)
    if os.path.isfile(os.path.join(model_dir, "vocab.json")) and os.path.isfile(os.path.join(model_dir, "merges.txt")):
        return BortTokenizer.from_directory(model_dir, pair_layout=layout)
    try:
        return BortTokenizer.from_gluonnlp_cache(pair_layout=layout)
    except VocabError as err:
        raise VocabError(f"no vocabulary given and none found: pass --vocab/--merges, --gluonnlp_vocab/"
                         f"--bpe_ranks or --spm_model, or put {ROBERTA_VOCAB_HINT} ({err})") from None


def head_initializer(config):
    if config.init == "gaussian":
        return mx.init.Normal(config.prob)
    if config.init == "uniform":
        return mx.init.Uniform(config.prob)
    if config.init == "orthogonal":
        return mx.init.Orthogonal(scale=config.prob)
    return mx.init.Xavier()


def _head_dropout_of(info, wanted):
    """Dropout layers shift the head's parameter names (classifier.1/3 with, classifier.0/1 without), so a
    fine-tuned file decides whether the head has them; only the rate comes from the flag."""
    has_dropout_layers = any(name.startswith("classifier.3.") for name in info.names)
    has_head = any(name.startswith("classifier.") for name in info.names)
    if not has_head or has_dropout_layers == (wanted > 0):
        return wanted
    return 0.1 if has_dropout_layers else 0.0


def build_classifier(config, task, vocab_size, ctx):
    """`BortClassifier` with `task.num_labels` outputs per sequence, loaded as the settings say.

    Architecture: with a parameter file, its shapes (layers, widths, vocabulary, positions) and its record
    (heads, epsilons) decide, so a model's file needs no extra flags, and a flag that contradicts them is an
    error; without one, `config.model` with the flags' overrides. The file is read once.
    """
    params_path = config.model_parameters or config.pretrained_parameters
    overrides = config.model_overrides()
    head_dropout = config.dropout
    checkpoint = None
    if params_path:
        checkpoint = open_checkpoint(params_path)
        info = checkpoint.info
        if info.vocab_size is not None and info.vocab_size != vocab_size:
            raise ConfigError(f"the tokenizer has {vocab_size} tokens but {params_path} has a {info.vocab_size}-row "
                              "word embedding: use the vocabulary the model was trained with")
        if config.model_parameters:
            check_record_task(checkpoint, task)
            head_dropout = _head_dropout_of(info, config.dropout)
        model_config = checkpoint.config(config.model, **overrides)
    else:
        model_config = get_config(config.model, vocab_size=vocab_size, **overrides)
    bort = BortModel(model_config, use_decoder=False)
    bort.initialize(mx.init.Normal(0.02), ctx=ctx)
    classifier = BortClassifier(bort, num_classes=task.num_labels, dropout=head_dropout)
    classifier.classifier.initialize(head_initializer(config), ctx=ctx)
    if config.model_parameters:
        checkpoint.load_into(classifier, ctx=ctx, allow_missing_head=False)
    elif config.pretrained_parameters:
        checkpoint.load_into(classifier.bort, ctx=ctx)
    if config.max_len > bort.config.max_length:
        raise ConfigError(f"--max_len {config.max_len} exceeds the model's {bort.config.max_length} positions")
    # Features are built from this tokenizer and checked once here, so the per-batch id check (a device sync)
    # can be skipped.
    bort.validate_inputs = False
    if config.hybridize:
        classifier.hybridize(static_alloc=True)
    return classifier
