"""One door to a Bort weights file: read it once, say what it holds, check it, and build the model.

`open_checkpoint(path)` reads a `.params` file (once) and returns a `Checkpoint`: the arrays, what they are
(encoder, MLM decoder, classifier head; shapes; dtype), the architecture the shapes fix, and the run's record,
the JSON file beside it (`model_bort_RTE.params` -> `model_bort_RTE.json`). Weights that are NaN or infinite
are refused, naming the tensors, unless `allow_nonfinite`.

The record says what the shapes cannot: the number of attention heads, the layer-norm epsilons, the task and
its label names, the pair layout the model was trained with, the sequence length, the vocabulary's identity.
Every checkpoint this package writes has one (`make_record` + `write_record`); every consumer reads it, and a
flag that contradicts it is an error naming both values unless forced. A file without a record (the
release's `bort.params`, or older checkpoints) still loads; what was assumed is printed as a note.
docs/checkpoints.md describes the record field by field.

`bort.params` stays the one place that knows the release's parameter names; this module is the one place
that reads parameter files.
"""
import dataclasses
import hashlib
import json
import os
import sys
from typing import Optional

import numpy as np

from .config import PREDEFINED, BortConfig, get_config
from .errors import CheckpointError, ConfigError, ParamsError
from .params import (
    CLASSIFIER_PREFIX,
    DECODER_PREFIX,
    assign_parameters,
    describe_arrays,
    read_params_file,
    read_params_shapes,
)

# What a file holds, decided by its names: the encoder alone, the encoder with its MLM decoder, or a fine-tuned
# classifier (encoder under `bort.` plus `classifier.*`).
ENCODER = "encoder"
MLM = "mlm"
CLASSIFIER = "classifier"

RECORD_FORMAT = "bort-checkpoint-record"
RECORD_VERSION = 1
DEFAULT_MODEL = "bort_4_8_768_1024"
SHAPE_FIELDS = ("vocab_size", "units", "hidden_size", "num_layers", "max_length")
# Fields that change what a trained model computes: a flag contradicting the record on these is an error.
# (dropout and embed_dropout only matter in training and may differ freely.)
COMPUTE_FIELDS = ("num_heads", "layer_norm_eps", "mlm_layer_norm_eps", "activation")
DEFAULT_CLASSIFIER_PAIR_LAYOUT = "bort_release"  # what fine-tuning uses unless told otherwise
DEFAULT_PAIR_LAYOUT = "roberta"


def _note(message):
    print(f"note: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------ the record
def record_path(params_path):
    """The record of `x.params` is `x.json`, beside it."""
    return os.path.splitext(os.fspath(params_path))[0] + ".json"


def read_record(params_path):
    """The record beside `params_path` as a dict, or None when there is none."""
    path = record_path(params_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint record ({err}); restore it or remove it (the "
                              "weights then load with the assumptions printed as notes)") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: a checkpoint record is a JSON object, found {type(record).__name__}")
    if "format_version" not in record:
        if "model_config" in record or "task" in record:
            return _upgrade_head_record(record)
        raise CheckpointError(f"{path} is not a Bort checkpoint record (no format_version); move it away from "
                              f"{params_path} or remove it")
    version = record["format_version"]
    if record.get("format") != RECORD_FORMAT or not isinstance(version, int):
        raise CheckpointError(f"{path}: format {record.get('format')!r} version {version!r} is not a Bort "
                              f"checkpoint record ({RECORD_FORMAT})")
    if version > RECORD_VERSION:
        raise CheckpointError(f"{path}: record format version {version} is newer than this package reads "
                              f"({RECORD_VERSION}); upgrade bort")
    return record


def _upgrade_head_record(record):
    """The head record fine-tuning wrote before the full record: task, labels and the architecture."""
    upgraded = dict(format=RECORD_FORMAT, format_version=0, kind=CLASSIFIER)
    if record.get("model_config"):
        upgraded["architecture"] = record["model_config"]
    for key in ("task", "head", "num_labels", "labels"):
        if record.get(key) is not None:
            upgraded[key] = record[key]
    if not upgraded.get("labels"):
        upgraded.pop("labels", None)
    return upgraded



def write_record(params_path, record):
    """Write `record` beside `params_path` (atomically); returns the record's path."""
    from .io_utils import atomic_open

    path = record_path(params_path)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    return path


def vocabulary_identity(tokenizer):
    """What identifies a vocabulary whatever file format it came in: its kind, size, special ids and a sha256
    over its content (byte-level BPE: the tokens in id order and the merges; SentencePiece: the model file)."""
    digest = hashlib.sha256()
    backend = tokenizer._backend  # the tokenizer's content; BortTokenizer has no public accessor for merges
    if tokenizer.backend_kind == "byte_level_bpe":
        vocabulary = backend.vocabulary
        payload = [vocabulary.idx_to_token, [list(pair) for pair in vocabulary.merges]]
        digest.update(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    else:
        with open(backend.model_file, "rb") as handle:
            digest.update(handle.read())
    return dict(format=tokenizer.backend_kind, size=int(tokenizer.vocab_size), sha256=digest.hexdigest(),
                special_ids={role: int(i) for role, i in tokenizer.special_ids.items()})


def base_record(kind, config, dtype, num_labels=None, vocabulary=None):
    """The fields every record has: the format, what the file holds (`kind`), the `BortConfig`, the weights'
    dtype, and when known the number of classes and the vocabulary's identity."""
    record = dict(format=RECORD_FORMAT, format_version=RECORD_VERSION, kind=kind, architecture=config.to_dict(),
                  dtype=str(np.dtype(dtype)))
    if num_labels is not None:
        record["num_labels"] = int(num_labels)
    if vocabulary is not None:
        record["vocabulary"] = vocabulary
    return record


def make_record(model, task=None, pair_layout=None, max_seq_length=None, tokenizer=None, vocabulary=None):
    """The record of `model` (a `BortModel` or `BortClassifier`): architecture, dtype, what the file holds, and,
    when given, the task (name, head, label names), the pair layout and length of the training features and the
    vocabulary's identity (from `tokenizer`, or `vocabulary` = `vocabulary_identity(tokenizer)` computed once)."""
    is_classifier = hasattr(model, "classifier") and hasattr(model, "bort")
    bort = model.bort if is_classifier else model
    kind = CLASSIFIER if is_classifier else (MLM if bort.use_decoder else ENCODER)
    first = next(iter(model.collect_params().values()))
    record = base_record(kind, bort.config, first.dtype, model.num_classes if is_classifier else None)
    if task is not None:
        record.update(task=task.name, head=task.head, num_labels=int(task.num_labels))
        if task.labels:
            record["labels"] = [str(label) for label in task.labels]
    if pair_layout is not None:
        record["pair_layout"] = pair_layout
    if max_seq_length is not None:
        record["max_seq_length"] = int(max_seq_length)
    if tokenizer is not None or vocabulary is not None:
        record["vocabulary"] = vocabulary or vocabulary_identity(tokenizer)
    return record


def _contradiction(what, given, recorded, where):
    return ConfigError(f"{what} {given} contradicts {where}, which records {recorded}; leave it out to use the "
                       f"recorded value, or pass --force to override the record")


def check_vocabulary(record, tokenizer, where, force=False):
    """Refuse a tokenizer whose vocabulary is not the one recorded (same size but other tokens or merges)."""
    recorded = (record or {}).get("vocabulary")
    if not recorded or not recorded.get("sha256"):
        return None
    given = vocabulary_identity(tokenizer)
    if given["sha256"] == recorded["sha256"]:
        return given
    message = (f"the vocabulary given ({given['format']}, {given['size']} tokens, sha256 {given['sha256'][:12]}...) "
               f"is not the one the model was trained with ({recorded.get('format')}, {recorded.get('size')} "
               f"tokens, sha256 {recorded['sha256'][:12]}... in {where})")
    if not force:
        raise ConfigError(message + "; pass the training vocabulary, or --force")
    _note(message + "; used anyway (--force)")
    return given


def check_record_task(checkpoint, task):
    """Raise CheckpointError when `checkpoint` was fine-tuned for a task other than `task.train_task`."""
    recorded = checkpoint.recorded("task")
    if recorded is None:
        return None  # e.g. a checkpoint of the original release: only the head's shape can be checked
    if recorded != task.train_task:
        raise CheckpointError(f"{checkpoint.path} was fine-tuned for {recorded} (see {checkpoint.record_file}); "
                              f"task {task.name} needs a model fine-tuned for {task.train_task}")
    return recorded


# ------------------------------------------------------------------------------------------------ the file
def find_nonfinite(arrays):
    """[(name, NaN count, infinite count)] for every array holding a NaN or an infinity."""
    found = []
    for name, array in arrays.items():
        values = array.asnumpy()
        # A float64 sum of float32/float16 values cannot overflow: it is finite exactly when every value is, and
        # twice as fast as np.isfinite(values).all(), which builds a boolean array (still asked when the sum is
        # not finite, for float64 weights whose sum could overflow).
        if (np.issubdtype(values.dtype, np.floating) and not np.isfinite(values.sum(dtype=np.float64))
                and not np.isfinite(values).all()):
            nan = int(np.isnan(values).sum())
            found.append((name, nan, int(values.size - np.isfinite(values).sum() - nan)))
    return found


def classifier_head_names(info):
    """The two Dense layers of a fine-tuned head, in order (`classifier.1`, `classifier.3` or `.0`, `.1`)."""
    indices = sorted({int(name.split(".")[1]) for name in info.names
                      if name.startswith(CLASSIFIER_PREFIX) and name.endswith(".weight")})
    if len(indices) != 2:
        raise ParamsError(f"{info.path}: a fine-tuned Bort head has two Dense layers (classifier.1 and classifier.3, "
                          f"or classifier.0 and classifier.1); found {len(indices)}: "
                          f"{', '.join(CLASSIFIER_PREFIX + str(i) for i in indices)}")
    for index in indices:
        for leaf in ("weight", "bias"):
            if f"{CLASSIFIER_PREFIX}{index}.{leaf}" not in info.names:
                raise ParamsError(f"{info.path}: {CLASSIFIER_PREFIX}{index}.{leaf} is missing")
    return tuple(f"{CLASSIFIER_PREFIX}{index}" for index in indices)


@dataclasses.dataclass
class Checkpoint:
    """A Bort `.params` file read once, with its record. Build models with `config()` + `build()`, or load the
    arrays into a model of your own with `load_into()`."""
    path: str
    arrays: dict  # name -> NDArray, exactly as in the file
    info: object  # bort.params.ParamsInfo: what the shapes say
    record: Optional[dict]  # the record beside the file, None if it has none
    nonfinite: list  # [(name, NaN count, infinite count)]
    notes: list = dataclasses.field(default_factory=list)  # what was assumed, each also printed once

    @property
    def record_file(self):
        return record_path(self.path)

    def recorded(self, key, default=None):
        return (self.record or {}).get(key, default)

    def note(self, message):
        if message not in self.notes:
            self.notes.append(message)
            _note(message)

    @property
    def kind(self):
        if self.info.num_classes is not None:
            return CLASSIFIER
        return MLM if self.info.has_decoder else ENCODER

    @property
    def head_names(self):
        return classifier_head_names(self.info) if self.info.num_classes is not None else ()

    def parts(self):
        """part -> names: 'encoder', 'mlm_decoder', 'classifier' (only the parts the file has)."""
        prefix = self.info.prefix
        parts = {}
        for name in self.arrays:
            if name.startswith(CLASSIFIER_PREFIX):
                part = "classifier"
            elif name[len(prefix):].startswith(DECODER_PREFIX):
                part = "mlm_decoder"
            else:
                part = "encoder"
            parts.setdefault(part, []).append(name)
        return parts

    # -------------------------------------------------------------------------------------- architecture
    def config(self, model_name=None, num_heads=None, force=False, **overrides):
        """The `BortConfig` of this file: sizes from the shapes, the rest from the record, else from
        `model_name` (default bort_4_8_768_1024) with a note. `num_heads` and `overrides` are flags: one that
        contradicts the shapes is an error, one that contradicts the record on what the model computes (heads,
        epsilons, activation) is an error unless `force`; dropout rates may differ."""
        info = self.info
        if info.vocab_size is None or info.max_length is None or info.hidden_size is None or not info.num_layers:
            raise ParamsError(f"{self.path}: incomplete Bort parameter file (vocab {info.vocab_size}, max_length "
                              f"{info.max_length}, FFN {info.hidden_size}, {info.num_layers} layers)")
        shapes = info.config_overrides()
        architecture = dict(self.recorded("architecture") or {})
        foreign = [f"{field} {architecture[field]} (file: {shapes[field]})" for field in SHAPE_FIELDS
                   if architecture.get(field) is not None and architecture[field] != shapes.get(field)]
        if foreign:
            raise CheckpointError(f"{self.record_file} does not describe {self.path}: it records "
                                  f"{', '.join(foreign)}; remove or replace the record")
        flags = {key: value for key, value in dict(overrides, num_heads=num_heads).items() if value is not None}
        known = {f.name for f in dataclasses.fields(BortConfig)}
        if set(flags) - known:
            raise ConfigError(f"unknown model setting(s) {sorted(set(flags) - known)}; valid settings: {sorted(known)}")
        for field in SHAPE_FIELDS:
            if field in flags and flags[field] != shapes[field]:
                raise ConfigError(f"{field} {flags[field]} contradicts {self.path}, whose shapes give {field} "
                                  f"{shapes[field]}; leave it out (the file decides its sizes)")
        settled = {}
        for field in sorted(known - set(SHAPE_FIELDS)):
            given, recorded = flags.get(field), architecture.get(field)
            if given is not None and recorded is not None and given != recorded and field in COMPUTE_FIELDS:
                if not force:
                    raise _contradiction(field, given, f"{field} {recorded}", self.record_file)
                self.note(f"{field} {given} instead of the recorded {recorded} (forced)")
            value = given if given is not None else recorded
            if value is not None:
                settled[field] = value
        base = model_name or DEFAULT_MODEL
        if "num_heads" not in settled:
            heads = PREDEFINED.get(base, {}).get("num_heads") if isinstance(base, str) else base.num_heads
            where = "its record has none" if self.record is not None else f"it has no record ({self.record_file})"
            self.note(f"the number of attention heads of {self.path} is unknown (shapes cannot tell it and {where}): "
                      f"assuming {heads}, {base}'s; pass --num_heads if that is wrong")
        return get_config(base, **dict(settled, **shapes))

    def labels(self, given=None, force=False):
        """Label names in class-id order: `given` (e.g. --labels), else the record's, else the class ids."""
        count = self.info.num_classes
        recorded = self.recorded("labels")
        if recorded is not None and len(recorded) != count:
            self.note(f"{self.record_file} lists {len(recorded)} labels but the head has {count} outputs; "
                      "the record's labels are not used")
            recorded = None
        if given is not None:
            if len(given) != count:
                raise ConfigError(f"--labels names {len(given)} labels but the checkpoint has {count} classes")
            if recorded is not None and list(given) != list(recorded):
                if not force:
                    raise _contradiction("--labels", ",".join(given), f"labels {','.join(recorded)}",
                                         self.record_file)
                self.note(f"labels {','.join(given)} instead of the recorded {','.join(recorded)} (forced)")
            return list(given)
        if recorded is not None:
            return [str(label) for label in recorded]
        return [str(i) for i in range(count or 0)]

    def pair_layout(self, given=None, force=False):
        """The pair layout to serve with: the one the model was trained with (the record), else `given`, else
        the fine-tuning default for a classifier ('bort_release') or 'roberta', with a note."""
        from .tokenizer.layout import check_pair_layout

        recorded = self.recorded("pair_layout")
        if given is not None:
            check_pair_layout(given)
            if recorded is not None and given != recorded:
                if not force:
                    raise _contradiction("--pair_layout", given, f"pair_layout {recorded} (the layout the model "
                                         "was trained with)", self.record_file)
                self.note(f"pair layout {given} instead of the recorded {recorded} (forced)")
            return given
        if recorded is not None:
            return recorded
        layout = DEFAULT_CLASSIFIER_PAIR_LAYOUT if self.kind == CLASSIFIER else DEFAULT_PAIR_LAYOUT
        self.note(f"no pair layout recorded for {self.path}: text pairs are built the '{layout}' way; pass "
                  "--pair_layout if the model was trained otherwise")
        return layout

    # -------------------------------------------------------------------------------------- models
    def load_into(self, block, ctx=None, allow_missing_head=True):
        """Put the weights into `block` (a `BortModel` or `BortClassifier`); returns a `bort.params.LoadReport`."""
        return assign_parameters(block, self.arrays, self.info, ctx=ctx, allow_missing_head=allow_missing_head)

    def build(self, kind=None, config=None, ctx=None):
        """The MXNet model for `kind` (default: what the file holds), every weight from the file.

        CLASSIFIER: `BortClassifier` (head Dropout layers as the file's names say); MLM: `BortModel` with its
        decoder; ENCODER: `BortModel` without one (any head or decoder in the file is ignored)."""
        import mxnet as mx

        from .model import BortClassifier, BortModel

        ctx = ctx or mx.cpu()
        kind = kind or self.kind
        config = config or self.config()
        if kind == CLASSIFIER:
            if self.info.num_classes is None:
                raise ParamsError(f"{self.path} has no classification head (classifier.* parameters); a "
                                  "fine-tuned checkpoint is needed")
            # classifier.1/3 means the head had Dropout layers in between (dropout > 0); classifier.0/1 means not.
            head_dropout = 0.1 if self.head_names[0] != f"{CLASSIFIER_PREFIX}0" else 0.0
            model = BortClassifier(BortModel(config, use_decoder=False), num_classes=self.info.num_classes,
                                   dropout=head_dropout)
        else:
            if kind == MLM and not self.info.has_decoder:
                raise ParamsError(f"{self.path} has no MLM decoder (decoder.* parameters); a pretrained model "
                                  "saved with its decoder is needed")
            model = BortModel(config, use_decoder=kind == MLM)
        model.initialize(mx.init.Zero(), ctx=ctx)  # every value is then loaded from the file
        self.load_into(model, ctx=ctx, allow_missing_head=False)
        return model

    # -------------------------------------------------------------------------------------- description
    def describe(self):
        """Lines for people: what the file holds and what its record says."""
        info = self.info
        parts = self.parts()
        architecture = self.recorded("architecture") or {}
        kinds = {ENCODER: "encoder", MLM: "encoder + MLM decoder",
                 CLASSIFIER: "fine-tuned classifier (bort. + classifier.)"}
        lines = [f"file:        {self.path}",
                 f"holds:       {kinds[self.kind]} ("
                 + ", ".join(f"{part} {len(names)} tensors" for part, names in parts.items()) + ")",
                 f"dtype:       {info.dtype}",
                 f"layers:      {info.num_layers}   units: {info.units}   FFN: {info.hidden_size}   "
                 f"positions: {info.max_length}   vocabulary: {info.vocab_size}",
                 f"heads:       {architecture.get('num_heads', 'not recorded (shapes cannot tell it)')}",
                 f"MLM decoder: {'yes' if info.has_decoder else 'no'}"]
        if info.num_classes is not None:
            lines.append(f"classifier:  {info.num_classes} outputs")
        if self.record is None:
            lines.append(f"record:      none ({self.record_file} does not exist)")
        else:
            lines.append(f"record:      {self.record_file} (format version {self.record.get('format_version')})")
            for key in ("task", "labels", "pair_layout", "max_seq_length"):
                if self.record.get(key) is not None:
                    value = self.record[key]
                    lines.append(f"  {key + ':':<16}{', '.join(value) if isinstance(value, list) else value}")
            vocabulary = self.record.get("vocabulary")
            if vocabulary:
                lines.append(f"  vocabulary:     {vocabulary.get('format')}, {vocabulary.get('size')} tokens, sha256 "
                             f"{str(vocabulary.get('sha256'))[:16]}...")
        if self.nonfinite:
            lines.append(f"NON-FINITE:  {len(self.nonfinite)} tensors hold NaN or infinite values:")
            lines.extend(f"  {name}: {nan} NaN, {inf} infinite" for name, nan, inf in self.nonfinite)
        else:
            lines.append("values:      all finite")
        return lines


def open_checkpoint(path, allow_nonfinite=False):
    """Read a Bort `.params` file once, with its record; see `Checkpoint`.

    Raises ParamsError for an unreadable or non-Bort file, and for NaN or infinite weights (naming the
    tensors) unless `allow_nonfinite`."""
    arrays = read_params_file(path)
    info = describe_arrays(arrays, path)
    nonfinite = find_nonfinite(arrays)
    if nonfinite and not allow_nonfinite:
        listed = "; ".join(f"{name} ({nan} NaN, {inf} infinite)" for name, nan, inf in nonfinite[:8])
        more = f"; and {len(nonfinite) - 8} more" if len(nonfinite) > 8 else ""
        raise ParamsError(f"{path} holds non-finite weights in {len(nonfinite)} tensors: {listed}{more}. The run "
                          "that wrote it diverged or the file is damaged (bort-inspect lists them); predict and "
                          "export load it anyway with --allow_nonfinite")
    return Checkpoint(path=os.fspath(path), arrays=arrays, info=info, record=read_record(path), nonfinite=nonfinite)


def opened(path_or_checkpoint, allow_nonfinite=False):
    """`path_or_checkpoint` itself when it is an opened `Checkpoint`, else `open_checkpoint` of it."""
    if isinstance(path_or_checkpoint, Checkpoint):
        return path_or_checkpoint
    return open_checkpoint(path_or_checkpoint, allow_nonfinite=allow_nonfinite)


def inspect_params(path):
    """What a parameter file's shapes say (`bort.params.ParamsInfo`), from its headers alone: the values are
    neither read nor checked, so describing a file before loading it does not read it twice."""
    return describe_arrays(read_params_shapes(path), path)


def load_parameters(block, path, ctx=None, allow_missing_head=True, allow_nonfinite=False):
    """Read `path` and load it into `block` (a `BortModel` or `BortClassifier`), checking every name and shape
    (see `bort.params.assign_parameters`). Returns the `LoadReport`."""
    checkpoint = open_checkpoint(path, allow_nonfinite=allow_nonfinite)
    return checkpoint.load_into(block, ctx=ctx, allow_missing_head=allow_missing_head)


def get_bort_model(model_name=DEFAULT_MODEL, vocab=None, vocab_size=None, params_path=None, use_decoder=True,
                   ctx=None, force=False, allow_nonfinite=False, **overrides):
    """Build a Bort model, optionally with the weights of a `.params` file; returns `(model, vocab)`.

    params_path: a `.params` file or an opened `Checkpoint`. With it, the sizes come from the file's shapes and
    the rest (heads, epsilons) from its record, else from `model_name` (None: bort_4_8_768_1024's) with a
    note; `overrides` that contradict the file are errors (see `Checkpoint.config`). Without it the architecture
    is `model_name` with `overrides` (e.g. `dropout=0.0`) and the weights are initialised as in pretraining,
    Normal(0.02). The vocabulary size comes from `vocab` (anything with `len()`), else `vocab_size`, else the
    file; they must agree.
    """
    import mxnet as mx

    from .model import BortModel

    ctx = ctx or mx.cpu()
    checkpoint = None if params_path is None else opened(params_path, allow_nonfinite)
    sizes = [("vocab", len(vocab))] if vocab is not None else []
    if vocab_size is not None:
        sizes.append(("vocab_size", vocab_size))
    if checkpoint is not None and checkpoint.info.vocab_size is not None:
        sizes.append((f"the word embedding of {checkpoint.path}", checkpoint.info.vocab_size))
    if not sizes:
        raise ConfigError("the vocabulary size is unknown: pass vocab, vocab_size or params_path")
    if len({size for _, size in sizes}) > 1:
        described = ", ".join(f"{name}: {size}" for name, size in sizes)
        raise ConfigError(f"vocabulary sizes disagree ({described})")
    if checkpoint is not None:
        config = checkpoint.config(model_name, force=force, **overrides)
    else:
        config = get_config(model_name, vocab_size=sizes[0][1], **overrides)
    model = BortModel(config, use_decoder=use_decoder)
    model.initialize(mx.init.Normal(0.02), ctx=ctx)
    if checkpoint is not None:
        checkpoint.load_into(model, ctx=ctx)
    return model, vocab


# ------------------------------------------------------------------------------------------------ exports
@dataclasses.dataclass
class ModelSource:
    """A checkpoint with its architecture settled and the part to use chosen (what an export or an inference
    run computes with)."""
    checkpoint: Checkpoint
    config: BortConfig
    kind: str  # ENCODER, MLM or CLASSIFIER

    @property
    def path(self):
        return self.checkpoint.path

    @property
    def arrays(self):
        return self.checkpoint.arrays

    @property
    def info(self):
        return self.checkpoint.info

    @property
    def head_names(self):
        return self.checkpoint.head_names if self.kind == CLASSIFIER else ()

    @property
    def labels(self):
        """A classifier's label names from the record (None without them)."""
        if self.kind != CLASSIFIER or not self.checkpoint.recorded("labels"):
            return None
        return self.checkpoint.labels()

    def body(self):
        """name -> numpy array of the Bort model's own parameters (without the `bort.` prefix or the head)."""
        prefix = self.info.prefix
        return {name[len(prefix):]: array.asnumpy() for name, array in self.arrays.items()
                if name.startswith(prefix) and not name.startswith(CLASSIFIER_PREFIX)}

    def head(self):
        """((dense weight, bias), (output weight, bias)) of a classifier checkpoint, as numpy arrays."""
        return tuple((self.arrays[f"{layer}.weight"].asnumpy(), self.arrays[f"{layer}.bias"].asnumpy())
                     for layer in self.head_names)

    def build_model(self, ctx=None):
        """The MXNet model for this source, weights loaded, in float32 (the parity reference)."""
        return self.checkpoint.build(self.kind, self.config, ctx)


def open_source(params_path, model_name=None, num_heads=None, with_mlm=None, force=False, allow_nonfinite=False):
    """Open a checkpoint and decide what an export of it carries: the classifier of a fine-tuned file, else the
    MLM decoder if the file has one (`with_mlm` None) or as `with_mlm` says, else the encoder alone.
    `params_path` may be an opened `Checkpoint`."""
    checkpoint = opened(params_path, allow_nonfinite)
    config = checkpoint.config(model_name, num_heads=num_heads, force=force)
    info = checkpoint.info
    if info.num_classes is not None:
        if with_mlm:
            raise ConfigError(f"{checkpoint.path} is a fine-tuned classifier; it exports with its classification "
                              "head, not the MLM head (leave --with-mlm off)")
        classifier_head_names(info)  # the head's names are checked now, before anything is written
        kind = CLASSIFIER
    elif with_mlm is None:
        kind = MLM if info.has_decoder else ENCODER
    elif with_mlm:
        if not info.has_decoder:
            raise ConfigError(f"--with-mlm: {checkpoint.path} has no MLM decoder (decoder.* parameters); export "
                              "without --with-mlm, or use a pretraining checkpoint saved with the decoder")
        kind = MLM
    else:
        kind = ENCODER
    return ModelSource(checkpoint=checkpoint, config=config, kind=kind)
