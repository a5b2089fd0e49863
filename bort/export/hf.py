"""Bort `.params` -> Hugging Face Transformers BERT (`config.json` + `model.safetensors`); the way back, for
BERT and RoBERTa checkpoints, is `bort.export.hf_import`.

Bort is a post-LayerNorm BERT without token types and without a pooler, so it maps onto `BertModel` name for
name (the table below is written against `bort.params.LAYER_PARAMETERS`). What HF BERT has and Bort lacks is
filled so that the HF model computes exactly what Bort computes:

- `token_type_embeddings`: one row of zeros (`type_vocab_size` 1), added to every token: a no-op.
- positions: HF BERT uses row p for position p, like Bort (no RoBERTa +2 offset), so the table is copied as is.
- the pooler (BertModel only): identity weight and zero bias, so `pooler_output` is tanh of the `<s>` vector.
  Bort never had a pooler; this makes the exported values explicit instead of random.
- a fine-tuned head (Dense(units, tanh) on the first token, then Dense(classes)) *is* HF's pooler (dense + tanh
  on the first token) followed by HF's classifier (Linear): `classifier.{1,3}` (`{0,1}` with dropout 0) become
  `bert.pooler.dense` and `classifier`, exactly.
- the MLM head: `decoder.0` -> `cls.predictions.transform.dense`, `decoder.2` -> `...transform.LayerNorm`,
  `decoder.3.bias` -> `cls.predictions.bias`; the output weight is tied to the word embedding in both.
  The release's MLM LayerNorm used epsilon 1e-12, HF's config has one `layer_norm_eps` (1e-5, the encoder's):
  that changes MLM logits slightly; `bort.export.parity` measures it. `set_release_mlm_eps` undoes it on a
  loaded model.
"""
import json
import os

import numpy as np

from ..errors import ConfigError, ParamsError
from ..params import LAYER_PARAMETERS, POSITION_WEIGHT, WORD_EMBED, release_parameter_names
from .source import CLASSIFIER, ENCODER, MLM

HF_BASE_PREFIX = "bert."
SAFETENSORS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
ARCHITECTURES = {ENCODER: "BertModel", MLM: "BertForMaskedLM", CLASSIFIER: "BertForSequenceClassification"}
KIND_OF_ARCHITECTURE = {arch: kind for kind, arch in ARCHITECTURES.items()}
RELEASE_SPECIAL_IDS = {"bos": 0, "pad": 1, "eos": 2}  # RoBERTa's vocabulary, which the release used
TOKEN_TYPE = "embeddings.token_type_embeddings.weight"
POOLER = "pooler.dense"
HF_CLASSIFIER = "classifier"
TIED_DECODER_WEIGHT = "decoder.3.weight"

_LAYER_MODULES = {
    "attention_cell.proj_query": "attention.self.query",
    "attention_cell.proj_key": "attention.self.key",
    "attention_cell.proj_value": "attention.self.value",
    "proj": "attention.output.dense",
    "layer_norm": "attention.output.LayerNorm",
    "ffn.ffn_1": "intermediate.dense",
    "ffn.ffn_2": "output.dense",
    "ffn.layer_norm": "output.LayerNorm",
}
_LEAVES = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_FIXED_NAMES = {
    WORD_EMBED: "embeddings.word_embeddings.weight",
    POSITION_WEIGHT: "embeddings.position_embeddings.weight",
    "encoder.layer_norm.gamma": "embeddings.LayerNorm.weight",
    "encoder.layer_norm.beta": "embeddings.LayerNorm.bias",
    # MLM head; HF keeps it outside the `bert.` base model.
    "decoder.0.weight": "cls.predictions.transform.dense.weight",
    "decoder.0.bias": "cls.predictions.transform.dense.bias",
    "decoder.2.gamma": "cls.predictions.transform.LayerNorm.weight",
    "decoder.2.beta": "cls.predictions.transform.LayerNorm.bias",
    "decoder.3.bias": "cls.predictions.bias",
}


def _listed(names, limit=6):
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _layer_name(parameter):
    module, leaf = parameter.rsplit(".", 1)
    return f"{_LAYER_MODULES[module]}.{_LEAVES[leaf]}"


def hf_name(bort_name):
    """The HF BERT name (relative to the base model, or `cls.` for the MLM head) of a Bort parameter;
    None for the tied `decoder.3.weight`, which HF does not store."""
    if bort_name == TIED_DECODER_WEIGHT:
        return None
    if bort_name in _FIXED_NAMES:
        return _FIXED_NAMES[bort_name]
    parts = bort_name.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["encoder", "transformer_cells"] and parts[3] in LAYER_PARAMETERS:
        return f"encoder.layer.{int(parts[2])}.{_layer_name(parts[3])}"
    raise ParamsError(f"{bort_name} is not a Bort parameter name")


def name_table(num_layers, with_decoder):
    """[(bort name, hf name)] for a model of `num_layers` layers, in the release's order (tied weight left out)."""
    return [(name, hf_name(name)) for name in release_parameter_names(num_layers, with_decoder)
            if name != TIED_DECODER_WEIGHT]


# ------------------------------------------------------------------------------------------------ Bort -> HF
def hf_config(config, kind, num_classes=None, special_ids=None, dtype="float32", labels=None):
    """A `transformers.BertConfig` describing the Bort `config` (a `BortConfig`); `labels`: a classifier's label
    names in class-id order (id2label/label2id), from the checkpoint's record."""
    from transformers import BertConfig

    ids = dict(RELEASE_SPECIAL_IDS, **(special_ids or {}))
    extra = {}
    if kind == CLASSIFIER:
        extra = dict(num_labels=num_classes)
        if labels:
            extra.update(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    return BertConfig(
        architectures=[ARCHITECTURES[kind]], vocab_size=config.vocab_size, hidden_size=config.units,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        intermediate_size=config.hidden_size, hidden_act=config.activation, hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout, max_position_embeddings=config.max_length,
        type_vocab_size=1, initializer_range=0.02, layer_norm_eps=config.layer_norm_eps,
        pad_token_id=ids["pad"], bos_token_id=ids["bos"], eos_token_id=ids["eos"], tie_word_embeddings=True,
        dtype=dtype, **extra)


def to_hf_state_dict(source, dtype="float32"):
    """name -> numpy array in HF's layout for a `BortSource`; the names carry `bert.` unless it is a BertModel."""
    body = source.body()
    config = source.config
    kind = source.kind
    table = name_table(config.num_layers, with_decoder=kind == MLM)
    missing = [bort for bort, _ in table if bort not in body]
    if missing:
        raise ParamsError(f"{source.path}: missing {_listed(missing)}")
    if kind == MLM and TIED_DECODER_WEIGHT in body and not np.array_equal(body[TIED_DECODER_WEIGHT], body[WORD_EMBED]):
        raise ParamsError(f"{source.path}: {TIED_DECODER_WEIGHT} differs from {WORD_EMBED}; Bort and HF BERT tie "
                          "the MLM output layer to the word embedding, so this file cannot be represented")
    prefix = "" if kind == ENCODER else HF_BASE_PREFIX
    state = {}
    for bort, hf in table:
        state[hf if hf.startswith("cls.") else prefix + hf] = body[bort]
    state[prefix + TOKEN_TYPE] = np.zeros((1, config.units), dtype=body[WORD_EMBED].dtype)
    if kind == ENCODER:
        state[f"{POOLER}.weight"] = np.eye(config.units, dtype=body[WORD_EMBED].dtype)
        state[f"{POOLER}.bias"] = np.zeros(config.units, dtype=body[WORD_EMBED].dtype)
    elif kind == CLASSIFIER:
        (dense_w, dense_b), (out_w, out_b) = source.head()
        state.update({f"{prefix}{POOLER}.weight": dense_w, f"{prefix}{POOLER}.bias": dense_b,
                      f"{HF_CLASSIFIER}.weight": out_w, f"{HF_CLASSIFIER}.bias": out_b})
    return {name: np.ascontiguousarray(value, dtype=np.dtype(dtype)) for name, value in state.items()}


def write_hf(source, directory, dtype="float32", special_ids=None):
    """Write `config.json` and `model.safetensors` for `source` into the existing `directory`."""
    from safetensors.numpy import save_file

    if dtype not in ("float32", "float16"):
        raise ConfigError(f"--dtype must be float32 or float16, got {dtype!r}")
    state = to_hf_state_dict(source, dtype)
    config = hf_config(source.config, source.kind, source.info.num_classes, special_ids, dtype, source.labels)
    config.save_pretrained(directory)
    # HF reads only `format`; the rest records where the weights came from.
    save_file(state, os.path.join(directory, SAFETENSORS_FILE),
              metadata={"format": "pt", "bort_source": os.path.basename(source.path),
                        "bort_mlm_layer_norm_eps": repr(source.config.mlm_layer_norm_eps)})
    return config


# ------------------------------------------------------------------------------------------------ using an export
def load_hf_model(directory, dtype="float32"):
    """The exported directory as the HF class its config names, in eval mode. Returns (model, loading_info)."""
    import torch
    import transformers

    with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as handle:
        architecture = (json.load(handle).get("architectures") or ["BertModel"])[0]
    model_class = getattr(transformers, architecture)
    model, info = model_class.from_pretrained(directory, dtype=getattr(torch, dtype), output_loading_info=True)
    return model.eval(), info


def build_hf_model(source, attn_implementation=None):
    """The HF model for `source` built in memory (no files), float32, eval mode; returns (model, loading_info)."""
    import torch
    import transformers

    tensors = {name: torch.from_numpy(value) for name, value in to_hf_state_dict(source).items()}
    model_class = getattr(transformers, ARCHITECTURES[source.kind])
    model, info = model_class.from_pretrained(None, config=hf_config(source.config, source.kind,
                                                                     source.info.num_classes),
                                              state_dict=tensors, attn_implementation=attn_implementation,
                                              output_loading_info=True)
    return model.eval(), info


def set_release_mlm_eps(model, eps=1e-12):
    """Give a loaded BertForMaskedLM the release's MLM-head LayerNorm epsilon (HF's config cannot store it)."""
    model.cls.predictions.transform.LayerNorm.eps = eps
    return model


def hf_runner(model, kind, mlm_eps=None):
    """batch -> outputs of a loaded HF model, named like `bort.export.parity` expects.

    mlm_eps: the MLM-head LayerNorm epsilon to compute with (None: the model's as loaded); restored afterwards.
    """
    import torch

    from .parity import gather_masked

    def run(batch):
        layer_norm = model.cls.predictions.transform.LayerNorm if kind == MLM else None
        loaded_eps = layer_norm.eps if layer_norm is not None else None
        if layer_norm is not None and mlm_eps is not None:
            layer_norm.eps = mlm_eps
        try:
            with torch.no_grad():
                out = model(input_ids=torch.from_numpy(batch["input_ids"]),
                            attention_mask=torch.from_numpy(batch["attention_mask"]), output_hidden_states=True)
        finally:
            if layer_norm is not None:
                layer_norm.eps = loaded_eps
        result = dict(sequence_output=out.hidden_states[-1].float().numpy())
        if kind == MLM:
            result["mlm_logits"] = gather_masked(out.logits.float().numpy(), batch["masked_positions"])
        elif kind == CLASSIFIER:
            result["classifier_logits"] = out.logits.float().numpy()
        return result

    return run
