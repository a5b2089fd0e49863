"""Hugging Face BERT and RoBERTa checkpoints -> a Bort `.params` file and its record (`<name>.json`).

Reads `config.json` and the weights (`model.safetensors`, sharded safetensors, `pytorch_model.bin` or sharded
`.bin`) of BERT (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`, `BertForSequenceClassification`) and RoBERTa
(`RobertaModel`, `RobertaForMaskedLM`, `RobertaForSequenceClassification`) checkpoints of any depth and width.
Both are post-LayerNorm encoders whose layers are Bort's layers name for name; what differs:

- positions: HF BERT uses row p for position p, like Bort. RoBERTa numbers real tokens from padding_idx + 1
  (row padding_idx is what `<pad>` tokens get, lower rows are never used), so Bort row p = RoBERTa row
  p + padding_idx + 1, and max_length = max_position_embeddings - padding_idx - 1.
- token types: Bort has no token-type input. HF adds token-type row 0 to every token when all token_type_ids
  are 0 (its default), so row 0 is added to every position row: exact for single-segment input. Further rows
  (BERT's segment B) cannot be represented and are dropped, loudly.
- pooler and next-sentence head: not part of the sequence output or the MLM logits; dropped, loudly (an
  identity pooler with zero bias, which this package's own export writes, is dropped silently).
- MLM head: BERT's `cls.predictions.transform.{dense,LayerNorm}` + `cls.predictions.bias`, RoBERTa's
  `lm_head.{dense,layer_norm}` + `lm_head.bias` become `decoder.0`, `decoder.2`, `decoder.3.bias`; the output
  weight is the word embedding in all three. Its LayerNorm uses the config's layer_norm_eps, recorded as
  `mlm_layer_norm_eps`; RoBERTa's head applies gelu whatever hidden_act says.
- a sequence-classification head (BERT pooler + classifier; RoBERTa classifier.dense + out_proj) is the
  release's fine-tuning head (Dense(units, tanh) on `<s>`, then Dense(classes)): `classifier.1` / `classifier.3`.

The record holds the full `BortConfig` (heads and epsilons included, which a `.params` file cannot), the
vocabulary's size, special ids and file digests, and the import report.
"""
import dataclasses
import json
import os
import re
from typing import Optional

import numpy as np

from ..config import BortConfig
from ..errors import ConfigError, ParamsError
from ..params import DECODER_PARAMETERS, POSITION_WEIGHT, WORD_EMBED, release_parameter_names
from .hf import CONFIG_FILE, HF_CLASSIFIER, POOLER, TIED_DECODER_WEIGHT, TOKEN_TYPE, _listed, name_table
from .source import CLASSIFIER, ENCODER, MLM

# Weight files in the order transformers prefers them.
WEIGHT_FILES = (("model.safetensors", "safetensors", False), ("model.safetensors.index.json", "safetensors", True),
                ("pytorch_model.bin", "bin", False), ("pytorch_model.bin.index.json", "bin", True))
_BUFFERS = re.compile(r"(^|\.)(position_ids|token_type_ids)$")  # index buffers some checkpoints save
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


@dataclasses.dataclass(frozen=True)
class Family:
    """How one Hugging Face model family names and computes what Bort has."""
    name: str
    prefix: str  # of the base model inside task checkpoints
    mlm: dict  # Bort decoder name -> HF name
    tied_decoder: str  # HF's name of the MLM output weight (the word embedding; often not saved)
    decoder_bias: str  # HF's second name of the MLM output bias
    classifier: tuple  # (dense, output) modules of a sequence-classification head
    mlm_activation: Optional[str]  # fixed activation of the MLM head; None: hidden_act
    offset_positions: bool
    other_heads: tuple = ()  # (HF name prefix, what it is): dropped and reported


BERT = Family(
    name="BERT", prefix="bert.",
    mlm={"decoder.0.weight": "cls.predictions.transform.dense.weight",
         "decoder.0.bias": "cls.predictions.transform.dense.bias",
         "decoder.2.gamma": "cls.predictions.transform.LayerNorm.weight",
         "decoder.2.beta": "cls.predictions.transform.LayerNorm.bias",
         "decoder.3.bias": "cls.predictions.bias"},
    tied_decoder="cls.predictions.decoder.weight", decoder_bias="cls.predictions.decoder.bias",
    classifier=(POOLER, HF_CLASSIFIER), mlm_activation=None, offset_positions=False,
    other_heads=(("cls.seq_relationship.", "the next-sentence-prediction head (cls.seq_relationship)"),))
ROBERTA = Family(
    name="RoBERTa", prefix="roberta.",
    mlm={"decoder.0.weight": "lm_head.dense.weight", "decoder.0.bias": "lm_head.dense.bias",
         "decoder.2.gamma": "lm_head.layer_norm.weight", "decoder.2.beta": "lm_head.layer_norm.bias",
         "decoder.3.bias": "lm_head.bias"},
    tied_decoder="lm_head.decoder.weight", decoder_bias="lm_head.decoder.bias",
    classifier=("classifier.dense", "classifier.out_proj"), mlm_activation="gelu", offset_positions=True)
FAMILIES = {"bert": BERT, "roberta": ROBERTA, "xlm-roberta": ROBERTA}


@dataclasses.dataclass
class ImportReport:
    """What the import did, in the spirit of transformers' loading report."""
    source: str
    family: str
    kind: str  # ENCODER, MLM or CLASSIFIER
    converted: int = 0  # HF tensors that became Bort tensors
    exact: list = dataclasses.field(default_factory=list)  # changes that keep every output identical
    lost: list = dataclasses.field(default_factory=list)  # weights dropped, information that cannot come along

    def notes(self):
        return self.exact + self.lost

    def lines(self):
        lines = [f"converted {self.converted} tensors of a {self.family} checkpoint ({self.kind})"]
        lines += [f"exact: {note}" for note in self.exact]
        lines += [f"WARNING dropped: {note}" for note in self.lost]
        return lines


@dataclasses.dataclass
class ImportResult:
    path: str
    record_path: str
    config: BortConfig
    hf_config: dict
    report: ImportReport
    num_classes: Optional[int] = None


# ------------------------------------------------------------------------------------------------ files
def read_hf_config(directory):
    """config.json of a Hugging Face model directory as a dict."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ParamsError(f"{directory} is not a directory; expected a Hugging Face model directory "
                          f"({CONFIG_FILE} + model.safetensors or pytorch_model.bin)")
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ParamsError(f"{directory}: no {CONFIG_FILE}; expected a Hugging Face model directory")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as err:
        raise ParamsError(f"{path}: unreadable ({err})") from None
    if not isinstance(config, dict):
        raise ParamsError(f"{path}: expected a JSON object")
    return config


def weight_files(directory):
    """(paths, 'safetensors' or 'bin') of the checkpoint's weights, shards included."""
    for name, kind, is_index in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        if not is_index:
            return [path], kind
        try:
            with open(path, encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as err:
            raise ParamsError(f"{path}: unreadable shard index ({err!r})") from None
        missing = [shard for shard in shards if not os.path.isfile(os.path.join(directory, shard))]
        if missing:
            raise ParamsError(f"{path} names shards that are not there: {_listed(missing)}")
        return [os.path.join(directory, shard) for shard in shards], kind
    raise ParamsError(f"{directory}: no weights; looked for {', '.join(name for name, _, _ in WEIGHT_FILES)}")


def _torch_to_numpy(tensor):
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
        tensor = tensor.float()
    return tensor.numpy()


def _load_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as numpy_err:  # safetensors raises its own types; bfloat16 files need torch
        try:
            from safetensors.torch import load_file as load_torch

            return {name: _torch_to_numpy(value) for name, value in load_torch(path).items()}
        except Exception:
            raise ParamsError(f"{path}: unreadable safetensors file ({numpy_err})") from None


def _load_bin(path):
    import torch

    try:
        # weights_only: a .bin is a pickle; never run code from a downloaded file.
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors of every kind
        raise ParamsError(f"{path}: unreadable PyTorch weights ({str(err).splitlines()[0][:200]})") from None
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise ParamsError(f"{path}: expected a state dict (name -> tensor), got {type(loaded).__name__}")
    return {name: _torch_to_numpy(value) for name, value in loaded.items()}


def read_checkpoint(directory):
    """(config dict, name -> numpy array, weight file paths) of a Hugging Face model directory; config.json is
    checked before any weight is read (a multi-gigabyte checkpoint of another architecture fails at once)."""
    config = read_hf_config(directory)
    bort_config_from_hf(config, os.path.join(directory, CONFIG_FILE))
    paths, kind = weight_files(os.fspath(directory))
    state = {}
    for path in paths:
        state.update(_load_safetensors(path) if kind == "safetensors" else _load_bin(path))
    return config, state, paths


# ------------------------------------------------------------------------------------------------ config
def _positive_int(config, field, path):
    if field not in config:
        raise ParamsError(f"{path}: no {field!r} field")
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamsError(f"{path}: {field} must be a positive integer, got {value!r}")
    return value


def family_of(config, path):
    """The `Family` that config.json's model_type names."""
    if "model_type" not in config:
        raise ParamsError(f"{path}: no 'model_type' field; expected a Hugging Face config.json of a BERT or "
                          "RoBERTa model")
    model_type = config["model_type"]
    if model_type not in FAMILIES:
        raise ParamsError(f"{path}: model_type {model_type!r} is not supported; the import reads "
                          f"{', '.join(sorted(FAMILIES))} (post-LayerNorm BERT-type encoders)")
    return FAMILIES[model_type]


def position_offset(config, family, path):
    """First HF position row of a real token: 0 for BERT, padding_idx + 1 for RoBERTa."""
    if not family.offset_positions:
        return 0
    pad = config.get("pad_token_id")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ParamsError(f"{path}: pad_token_id is {pad!r}; RoBERTa numbers positions from pad_token_id + 1, "
                          "so it must be a non-negative integer")
    return pad + 1


def bort_config_from_hf(config, path="config.json"):
    """The `BortConfig` that computes what the HF model of `config` computes."""
    family = family_of(config, path)
    sizes = {field: _positive_int(config, field, path) for field in (
        "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size", "max_position_embeddings",
        "vocab_size")}
    activation = config.get("hidden_act", "gelu")
    if activation not in ("gelu", "relu"):
        raise ParamsError(f"{path}: hidden_act {activation!r} is not supported; Bort computes gelu (the exact erf "
                          "form, HF's 'gelu') or relu ('gelu_new' and 'gelu_pytorch_tanh' are tanh approximations)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ParamsError(f"{path}: position_embedding_type {config['position_embedding_type']!r}; Bort has "
                          "absolute positions only")
    for flag in ("is_decoder", "add_cross_attention"):
        if config.get(flag):
            raise ParamsError(f"{path}: {flag} is set; Bort is a bidirectional encoder without cross-attention")
    max_length = sizes["max_position_embeddings"] - position_offset(config, family, path)
    if max_length <= 0:
        raise ParamsError(f"{path}: max_position_embeddings {sizes['max_position_embeddings']} leaves no position "
                          f"after RoBERTa's offset (pad_token_id + 1 = {position_offset(config, family, path)})")
    eps = float(config.get("layer_norm_eps", 1e-12))  # BertConfig's and RobertaConfig's default
    dropout = float(config.get("hidden_dropout_prob", 0.1))
    try:
        return BortConfig(num_layers=sizes["num_hidden_layers"], num_heads=sizes["num_attention_heads"],
                          hidden_size=sizes["intermediate_size"], units=sizes["hidden_size"], max_length=max_length,
                          dropout=dropout, embed_dropout=0.0, layer_norm_eps=eps, mlm_layer_norm_eps=eps,
                          activation=activation, vocab_size=sizes["vocab_size"])
    except ConfigError as err:
        raise ParamsError(f"{path}: {err}") from None


# ------------------------------------------------------------------------------------------------ weights
def _expected_shape(bort_name, config, hf_positions):
    units, ffn = config.units, config.hidden_size
    if bort_name == WORD_EMBED:
        return (config.vocab_size, units)
    if bort_name == POSITION_WEIGHT:
        return (hf_positions, units)
    if bort_name == "decoder.3.bias":
        return (config.vocab_size,)
    if bort_name.endswith("ffn_1.weight"):
        return (ffn, units)
    if bort_name.endswith("ffn_1.bias"):
        return (ffn,)
    if bort_name.endswith("ffn_2.weight"):
        return (units, ffn)
    if bort_name.endswith(".weight"):
        return (units, units)
    return (units,)


def _modern_names(state):
    """Old TensorFlow-converted checkpoints call LayerNorm parameters gamma/beta; transformers renames them."""
    renamed = {}
    for name, value in state.items():
        if "LayerNorm" in name or "layer_norm" in name:
            name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        renamed[name] = value
    return renamed


def _is_identity_pooler(base, units):
    weight, bias = base.get(f"{POOLER}.weight"), base.get(f"{POOLER}.bias")
    return (weight is not None and bias is not None and weight.shape == (units, units)
            and np.array_equal(weight, np.eye(units, dtype=weight.dtype)) and not np.any(bias))


def convert_state(hf_config, state, path="HF model"):
    """(Bort name -> numpy array in the release's order, BortConfig, ImportReport, number of classes or None)."""
    config_path = os.path.join(path, CONFIG_FILE) if os.path.isdir(path) else path
    config = bort_config_from_hf(hf_config, config_path)
    family = family_of(hf_config, config_path)
    offset = position_offset(hf_config, family, config_path)
    base = {(name[len(family.prefix):] if name.startswith(family.prefix) else name): value
            for name, value in _modern_names(state).items() if not _BUFFERS.search(name)}
    if not any(name.startswith("embeddings.") for name in base):
        other = sorted({name.split(".", 1)[0] + "." for name in base})
        raise ParamsError(f"{path}: no {family.prefix}embeddings.* weights; config.json says model_type "
                          f"{hf_config['model_type']!r} but the weights are named {_listed(other)}")
    layers = sorted({int(match.group(1)) for match in map(_LAYER.match, base) if match})
    if layers != list(range(config.num_layers)):
        raise ParamsError(f"{path}: the weights hold layers {_listed([str(i) for i in layers])} but config.json's "
                          f"num_hidden_layers is {config.num_layers}")

    has_classifier = f"{family.classifier[1]}.weight" in base
    mlm_bias, decoder_bias = family.mlm["decoder.3.bias"], family.decoder_bias
    if mlm_bias not in base and decoder_bias in base:
        base[mlm_bias] = base[decoder_bias]
    has_mlm = mlm_bias in base
    with_decoder = has_mlm and not has_classifier
    kind = CLASSIFIER if has_classifier else (MLM if has_mlm else ENCODER)
    report = ImportReport(source=os.fspath(path), family=family.name, kind=kind)

    table = name_table(config.num_layers, with_decoder=False)
    if with_decoder:
        table += [(name, family.mlm[name]) for name in DECODER_PARAMETERS if name != TIED_DECODER_WEIGHT]
    missing = [hf for _, hf in table if hf not in base]
    if missing:
        raise ParamsError(f"{path}: missing {_listed(missing)}")
    hf_positions = int(hf_config["max_position_embeddings"])
    wrong = [f"{hf} {tuple(base[hf].shape)} (expected {_expected_shape(bort, config, hf_positions)})"
             for bort, hf in table if tuple(base[hf].shape) != _expected_shape(bort, config, hf_positions)]
    if wrong:
        raise ParamsError(f"{path}: shapes disagree with config.json (hidden_size {config.units}, intermediate_size "
                          f"{config.hidden_size}, vocab_size {config.vocab_size}, max_position_embeddings "
                          f"{hf_positions}): {_listed(wrong, 4)}")
    arrays = {bort: base[hf] for bort, hf in table}
    used = {hf for _, hf in table}
    report.converted = len(table)

    if offset:
        arrays[POSITION_WEIGHT] = arrays[POSITION_WEIGHT][offset:]
        report.exact.append(f"position rows 0..{offset - 1} left out: RoBERTa gives real tokens rows from "
                            f"pad_token_id + 1 = {offset} on (row {offset - 1} is <pad>'s, masked out), so Bort "
                            f"position p is RoBERTa row p + {offset}; max_length {config.max_length}")
    token_type = base.get(TOKEN_TYPE)
    if token_type is not None:
        used.add(TOKEN_TYPE)
        if token_type.ndim != 2 or token_type.shape[1] != config.units:
            raise ParamsError(f"{path}: {TOKEN_TYPE} has shape {tuple(token_type.shape)}, expected "
                              f"(type_vocab_size, {config.units})")
        if np.any(token_type[0] != 0):
            # HF adds row 0 to every token when no token_type_ids are given; adding it to every position row
            # gives Bort the same sum.
            arrays[POSITION_WEIGHT] = arrays[POSITION_WEIGHT] + token_type[0]
            report.exact.append("token-type row 0 added to every position row (what HF adds to every token when "
                                "all token_type_ids are 0, as for a single segment)")
        if token_type.shape[0] > 1:
            report.lost.append(f"token-type rows 1..{token_type.shape[0] - 1} ({family.prefix}{TOKEN_TYPE}): Bort "
                               "has no token-type input, so segment B of a sentence pair (token_type_ids 1) cannot be "
                               "told apart; outputs are exact for inputs whose token_type_ids are all 0")

    if with_decoder:
        if decoder_bias in base and not np.array_equal(base[decoder_bias], base[mlm_bias]):
            raise ParamsError(f"{path}: {decoder_bias} differs from {mlm_bias}; HF ties them")
        used |= {decoder_bias, family.tied_decoder}
        tied = base.get(family.tied_decoder)
        if tied is not None and not np.array_equal(tied, arrays[WORD_EMBED]):
            raise ParamsError(f"{path}: {family.tied_decoder} differs from the word embedding (tie_word_embeddings "
                              f"{hf_config.get('tie_word_embeddings', True)}); Bort's MLM output layer is the word "
                              "embedding, so this checkpoint cannot be represented")
        activation = family.mlm_activation or config.activation
        if activation != config.activation:
            raise ParamsError(f"{path}: hidden_act is {config.activation!r} but {family.name}'s MLM head applies "
                              f"{activation}; Bort's MLM head uses the encoder's activation")
        ordered = {}
        for name in release_parameter_names(config.num_layers, with_decoder=True):
            ordered[name] = arrays[WORD_EMBED] if name == TIED_DECODER_WEIGHT else arrays[name]
        arrays = ordered
    elif has_mlm:
        mlm_names = {name for name in base if name.startswith(mlm_bias.rsplit(".", 1)[0] + ".")}
        used |= mlm_names
        report.lost.append(f"the MLM head ({_listed(sorted(mlm_names), 3)}): a classifier checkpoint is imported "
                           "with its classification head")

    num_classes = None
    if has_classifier:
        dense, output = family.classifier
        head = [f"{dense}.weight", f"{dense}.bias", f"{output}.weight", f"{output}.bias"]
        absent = [name for name in head if name not in base]
        if absent:
            raise ParamsError(f"{path}: a sequence-classification head needs {_listed(absent)}")
        used |= set(head)
        num_classes = int(base[f"{output}.weight"].shape[0])
        arrays = {f"bort.{name}": value for name, value in arrays.items()}
        arrays.update({"classifier.1.weight": base[head[0]], "classifier.1.bias": base[head[1]],
                       "classifier.3.weight": base[head[2]], "classifier.3.bias": base[head[3]]})
        report.converted += len(head)
        report.exact.append(f"{dense} + {output} -> the fine-tuning head classifier.1 + classifier.3 (Dense(units, "
                            f"tanh) on <s>, then Dense({num_classes}))")
    pooler = {f"{POOLER}.weight", f"{POOLER}.bias"} - used
    if pooler & set(base):
        used |= pooler
        if not _is_identity_pooler(base, config.units):
            report.lost.append(f"the pooler ({family.prefix}{POOLER}): Bort has none; the sequence output and "
                               "the MLM logits do not use it (a fine-tuned head needs a *ForSequenceClassification "
                               "checkpoint)")
    for prefix, what in family.other_heads:
        names = sorted(name for name in base if name.startswith(prefix))
        if names:
            used |= set(names)
            report.lost.append(f"{what}: {_listed(names, 2)}; Bort has no such head")
    unused = sorted(set(base) - used)
    if unused:
        report.lost.append(f"not converted (no counterpart in Bort): {_listed(unused)}")
    return arrays, config, report, num_classes


# ------------------------------------------------------------------------------------------------ writing
def vocabulary_of(directory):
    """`bort.checkpoint.vocabulary_identity` of the byte-level BPE files (vocab.json + merges.txt) shipped with the
    checkpoint, or None when it has none (e.g. BERT's WordPiece vocab.txt, which this package cannot read)."""
    from ..checkpoint import vocabulary_identity
    from ..tokenizer import BortTokenizer

    vocab, merges = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
    if not (os.path.isfile(vocab) and os.path.isfile(merges)):
        return None
    return vocabulary_identity(BortTokenizer.from_hf(vocab, merges))


def import_record(config, report, hf_config, directory, files, num_classes, vocabulary, dtype):
    """The checkpoint record (`bort.checkpoint`'s format) of an imported file, with where it came from."""
    from ..checkpoint import base_record

    record = base_record(report.kind, config, dtype, num_classes, vocabulary)
    record["imported_from"] = dict(format="huggingface", directory=os.path.abspath(directory),
                                   model_type=hf_config["model_type"], architectures=hf_config.get("architectures"),
                                   weights=[os.path.basename(path) for path in files], report=report.lines())
    return record


def import_hf(directory, out_path, force=False):
    """Convert a Hugging Face BERT or RoBERTa directory into `out_path` (.params) plus its record (`<name>.json`);
    an `ImportResult`. Nothing is written unless the conversion succeeds; existing files need `force`."""
    import mxnet as mx

    from ..checkpoint import record_path, write_record
    from ..io_utils import atomic_path

    out_path = os.fspath(out_path)
    if not out_path.endswith(".params"):
        raise ConfigError(f"--output {out_path}: name the .params file to write (its record goes to <name>.json)")
    if os.path.isdir(out_path):
        raise ConfigError(f"{out_path} is a directory; --output must name a .params file")
    for path in (out_path, record_path(out_path)):
        if os.path.exists(path) and not force:
            raise ConfigError(f"{path} already exists; pass --force to replace it")
    directory = os.fspath(directory)
    hf_config, state, files = read_checkpoint(directory)
    arrays, config, report, num_classes = convert_state(hf_config, state, path=directory)
    vocabulary = vocabulary_of(directory)
    if vocabulary is not None and vocabulary["size"] != config.vocab_size:
        raise ParamsError(f"{directory}: vocab.json has {vocabulary['size']} tokens but config.json's vocab_size is "
                          f"{config.vocab_size}")
    dtype = str(np.dtype(arrays[WORD_EMBED if WORD_EMBED in arrays else f"bort.{WORD_EMBED}"].dtype))
    record = import_record(config, report, hf_config, directory, files, num_classes, vocabulary, dtype)
    with atomic_path(out_path) as tmp:
        mx.nd.save(tmp, {name: mx.nd.array(value, dtype=value.dtype) for name, value in arrays.items()})
        written = write_record(out_path, record)
    return ImportResult(path=out_path, record_path=written, config=config, hf_config=hf_config, report=report,
                        num_classes=num_classes)
