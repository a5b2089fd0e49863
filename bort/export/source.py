"""The Bort side of an export: a `.params` file, what it holds, and the MXNet model that computes with it."""
import dataclasses

from ..config import BortConfig, get_config
from ..errors import ConfigError, ParamsError
from ..params import CLASSIFIER_PREFIX, inspect_params, read_params_file

# What an export carries, decided by the file and --with-mlm.
ENCODER = "encoder"  # sequence output only (HF: BertModel)
MLM = "mlm"  # sequence output and masked-LM logits (HF: BertForMaskedLM)
CLASSIFIER = "classifier"  # fine-tuned checkpoint: sequence output and class logits (HF: BertForSequenceClassification)


@dataclasses.dataclass
class BortSource:
    path: str
    arrays: dict  # name -> NDArray, exactly as in the file
    info: object  # bort.params.ParamsInfo
    config: BortConfig
    kind: str  # ENCODER, MLM or CLASSIFIER
    head_names: tuple = ()  # classifier checkpoints: the two Dense layers, e.g. ("classifier.1", "classifier.3")

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
        """The MXNet model for this file, weights loaded, in float32 (the parity reference)."""
        import mxnet as mx

        from ..model import BortClassifier, BortModel
        from ..params import load_parameters

        ctx = ctx or mx.cpu()
        if self.kind == CLASSIFIER:
            # classifier.1/3 means the head had Dropout layers in between (dropout > 0); classifier.0/1 means not.
            head_dropout = 0.1 if self.head_names[0] != f"{CLASSIFIER_PREFIX}0" else 0.0
            model = BortClassifier(BortModel(self.config, use_decoder=False), num_classes=self.info.num_classes,
                                   dropout=head_dropout)
        else:
            model = BortModel(self.config, use_decoder=self.kind == MLM)
        model.initialize(mx.init.Zero(), ctx=ctx)  # every value is then loaded from the file
        load_parameters(model, self.path, ctx=ctx, allow_missing_head=False)
        return model


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


def open_source(params_path, model_name="bort_4_8_768_1024", num_heads=None, with_mlm=None):
    """Read a Bort `.params` file and decide what the export carries.

    The sizes come from the file; the number of heads cannot (it does not change any shape), so it comes from
    `model_name` unless `num_heads` is given. `with_mlm`: None means "if the file has the MLM decoder".
    """
    arrays = read_params_file(params_path)
    info = inspect_params(params_path, arrays)
    if info.vocab_size is None or info.max_length is None or info.hidden_size is None or not info.num_layers:
        raise ParamsError(f"{params_path}: incomplete Bort parameter file (vocab {info.vocab_size}, max_length "
                          f"{info.max_length}, FFN {info.hidden_size}, {info.num_layers} layers)")
    overrides = info.config_overrides()
    if num_heads is not None:
        overrides["num_heads"] = num_heads
    config = get_config(model_name, **overrides)
    head_names = ()
    if info.num_classes is not None:
        if with_mlm:
            raise ConfigError(f"{params_path} is a fine-tuned classifier; it exports with its classification head, "
                              "not the MLM head (leave --with-mlm off)")
        kind = CLASSIFIER
        head_names = classifier_head_names(info)
    elif with_mlm is None:
        kind = MLM if info.has_decoder else ENCODER
    elif with_mlm:
        if not info.has_decoder:
            raise ConfigError(f"--with-mlm: {params_path} has no MLM decoder (decoder.* parameters); export "
                              "without --with-mlm, or use a pretraining checkpoint saved with the decoder")
        kind = MLM
    else:
        kind = ENCODER
    return BortSource(path=str(params_path), arrays=arrays, info=info, config=config, kind=kind,
                      head_names=head_names)
