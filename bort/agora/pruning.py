"""Step 6 of Agora's loop: which hyperparameter sets leave Θ after a round.

The author's wording is "sort the hyperparameter sets by accuracy; remove the hyperparameters belonging to the
longest common sequence, rooted at the first element". Our reading (documented in README.md, section "Agora"):
sort ascending by dev score, so the first element is the worst set; the "longest common sequence rooted at the
first element" is the maximal run of sets, starting at that element, whose score is the same as its score
(within `tolerance`). That run is removed. At least one set leaves per round, so there are at most |Θ| rounds,
which is where the |Θ|² factor in the paper's complexity bound comes from; when all scores tie, Θ empties and
the loop stops.
"""
from ..errors import ConfigError


def sort_by_score(keys, scores):
    """`keys` ordered by ascending score; ties keep the order of `keys` (the order of Θ)."""
    missing = [key for key in keys if key not in scores]
    if missing:
        raise ConfigError(f"no dev score for hyperparameter set(s) {missing}")
    return sorted(keys, key=lambda key: scores[key])  # sorted() is stable


def sets_to_prune(keys, scores, tolerance=0.0):
    """The keys removed this round: the worst-scoring set and every set tied with it (|score - worst| <= tolerance)."""
    if tolerance < 0:
        raise ConfigError(f"the pruning tolerance must be non-negative, got {tolerance}")
    ranked = sort_by_score(list(keys), scores)
    if not ranked:
        return []
    worst = scores[ranked[0]]
    run = []
    for key in ranked:
        if scores[key] - worst > tolerance:
            break
        run.append(key)
    return run


def prune(keys, scores, tolerance=0.0):
    """The keys that stay, in their original order."""
    removed = set(sets_to_prune(keys, scores, tolerance))
    return [key for key in keys if key not in removed]
