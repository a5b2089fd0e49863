"""The Gluon blocks and the parameter loader against the original release's own outputs."""
import ast
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from bort.checkpoint import inspect_params, load_parameters
from bort.config import PREDEFINED, get_config
from bort.errors import BortError, ConfigError, InputError, ParamsError
from bort.model import BortClassifier, BortModel, get_bort_model
from bort.params import release_parameter_names, save_parameters

from conftest import FIXTURES_DIR

FIXTURES = FIXTURES_DIR


def fixture_config(io):
    hp = ast.literal_eval(str(io["hparams"]))
    return get_config(None, num_layers=hp["num_layers"], units=hp["units"], hidden_size=hp["hidden_size"],
                      max_length=hp["max_length"], num_heads=hp["num_heads"], vocab_size=hp["vocab_size"]), hp


def fixture_inputs(io):
    return (mx.nd.array(io["input_ids"]), mx.nd.array(io["valid_length"]), mx.nd.array(io["masked_positions"]))


def assert_valid_positions_close(actual, expected, valid_length, atol=1e-5):
    for row, length in enumerate(valid_length.astype(int)):
        np.testing.assert_allclose(actual[row, :length], expected[row, :length], atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_reproduces_original_outputs(dtype, hybridize):
    io = np.load(os.path.join(FIXTURES, f"tiny_{dtype}_io.npz"))
    config, hp = fixture_config(io)
    inputs, valid_length, masked = fixture_inputs(io)

    model = BortModel(config)
    model.initialize()
    report = load_parameters(model, os.path.join(FIXTURES, f"tiny_{dtype}.params"))
    assert report.cast_from == ("float16" if dtype == "fp16" else None)
    if hybridize:
        model.hybridize(static_alloc=True)
    sequence, mlm = model(inputs, valid_length, masked)
    assert_valid_positions_close(sequence.asnumpy(), io["sequence_output"], io["valid_length"])
    # Masked positions include padded ones (row 2 masks position 7 with valid_length 5): the release zeroed
    # padded encoder outputs, and the port must agree there too.
    np.testing.assert_allclose(mlm.asnumpy(), io["mlm_logits"], atol=1e-5, rtol=0)

    classifier = BortClassifier(BortModel(config, use_decoder=False), num_classes=hp["classes"])
    classifier.initialize()
    report = load_parameters(classifier, os.path.join(FIXTURES, f"tiny_{dtype}_classifier.params"))
    assert any(name.startswith("bort.decoder") for name in report.ignored)
    if hybridize:
        classifier.hybridize()
    logits = classifier(inputs, valid_length).asnumpy()
    np.testing.assert_allclose(logits, io["classifier_logits"], atol=1e-5, rtol=0)


def test_checkpoint_layouts_load_into_either_block():
    io = np.load(os.path.join(FIXTURES, "tiny_fp32_io.npz"))
    config, _ = fixture_config(io)
    inputs, valid_length, _ = fixture_inputs(io)
    # A fine-tuned checkpoint's encoder loads into a bare model (prefix stripped, head ignored) ...
    bare = BortModel(config, use_decoder=False)
    bare.initialize()
    report = load_parameters(bare, os.path.join(FIXTURES, "tiny_fp32_classifier.params"))
    assert {n for n in report.ignored if n.startswith("classifier.")} == {
        "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias"}
    # ... and a pretrained file loads into a classifier, whose new head is reported as initialised.
    classifier = BortClassifier(BortModel(config, use_decoder=False), num_classes=2)
    classifier.initialize()
    report = load_parameters(classifier, os.path.join(FIXTURES, "tiny_fp32.params"))
    assert sorted(report.initialized) == ["classifier.1.bias", "classifier.1.weight",
                                          "classifier.3.bias", "classifier.3.weight"]
    reference = np.load(os.path.join(FIXTURES, "tiny_fp32_io.npz"))["sequence_output"]
    for block in (bare, classifier.bort):
        assert_valid_positions_close(block(inputs, valid_length).asnumpy(), reference, io["valid_length"])


def test_saved_names_are_the_release_names(tmp_path):
    model, _ = get_bort_model(None, vocab_size=30, num_layers=3, units=16, hidden_size=12, num_heads=4,
                              max_length=20)
    path = save_parameters(model, str(tmp_path / "m.params"))
    saved = mx.nd.load(path)
    assert sorted(saved) == sorted(release_parameter_names(3, with_decoder=True))
    np.testing.assert_array_equal(saved["decoder.3.weight"].asnumpy(), saved["word_embed.0.weight"].asnumpy())
    info = inspect_params(path)
    assert (info.num_layers, info.units, info.hidden_size, info.vocab_size, info.max_length) == (3, 16, 12, 30, 20)
    assert info.has_decoder and info.prefix == "" and info.num_classes is None
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left nothing behind


def test_dropout_free_classifier_uses_release_indices():
    model, _ = get_bort_model(None, vocab_size=30, num_layers=1, units=16, hidden_size=12, num_heads=2,
                              max_length=8, use_decoder=False)
    with_dropout = BortClassifier(model, num_classes=3, dropout=0.1)
    without = BortClassifier(model, num_classes=3, dropout=0.0)
    assert sorted(n for n in with_dropout._collect_params_with_prefix() if n.startswith("classifier")) == [
        "classifier.1.bias", "classifier.1.weight", "classifier.3.bias", "classifier.3.weight"]
    assert sorted(n for n in without._collect_params_with_prefix() if n.startswith("classifier")) == [
        "classifier.0.bias", "classifier.0.weight", "classifier.1.bias", "classifier.1.weight"]


def test_hybridized_equals_imperative_with_and_without_padding():
    mx.random.seed(3)
    model, _ = get_bort_model(None, vocab_size=40, num_layers=2, units=32, hidden_size=24, num_heads=4,
                              max_length=16)
    ids = mx.nd.array(np.random.RandomState(0).randint(0, 40, size=(3, 10)))
    valid = mx.nd.array([10, 4, 7])
    masked = mx.nd.array([[0, 3], [1, 2], [6, 5]])
    eager = [x.asnumpy() for x in model(ids, valid, masked)]
    no_pad = model(ids).asnumpy()
    model.hybridize(static_alloc=True)
    hybrid = [x.asnumpy() for x in model(ids, valid, masked)]
    np.testing.assert_allclose(hybrid[0], eager[0], atol=1e-6)
    np.testing.assert_allclose(hybrid[1], eager[1], atol=1e-6)
    np.testing.assert_allclose(model(ids).asnumpy(), no_pad, atol=1e-6)
    # Padding must not leak into real positions: row 1 with 4 real tokens equals running those 4 alone.
    alone = model(ids[1:2, :4], mx.nd.array([4])).asnumpy()
    np.testing.assert_allclose(hybrid[0][1, :4], alone[0], atol=1e-5)
    assert np.all(hybrid[0][1, 4:] == 0)


def test_predefined_configs_are_never_mutated():
    before = {k: dict(v) for k, v in PREDEFINED.items()}
    config = get_config("bort_4_8_768_1024", dropout=0.0, vocab_size=10)
    assert config.dropout == 0.0 and config.units == 1024 and config.hidden_size == 768
    assert PREDEFINED == before
    assert get_config("bort_4_8_768_1024").dropout == 0.1
    small = get_config("bort_2_16_512_1024")
    assert (small.num_layers, small.num_heads, small.hidden_size, small.units) == (2, 16, 512, 1024)


@pytest.mark.parametrize("kwargs, message", [
    (dict(model_name="bort_9"), "unknown model 'bort_9'"),
    (dict(model_name="bort_4_8_768_1024", num_heads=7), "divisible by num_heads"),
    (dict(model_name="bort_4_8_768_1024", colour="red"), "unknown model setting"),
    (dict(model_name=None, units=8), "needs"),
])
def test_impossible_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        get_config(**kwargs)


def test_vocabulary_size_comes_from_the_file_and_must_agree():
    path = os.path.join(FIXTURES, "tiny_fp32.params")
    io = np.load(os.path.join(FIXTURES, "tiny_fp32_io.npz"))
    overrides = dict(num_layers=2, units=64, hidden_size=48, num_heads=4, max_length=64)
    model, vocab = get_bort_model(None, params_path=path, **overrides)
    assert vocab is None and model.config.vocab_size == 300
    np.testing.assert_allclose(model(*fixture_inputs(io))[1].asnumpy(), io["mlm_logits"], atol=1e-5)
    with pytest.raises(ConfigError, match=r"vocab: 299.*the word embedding of .*: 300"):
        get_bort_model(None, vocab=["x"] * 299, params_path=path, **overrides)
    with pytest.raises(ConfigError, match="vocabulary size is unknown"):
        get_bort_model("bort_4_8_768_1024")


def test_wrong_architecture_names_every_problem(tmp_path):
    path = os.path.join(FIXTURES, "tiny_fp32.params")
    model = BortModel(get_config(None, num_layers=3, units=64, hidden_size=32, num_heads=4, max_length=64,
                                 vocab_size=300))
    model.initialize()
    with pytest.raises(ParamsError) as err:
        load_parameters(model, path)
    message = str(err.value)
    assert "encoder.transformer_cells.0.ffn.ffn_1.weight: file (48, 64) vs model (32, 64)" in message
    assert "missing from the file: encoder.transformer_cells.2." in message
    assert "file: 2 layers, units 64, FFN 48" in message

    headless = BortModel(get_config(None, num_layers=1, units=8, hidden_size=8, num_heads=2, max_length=8,
                                    vocab_size=10), use_decoder=False)
    headless.initialize()
    no_decoder = str(tmp_path / "nodec.params")
    save_parameters(headless, no_decoder)
    with_decoder = BortModel(headless.config)
    with_decoder.initialize()
    with pytest.raises(ParamsError, match="use_decoder=False"):
        load_parameters(with_decoder, no_decoder)


def test_classifier_head_of_another_task_is_refused():
    config, _ = fixture_config(np.load(os.path.join(FIXTURES, "tiny_fp32_io.npz")))
    classifier = BortClassifier(BortModel(config, use_decoder=False), num_classes=2)
    classifier.initialize()
    with pytest.raises(ParamsError, match=r"classifier.3.weight: file \(3, 64\) vs model \(2, 64\)"):
        load_parameters(classifier, os.path.join(FIXTURES, "tiny_fp32_classifier.params"))


def test_unreadable_files(tmp_path):
    with pytest.raises(ParamsError, match="does not exist"):
        load_parameters(BortModel(get_config(None, num_layers=1, units=8, hidden_size=8, num_heads=2,
                                             vocab_size=10)), str(tmp_path / "missing.params"))
    text = tmp_path / "notes.params"
    text.write_text("this is not a parameter file\n")
    truncated = tmp_path / "truncated.params"
    truncated.write_bytes(open(os.path.join(FIXTURES, "tiny_fp32.params"), "rb").read()[:5000])
    for path in (text, truncated):
        with pytest.raises(ParamsError, match="not a readable MXNet parameter file"):
            inspect_params(str(path))
    unnamed = str(tmp_path / "list.params")
    mx.nd.save(unnamed, [mx.nd.ones((2,))])
    with pytest.raises(ParamsError, match="no named parameters"):
        inspect_params(unnamed)
    other = str(tmp_path / "other.params")
    mx.nd.save(other, {"dense0.weight": mx.nd.ones((2, 2))})
    with pytest.raises(ParamsError, match="is not a Bort parameter file"):
        inspect_params(other)


def test_bad_inputs_get_clear_errors():
    model, _ = get_bort_model(None, vocab_size=20, num_layers=1, units=8, hidden_size=8, num_heads=2,
                              max_length=6)
    model.hybridize()
    cases = [
        ((mx.nd.array([[1, 2, 25]]),), "token ids must lie in \\[0, 19\\]"),
        ((mx.nd.array([[1, 2, -1]]),), "token ids must lie"),
        ((mx.nd.ones((1, 7)),), "exceeds the model's max_length 6"),
        ((mx.nd.ones((4,)),), "must be \\(batch, length\\)"),
        ((mx.nd.ones((2, 3)), mx.nd.array([3])), "valid_length must have shape \\(2,\\)"),
        ((mx.nd.ones((2, 3)), mx.nd.array([3, 4])), "valid_length values must lie in \\[1, 3\\]"),
        ((mx.nd.ones((2, 3)), None, mx.nd.array([[0], [3]])), "masked_positions must lie"),
    ]
    for args, message in cases:
        with pytest.raises(InputError, match=message):
            model(*args)
    encoder_only, _ = get_bort_model(None, vocab_size=20, num_layers=1, units=8, hidden_size=8, num_heads=2,
                                     max_length=6, use_decoder=False)
    with pytest.raises(ConfigError, match="without a decoder"):
        encoder_only(mx.nd.ones((1, 3)), None, mx.nd.array([[0]]))
    assert issubclass(InputError, BortError)


@pytest.mark.slow
def test_full_size_bort_loads_a_float16_file(tmp_path):
    """The released architecture at full size (75M parameters, vocabulary 50265) from a float16 file."""
    mx.random.seed(0)
    model, _ = get_bort_model("bort_4_8_768_1024", vocab_size=50265, use_decoder=True)
    model.cast("float16")
    path = str(tmp_path / "bort_fp16.params")
    save_parameters(model, path)
    info = inspect_params(path)
    assert (info.dtype, info.vocab_size, info.units, info.hidden_size, info.num_layers, info.max_length) == (
        "float16", 50265, 1024, 768, 4, 512)
    loaded, _ = get_bort_model("bort_4_8_768_1024", params_path=path, use_decoder=True)
    assert loaded.config.vocab_size == 50265
    embed = loaded.word_embed[0].weight.data()
    assert embed.dtype == np.float32
    np.testing.assert_array_equal(embed.asnumpy(), model.word_embed[0].weight.data().asnumpy().astype(np.float32))
    loaded.hybridize(static_alloc=True)
    ids = mx.nd.array(np.random.RandomState(1).randint(0, 50265, size=(2, 64)))
    sequence, logits = loaded(ids, mx.nd.array([64, 30]), mx.nd.array([[1, 2], [3, 29]]))
    assert sequence.shape == (2, 64, 1024) and logits.shape == (2, 2, 50265)
    assert np.isfinite(sequence.asnumpy()).all() and np.isfinite(logits.asnumpy()).all()
    sum_params = sum(int(np.prod(p.shape)) for p in {id(p): p for p in loaded.collect_params().values()}.values())
    assert sum_params == 76208217  # the release's count with decoder (docs/release_bugs.md)


def test_import_is_fast_and_silent():
    code = ("import sys, time; start = time.perf_counter(); import bort; "
            "sys.stderr.write('%f %d' % (time.perf_counter() - start, 'mxnet' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == ""
    seconds, heavy = result.stderr.split()
    assert float(seconds) < 5.0
    assert heavy == "0"  # `import bort` loads no MXNet: that happens when a model module is used
