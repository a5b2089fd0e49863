"""Agora: the loop's bookkeeping with cheap deterministic candidates, the data-generating functions,
the task casting, and the scarce-data experiment with real tiny Bort models."""
import dataclasses
import json
import math
import os

import numpy as np
import pytest

from bort.agora.casting import TaskCasting
from bort.agora.drift import drift, edit_distance, max_edits
from bort.agora.grid import RELEASE_GRID, expand_grid, hparams_key, load_search_space
from bort.agora.loop import AgoraSettings, run_agora
from bort.agora.pruning import prune, sets_to_prune
from bort.agora.token_edits import IdVocabulary, MixedPerturbation, TokenEdits
from bort.errors import CheckpointError, ConfigError
from bort.tasks import Example, get_task

# ----------------------------------------------------------------------------------------------------------
# A fake world for the bookkeeping: a candidate's "model" is how many dev examples it gets right, a number
# fixed by its hyperparameters and the size of the training set it saw. Dev example i has gold "1"; a model
# with `correct` = k answers "1" for the first k dev examples and "0" for the rest, so its mistakes are dev[k:].
# ----------------------------------------------------------------------------------------------------------

DEV_SIZE = 20


def make_dev():
    return [Example(split="dev", idx=i, text_a=f"dev text {i}", label="1") for i in range(DEV_SIZE)]


def make_train(n=6):
    return [Example(split="train", idx=i, text_a=f"train text {i}", label=str(i % 2)) for i in range(n)]


class FakeTrainer:
    """correct = floor(base[lr] + per_point * (len(train) - initial train size)), clipped to [0, DEV_SIZE]."""

    def __init__(self, base, per_point=0.0, initial=6, fail_after=None):
        self.base, self.per_point, self.initial = base, per_point, initial
        self.calls, self.fail_after = [], fail_after

    def train(self, hparams, train_examples, budget, seed):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append((hparams_key(hparams), len(train_examples), budget, seed))
        correct = self.base[hparams["lr"]] + self.per_point * (len(train_examples) - self.initial)
        return {"correct": int(min(DEV_SIZE, max(0, math.floor(correct)))), "lr": hparams["lr"]}

    def predict(self, model, examples):
        return ["1" if int(str(ex.idx)) < model["correct"] else "0" if ex.split == "dev" else "0"
                for ex in examples]

    def save(self, model, directory):
        with open(os.path.join(directory, "model.json"), "w") as handle:
            json.dump(model, handle)

    def load(self, directory):
        with open(os.path.join(directory, "model.json")) as handle:
            return json.load(handle)


class FakeGenerator:
    """Exactly `points_per_example` points per source, text + a random suffix; remembers what it was shown."""

    def __init__(self):
        self.seen = []

    def generate(self, examples, points_per_example, rng):
        self.seen.extend(examples)
        return [(i, dataclasses.replace(ex, text_a=f"{ex.text_a} ~{int(rng.integers(1000))}"))
                for i, ex in enumerate(examples) for _ in range(points_per_example)]


class ConstantLabeller:
    """S that says "0" to everything (dev golds are all "1", so a leaked gold label would show); it remembers
    what it was shown."""

    def __init__(self, fail_once=False):
        self.seen, self.fail_once = [], fail_once

    def label(self, examples):
        if self.fail_once:
            self.fail_once = False
            raise KeyboardInterrupt("simulated interruption while labelling")
        self.seen.extend(examples)
        return ["0"] * len(examples)


SST = get_task("SST")


def lr_space(*lrs):
    return [{"lr": lr, "seed": 0} for lr in lrs]


def read_log(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def run_fake(tmp_path, trainer, space, settings, labeller=None, generator=None, name="run", train=None):
    train = train if train is not None else make_train()
    return run_agora(trainer, TaskCasting(SST), generator or FakeGenerator(), space, train, make_dev(),
                     str(tmp_path / name), settings, labeller=labeller or ConstantLabeller(), progress=False)


# ------------------------------------------------------------------------------------------------- pruning
def test_pruning_removes_the_run_tied_with_the_worst_set():
    keys = ["a", "b", "c", "d", "e"]
    scores = {"a": 0.5, "b": 0.3, "c": 0.3, "d": 0.9, "e": 0.30001}
    assert sets_to_prune(keys, scores) == ["b", "c"]
    assert prune(keys, scores) == ["a", "d", "e"]
    assert sets_to_prune(keys, scores, tolerance=1e-3) == ["b", "c", "e"]
    assert prune(keys, {k: 0.7 for k in keys}) == []
    assert prune(["x"], {"x": 0.1}) == []
    with pytest.raises(ConfigError):
        prune(keys, {"a": 1.0})


# ------------------------------------------------------------------------------------------------- the loop
def test_rounds_pruning_order_data_growth_and_budget(tmp_path):
    # Correct answers by lr: 0.1 -> 14, 0.2 -> 8, 0.3 -> 8, 0.4 -> 11, 0.5 -> 17. Training data does not matter
    # (per_point 0), so every round ranks the sets the same way.
    base = {0.1: 14, 0.2: 8, 0.3: 8, 0.4: 11, 0.5: 17}
    trainer = FakeTrainer(base)
    space = lr_space(0.1, 0.2, 0.3, 0.4, 0.5)
    settings = AgoraSettings(budget=7, points_per_mistake=2, seed=3)
    result = run_fake(tmp_path, trainer, space, settings)
    log = read_log(tmp_path / "run")
    rounds = [r for r in log if r["event"] == "round"]
    key = {lr: hparams_key({"lr": lr, "seed": 0}) for lr in base}
    # Round 0 removes the tied worst pair (0.2, 0.3), then 0.4, then 0.1, then 0.5 alone: 4 rounds.
    assert [r["pruned"] for r in rounds] == [[key[0.2], key[0.3]], [key[0.4]], [key[0.1]], [key[0.5]]]
    assert [r["theta_left"] for r in rounds] == [3, 2, 1, 0]
    assert [r["theta_before"] for r in rounds] == [5, 3, 2, 1]
    # Every round's best is lr 0.5 with 17/20 right: 3 mistakes, 2 points each.
    assert all(r["best_of_round"] == key[0.5] and r["mistakes"] == 3 and r["points_generated"] == 6 for r in rounds)
    assert [r["train_size"] for r in rounds] == [12, 18, 24, 30]
    assert [r["train_size_before"] for r in rounds] == [6, 12, 18, 24]
    assert rounds[0]["dev_scores"] == {key[lr]: base[lr] / DEV_SIZE for lr in base}
    # The candidates each round trained on exactly the data grown so far, in Θ order.
    assert [(k, n) for k, n, _, _ in trainer.calls] == (
        [(key[lr], 6) for lr in (0.1, 0.2, 0.3, 0.4, 0.5)] + [(key[lr], 12) for lr in (0.1, 0.4, 0.5)]
        + [(key[lr], 18) for lr in (0.1, 0.5)] + [(key[0.5], 24)])
    assert all(budget == 7 and seed == 0 for _, _, budget, seed in trainer.calls)
    assert result.trainings == 11 and result.budget_spent == 77 and result.rounds == 4
    assert result.train_size == 30 and len(result.added_points) == 24
    assert result.best_hparams == {"lr": 0.5, "seed": 0} and result.best_score == 17 / DEV_SIZE
    assert log[-1]["event"] == "done" and log[-1]["trainings"] == 11
    assert trainer.load(result.model_dir) == {"correct": 17, "lr": 0.5}
    # Only the final model and the state remain: round models are cleaned up.
    assert sorted(os.listdir(tmp_path / "run")) == ["best_model", "log.jsonl", "state.json"]


def test_final_model_is_the_best_on_dev_over_all_rounds(tmp_path):
    # More (S-labelled) data hurts here, so the best model is round 0's even though later rounds run.
    trainer = FakeTrainer({0.1: 12, 0.2: 15, 0.3: 10}, per_point=-0.25)
    result = run_fake(tmp_path, trainer, lr_space(0.1, 0.2, 0.3), AgoraSettings(budget=1, points_per_mistake=1))
    rounds = [r for r in read_log(tmp_path / "run") if r["event"] == "round"]
    assert len(rounds) == 3
    assert rounds[1]["best_of_round_score"] < rounds[0]["best_of_round_score"]
    assert result.best_round == 0 and result.best_hparams["lr"] == 0.2 and result.best_score == 15 / DEV_SIZE
    assert trainer.load(result.model_dir) == {"correct": 15, "lr": 0.2}


def test_replay_repeats_a_round_on_the_grown_data_before_pruning(tmp_path):
    # Each added point is worth half a correct answer, so the replayed pass ranks the sets on the grown data.
    # By hand (train size n, correct answers per lr 0.1/0.2/0.3, best's mistakes = points made):
    #   (0,0) n=6: 10/12/9 -> 8 points;  (0,1) n=14: 14/16/13 -> 4 points, prune 0.3
    #   (1,0) n=18: 16/18 -> 2;           (1,1) n=20: 17/19 -> 1, prune 0.1
    #   (2,0) n=21: 19 -> 1;              (2,1) n=22: 20 -> 0, prune 0.2
    trainer = FakeTrainer({0.1: 10, 0.2: 12, 0.3: 9}, per_point=0.5)
    settings = AgoraSettings(budget=5, points_per_mistake=1, replay=1)
    result = run_fake(tmp_path, trainer, lr_space(0.1, 0.2, 0.3), settings)
    rounds = [r for r in read_log(tmp_path / "run") if r["event"] == "round"]
    key = {lr: hparams_key({"lr": lr, "seed": 0}) for lr in (0.1, 0.2, 0.3)}
    assert [(r["round"], r["replay_pass"]) for r in rounds] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [r["theta_left"] for r in rounds] == [3, 2, 2, 1, 1, 0]  # pruning only after the replayed pass
    assert [r["pruned"] for r in rounds] == [[], [key[0.3]], [], [key[0.1]], [], [key[0.2]]]
    assert [r["points_generated"] for r in rounds] == [8, 4, 2, 1, 1, 0]
    assert [r["train_size"] for r in rounds] == [14, 18, 20, 21, 22, 22]
    assert [n for _, n, _, _ in trainer.calls] == [6] * 3 + [14] * 3 + [18] * 2 + [20] * 2 + [21, 22]
    assert result.trainings == 12 and result.budget_spent == 60
    assert result.best_score == 1.0 and result.best_round == 2


def test_dev_labels_never_reach_train(tmp_path):
    generator, labeller = FakeGenerator(), ConstantLabeller()
    trainer = FakeTrainer({0.1: 5, 0.2: 9})
    result = run_fake(tmp_path, trainer, lr_space(0.1, 0.2), AgoraSettings(budget=1, points_per_mistake=3),
                      labeller=labeller, generator=generator)
    dev_texts = {ex.text_a for ex in make_dev()}
    assert generator.seen and all(ex.label is None for ex in generator.seen)  # f sees no gold label
    assert labeller.seen and all(ex.label is None for ex in labeller.seen)  # nor does S
    added = result.added_points
    assert len(added) == (DEV_SIZE - 9) * 3 * 2  # round 0 and round 1, best has 9 right both times
    assert all(ex.label == "0" for ex in added)  # every dev gold is "1": only S's labels got in
    assert not dev_texts & {ex.text_a for ex in added}  # no dev point itself was copied
    assert all(ex.split == "train" and str(ex.idx).startswith("agora-r") for ex in added)


def test_without_labeller_the_round_best_candidate_labels(tmp_path):
    trainer = FakeTrainer({0.1: 5, 0.2: 9})
    result = run_agora(trainer, TaskCasting(SST), FakeGenerator(), lr_space(0.1, 0.2), make_train(), make_dev(),
                       str(tmp_path / "self"), AgoraSettings(budget=1, points_per_mistake=1), labeller=None,
                       progress=False)
    # The fake model answers "0" for anything that is not a dev example.
    assert result.added_points and all(ex.label == "0" for ex in result.added_points)


def _comparable(out_dir):
    log = [{k: v for k, v in record.items() if k != "time"} for record in read_log(out_dir)]
    with open(os.path.join(out_dir, "state.json")) as handle:
        state = json.load(handle)
    return log, state


@pytest.mark.parametrize("fail_after", [1, 4, 6, 8])
def test_resume_after_interruption_gives_the_same_run(tmp_path, fail_after):
    base = {0.1: 10, 0.2: 12, 0.3: 9, 0.4: 12}
    settings = AgoraSettings(budget=2, points_per_mistake=2, replay=1, seed=5)
    space = lr_space(0.1, 0.2, 0.3, 0.4)
    reference = run_fake(tmp_path, FakeTrainer(base, per_point=0.25), space, settings, name="reference")

    interrupted = FakeTrainer(base, per_point=0.25, fail_after=fail_after)
    with pytest.raises(KeyboardInterrupt):
        run_fake(tmp_path, interrupted, space, settings, name="resumed")
    resumed = FakeTrainer(base, per_point=0.25)
    result = run_fake(tmp_path, resumed, space, settings, name="resumed")
    # No finished candidate was trained twice, and the outcome is identical.
    assert len(interrupted.calls) + len(resumed.calls) == reference.trainings
    assert result == dataclasses.replace(reference, model_dir=result.model_dir, log_path=result.log_path)
    assert _comparable(tmp_path / "resumed") == _comparable(tmp_path / "reference")


def test_resume_after_interruption_while_labelling(tmp_path):
    space, settings = lr_space(0.1, 0.2, 0.3), AgoraSettings(budget=2, points_per_mistake=1)
    reference = run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12, 0.3: 9}), space, settings, name="reference")
    with pytest.raises(KeyboardInterrupt):
        run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12, 0.3: 9}), space, settings,
                 labeller=ConstantLabeller(fail_once=True), name="resumed")
    resumed = FakeTrainer({0.1: 10, 0.2: 12, 0.3: 9})
    result = run_fake(tmp_path, resumed, space, settings, name="resumed")
    assert [call[1] for call in resumed.calls] == [14, 14, 22]  # round 0 (n=6) was not retrained
    assert result.best_score == reference.best_score and result.trainings == reference.trainings
    assert _comparable(tmp_path / "resumed") == _comparable(tmp_path / "reference")


def test_a_finished_or_foreign_run_is_not_overwritten(tmp_path):
    space, settings = lr_space(0.1, 0.2), AgoraSettings(budget=2, points_per_mistake=1)
    first = run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12}), space, settings)
    again = FakeTrainer({0.1: 10, 0.2: 12})
    assert run_fake(tmp_path, again, space, settings) == first and again.calls == []
    with pytest.raises(CheckpointError, match="settings"):
        run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12}), space, AgoraSettings(budget=3, points_per_mistake=1))
    with pytest.raises(CheckpointError, match="train"):
        run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12}), space, settings, train=make_train(5))
    with pytest.raises(ConfigError, match="already holds"):
        run_agora(FakeTrainer({0.1: 10, 0.2: 12}), TaskCasting(SST), FakeGenerator(), space, make_train(),
                  make_dev(), str(tmp_path / "run"), settings, labeller=ConstantLabeller(), resume=False,
                  progress=False)


def test_max_rounds_and_point_cap(tmp_path):
    settings = AgoraSettings(budget=1, points_per_mistake=5, max_rounds=1, max_points_per_round=7)
    result = run_fake(tmp_path, FakeTrainer({0.1: 10, 0.2: 12, 0.3: 14}), lr_space(0.1, 0.2, 0.3), settings)
    assert result.rounds == 1 and result.trainings == 3 and len(result.added_points) == 7
    with pytest.raises(ConfigError, match="budget"):
        AgoraSettings(budget=0)


# ------------------------------------------------------------------------------------------------- the grid
def test_release_grid_and_grid_files(tmp_path):
    space = expand_grid(RELEASE_GRID)
    assert len(space) == 5 * 3 * 4 * 4 * 2 == 480
    assert len({hparams_key(h) for h in space}) == 480
    assert {h["lr"] for h in space} == {1e-4, 1e-5, 9e-6} and {h["batch_size"] for h in space} == {8, 16}
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps({"lr": [1e-5, 2e-5], "seed": [0, 1, 2]}))
    assert len(load_search_space(grid_file)) == 6
    listed = tmp_path / "sets.json"
    listed.write_text(json.dumps([{"lr": 1e-5, "seed": 3}, {"lr": 2e-5, "seed": 0}]))
    assert load_search_space(listed) == [{"lr": 1e-5, "seed": 3}, {"lr": 2e-5, "seed": 0}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": [1e-5]}))
    with pytest.raises(ConfigError, match="bad.json.*learning_rate"):
        load_search_space(bad)
    bad.write_text("{\n  \"lr\": [1e-5,]\n}")
    with pytest.raises(ConfigError, match="bad.json:2"):
        load_search_space(bad)


# ------------------------------------------------------------------------------------------- data generation
VOCAB = IdVocabulary(vocab_size=40, special_ids={"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 4},
                     mask_id=4, bos_id=0, eos_id=2, pad_id=1)
SPECIAL = {0, 1, 2, 3, 4}


def test_edit_distance_and_drift_measure():
    assert edit_distance([5, 6, 7], [5, 6, 7]) == 0
    assert edit_distance([5, 6, 7], [5, 7]) == 1  # a deletion
    assert edit_distance([5, 6, 7], [6, 5, 7]) == 2  # an adjacent swap
    assert edit_distance([5, 6, 7, 8], [9, 6, 7]) == 2  # a substitution and a deletion
    assert drift([5, 6, 7, 8], [5, 6, 7, 9]) == 0.25
    assert max_edits(10, 0.3) == 3 and max_edits(4, 0.2) == 0


@pytest.mark.parametrize("operations", [("delete",), ("swap",), ("substitute",), ("delete", "swap", "substitute")])
def test_token_edits_stay_within_the_drift_limit(operations):
    rng = np.random.default_rng(0)
    edits = TokenEdits(VOCAB, max_drift=0.3, operations=operations)
    sources = [[0] + list(rng.integers(5, 40, size=int(rng.integers(4, 20)))) + [2] for _ in range(200)]
    changed = 0
    for source, new in zip(sources, edits.perturb(sources, np.random.default_rng(1))):
        if new is None:
            assert max_edits(len(source), 0.3) < (2 if operations == ("swap",) else 1)
            continue
        changed += 1
        distance = edit_distance(source, new)
        assert 1 <= distance <= max_edits(len(source), 0.3)
        assert new[0] == 0 and new[-1] == 2 and not SPECIAL & set(new[1:-1])  # specials untouched, none added
        if operations == ("substitute",):
            assert len(new) == len(source)
        if operations == ("delete",):
            assert len(new) == len(source) - distance
    assert changed > 150
    # Same seed, same points.
    assert edits.perturb(sources, np.random.default_rng(1)) == edits.perturb(sources, np.random.default_rng(1))


def test_token_edits_refuse_what_cannot_change_within_the_limit():
    edits = TokenEdits(VOCAB, max_drift=0.2)
    assert edits.perturb([[5, 6, 7, 8]], np.random.default_rng(0)) == [None]  # 0.2 * 4 < 1 token
    with pytest.raises(ConfigError, match="max_drift"):
        TokenEdits(VOCAB, max_drift=0.0)
    with pytest.raises(ConfigError, match="operations"):
        TokenEdits(VOCAB, operations=("insert",))
    mixed = MixedPerturbation([TokenEdits(VOCAB, 0.5, ("delete",)), TokenEdits(VOCAB, 0.5, ("substitute",))])
    outputs = mixed.perturb([[5, 6, 7, 8, 9, 10]] * 100, np.random.default_rng(0))
    assert {len(o) < 6 for o in outputs} == {True, False}  # both perturbations were used


def _tiny_mlm(vocab_size=40, seed=0, favourite=None):
    import mxnet as mx

    from bort.model import get_bort_model
    mx.random.seed(seed)
    model, _ = get_bort_model(None, vocab_size=vocab_size, num_layers=1, num_heads=2, units=16, hidden_size=32,
                              max_length=16, dropout=0.0, embed_dropout=0.0)
    if favourite is not None:
        # A decoder bias that makes one token overwhelmingly likely shows that the refill follows the MLM.
        bias = np.zeros(vocab_size, dtype=np.float32)
        bias[favourite] = 50.0
        model.decoder[3].bias.set_data(mx.nd.array(bias))
    return model


def test_mlm_perturbation_masks_and_refills_within_the_limit():
    from bort.agora.mlm_perturbation import MLMPerturbation

    rng = np.random.default_rng(0)
    perturbation = MLMPerturbation(_tiny_mlm(), VOCAB, max_drift=0.25, top_k=10)
    sources = [list(rng.integers(5, 40, size=int(rng.integers(4, 30)))) for _ in range(40)]
    outputs = perturbation.perturb(sources, np.random.default_rng(3))
    for source, new in zip(sources, outputs):
        if len(source) < 4:
            assert new is None
            continue
        assert len(new) == len(source)
        changed = [p for p, (a, b) in enumerate(zip(source, new)) if a != b]
        assert 1 <= len(changed) <= max_edits(len(source), 0.25)
        assert all(p < 14 for p in changed)  # only inside the model's window (16 positions minus <s>, </s>)
        assert not SPECIAL & set(new)
    assert outputs == perturbation.perturb(sources, np.random.default_rng(3))


def test_mlm_perturbation_samples_from_the_model():
    from bort.agora.mlm_perturbation import MLMPerturbation

    perturbation = MLMPerturbation(_tiny_mlm(favourite=33), VOCAB, max_drift=0.5, top_k=0)
    outputs = perturbation.perturb([[5, 6, 7, 8, 9, 10, 11, 12]] * 20, np.random.default_rng(0))
    for new in outputs:
        refilled = [b for a, b in zip([5, 6, 7, 8, 9, 10, 11, 12], new) if a != b]
        assert refilled and set(refilled) == {33}
    from bort.model import get_bort_model
    headless, _ = get_bort_model(None, vocab_size=40, num_layers=1, num_heads=2, units=16, hidden_size=32,
                                 max_length=16, use_decoder=False)
    with pytest.raises(ConfigError, match="decoder"):
        MLMPerturbation(headless, VOCAB)


DEMO_VOCAB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "demo", "vocab")


def test_text_points_perturb_each_distinct_text_once():
    from bort.agora.text_points import TextPointGenerator
    from bort.tokenizer import BortTokenizer

    tokenizer = BortTokenizer.from_directory(DEMO_VOCAB)
    generator = TextPointGenerator(tokenizer, TokenEdits(tokenizer, max_drift=0.5, operations=("substitute",)))
    premise = "the film is not really dull and the cast is quite charming ."
    copa = Example(split="dev", idx=3, text_a="", options=((premise, "the story is clever ."),
                                                           (premise, "the plot is messy .")), option_keys=(0, 1))
    pair = Example(split="dev", idx=4, text_a="the ending is superb .", text_b="the dialogue is weak .")
    from bort.agora.text_points import build_text_generator
    with pytest.raises(ConfigError, match="masked language model"):
        build_text_generator(tokenizer, "mixed")
    points = generator.generate([copa, pair], 3, np.random.default_rng(0))
    assert sorted(i for i, _ in points) == [0, 0, 0, 1, 1, 1]
    for source_index, point in points:
        if source_index == 0:
            (a1, b1), (a2, b2) = point.options
            assert a1 == a2  # the shared premise got one perturbation, used by both options
            assert point.options != copa.options and point.option_keys == (0, 1)
        else:
            assert (point.text_a, point.text_b) != (pair.text_a, pair.text_b)
        for old, new in zip(
                [copa.options[0][0], copa.options[0][1], pair.text_a, pair.text_b],
                [point.options[0][0], point.options[0][1], None, None] if source_index == 0
                else [None, None, point.text_a, point.text_b]):
            if new is not None:
                assert len(tokenizer.encode_many([new])[0]) <= 2 * len(tokenizer.encode_many([old])[0])


# ------------------------------------------------------------------------------------------------- casting
def test_casting_of_every_head():
    from bort.agora.casting import TaskCasting as Casting

    sst = Casting(get_task("SST"))
    assert sst.is_mistake(Example("dev", 0, "x", label="1"), "0") and not sst.is_mistake(
        Example("dev", 0, "x", label="1"), "1")
    mnli = Casting(get_task("MNLI"))
    assert mnli.is_mistake(Example("dev", 0, "a", "b", label="neutral"), "entailment")
    stsb_train = [Example("train", i, "a", "b", label=v) for i, v in enumerate([0.5, 1.0, 3.0, 4.0, 4.5])]
    stsb = Casting(get_task("STS-B"), train_examples=stsb_train)
    assert stsb.regression_threshold == 3.0
    assert not stsb.is_mistake(Example("dev", 0, "a", "b", label=4.2), 3.5)  # both above the median
    assert stsb.is_mistake(Example("dev", 0, "a", "b", label=4.2), 2.5)
    with pytest.raises(ConfigError, match="threshold"):
        Casting(get_task("STS-B"))
    copa = Casting(get_task("COPA"))
    assert copa.is_mistake(Example("dev", 0, label=1, options=(("p", "a"), ("p", "b")), option_keys=(0, 1)), 0)
    multirc = Casting(get_task("MultiRC"))
    assert multirc.is_mistake(Example("dev", 0, label=(1, 0), options=(("p", "a"), ("p", "b"))), (1, 1))
    record = Casting(get_task("ReCoRD"))
    point = Example("dev", 0, label=("Paris", "paris"), options=(("q", "Paris"), ("q", "Rome")),
                    option_keys=("Paris", "Rome"))
    assert not record.is_mistake(point, "Paris") and record.is_mistake(point, "Rome")
    assert record.label_from_prediction(point, "Rome") == ("Rome",)
    # Generated training points survive the round trip through the run's state file.
    for casting, example in ((record, record.with_label(point, ("Rome",), "agora-r0-p0-1")),
                             (multirc, Example("train", "x", label=(1, 0), options=(("p", "a"), ("p", None)))),
                             (stsb, Example("train", "y", "a", "b", label=2.5))):
        assert casting.from_json(json.loads(json.dumps(casting.to_json(example)))) == example


# ------------------------------------------------------------------------------ real fine-tuning (bort.finetune)
DEMO_GLUE = os.path.join(os.path.dirname(DEMO_VOCAB), "glue")


def _demo_candidates(units=64):
    from bort.agora.finetune_adapter import FinetuneCandidates
    from bort.finetune.config import FinetuneConfig
    from bort.tokenizer import BortTokenizer

    config = FinetuneConfig(task_name="SST", data_dir=DEMO_GLUE, num_layers=1, num_heads=4, units=units,
                            hidden_size=2 * units, model_max_length=32, max_len=32, dropout=0.1, init="xavier",
                            weight_decay=0.0, dev_batch_size=100, predict=False, progress=False)
    return FinetuneCandidates(config, tokenizer=BortTokenizer.from_directory(DEMO_VOCAB))


def test_finetune_candidates_are_deterministic_and_round_trip(tmp_path):
    # A resumed Agora run equals an uninterrupted one only if training the same set twice gives the same model.
    candidates = _demo_candidates(units=16)
    train, dev = get_task("SST").read(DEMO_GLUE, "train")[:40], get_task("SST").read(DEMO_GLUE, "dev")[:30]
    hparams = {"lr": 1e-3, "seed": 3, "batch_size": 8, "warmup": 0.2, "wd": 0.01}
    first, second = (candidates.train(hparams, train, 48, seed=3) for _ in range(2))
    weights = [{name: p.data().asnumpy() for name, p in m._collect_params_with_prefix().items()}
               for m in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][name], weights[1][name]) for name in weights[0])
    other = candidates.train(hparams, train, 48, seed=4)
    assert not all(np.array_equal(weights[0][name], p.data().asnumpy())
                   for name, p in other._collect_params_with_prefix().items())
    candidates.save(first, str(tmp_path))
    reloaded = candidates.load(str(tmp_path))
    assert candidates.predict(reloaded, dev) == candidates.predict(first, dev)
    # The set's values reach the fine-tuning settings (and an unknown name is refused).
    config = candidates.hparams_config(hparams, seed=3)
    settings = (config.lr, config.seed, config.batch_size, config.warmup_ratio, config.weight_decay)
    assert settings == (1e-3, 3, 8, 0.2, 0.01)
    with pytest.raises(ConfigError, match="momentum"):
        candidates.hparams_config({"momentum": 0.9}, seed=0)


@pytest.mark.slow
def test_scarce_data_agora_beats_plain_finetuning_under_the_same_budget(tmp_path):
    """The demo sentiment task (labels follow opinion words, flipped by "not"), tiny Bort classifiers trained from
    scratch by bort.finetune's update step. S: one trained on 500 sentences. Candidates: 48 sentences. Agora
    over 3 hyperparameter sets vs. plain fine-tuning of the same 3 sets with the same total budget."""
    from bort.agora.baseline import grid_search
    from bort.agora.casting import ModelLabeller
    from bort.agora.text_points import TextPointGenerator

    task = get_task("SST")
    train_all, dev = task.read(DEMO_GLUE, "train"), task.read(DEMO_GLUE, "dev")[:100]
    scarce, held_out, ample = train_all[:48], train_all[200:300], train_all[300:]
    candidates = _demo_candidates()
    casting = TaskCasting(task)
    teacher = candidates.train({"lr": 1e-3, "batch_size": 32, "warmup": 0.1}, ample, 32 * 100, seed=0)
    teacher_dev = casting.score(dev, candidates.predict(teacher, dev))
    assert teacher_dev > 2 / 3  # "ok-ish"

    space = [{"lr": 1e-3, "seed": 0, "batch_size": 32, "warmup": 0.1}, {"lr": 1e-3, "seed": 1, "batch_size": 32,
             "warmup": 0.1}, {"lr": 5e-4, "seed": 0, "batch_size": 32, "warmup": 0.1}]
    generator = TextPointGenerator(candidates.tokenizer, TokenEdits(candidates.tokenizer, max_drift=0.25))
    result = run_agora(candidates, casting, generator, space, scarce, dev, str(tmp_path / "agora"),
                       AgoraSettings(budget=32 * 40, points_per_mistake=4), labeller=ModelLabeller(candidates, teacher,
                                                                                                   casting),
                       progress=False)
    baseline = grid_search(candidates, casting, space, scarce, dev, result.budget_spent)
    assert baseline.budget_per_set * len(space) == result.budget_spent  # the same total training budget

    agora_model = candidates.load(result.model_dir)
    agora_dev = casting.score(dev, candidates.predict(agora_model, dev))
    agora_held = casting.score(held_out, candidates.predict(agora_model, held_out))
    baseline_held = casting.score(held_out, candidates.predict(baseline.model, held_out))
    print(f"\nS dev {teacher_dev:.2f}; Agora dev {agora_dev:.2f} held-out {agora_held:.2f} ({result.trainings} "
          f"trainings, train grew {len(scarce)} -> {result.train_size}); plain fine-tuning dev "
          f"{baseline.best_score:.2f} held-out {baseline_held:.2f}")
    assert agora_dev == result.best_score  # the saved model is the one selected
    assert result.best_score > baseline.best_score + 0.05
    assert agora_held > baseline_held


def _load_script():
    import importlib.util

    path = os.path.join(os.path.dirname(DEMO_GLUE), "..", "..", "scripts", "agora.py")
    spec = importlib.util.spec_from_file_location("agora_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_runs_end_to_end_resumes_and_refuses_changed_settings(tmp_path, capsys):
    import mxnet as mx

    from bort.model import get_bort_model
    from bort.params import save_parameters

    script = _load_script()
    mx.random.seed(0)
    mlm, _ = get_bort_model(None, vocab_size=858, num_layers=1, num_heads=4, units=16, hidden_size=32,
                            max_length=32)
    mlm_path = str(tmp_path / "mlm.params")
    save_parameters(mlm, mlm_path)
    out = str(tmp_path / "run")
    argv = ["--task_name", "SST", "--data_dir", DEMO_GLUE, "--vocab", os.path.join(DEMO_VOCAB, "vocab.json"),
            "--merges", os.path.join(DEMO_VOCAB, "merges.txt"), "--num_layers", "1", "--num_heads", "4",
            "--units", "16", "--hidden_size", "32", "--model_max_length", "32", "--max_len", "32",
            "--train_limit", "16", "--dev_limit", "20", "--seeds", "0,1", "--lrs", "1e-3", "--wds", "0",
            "--warmups", "0.1", "--batch_sizes", "16", "--budget", "32", "--generator", "mixed",
            "--mlm_parameters", mlm_path, "--max_drift", "0.5", "--output_dir", out, "--progress", "false",
            "--compare_baseline", "true"]
    assert script.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trainings"] in (2, 3) and summary["budget_spent"] == 32 * summary["trainings"]
    assert summary["baseline"]["budget_per_set"] == summary["budget_spent"] // 2
    assert os.path.isfile(os.path.join(out, "best_model", "model.params"))
    records = read_log(out)
    assert records[-1]["event"] == "done" and records[0]["theta_before"] == 2
    assert records[0]["points_generated"] > 0 and records[0]["train_size"] > 16
    # The run is finished: the same command returns its result without training again.
    assert script.main(argv[:-2] + ["--compare_baseline", "false"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["best_score"] == summary["best_score"] and again["trainings"] == summary["trainings"]
    with pytest.raises(CheckpointError, match="settings"):
        script.main(argv + ["--budget", "64"])  # the last occurrence of a flag wins
