"""The teacher T: a Bort-format `.params` file with its MLM decoder, plus its `BortConfig`.

T is the maximum point of the extraction (docs/extraction.md, "Readings"): every candidate's p* and i* are taken
relative to T's, and e* is the cross-entropy of a candidate's MLM distribution against T's. Any model this package
loads can be T: a `bort_*` file, a user-defined Bort-shaped model, or a Hugging Face BERT/RoBERTa checkpoint after
conversion to the Bort format. The configuration comes from `--teacher_config`: a predefined name, a JSON object
(inline or a file) of `BortConfig` fields; the shapes the file determines (layers, widths, vocabulary, positions)
are read from it and must agree with the configuration, and so must the record this package writes beside a
checkpoint (`x.json` next to `x.params`); the number of heads must come from one of them.
"""
import dataclasses
import json
import os

from ..config import PREDEFINED, BortConfig
from ..errors import ConfigError, ParamsError
from ..params import inspect_params

#: Shapes of teachers the paper used or could have used (RoBERTa's vocabulary of 50265 tokens).
TEACHER_SHAPES = dict(
    {name: dict(fields) for name, fields in PREDEFINED.items()},
    roberta_24_1024_16=dict(num_layers=24, num_heads=16, hidden_size=4096, units=1024, vocab_size=50265),
    roberta_12_768_12=dict(num_layers=12, num_heads=12, hidden_size=3072, units=768, vocab_size=50265),
)


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    params_path: str  # None for a teacher given by its configuration only (surrogates without training)
    config: BortConfig

    def description(self):
        c = self.config
        return (f"D{c.num_layers}-A{c.num_heads}-H{c.units}-I{c.hidden_size} (vocab {c.vocab_size}) from "
                f"{self.params_path or 'its configuration only'}")


def parse_config_spec(spec):
    """`--teacher_config`: a predefined name, inline JSON, or a JSON file -> dict of BortConfig fields."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return dict(spec)
    text = str(spec).strip()
    if text in TEACHER_SHAPES:
        return dict(TEACHER_SHAPES[text])
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--teacher_config is not valid JSON: {err.msg} at column {err.colno}") from None
    elif os.path.isfile(text):
        try:
            with open(text, encoding="utf-8") as handle:
                fields = json.load(handle)
        except json.JSONDecodeError as err:
            raise ConfigError(f"teacher configuration {text} is not valid JSON: line {err.lineno}: {err.msg}") from None
    else:
        raise ConfigError(f"--teacher_config {text!r} is neither a known name ({', '.join(sorted(TEACHER_SHAPES))}), "
                          "inline JSON nor an existing JSON file")
    if not isinstance(fields, dict):
        raise ConfigError(f"--teacher_config must be a JSON object of BortConfig fields, got {type(fields).__name__}")
    known = {f.name for f in dataclasses.fields(BortConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"--teacher_config has unknown field(s) {unknown}; valid fields: {sorted(known)}")
    return fields


def load_teacher_spec(params_path=None, config_spec=None):
    """Check the teacher file and configuration together; raise an error naming what does not fit."""
    fields = parse_config_spec(config_spec)
    if params_path is not None:
        info = inspect_params(params_path)  # ParamsError for a missing, unreadable or non-Bort file
        if info.prefix:
            raise ParamsError(f"{params_path} is a fine-tuned classifier checkpoint; the teacher must be a pretrained "
                              "Bort-format model with its MLM decoder (e.g. the output of pretraining or of the "
                              "Hugging Face import)")
        if not info.has_decoder:
            raise ParamsError(f"{params_path} has no MLM decoder (decoder.* parameters); e* compares MLM "
                              "distributions, so the teacher needs its decoder")
        for name, value in info.config_overrides().items():
            if name in fields and fields[name] != value:
                raise ConfigError(f"--teacher_config says {name}={fields[name]} but {params_path} has {name}={value}")
            fields[name] = value
        # A checkpoint written by this package records its whole architecture (heads included) beside it.
        from ..checkpoint import read_record

        known = {f.name for f in dataclasses.fields(BortConfig)}
        recorded = {k: v for k, v in ((read_record(params_path) or {}).get("architecture") or {}).items() if k in known}
        for name, value in recorded.items():
            if name in fields and fields[name] != value:
                raise ConfigError(f"--teacher_config says {name}={fields[name]} but the record beside {params_path} "
                                  f"says {name}={value}")
            fields[name] = value
    if "num_heads" not in fields:
        raise ConfigError("the teacher's number of heads is unknown (no record beside the file says it): pass "
                          "--teacher_config with \"num_heads\" (e.g. '{\"num_heads\": 16}' or a predefined name "
                          "such as roberta_24_1024_16)")
    missing = [name for name in ("num_layers", "units", "hidden_size", "vocab_size") if name not in fields]
    if missing:
        raise ConfigError(f"--teacher_config lacks {missing} and there is no --teacher_params file to read them from")
    return TeacherSpec(os.fspath(params_path) if params_path is not None else None, BortConfig(**fields))
