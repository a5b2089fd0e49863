"""The comparison Agora has to beat: plain fine-tuning of every hyperparameter set of the same Θ on the
original training set, given together the same total training budget Agora spent, the best set chosen on dev."""
import dataclasses
from typing import Any, Dict

from ..errors import ConfigError
from .grid import check_search_space, hparams_key


@dataclasses.dataclass(frozen=True)
class BaselineResult:
    best_hparams: dict
    best_score: float
    dev_scores: Dict[str, float]
    budget_per_set: int
    model: Any


def grid_search(trainer, task, search_space, train, dev, total_budget, seed=0):
    """Train each set once with `total_budget // len(search_space)` (at least 1) and keep the best on dev
    (ties: the earlier set)."""
    space = check_search_space(list(search_space))
    if total_budget < len(space):
        raise ConfigError(f"a total budget of {total_budget} cannot train {len(space)} sets")
    per_set = total_budget // len(space)
    scores, best = {}, None
    for hparams in space:
        model = trainer.train(dict(hparams), list(train), per_set, int(hparams.get("seed", seed)))
        score = float(task.score(dev, trainer.predict(model, dev)))
        scores[hparams_key(hparams)] = score
        if best is None or score > best[0]:
            best = (score, hparams, model)
    return BaselineResult(best_hparams=dict(best[1]), best_score=best[0], dev_scores=scores, budget_per_set=per_set,
                          model=best[2])
