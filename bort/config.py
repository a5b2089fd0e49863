"""Bort architectures: the two the release defines, plus user-defined ones.

Naming follows GluonNLP: `units` is the model width (d_model) and `hidden_size` is the feed-forward width.
The released `bort.params` is `bort_4_8_768_1024`: 4 layers, 8 heads, FFN 768, width 1024.
"""
import dataclasses
from typing import Optional

from .errors import ConfigError


@dataclasses.dataclass(frozen=True)
class BortConfig:
    num_layers: int
    num_heads: int
    hidden_size: int  # feed-forward width
    units: int  # model width; the embedding size equals it
    max_length: int = 512
    dropout: float = 0.1
    # GluonNLP 0.8.3 (the release's stack) applied dropout to the word embedding and again after adding
    # positions; 0.10 dropped the first. Keeping it reproduces the release's training-time behaviour.
    embed_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    # The release's MLM head used BERTLayerNorm's fixed 1e-12, not the encoder's epsilon.
    mlm_layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    vocab_size: Optional[int] = None

    def __post_init__(self):
        for field in ("num_layers", "num_heads", "hidden_size", "units", "max_length"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        if self.units % self.num_heads:
            raise ConfigError(f"units ({self.units}) must be divisible by num_heads ({self.num_heads})")
        for field in ("dropout", "embed_dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ConfigError(f"{field} must be in [0, 1), got {getattr(self, field)!r}")
        if self.activation not in ("gelu", "relu"):
            raise ConfigError(f"activation must be 'gelu' or 'relu', got {self.activation!r}")
        if self.vocab_size is not None and (not isinstance(self.vocab_size, int) or self.vocab_size <= 0):
            raise ConfigError(f"vocab_size must be a positive integer, got {self.vocab_size!r}")

    def to_dict(self):
        return dataclasses.asdict(self)


PREDEFINED = {
    "bort_4_8_768_1024": dict(num_layers=4, num_heads=8, hidden_size=768, units=1024),
    "bort_2_16_512_1024": dict(num_layers=2, num_heads=16, hidden_size=512, units=1024),
}


def get_config(model_name="bort_4_8_768_1024", **overrides):
    """Return the `BortConfig` of a predefined architecture, with `overrides` applied.

    `model_name` may also be an existing `BortConfig` (overrides are applied to a copy) or None for a fully
    user-defined architecture given by `overrides`. The predefined table is never mutated.
    """
    if isinstance(model_name, BortConfig):
        base = model_name.to_dict()
    elif model_name is None:
        base = {}
    elif model_name in PREDEFINED:
        base = dict(PREDEFINED[model_name])
    else:
        raise ConfigError(f"unknown model {model_name!r}; predefined models: {', '.join(sorted(PREDEFINED))}")
    known = {f.name for f in dataclasses.fields(BortConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown model setting(s) {unknown}; valid settings: {sorted(known)}")
    base.update({k: v for k, v in overrides.items() if v is not None})
    missing = sorted(f.name for f in dataclasses.fields(BortConfig)
                     if f.default is dataclasses.MISSING and f.name not in base)
    if missing:
        raise ConfigError(f"a user-defined architecture needs {missing}")
    return BortConfig(**base)
