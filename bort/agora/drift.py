"""How far a generated point is from the point it was made from.

Drift is the token-level Levenshtein distance (insertions, deletions and substitutions each cost 1, so an
adjacent swap costs 2) divided by the length of the original sequence. Generators promise `drift <= max_drift`;
the tests check that promise with this independent measure.
"""


def edit_distance(original, new):
    """Levenshtein distance between two sequences of token ids."""
    original, new = list(original), list(new)
    previous = list(range(len(new) + 1))
    for i, token in enumerate(original, start=1):
        current = [i] + [0] * len(new)
        for j, other in enumerate(new, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token != other))
        previous = current
    return previous[-1]


def drift(original, new):
    """edit_distance / len(original); 0 for two empty sequences."""
    if not len(original):
        return 0.0 if not len(new) else float("inf")
    return edit_distance(original, new) / len(original)


def max_edits(length, max_drift):
    """The most token edits a sequence of `length` tokens may receive under `max_drift` (floor, never above)."""
    # The epsilon keeps e.g. 0.3 * 10 from flooring to 2 through float rounding.
    return int(max_drift * length + 1e-9)
