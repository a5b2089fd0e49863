"""bort.kernels: the CPU LayerNorm kernel built as an MXNet operator library, against MXNet's own LayerNorm
(outputs and every gradient), inside Bort models (gradient accumulation, training results, what is exported),
and its build/fallback paths."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from bort.kernels import KernelsUnavailable, build_library, load_kernels, use_kernels
from bort.model import BortClassifier, BortLayerNorm, get_bort_model
from bort.training.optim import trainable_parameters


@pytest.fixture(scope="module", autouse=True)
def kernels_loaded():
    load_kernels()  # builds into the test run's cache (conftest: BORT_CACHE_DIR), or raises: a failure here


def _layer_norm_grads(operator, data, gamma, beta, d_out, eps):
    for array in (data, gamma, beta):
        array.attach_grad()
    with autograd.record():
        out = operator(data, gamma, beta, eps)
    out.backward(d_out)
    return [a.asnumpy() for a in (out, data.grad, gamma.grad, beta.grad)]


@pytest.mark.parametrize("shape, eps", [((8, 128, 1024), 1e-12), ((3, 5, 7), 1e-5), ((6, 33), 1e-3), ((1, 1, 4), 1e-5)])
def test_layer_norm_matches_mxnet_in_value_and_every_gradient(shape, eps):
    rng = np.random.RandomState(0)
    data = rng.randn(*shape).astype(np.float32) * 3 + 1
    gamma, beta = rng.rand(shape[-1]).astype(np.float32) + 0.5, rng.randn(shape[-1]).astype(np.float32)
    d_out = rng.randn(*shape).astype(np.float32)
    arrays = lambda: [mx.nd.array(a) for a in (data, gamma, beta)]  # noqa: E731
    reference = _layer_norm_grads(lambda x, g, b, e: mx.nd.LayerNorm(x, g, b, eps=e), *arrays(), mx.nd.array(d_out),
                                  eps)
    kernel = _layer_norm_grads(lambda x, g, b, e: mx.nd.bort_layer_norm(x, g, b, eps=e)[0], *arrays(),
                               mx.nd.array(d_out), eps)
    for name, want, got in zip(("out", "d_data", "d_gamma", "d_beta"), reference, kernel):
        scale = max(1.0, float(np.abs(want).max()))
        assert np.abs(want - got).max() <= 2e-5 * scale, name
    # and against float64 numpy, so that both are not wrong the same way
    mean, var = data.mean(-1, keepdims=True), data.var(-1, keepdims=True)
    np.testing.assert_allclose(kernel[0], (data - mean) / np.sqrt(var + eps) * gamma + beta, rtol=1e-4, atol=1e-4)


def _tiny_classifier(kernel, hybridize):
    mx.random.seed(3)
    bort, _ = get_bort_model(None, vocab_size=40, num_layers=2, units=16, hidden_size=12, num_heads=2, max_length=16,
                             use_decoder=False, dropout=0.0, embed_dropout=0.0)
    model = BortClassifier(bort, num_classes=3, dropout=0.0)
    model.classifier.initialize(mx.init.Normal(0.2))
    if hybridize:
        model.hybridize(static_alloc=True)
    if kernel:
        assert use_kernels(model, mx.cpu())
    return model


def _train(model, steps, micro_batches):
    params = trainable_parameters(model)
    for param in params:
        param.grad_req = "add"
    # Plain SGD: weights move by the gradients themselves, so a wrong gradient cannot hide behind Adam's
    # normalisation (and float rounding is not amplified by it either).
    trainer = mx.gluon.Trainer([p for p in params], "sgd", {"learning_rate": 0.5})
    rng = np.random.RandomState(5)
    loss_fn = mx.gluon.loss.SoftmaxCELoss()
    for _ in range(steps):
        for _ in range(micro_batches):  # gradients of micro-batches add up (grad_req "add")
            ids = mx.nd.array(rng.randint(0, 40, size=(4, 9)))
            valid = mx.nd.array(rng.randint(3, 10, size=4))
            labels = mx.nd.array(rng.randint(0, 3, size=4))
            with autograd.record():
                loss = loss_fn(model(ids, valid), labels).sum()
            loss.backward()
        trainer.update(4 * micro_batches)
        for param in params:
            param.zero_grad()
    return {name: p.data().asnumpy() for name, p in model._collect_params_with_prefix().items()}


@pytest.mark.parametrize("hybridize", [False, True])
def test_training_with_the_kernel_gives_the_same_weights(hybridize):
    # Two micro-batches per update: the LayerNorm gradients must be added, not overwritten, by the kernel.
    reference = _train(_tiny_classifier(False, hybridize), steps=4, micro_batches=2)
    fast = _train(_tiny_classifier(True, hybridize), steps=4, micro_batches=2)
    assert reference.keys() == fast.keys()
    for name in reference:
        np.testing.assert_allclose(fast[name], reference[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # the run changed the LayerNorm parameters, so the comparison above covers their gradients
    gamma = [n for n in reference if n.endswith("gamma")][0]
    assert not np.allclose(reference[gamma], 1.0)


def test_the_fused_backend_uses_the_kernel_and_symbol_exports_never_hold_it(tmp_path):
    from bort.export.symbol import CLASSIFIER, export_symbol
    from bort.inference.backends import make_backend

    model = _tiny_classifier(False, hybridize=False)
    reference = make_backend("hybrid", model.bort)(np.array([[0, 5, 6, 2]]), np.array([4]))
    fused = make_backend("fused", model.bort)
    layer_norms = _layer_norm_blocks(model)
    assert all(block.use_kernel for block in layer_norms)
    np.testing.assert_allclose(fused(np.array([[0, 5, 6, 2]]), np.array([4])), reference, rtol=1e-5, atol=1e-5)
    symbol, _ = export_symbol(model, CLASSIFIER, model.bort.config, str(tmp_path))
    ops = {node["op"] for node in json.load(open(symbol))["nodes"]}
    assert "LayerNorm" in ops and "bort_layer_norm" not in ops
    assert not any(block.use_kernel for block in layer_norms)


def _layer_norm_blocks(model):
    blocks = []
    model.apply(lambda block: blocks.append(block) if isinstance(block, BortLayerNorm) else None)
    return blocks


def test_only_training_switches_the_kernel_on_and_exports_never_hold_it(tmp_path):
    model = _tiny_classifier(False, hybridize=True)
    layer_norms = []
    model.apply(lambda block: layer_norms.append(block) if isinstance(block, BortLayerNorm) else None)
    assert len(layer_norms) == 5 and not any(block.use_kernel for block in layer_norms)  # embedding + 2 x 2
    ids = mx.nd.array([[0, 5, 6, 2]])
    model(ids)
    model.export(str(tmp_path / "plain"))
    ops = {node["op"] for node in json.load(open(tmp_path / "plain-symbol.json"))["nodes"]}
    assert "LayerNorm" in ops and "bort_layer_norm" not in ops
    before = model(ids).asnumpy()
    assert use_kernels(model, mx.cpu())
    after = model(ids).asnumpy()  # the cached graph was traced again with the kernel
    model.export(str(tmp_path / "fast"))
    ops = {node["op"] for node in json.load(open(tmp_path / "fast-symbol.json"))["nodes"]}
    assert {"bort_layer_norm", "bort_masked_softmax"} <= ops and not {"LayerNorm", "softmax"} & ops
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    # parameter names are LayerNorm's: checkpoints read the same
    assert any(name.endswith("layernorm0_gamma") for name in model.collect_params())


def test_float16_and_disabled_keep_mxnets_layer_norm(monkeypatch):
    model = _tiny_classifier(False, hybridize=False)
    assert not use_kernels(model, mx.cpu(), dtype="float16")
    assert not use_kernels(model, mx.gpu(0))
    monkeypatch.setattr(mx.nd, "bort_layer_norm", None, raising=False)
    monkeypatch.delattr(mx.nd, "bort_layer_norm")  # as in a process that has not loaded the library yet
    monkeypatch.setenv("BORT_FAST_KERNELS", "0")
    with pytest.raises(KernelsUnavailable, match="BORT_FAST_KERNELS=0"):
        load_kernels()
    assert not use_kernels(model, mx.cpu())
    flags = []
    model.apply(lambda block: flags.append(block.use_kernel) if isinstance(block, BortLayerNorm) else None)
    assert flags and not any(flags)


def test_build_is_cached_and_a_failing_compiler_is_reported(tmp_path):
    first = build_library(str(tmp_path))
    stamp = os.stat(first).st_mtime_ns
    assert build_library(str(tmp_path)) == first and os.stat(first).st_mtime_ns == stamp  # not rebuilt
    with pytest.raises(KernelsUnavailable, match="compiling the kernels failed"):
        build_library(str(tmp_path / "other"), compiler="/bin/false")
    assert not [name for _, _, names in os.walk(tmp_path / "other") for name in names]  # no partial library left


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_fused_distillation_terms_match_the_formulas_and_their_gradient(temperature):
    from bort.pretraining.loss import distillation_loss

    rng = np.random.RandomState(1)
    shape = (3, 5, 2000)  # batch, masked positions, vocabulary
    student = (rng.randn(*shape) * 4).astype(np.float32)
    teacher = (rng.randn(*shape) * 4).astype(np.float32)
    student[0, 0, 7] = 60.0  # a confident row: the log-sum-exp must not overflow
    labels = rng.randint(0, shape[-1], size=shape[:2]).astype(np.float32)
    labels[1, 2] = np.argmax(student[1, 2])  # one right guess for `correct`
    weights = (rng.rand(*shape[:2]) > 0.3).astype(np.float32)
    results = {}
    for fused in (False, True):
        logits = mx.nd.array(student)
        logits.attach_grad()
        with autograd.record():
            parts = distillation_loss(logits, mx.nd.array(labels), mx.nd.array(weights), mx.nd.array(teacher),
                                      0.1, 0.5, temperature, fused=fused)
        parts["loss"].backward()
        results[fused] = ({key: float(value.asscalar()) for key, value in parts.items()}, logits.grad.asnumpy())
    (plain, plain_grad), (fast, fast_grad) = results[False], results[True]
    assert plain.keys() == fast.keys()
    for key in plain:
        assert fast[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6), key
    assert plain["correct"] >= 1
    np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-4, atol=1e-7)
    assert np.abs(plain_grad).max() > 1e-4  # a real gradient was compared


def test_kernels_load_beside_horovods_mxnet_plugin():
    # Horovod's MXNet plugin carries its own copy of MXNet's operator-library classes; before exports.map and
    # -Bsymbolic, loading the kernels after it (as every Horovod rank does) died with a floating point exception.
    import subprocess
    import sys

    program = ("import bort, mxnet as mx\nimport horovod.mxnet as hvd\nhvd.init()\n"
               "from bort.kernels import load_kernels\nload_kernels()\n"
               "x = mx.nd.array([[1.0, 2.0, 4.0]])\n"
               "import json\nprint(json.dumps([mx.nd.bort_layer_norm(x, mx.nd.ones(3), mx.nd.zeros(3))[0]"
               ".asnumpy().round(4).tolist(), hvd.allreduce(mx.nd.ones(2)).asnumpy().tolist()]))\n")
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert completed.returncode == 0, completed.stderr[-3000:]
    row, reduced = json.loads(completed.stdout.strip().splitlines()[-1])
    assert np.allclose(row, [[-1.069, -0.2673, 1.3363]], atol=1e-4) and reduced == [1.0, 1.0]


@pytest.mark.parametrize("shape", [(8, 8, 128, 128), (3, 2, 5, 7), (1, 1, 1, 1)])
def test_masked_softmax_matches_mxnet_in_value_and_gradient(shape):
    rng = np.random.RandomState(2)
    scores = (rng.randn(*shape) * 5).astype(np.float32)
    lengths = rng.randint(1, shape[-1] + 1, size=shape[0])
    bias = np.where(np.arange(shape[-1])[None, :] < lengths[:, None], 0.0, -1e4).astype(np.float32)
    bias = bias.reshape(shape[0], 1, 1, shape[-1])
    d_weights = rng.randn(*shape).astype(np.float32)
    results = []
    for operator in (lambda s, b: mx.nd.softmax(mx.nd.broadcast_add(s, b), axis=-1),
                     lambda s, b: mx.nd.bort_masked_softmax(s, b)):
        array = mx.nd.array(scores)
        array.attach_grad()
        with autograd.record():
            weights = operator(array, mx.nd.array(bias))
        weights.backward(mx.nd.array(d_weights))
        results.append((weights.asnumpy(), array.grad.asnumpy()))
    (want, want_grad), (got, got_grad) = results
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-6)
    assert np.all(got[..., lengths.min():][np.broadcast_to(bias < 0, shape)[..., lengths.min():]] < 1e-30)


@pytest.mark.parametrize("clip_gradient", [None, 0.01])
def test_fast_bertadam_updates_like_bertadam(clip_gradient):
    import gluonnlp  # noqa: F401  registers 'bertadam'

    from bort.kernels.optimizer import fast_bertadam

    shapes = [(50, 16), (16,), (3, 7)]
    results = []
    for fast in (False, True):
        params = [mx.gluon.Parameter(f"p{i}", shape=shape) for i, shape in enumerate(shapes)]
        for i, param in enumerate(params):
            param.initialize(mx.init.Constant(0.0))
            param.set_data(mx.nd.array(np.random.RandomState(i).randn(*param.shape)))
        params[1].wd_mult = 0.0  # as LayerNorm and bias parameters are
        options = dict(learning_rate=1e-2, wd=0.01, epsilon=1e-6)
        if clip_gradient:
            options["clip_gradient"] = clip_gradient
        optimizer = fast_bertadam(**options) if fast else mx.optimizer.create("bertadam", **options)
        trainer = mx.gluon.Trainer(params, optimizer, kvstore=None, update_on_kvstore=False)
        grads = np.random.RandomState(9)
        for step in range(5):
            with autograd.record():  # gradients = the random coefficients
                loss = mx.nd.add_n(*[(p.data() * mx.nd.array(grads.randn(*p.shape) * 0.1)).sum() for p in params])
            loss.backward()
            trainer.update(2.0)
        skipped_before = [p.data().asnumpy() for p in params]
        with autograd.record():
            loss = mx.nd.add_n(*[p.data().sum() for p in params])
        loss.backward()
        trainer.update(float("inf"))  # rescale 0: MXNet skips the update; so must the kernel
        assert all(np.array_equal(p.data().asnumpy(), w) for p, w in zip(params, skipped_before))
        results.append([p.data().asnumpy() for p in params])
    for plain, kernel in zip(*results):
        np.testing.assert_array_equal(kernel, plain)  # the same arithmetic, rounded the same way
    assert not np.allclose(results[0][0], np.random.RandomState(0).randn(*shapes[0]))  # the weights moved


def test_module_command_reports_the_library_and_is_quiet_when_cached(capsys, monkeypatch):
    from bort.kernels.__main__ import main

    assert main([]) == 0 and "Bort's CPU kernels: " in capsys.readouterr().out  # built by the fixture above
    assert main(["--quiet"]) == 0 and capsys.readouterr().out == ""
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main([]) == 1 and "no C++ compiler" in capsys.readouterr().out


def test_a_failed_build_warns_and_keeps_mxnets_operators(monkeypatch, tmp_path):
    # In a process that has not loaded the library: no compiler -> a RuntimeWarning, and the model unchanged.
    for name in ("bort_layer_norm", "bort_masked_softmax", "bort_distillation_terms", "bort_adamw_update",
                 "bort_sum_squares"):
        monkeypatch.delattr(mx.nd, name, raising=False)
    monkeypatch.setenv("BORT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    monkeypatch.setenv("PATH", "/nonexistent")
    model = _tiny_classifier(False, hybridize=False)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert not use_kernels(model, mx.cpu())
    assert not any(block.use_kernel for block in _layer_norm_blocks(model))
