"""Reading, checking, loading and saving Bort parameter files.

This is the one place that knows the parameter names of the release. Files are Gluon `save_parameters` files
with structural names (those of GluonNLP's BERT, which the release's code used):

    word_embed.0.weight                                          (vocab, units)
    encoder.position_weight                                      (max_length, units)
    encoder.layer_norm.{gamma,beta}                              (units,)   embedding LayerNorm
    encoder.transformer_cells.{i}.attention_cell.proj_{query,key,value}.{weight,bias}
    encoder.transformer_cells.{i}.proj.{weight,bias}             attention output projection
    encoder.transformer_cells.{i}.layer_norm.{gamma,beta}        post-attention LayerNorm
    encoder.transformer_cells.{i}.ffn.ffn_{1,2}.{weight,bias}
    encoder.transformer_cells.{i}.ffn.layer_norm.{gamma,beta}
    decoder.0.{weight,bias}  decoder.2.{gamma,beta}  decoder.3.{weight,bias}     optional MLM head
    (decoder.3.weight is the word embedding, tied, and is saved twice)

Fine-tuned checkpoints prefix all of these with `bort.` and add `classifier.{1,3}.{weight,bias}`
(`classifier.{0,1}` when trained with dropout 0).
"""
import dataclasses
import logging
import os
import re
from typing import Optional

import mxnet as mx
import numpy as np

from .errors import ParamsError
from .io_utils import atomic_path

logger = logging.getLogger(__name__)

WORD_EMBED = "word_embed.0.weight"
POSITION_WEIGHT = "encoder.position_weight"
MODEL_PREFIX = "bort."
CLASSIFIER_PREFIX = "classifier."
DECODER_PREFIX = "decoder."
_CELL = re.compile(r"^encoder\.transformer_cells\.(\d+)\.")

# Per-layer parameter names (after `encoder.transformer_cells.{i}.`), in the release's order.
LAYER_PARAMETERS = tuple(
    [f"attention_cell.proj_{p}.{w}" for p in ("query", "key", "value") for w in ("weight", "bias")]
    + ["proj.weight", "proj.bias", "layer_norm.gamma", "layer_norm.beta",
       "ffn.ffn_1.weight", "ffn.ffn_1.bias", "ffn.ffn_2.weight", "ffn.ffn_2.bias",
       "ffn.layer_norm.gamma", "ffn.layer_norm.beta"])
EMBEDDING_PARAMETERS = (WORD_EMBED, POSITION_WEIGHT, "encoder.layer_norm.gamma", "encoder.layer_norm.beta")
DECODER_PARAMETERS = ("decoder.0.weight", "decoder.0.bias", "decoder.2.gamma", "decoder.2.beta",
                      "decoder.3.weight", "decoder.3.bias")


def release_parameter_names(num_layers, with_decoder=True):
    """The names a `BortModel` of `num_layers` layers saves, in the release's order."""
    names = list(EMBEDDING_PARAMETERS)
    for layer in range(num_layers):
        names += [f"encoder.transformer_cells.{layer}.{name}" for name in LAYER_PARAMETERS]
    if with_decoder:
        names += list(DECODER_PARAMETERS)
    return names


def mxnet_error_message(err):
    """The message of an MXNetError without the C++ frames it carries ("Traceback (most recent call last):",
    "File ...cc, line N") that would read as a Python crash."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith(("Traceback", "File ", "Stack trace", "["))]
    return kept[-1] if kept else ""


def read_params_file(path):
    """Load a `.params` file into a dict name -> NDArray, with errors a user can act on."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ParamsError(f"parameter file {path} does not exist")
    if os.path.isdir(path):
        raise ParamsError(f"parameter file {path} is a directory, expected a .params file")
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise ParamsError(f"{path} is not a readable MXNet parameter file (truncated or another format?): "
                          f"{mxnet_error_message(err)[:200]}") from None
    if not isinstance(loaded, dict) or not loaded:
        raise ParamsError(f"{path} holds no named parameters; expected a file written by "
                          "Block.save_parameters")
    return loaded


# MXNet's NDArray list file: a header, the arrays (each: magic, storage type, shape, context, dtype flag, data),
# then the names. Reading only the headers (seeking over the data) describes a file without loading it.
_LIST_MAGIC = 0x112
_ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)  # V2, V3 (numpy shape semantics)
_DTYPE_FLAGS = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}


@dataclasses.dataclass(frozen=True)
class ArrayShape:
    """What `read_params_shapes` gives per array: its shape and dtype, without the values."""
    shape: tuple
    dtype: object


def read_params_shapes(path):
    """name -> ArrayShape of a `.params` file from its headers alone (the data is skipped, not read): for
    describing a file cheaply. A file this parser does not follow is read in full by `read_params_file`."""
    import struct

    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            def unpack(fmt):
                size = struct.calcsize(fmt)
                data = handle.read(size)
                if len(data) != size:
                    raise ValueError("truncated")
                return struct.unpack(fmt, data)

            if unpack("<QQ")[0] != _LIST_MAGIC:
                raise ValueError("not an NDArray list")
            shapes = []
            for _ in range(unpack("<Q")[0]):
                magic, storage = unpack("<Ii")
                if magic not in _ARRAY_MAGICS or storage != 0:  # dense arrays only
                    raise ValueError("unsupported array")
                ndim = unpack("<i")[0]
                shape = unpack(f"<{ndim}q") if ndim > 0 else ()
                unpack("<ii")  # context
                dtype = np.dtype(_DTYPE_FLAGS[unpack("<i")[0]])
                handle.seek(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, os.SEEK_CUR)
                shapes.append(ArrayShape(tuple(int(d) for d in shape), dtype))
            names = []
            for _ in range(unpack("<Q")[0]):
                names.append(handle.read(unpack("<Q")[0]).decode("utf-8"))
            if len(names) != len(shapes) or not names:
                raise ValueError("unnamed arrays")
        return dict(zip(names, shapes))
    except (OSError, ValueError, KeyError, struct.error, UnicodeDecodeError):
        return read_params_file(path)  # its errors say what is wrong with the file


@dataclasses.dataclass
class ParamsInfo:
    """What a parameter file says about the model it was saved from."""
    path: str
    names: tuple
    prefix: str  # "" for a BortModel file, "bort." for a fine-tuned classifier checkpoint
    dtype: str
    vocab_size: Optional[int]
    units: Optional[int]
    hidden_size: Optional[int]
    num_layers: int
    max_length: Optional[int]
    has_decoder: bool
    num_classes: Optional[int]  # classifier checkpoints only

    def config_overrides(self):
        """The BortConfig fields this file determines (the number of heads is not recoverable)."""
        return {k: v for k, v in dict(vocab_size=self.vocab_size, units=self.units, hidden_size=self.hidden_size,
                                      num_layers=self.num_layers, max_length=self.max_length).items()
                if v is not None}


def describe_arrays(arrays, path):
    """Describe the arrays of a parameter file (shapes, layers, decoder, head) without building a model."""
    names = tuple(arrays)
    prefix = MODEL_PREFIX if any(n.startswith(MODEL_PREFIX) for n in names) else ""
    body = {n[len(prefix):]: a for n, a in arrays.items() if n.startswith(prefix)}
    if WORD_EMBED not in body and POSITION_WEIGHT not in body:
        raise ParamsError(f"{path} is not a Bort parameter file: it has neither {prefix}{WORD_EMBED} nor "
                          f"{prefix}{POSITION_WEIGHT} (first names: {', '.join(names[:5])})")
    layers = {int(m.group(1)) for m in map(_CELL.match, body) if m}
    ffn = body.get("encoder.transformer_cells.0.ffn.ffn_1.weight")
    embed = body.get(WORD_EMBED)
    position = body.get(POSITION_WEIGHT)
    head = sorted((n for n in names if n.startswith(CLASSIFIER_PREFIX) and n.endswith(".weight")),
                  key=lambda n: int(n.split(".")[1]))
    return ParamsInfo(
        path=os.fspath(path), names=names, prefix=prefix,
        dtype=str(np.dtype(next(iter(arrays.values())).dtype)),
        vocab_size=int(embed.shape[0]) if embed is not None else None,
        units=int(embed.shape[1]) if embed is not None else (int(position.shape[1]) if position is not None else None),
        hidden_size=int(ffn.shape[0]) if ffn is not None else None,
        num_layers=len(layers),
        max_length=int(position.shape[0]) if position is not None else None,
        has_decoder=any(n.startswith(DECODER_PREFIX) for n in body),
        num_classes=int(arrays[head[-1]].shape[0]) if head else None,
    )


@dataclasses.dataclass
class LoadReport:
    path: str
    loaded: list
    ignored: list  # in the file, deliberately not used (e.g. the MLM decoder when the model has none)
    initialized: list  # in the model, not in the file, left at their initial values (a new head)
    cast_from: Optional[str]

    def summary(self):
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.cast_from:
            parts.append(f"cast from {self.cast_from}")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} ({_abbreviate(self.ignored)})")
        if self.initialized:
            parts.append(f"newly initialised {len(self.initialized)} ({_abbreviate(self.initialized)})")
        return "; ".join(parts)


def _abbreviate(names, limit=4):
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")


def assign_parameters(block, arrays, info, ctx=None, allow_missing_head=True):
    """Put the arrays of a Bort parameter file (`info` = `describe_arrays(arrays, path)`) into a `BortModel`
    or `BortClassifier`, checking every name and shape. Files are read by `bort.checkpoint`
    (`open_checkpoint(path).load_into(block)`, or `bort.checkpoint.load_parameters(block, path)`).

    Accepted combinations:
      - the file's prefix ("" or "bort.") is mapped onto the block's;
      - `decoder.*` in the file is ignored when the model has no decoder;
      - `classifier.*` in the file is ignored when loading into a bare `BortModel`;
      - a `BortClassifier` loaded from a pretrained (head-less) file keeps its freshly initialised head
        (unless `allow_missing_head=False`).
    Anything else missing, unexpected or of the wrong shape raises `ParamsError` naming each parameter.
    float16 files load into float32 models and vice versa (values are cast). Returns a `LoadReport`.
    """
    ctx = ctx or mx.cpu()
    path = info.path
    targets = block._collect_params_with_prefix()
    block_prefix = MODEL_PREFIX if any(n.startswith(MODEL_PREFIX) for n in targets) else ""

    def to_block_name(name):
        if name.startswith(info.prefix):
            return block_prefix + name[len(info.prefix):]
        return name  # classifier.* keeps its name

    renamed = {to_block_name(n): a for n, a in arrays.items()}
    has_head = any(n.startswith(CLASSIFIER_PREFIX) for n in targets)
    has_decoder = any(n[len(block_prefix):].startswith(DECODER_PREFIX) for n in targets)

    ignored = sorted(n for n in renamed if n not in targets and (
        (n.startswith(CLASSIFIER_PREFIX) and not has_head)
        or (n[len(block_prefix):].startswith(DECODER_PREFIX) and not has_decoder)))
    unexpected = sorted(n for n in renamed if n not in targets and n not in ignored)

    # Tied parameters appear under several names; one of them in the file is enough.
    names_of = {}
    for name, param in targets.items():
        names_of.setdefault(id(param), []).append(name)
    missing, initialized, mismatched, loaded = [], [], [], []
    for name, param in targets.items():
        found = [n for n in names_of[id(param)] if n in renamed]
        if not found:
            if name.startswith(CLASSIFIER_PREFIX) and allow_missing_head and not any(
                    n.startswith(CLASSIFIER_PREFIX) for n in renamed):
                initialized.append(name)
            else:
                missing.append(name)
            continue
        value = renamed[found[0]]
        if param.shape is not None and all(param.shape) and tuple(param.shape) != tuple(value.shape):
            mismatched.append(f"{name}: file {tuple(value.shape)} vs model {tuple(param.shape)}")
            continue
        loaded.append(name)

    problems = []
    if mismatched:
        problems.append("wrong shape: " + "; ".join(mismatched))
    if missing:
        hint = (" (the file has no MLM decoder: build the model with use_decoder=False)"
                if all(n[len(block_prefix):].startswith(DECODER_PREFIX) for n in missing) else "")
        problems.append(f"missing from the file: {', '.join(missing)}{hint}")
    if unexpected:
        problems.append(f"not in the model: {', '.join(unexpected)}")
    if problems:
        described = (f"{info.num_layers} layers, units {info.units}, FFN {info.hidden_size}, "
                     f"vocab {info.vocab_size}, max_length {info.max_length}")
        raise ParamsError(f"{path} does not fit this model (file: {described}):\n  " + "\n  ".join(problems))

    done = set()
    for name in loaded:
        param = targets[name]
        if id(param) in done:
            continue
        done.add(id(param))
        value = renamed[[n for n in names_of[id(param)] if n in renamed][0]]
        if param._data is None:
            param.initialize(default_init=mx.init.Normal(0.02), ctx=ctx)
        param.set_data(value.astype(param.dtype, copy=False))
    for name in initialized:
        if targets[name]._data is None:
            targets[name].initialize(default_init=mx.init.Normal(0.02), ctx=ctx)
    report = LoadReport(path=os.fspath(path), loaded=loaded, ignored=ignored, initialized=initialized,
                        cast_from=info.dtype if any(np.dtype(targets[n].dtype) != np.dtype(info.dtype)
                                                    for n in loaded) else None)
    logger.info(report.summary())
    return report


def save_parameters(block, path):
    """Save with structural names, the tied weight written under both names like the release; atomic."""
    with atomic_path(path) as tmp:
        block.save_parameters(tmp, deduplicate=False)
    return path


def __getattr__(name):
    # Reading a file moved to `bort.checkpoint` (one reader for every consumer); these names keep working.
    if name in ("inspect_params", "load_parameters"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
