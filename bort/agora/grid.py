"""The hyperparameter search space Θ: a finite list of hyperparameter sets, from a grid or a JSON file.

A hyperparameter set is a plain dict (`{"seed": 0, "lr": 1e-05, "wd": 10.0, "warmup": 0.45, "batch_size": 8}`);
its `hparams_key` is a stable string used in logs, state files and pruning. The default grid is the one the
release's README recommends for Bort (5 x 3 x 4 x 4 x 2 = 480 sets).
"""
import itertools
import json
import os

from ..errors import ConfigError

#: The release README's "initial set of hyperparameters" for Bort.
RELEASE_GRID = {
    "seed": [0, 1, 2, 3, 4],
    "lr": [1e-4, 1e-5, 9e-6],
    "wd": [0.0, 10.0, 100.0, 350.0],
    "warmup": [0.35, 0.40, 0.45, 0.50],
    "batch_size": [8, 16],
}
KNOWN_HPARAMS = ("seed", "lr", "wd", "warmup", "batch_size")
_INTEGER_HPARAMS = ("seed", "batch_size")


def hparams_key(hparams):
    """Stable, human-readable identity of a hyperparameter set: `batch_size=8,lr=1e-05,...` (sorted names)."""
    return ",".join(f"{name}={hparams[name]!r}" for name in sorted(hparams))


def _check_value(name, value, where):
    if name in _INTEGER_HPARAMS:
        if isinstance(value, bool) or not isinstance(value, int) or (name == "batch_size" and value <= 0):
            raise ConfigError(f"{where}: {name} must be a{' positive' if name == 'batch_size' else 'n'} integer, "
                              f"got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    value = float(value)
    if name == "lr" and value <= 0:
        raise ConfigError(f"{where}: lr must be positive, got {value!r}")
    if name == "wd" and value < 0:
        raise ConfigError(f"{where}: wd must be non-negative, got {value!r}")
    if name == "warmup" and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: warmup must be a ratio in [0, 1], got {value!r}")
    return value


def expand_grid(grid, where="grid"):
    """All combinations of `grid` (name -> list of values), in lexicographic order of the values as listed,
    names sorted. Unknown names are an error (a typo would silently be ignored by the trainer)."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: expected a non-empty object mapping hyperparameter names to value lists")
    unknown = sorted(set(grid) - set(KNOWN_HPARAMS))
    if unknown:
        raise ConfigError(f"{where}: unknown hyperparameter(s) {unknown}; known: {list(KNOWN_HPARAMS)}")
    names = sorted(grid)
    values = []
    for name in names:
        column = grid[name]
        if not isinstance(column, list) or not column:
            raise ConfigError(f"{where}: {name} must be a non-empty list of values, got {column!r}")
        checked = [_check_value(name, value, where) for value in column]
        if len(set(checked)) != len(checked):
            raise ConfigError(f"{where}: {name} lists a value twice: {column!r}")
        values.append(checked)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def check_search_space(sets, where="search space"):
    """Validate an explicit list of hyperparameter sets (all with the same names, no duplicates)."""
    if not isinstance(sets, list) or not sets:
        raise ConfigError(f"{where}: expected a non-empty list of hyperparameter sets")
    checked, seen = [], set()
    names = None
    for index, hparams in enumerate(sets):
        label = f"{where}[{index}]"
        if not isinstance(hparams, dict) or not hparams:
            raise ConfigError(f"{label}: expected an object of hyperparameters, got {hparams!r}")
        unknown = sorted(set(hparams) - set(KNOWN_HPARAMS))
        if unknown:
            raise ConfigError(f"{label}: unknown hyperparameter(s) {unknown}; known: {list(KNOWN_HPARAMS)}")
        if names is None:
            names = set(hparams)
        elif set(hparams) != names:
            raise ConfigError(f"{label}: has {sorted(hparams)}, but the first set has {sorted(names)}")
        clean = {name: _check_value(name, hparams[name], label) for name in sorted(hparams)}
        key = hparams_key(clean)
        if key in seen:
            raise ConfigError(f"{label}: duplicate hyperparameter set {key}")
        seen.add(key)
        checked.append(clean)
    return checked


def load_search_space(path):
    """Θ from a JSON file: either a grid object `{"lr": [...], "seed": [...]}` or a list of sets
    `[{"lr": 1e-5, "seed": 0}, ...]` (that order is kept)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the grid file ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if isinstance(content, dict):
        return expand_grid(content, where=path)
    return check_search_space(content, where=path)
