"""Shared training pieces: schedule, weight-decay groups, clipping, atomic checkpoints, the single-process
stand-in for Horovod."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from bort.distributed import init_distributed
from bort.errors import CheckpointError, ConfigError
from bort.model import BortClassifier, get_bort_model
from bort.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from bort.training.logs import JsonlLogger
from bort.training.optim import clip_gradients, clipping_factor, global_grad_norm, make_trainer, trainable_parameters
from bort.training.schedule import WarmupLinearSchedule


def tiny_classifier(seed=0):
    mx.random.seed(seed)
    model, _ = get_bort_model(None, vocab_size=30, num_layers=1, units=16, hidden_size=8, num_heads=2,
                              max_length=16, use_decoder=False, dropout=0.0, embed_dropout=0.0)
    classifier = BortClassifier(model, num_classes=2, dropout=0.0)
    classifier.classifier.initialize(mx.init.Normal(0.02))
    return classifier


def make_batches(count, seed=1):
    rng = np.random.RandomState(seed)
    return [(mx.nd.array(rng.randint(0, 30, size=(4, 6))), mx.nd.array(rng.randint(0, 2, size=4)))
            for _ in range(count)]


def train_steps(classifier, trainer, batches):
    params = trainable_parameters(classifier)
    loss_fn = mx.gluon.loss.SoftmaxCELoss()
    for ids, labels in batches:
        with autograd.record():
            loss = loss_fn(classifier(ids), labels).mean()
        loss.backward()
        clip_gradients(params, 1.0)
        trainer.update(1)


def test_schedule_matches_the_release_formula():
    schedule = WarmupLinearSchedule(base_lr=1e-4, total_steps=100, warmup_ratio=0.1)
    assert schedule(1) == pytest.approx(1e-5)
    assert schedule(10) == pytest.approx(1e-4)
    assert schedule(55) == pytest.approx(1e-4 * (1 - 45 / 90))
    assert schedule(100) == 1e-7 and schedule(150) == 1e-7  # the floor past the end
    rates = [schedule(s) for s in range(1, 101)]
    assert max(rates) == pytest.approx(1e-4) and rates.index(max(rates)) == 9
    with pytest.raises(ConfigError):
        WarmupLinearSchedule(1e-4, 0)


def test_no_weight_decay_on_layer_norm_and_bias():
    classifier = tiny_classifier()
    make_trainer(classifier, "bertadam", 1e-3, weight_decay=0.01)
    for param in trainable_parameters(classifier):
        expected = 0.0 if param.name.endswith(("gamma", "beta", "bias")) else 1.0
        assert param.wd_mult == expected, param.name
    with pytest.raises(ConfigError, match="unknown optimizer"):
        make_trainer(classifier, "adagrad-ish")


def test_clipping_bounds_the_global_norm():
    classifier = tiny_classifier()
    params = trainable_parameters(classifier)
    with autograd.record():
        loss = (classifier(mx.nd.array([[1, 2, 3]])) * 1000).sum()
    loss.backward()
    before = global_grad_norm(params)
    assert before > 1.0
    returned = clip_gradients(params, 1.0)
    assert returned == pytest.approx(before)
    assert global_grad_norm(params) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("kernel", [False, True])
def test_global_norm_of_many_small_gradients_matches_float64(dtype, kernel, monkeypatch):
    """A word-embedding-sized gradient of small values: one float32 accumulator per array came out 5% low at full
    size (51M elements of about 1e-3); the norm clipping uses must be the true one. Both ways: MXNet's operators
    and Bort's `bort_sum_squares` kernel (float32 gradients; float16 always takes MXNet's)."""
    import bort.training.optim as optim
    from bort.kernels import load_kernels

    if kernel:
        load_kernels()
        if dtype == "float32":  # the kernel, not the slices' BLAS dot, must compute it
            monkeypatch.setattr(mx.nd, "dot", None)
    else:
        monkeypatch.setattr(optim, "kernels_loaded", lambda: False)
    rng = np.random.RandomState(0)
    values = [rng.normal(0, 1e-3, size=shape) for shape in ((4_000_000,), (1000, 300), (7,))]
    if dtype == "float16":
        values = [value * 100 for value in values]  # inside float16's range of normal numbers
    params = []
    for index, value in enumerate(values):
        param = gluon.Parameter(f"p{index}", shape=value.shape, dtype=dtype)
        param.initialize(ctx=mx.cpu())
        param.grad()[:] = value.astype(dtype)
        params.append(param)
    exact = np.sqrt(sum((value.astype(dtype).astype(np.float64) ** 2).sum() for value in values))
    assert global_grad_norm(params) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["bertadam", "lamb", "adam"])
def test_clipping_through_the_optimizer_rescaling_equals_clipping_the_gradients(optimizer):
    # The trainers pass the clipping factor to Trainer.update instead of scaling every gradient first.
    models = [tiny_classifier(), tiny_classifier()]
    trainers = [make_trainer(model, optimizer, 1e-2) for model in models]
    loss_fn = mx.gluon.loss.SoftmaxCELoss()
    norms = []
    for ids, labels in make_batches(3):
        for way, (model, trainer) in enumerate(zip(models, trainers)):
            params = trainable_parameters(model)
            with autograd.record():
                loss = loss_fn(model(ids), labels).sum() * 100
            loss.backward()
            if way == 0:
                norms.append(clip_gradients(params, 0.5))
                trainer.update(1)
            else:
                norm = global_grad_norm(params)
                trainer.update(1.0 / clipping_factor(norm, 0.5))
    assert min(norms) > 0.5  # clipping was active at every step
    assert clipping_factor(0.2, 0.5) == 1.0 and clipping_factor(float("nan"), 0.5) == 1.0
    for (name, a), (_, b) in zip(sorted(models[0]._collect_params_with_prefix().items()),
                                 sorted(models[1]._collect_params_with_prefix().items())):
        np.testing.assert_allclose(a.data().asnumpy(), b.data().asnumpy(), rtol=1e-6, atol=1e-7, err_msg=name)


def test_checkpoint_resume_continues_exactly(tmp_path):
    batches = make_batches(6)
    straight = tiny_classifier()
    train_steps(straight, make_trainer(straight, "bertadam", 1e-3), batches)

    interrupted = tiny_classifier()
    trainer = make_trainer(interrupted, "bertadam", 1e-3)
    train_steps(interrupted, trainer, batches[:3])
    save_checkpoint(str(tmp_path), 3, interrupted, trainer, {"epoch": 0, "position": 12})
    resumed = tiny_classifier(seed=99)  # other initial weights: everything must come from the checkpoint
    trainer = make_trainer(resumed, "bertadam", 1e-3)
    state = load_checkpoint(latest_checkpoint(str(tmp_path)), resumed, trainer)
    assert state == {"epoch": 0, "position": 12, "step": 3}
    train_steps(resumed, trainer, batches[3:])
    for (name, a), (_, b) in zip(sorted(resumed._collect_params_with_prefix().items()),
                                 sorted(straight._collect_params_with_prefix().items())):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy(), err_msg=name)


def test_checkpoints_are_complete_or_absent(tmp_path):
    classifier = tiny_classifier()
    trainer = make_trainer(classifier, "bertadam", 1e-3)
    for step in (1, 2, 3, 4):
        save_checkpoint(str(tmp_path), step, classifier, trainer, keep=2)
    assert [step for step, _ in list_checkpoints(str(tmp_path))] == [3, 4]
    # A directory left by a killed writer (no state.json) is never picked up.
    os.makedirs(tmp_path / "checkpoint-00000009")
    (tmp_path / "checkpoint-00000009" / "model.params").write_bytes(b"partial")
    assert latest_checkpoint(str(tmp_path)).endswith("checkpoint-00000004")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    broken = tmp_path / "checkpoint-00000004" / "state.json"
    broken.write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(str(tmp_path / "checkpoint-00000004"), classifier)
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_checkpoint(str(tmp_path / "checkpoint-00000009"), classifier)


def test_single_process_stand_in_and_jsonl_log(tmp_path):
    dist = init_distributed(False)
    assert (dist.rank, dist.size, dist.is_main) == (0, 1, True)
    assert dist.shard(list(range(5))) == [0, 1, 2, 3, 4]
    assert dist.allreduce_mean([1.5, 2.0]) == [1.5, 2.0]
    log = JsonlLogger(str(tmp_path / "logs" / "metrics.jsonl"))
    log.log(step=1, loss=0.5)
    log.log(step=2, loss=0.25)
    JsonlLogger(str(tmp_path / "other.jsonl"), enabled=False).log(step=1)
    records = [json.loads(line) for line in open(tmp_path / "logs" / "metrics.jsonl")]
    assert [(r["step"], r["loss"]) for r in records] == [(1, 0.5), (2, 0.25)]
    assert not (tmp_path / "other.jsonl").exists()


def test_a_single_process_started_by_a_launcher_takes_its_own_device(monkeypatch):
    """Extraction ranks distil their candidates in single-process pretraining: under horovodrun each must use its
    own GPU (local_rank), not GPU 0 for all."""
    from bort.distributed import launcher_local_rank

    assert launcher_local_rank({}) == 0
    assert launcher_local_rank({"HOROVOD_LOCAL_RANK": "3"}) == 3
    assert launcher_local_rank({"OMPI_COMM_WORLD_LOCAL_RANK": "2"}) == 2
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_RANK", raising=False)
    monkeypatch.setenv("HOROVOD_LOCAL_RANK", "1")
    single = init_distributed(False)
    assert (single.size, single.rank, single.local_rank) == (1, 0, 1)
    monkeypatch.delenv("HOROVOD_LOCAL_RANK")
    assert init_distributed(False).local_rank == 0
