"""The search space Ξ: a grid of `BortConfig` fields, expanded into candidate architectures.

The paper's space (a third-party reading of arXiv 2010.10499, see docs/extraction.md): A heads ∈ {4, 8, 12, 16},
D layers ∈ {2, 4, 6, 8, 10, 12}, H width ∈ {512, 768, 1024}, I feed-forward ∈ {256, 512, 768, 1024, 3072}, with the
combinations whose H is not divisible by A skipped. A user grid is a JSON file holding either a grid
{"num_layers": [...], "num_heads": [...], ...} or a list of candidates [{"num_layers": 2, ...}, ...], with any
`BortConfig` fields except `vocab_size` (that comes from the teacher). Fields the grid leaves out are taken from
the base configuration (the teacher's). Impossible combinations are kept aside with the reason.
"""
import dataclasses
import itertools
import json
import os

from ..config import BortConfig
from ..errors import ConfigError

#: GluonNLP names of the paper's symbols: D = num_layers, A = num_heads, H = units, I = hidden_size (FFN).
SYMBOLS = (("num_layers", "D"), ("num_heads", "A"), ("units", "H"), ("hidden_size", "I"))
PAPER_GRID = {"num_heads": [4, 8, 12, 16], "num_layers": [2, 4, 6, 8, 10, 12], "units": [512, 768, 1024],
              "hidden_size": [256, 512, 768, 1024, 3072]}
#: The released Bort in the paper's coordinates (D=4, A=8, H=1024, I=768).
RELEASED_BORT = {"num_layers": 4, "num_heads": 8, "units": 1024, "hidden_size": 768}
GRID_FIELDS = tuple(f.name for f in dataclasses.fields(BortConfig) if f.name != "vocab_size")


def candidate_key(fields):
    """A readable, unique name: 'D4-A8-H1024-I768', then any other varied field as 'name=value'."""
    parts = [f"{symbol}{fields[name]}" for name, symbol in SYMBOLS if name in fields]
    parts += [f"{name}={fields[name]}" for name in sorted(fields) if name not in dict(SYMBOLS)]
    return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class Candidate:
    key: str
    fields: dict  # the grid's fields only
    config: BortConfig  # the full architecture (base configuration + fields)


@dataclasses.dataclass
class SearchSpace:
    candidates: list  # valid Candidates, in grid order
    rejected: list  # (fields, reason) of the combinations BortConfig refuses
    source: str

    def __len__(self):
        return len(self.candidates)

    def by_key(self):
        return {candidate.key: candidate for candidate in self.candidates}


def _check_values(name, values, where):
    if name not in GRID_FIELDS:
        hint = " (it comes from the teacher)" if name == "vocab_size" else ""
        raise ConfigError(f"{where}: {name!r} is not a BortConfig field{hint}; valid fields: {', '.join(GRID_FIELDS)}")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {name!r} must map to a non-empty list of values, got {values!r}")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{where}: {name!r} lists a value twice: {values!r}")


def expand_grid(grid, where="grid"):
    """A grid {field: [values]} -> list of field dicts (the product, in the grid's field order)."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: expected a non-empty object of field -> list of values")
    for name, values in grid.items():
        _check_values(name, values, where)
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[name] for name in names))]


def build_space(combinations, base_config, source):
    """Validate every combination against `BortConfig` (on top of `base_config`) and drop the duplicates."""
    candidates, rejected, seen = [], [], set()
    base = base_config.to_dict()
    for fields in combinations:
        for name in fields:
            if name not in GRID_FIELDS:
                raise ConfigError(f"{source}: {name!r} is not a BortConfig field; valid fields: "
                                  f"{', '.join(GRID_FIELDS)}")
        try:
            config = BortConfig(**dict(base, **fields))
        except (ConfigError, TypeError) as err:
            rejected.append((dict(fields), str(err)))
            continue
        key = candidate_key(fields)
        if key in seen:
            raise ConfigError(f"{source}: candidate {key} appears twice")
        seen.add(key)
        candidates.append(Candidate(key, dict(fields), config))
    if not candidates:
        reasons = "; ".join(sorted({reason for _, reason in rejected})) or "the grid is empty"
        raise ConfigError(f"{source}: no valid candidate architecture ({reasons})")
    return SearchSpace(candidates, rejected, source)


def paper_space(base_config):
    return build_space(expand_grid(PAPER_GRID, "the paper's grid"), base_config, "the paper's search space")


def load_space(path, base_config):
    """A user grid from a JSON file (grid object or list of candidates); errors name the file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"search space file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"search space file {path} is not valid JSON: line {err.lineno}: {err.msg}") from None
    return space_from_spec(spec, base_config, path)


def space_from_spec(spec, base_config, source="search space"):
    if isinstance(spec, dict):
        return build_space(expand_grid(spec, source), base_config, source)
    if isinstance(spec, list) and spec and all(isinstance(item, dict) for item in spec):
        return build_space([dict(item) for item in spec], base_config, source)
    raise ConfigError(f"{source}: expected a grid object {{\"num_layers\": [...], ...}} or a non-empty list of "
                      f"candidate objects, got {type(spec).__name__}")
