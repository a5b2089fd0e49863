"""Agora's loop (docs/agora.md), resumable, with a JSON-lines log of every round.

    while Θ is not empty:
        train one candidate per hyperparameter set in Θ on train (+ the points added so far); score each on dev
        take the best candidate of the round; its dev mistakes (task.is_mistake) are the seeds
        f makes points near the seeds (from their text only: gold labels are stripped first)
        S labels the new points (the round's best candidate when no S is given); they join train
        [replay: repeat the above `replay` more times with the same Θ before pruning]
        prune Θ (pruning.py); remember the best candidate seen so far
    return the best candidate on dev over all rounds

Outputs under `out_dir`: `state.json` (rewritten atomically after every candidate and every round), `log.jsonl`,
`models/` (the round's best and the overall best so far), and `best_model/` when the run is complete.
A rerun with the same arguments resumes where the state says and gives the same result, provided the trainer
is deterministic. Dev labels never reach train: generators and S only see `task.without_label(example)`.
"""
import dataclasses
import hashlib
import json
import os
import shutil
from typing import Any, List, Optional

import numpy as np

from ..errors import ConfigError
from ..io_utils import atomic_directory
from ..training.logs import JsonlLogger, truncate_log
from ..training.run_state import read_run_state, write_run_state
from .grid import check_search_space, hparams_key
from .pruning import prune

STATE_FILE, LOG_FILE, MODELS_DIR, BEST_MODEL_DIR = "state.json", "log.jsonl", "models", "best_model"
STATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class AgoraSettings:
    """budget: passed to every candidate's training (the adapter reads it as training examples processed).
    points_per_mistake: points f makes from each dev mistake. replay: extra passes of a round with the same Θ
    (and the data grown by the previous pass) before pruning. prune_tolerance: scores within this of the worst
    count as tied with it. max_rounds: stop early after this many rounds (None: until Θ is empty).
    max_points_per_round: keep at most this many generated points per pass (a random subset). seed: seeds f's
    random generator (each pass draws from its own stream, so resuming does not shift it)."""
    budget: int
    points_per_mistake: int = 4
    replay: int = 0
    prune_tolerance: float = 0.0
    max_rounds: Optional[int] = None
    max_points_per_round: Optional[int] = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.budget, int) or self.budget <= 0:
            raise ConfigError(f"budget must be a positive integer, got {self.budget!r}")
        if self.points_per_mistake < 0:
            raise ConfigError(f"points_per_mistake must be >= 0, got {self.points_per_mistake}")
        if self.replay < 0:
            raise ConfigError(f"replay must be >= 0, got {self.replay}")
        if self.prune_tolerance < 0:
            raise ConfigError(f"prune_tolerance must be >= 0, got {self.prune_tolerance}")
        if self.max_rounds is not None and self.max_rounds < 1:
            raise ConfigError(f"max_rounds must be >= 1 or None, got {self.max_rounds}")
        if self.max_points_per_round is not None and self.max_points_per_round < 0:
            raise ConfigError(f"max_points_per_round must be >= 0 or None, got {self.max_points_per_round}")


@dataclasses.dataclass(frozen=True)
class AgoraResult:
    best_hparams: dict
    best_score: float
    best_round: int
    model_dir: str
    rounds: int
    trainings: int
    budget_spent: int
    train_size: int
    added_points: List[Any]
    log_path: str


def _digest(task, examples):
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(task.to_json(example), sort_keys=True, default=str).encode("utf-8"))
    return f"{len(examples)} examples, sha256 {digest.hexdigest()[:16]}"


def _fingerprint(settings, search_space, task, train, dev):
    return {"settings": dataclasses.asdict(settings), "search_space": [hparams_key(h) for h in search_space],
            "train": _digest(task, train), "dev": _digest(task, dev)}


class _Run:
    def __init__(self, trainer, task, generator, labeller, settings, search_space, train, dev, out_dir,
                 progress):
        self.trainer, self.task, self.generator, self.labeller = trainer, task, generator, labeller
        self.settings, self.train, self.dev = settings, list(train), list(dev)
        self.search_space = check_search_space(list(search_space))
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.state_path = os.path.join(self.out_dir, STATE_FILE)
        self.log_path = os.path.join(self.out_dir, LOG_FILE)
        self.progress = progress
        self.fingerprint = _fingerprint(settings, self.search_space, task, self.train, self.dev)

    # ------------------------------------------------------------------------------------------ state
    def _new_state(self):
        return {"version": STATE_VERSION, "fingerprint": self.fingerprint, "round": 0, "pass": 0,
                "theta": [hparams_key(h) for h in self.search_space], "scores": {}, "pass_best": None,
                "best": None, "added": [], "trainings": 0, "log_lines": 0, "done": False}

    def _load_state(self, resume):
        state = read_run_state(self.state_path, STATE_VERSION, self.fingerprint, "an Agora run", resume,
                               "resume it (--resume true) or choose another output directory")
        if state is None:
            return self._new_state()
        self._truncate_log(state["log_lines"])
        return state

    def _truncate_log(self, lines):
        truncate_log(self.log_path, lines, self.state_path)

    def _save_state(self, state):
        write_run_state(self.state_path, state)

    def _log(self, state, **record):
        JsonlLogger(self.log_path).log(**record)
        state["log_lines"] += 1

    # ------------------------------------------------------------------------------------------ models
    def _model_dir(self, name):
        return os.path.join(self.out_dir, MODELS_DIR, name)

    def _save_model(self, model, name):
        with atomic_directory(self._model_dir(name), force=True) as tmp:
            self.trainer.save(model, tmp)
        return name

    def _drop_models(self, state):
        """Delete model directories the state no longer refers to."""
        keep = {entry["model"] for entry in (state["pass_best"], state["best"]) if entry}
        root = os.path.join(self.out_dir, MODELS_DIR)
        if os.path.isdir(root):
            for name in os.listdir(root):
                if name not in keep and not name.startswith("."):
                    shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    # ------------------------------------------------------------------------------------------ the loop
    def run(self, resume=True):
        os.makedirs(self.out_dir, exist_ok=True)
        state = self._load_state(resume)
        by_key = {hparams_key(h): h for h in self.search_space}
        while not state["done"]:
            if not state["theta"] or (self.settings.max_rounds is not None
                                      and state["round"] >= self.settings.max_rounds):
                self._finish(state)
                break
            self._train_pass(state, by_key)
            self._end_pass(state)
        return self._result(state, by_key)

    def _train_data(self, state):
        return self.train + [self.task.from_json(point) for point in state["added"]]

    def _train_pass(self, state, by_key):
        train = self._train_data(state)
        pending = [key for key in state["theta"] if key not in state["scores"]]
        bar = None
        if self.progress and pending:
            from bort.progress import tqdm
            bar = tqdm(total=len(state["theta"]), initial=len(state["theta"]) - len(pending), unit="candidate",
                       desc=f"Agora round {state['round']} pass {state['pass']}")
        for key in pending:
            hparams = by_key[key]
            seed = int(hparams.get("seed", self.settings.seed))
            model = self.trainer.train(dict(hparams), train, self.settings.budget, seed)
            score = float(self.task.score(self.dev, self.trainer.predict(model, self.dev)))
            state["trainings"] += 1
            state["scores"][key] = score
            best = state["pass_best"]
            if best is None or score > best["score"]:
                name = f"r{state['round']:03d}-p{state['pass']:02d}-{len(state['scores']) - 1:04d}"
                state["pass_best"] = {"key": key, "score": score, "model": self._save_model(model, name)}
            self._save_state(state)
            self._drop_models(state)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(best=f"{state['pass_best']['score']:.4f}")
        if bar is not None:
            bar.close()

    def _end_pass(self, state):
        settings, task = self.settings, self.task
        pass_best = state["pass_best"]
        model = self.trainer.load(self._model_dir(pass_best["model"]))
        predictions = self.trainer.predict(model, self.dev)
        mistakes = [self.dev[i] for i, prediction in enumerate(predictions) if task.is_mistake(self.dev[i], prediction)]
        seeds = [task.without_label(example) for example in mistakes]
        rng = np.random.default_rng([settings.seed, state["round"], state["pass"]])
        generated = [point for _, point in self.generator.generate(seeds, settings.points_per_mistake, rng)]
        if settings.max_points_per_round is not None and len(generated) > settings.max_points_per_round:
            chosen = np.sort(rng.choice(len(generated), size=settings.max_points_per_round, replace=False))
            generated = [generated[i] for i in chosen]
        if self.labeller is not None:
            labels = list(self.labeller.label(generated)) if generated else []
        else:
            predictions = self.trainer.predict(model, generated) if generated else []
            labels = [task.label_from_prediction(point, prediction)
                      for point, prediction in zip(generated, predictions)]
        if len(labels) != len(generated):
            raise ConfigError(f"the labelling model returned {len(labels)} labels for {len(generated)} points")
        train_before = len(self.train) + len(state["added"])
        prefix = f"agora-r{state['round']}-p{state['pass']}"
        state["added"].extend(task.to_json(task.with_label(point, label, f"{prefix}-{n}"))
                              for n, (point, label) in enumerate(zip(generated, labels)))

        best = state["best"]
        if best is None or pass_best["score"] > best["score"]:
            state["best"] = dict(pass_best, round=state["round"], **{"pass": state["pass"]})
        theta_before = list(state["theta"])
        replaying = state["pass"] < settings.replay
        if not replaying:
            state["theta"] = prune(theta_before, state["scores"], settings.prune_tolerance)
        self._log(state, event="round", round=state["round"], replay_pass=state["pass"], theta_before=len(theta_before),
                  theta_left=len(state["theta"]), pruned=[k for k in theta_before if k not in state["theta"]],
                  dev_scores=dict(state["scores"]), best_of_round=pass_best["key"],
                  best_of_round_score=pass_best["score"],
                  best_so_far=state["best"]["key"], best_so_far_score=state["best"]["score"], mistakes=len(mistakes),
                  points_generated=len(generated), train_size_before=train_before,
                  train_size=len(self.train) + len(state["added"]), trainings=state["trainings"],
                  budget_spent=state["trainings"] * settings.budget)
        if replaying:
            state["pass"] += 1
        else:
            state["round"] += 1
            state["pass"] = 0
        state["scores"], state["pass_best"] = {}, None
        self._save_state(state)
        self._drop_models(state)

    def _finish(self, state):
        if state["best"] is None:
            raise ConfigError("Agora finished without training any candidate (empty search space?)")
        source = self._model_dir(state["best"]["model"])
        target = os.path.join(self.out_dir, BEST_MODEL_DIR)
        with atomic_directory(target, force=True) as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        state["done"] = True
        self._log(state, event="done", best=state["best"]["key"], best_score=state["best"]["score"],
                  best_round=state["best"]["round"], rounds=state["round"], trainings=state["trainings"],
                  budget_spent=state["trainings"] * self.settings.budget,
                  train_size=len(self.train) + len(state["added"]))
        self._save_state(state)
        shutil.rmtree(os.path.join(self.out_dir, MODELS_DIR), ignore_errors=True)

    def _result(self, state, by_key):
        best = state["best"]
        return AgoraResult(best_hparams=dict(by_key[best["key"]]), best_score=best["score"],
                           best_round=best["round"], model_dir=os.path.join(self.out_dir, BEST_MODEL_DIR),
                           rounds=state["round"], trainings=state["trainings"],
                           budget_spent=state["trainings"] * self.settings.budget,
                           train_size=len(self.train) + len(state["added"]),
                           added_points=[self.task.from_json(p) for p in state["added"]], log_path=self.log_path)


def run_agora(trainer, task, generator, search_space, train, dev, out_dir, settings, labeller=None,
              resume=True, progress=True):
    """Run (or resume) Agora; see the module docstring. `labeller` None means the weaker variant where each
    round's best candidate labels the points generated from its own mistakes."""
    if not train:
        raise ConfigError("Agora needs a non-empty training set")
    if not dev:
        raise ConfigError("Agora needs a non-empty dev set: it drives both data generation and pruning")
    return _Run(trainer, task, generator, labeller, settings, search_space, train, dev, out_dir, progress).run(resume)
