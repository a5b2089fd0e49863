"""CPU inference: backends against the plain model and the original stack's fixtures, length batching
against one-at-a-time runs, the classify / fill-mask / embed tasks and script, input-file errors, and the
benchmark dispatcher in --quick mode (not timed)."""
import ast
import importlib.util
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from bort.checkpoint import load_parameters
from bort.config import get_config
from bort.errors import ConfigError, DataError, InputError, ParamsError
from bort.inference import predict
from bort.inference.backends import calibration_batches, make_backend
from bort.inference.batching import length_batches, pad_batch, run_in_batches
from bort.inference.inputs import read_examples
from bort.model import BortClassifier, BortModel

from conftest import FIXTURES_DIR, REPO_ROOT, SAMPLE_TEXT

PAD_ID = 1
MASK_ID = 299  # the fixtures' vocabulary has 300 ids; the trained test vocabulary puts <mask> last as well


def _script_module(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(REPO_ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script_main(name):
    return _script_module(name).main


@pytest.fixture(scope="module")
def fixture_io():
    return np.load(os.path.join(FIXTURES_DIR, "tiny_fp32_io.npz"))


@pytest.fixture(scope="module")
def tiny_config(fixture_io):
    hp = ast.literal_eval(str(fixture_io["hparams"]))
    return get_config(None, **{k: hp[k] for k in ("num_layers", "units", "hidden_size", "max_length", "num_heads",
                                                  "vocab_size")})


def _fixture_model(config, name="tiny_fp32.params", use_decoder=True):
    model = BortModel(config, use_decoder=use_decoder)
    model.initialize()
    load_parameters(model, os.path.join(FIXTURES_DIR, name))
    return model


def _fixture_classifier(config):
    classifier = BortClassifier(BortModel(config, use_decoder=False), num_classes=3)
    classifier.initialize()
    load_parameters(classifier, os.path.join(FIXTURES_DIR, "tiny_fp32_classifier.params"))
    return classifier


def _random_sequences(count, seed=0, low=3, high=60):
    rng = np.random.RandomState(seed)
    sequences = []
    for _ in range(count):
        body = list(rng.randint(4, MASK_ID, size=rng.randint(low, high) - 2))
        sequences.append([0] + body + [2])
    return sequences


def _valid_mask(ids, valid_length):
    return (np.arange(ids.shape[1])[None, :] < np.asarray(valid_length)[:, None])[:, :, None]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """The fixture model exported by the export module (bort.export), as backends would get it."""
    from bort.export.commands import export

    out = tmp_path_factory.mktemp("onnx") / "tiny"
    export(os.path.join(FIXTURES_DIR, "tiny_fp32.params"), "onnx", str(out), num_heads=4, lengths=(7,))
    return str(out / "model.onnx")


# ------------------------------------------------------------------------------------------------ backends
@pytest.mark.parametrize("name", ["mxnet", "hybrid", "mkldnn", "fused"])
def test_float_backends_reproduce_the_original_stack(name, tiny_config, fixture_io):
    backend = make_backend(name, _fixture_model(tiny_config))
    ids, valid_length = fixture_io["input_ids"], fixture_io["valid_length"]
    for _ in range(2):  # the second call runs the cached/optimized graph
        out = backend(ids, valid_length)
    valid = _valid_mask(ids, valid_length)
    assert out.shape == fixture_io["sequence_output"].shape
    assert np.abs((out - fixture_io["sequence_output"]) * valid).max() < 1e-5
    assert not np.any(out * ~valid), "padded positions must be zero, as in BortModel"


@pytest.mark.parametrize("name", ["hybrid", "mkldnn", "fused"])
def test_static_backends_handle_changing_shapes(name, tiny_config):
    plain = _fixture_model(tiny_config)
    backend = make_backend(name, _fixture_model(tiny_config))
    for batch, sequences in enumerate((_random_sequences(3, 1), _random_sequences(5, 2), _random_sequences(2, 3))):
        ids, valid_length = pad_batch(sequences, PAD_ID)
        expected = plain(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
        assert np.abs(backend(ids, valid_length) - expected).max() < 1e-5, f"batch {batch}"


def test_fused_backend_at_positions_computes_only_those_outputs(tiny_config):
    """The pruned last layer gives the full model's output at the asked positions (zero at padding), for
    several numbers of positions, and is a different graph from the full one."""
    plain = _fixture_model(tiny_config)
    backend = make_backend("fused", _fixture_model(tiny_config))
    ids, valid_length = pad_batch(_random_sequences(4, seed=11), PAD_ID)
    expected = plain(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    last = ids.shape[1] - 1
    for positions in ([[0], [0], [0], [0]], [[0, 2], [last, 1], [1, 1], [3, 0]], [[0, 1, last]] * 4):
        positions = np.array(positions)
        got = backend(ids, valid_length, positions)
        assert got.shape == positions.shape + (tiny_config.units,)
        wanted = np.take_along_axis(expected, positions[:, :, None], axis=1)
        assert np.abs(got - wanted).max() < 1e-5, positions.tolist()
    assert valid_length.min() <= last and not np.any(got[valid_length <= last, 2]), "padding must read as zero"
    assert backend._at_positions is not None and backend._at_positions.last_cell is not None
    full = backend(ids, valid_length)
    assert np.abs(full - expected).max() < 1e-5


def test_int8_backend_is_close_to_float(tiny_config):
    """int8 tolerance, on LayerNorm outputs of unit scale: cosine similarity >= 0.995, relative (Frobenius) error
    <= 0.1, and no element off by more than 0.5."""
    sequences = _random_sequences(24, seed=4)
    backend = make_backend("int8", _fixture_model(tiny_config), calibration=calibration_batches(sequences, PAD_ID))
    plain = _fixture_model(tiny_config)
    ids, valid_length = pad_batch(_random_sequences(6, seed=5), PAD_ID)
    expected = plain(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    out = backend(ids, valid_length)
    assert not np.any(out * ~_valid_mask(ids, valid_length))
    cosine = (out * expected).sum() / np.linalg.norm(out) / np.linalg.norm(expected)
    assert cosine >= 0.995
    assert np.linalg.norm(out - expected) / np.linalg.norm(expected) <= 0.1
    assert np.abs(out - expected).max() <= 0.5
    assert np.abs(out - expected).max() > 0, "the int8 graph should not be the float graph"


def test_int8_backend_at_positions_is_close_to_float(tiny_config):
    """The quantized pruned form (calibrated at every position) against the float model's rows."""
    sequences = _random_sequences(24, seed=4)
    backend = make_backend("int8", _fixture_model(tiny_config), calibration=calibration_batches(sequences, PAD_ID))
    plain = _fixture_model(tiny_config)
    ids, valid_length = pad_batch(_random_sequences(6, seed=5), PAD_ID)
    expected = plain(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    for positions in (np.zeros((6, 1), dtype=np.int64), np.array([[0, 1, ids.shape[1] - 1]] * 6)):
        out = backend(ids, valid_length, positions)
        wanted = np.take_along_axis(expected, positions[:, :, None], axis=1)
        assert out.shape == wanted.shape
        cosine = (out * wanted).sum() / np.linalg.norm(out) / np.linalg.norm(wanted)
        assert cosine >= 0.995 and np.abs(out - wanted).max() <= 0.5
        assert not np.any(out[positions >= valid_length[:, None]]), "padding must read as zero"
    assert backend._at_positions is not None


def test_int8_needs_calibration(tiny_config):
    with pytest.raises(ConfigError, match="calibration"):
        make_backend("int8", _fixture_model(tiny_config), calibration=[])


def test_onnxruntime_backends_match_the_plain_model(tiny_config, fixture_io, onnx_file):
    ids, valid_length = fixture_io["input_ids"], fixture_io["valid_length"]
    valid = _valid_mask(ids, valid_length)
    out = make_backend("onnxruntime", _fixture_model(tiny_config), onnx_path=onnx_file)(ids, valid_length)
    assert np.abs((out - fixture_io["sequence_output"]) * valid).max() < 1e-4
    assert not np.any(out * ~valid)
    quantized = make_backend("onnxruntime-int8", _fixture_model(tiny_config), onnx_path=onnx_file)(ids, valid_length)
    cosine = (quantized * out).sum() / np.linalg.norm(quantized) / np.linalg.norm(out)
    assert cosine >= 0.995 and np.abs(quantized - out).max() <= 0.5


def test_onnxruntime_backend_needs_a_file(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_backend("onnxruntime", _fixture_model(tiny_config), onnx_path=str(tmp_path / "none.onnx"))


def test_backends_reject_bad_batches(tiny_config):
    backend = make_backend("hybrid", _fixture_model(tiny_config))
    with pytest.raises(InputError, match="token ids"):
        backend(np.array([[0, 300, 2]]), np.array([3]))
    with pytest.raises(InputError, match="max_length"):
        backend(np.zeros((1, 65), dtype=np.int32), np.array([65]))
    with pytest.raises(InputError, match="valid_length"):
        backend(np.zeros((2, 4), dtype=np.int32), np.array([4, 0]))
    with pytest.raises(InputError, match=r"positions must lie in \[0, 3\]"):
        backend(np.zeros((2, 4), dtype=np.int32), np.array([4, 4]), np.array([[0], [4]]))
    with pytest.raises(InputError, match=r"positions must have shape \(2, P\)"):
        backend(np.zeros((2, 4), dtype=np.int32), np.array([4, 4]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="unknown backend"):
        make_backend("tensorrt", _fixture_model(tiny_config))


# ------------------------------------------------------------------------------------------------ batching
def test_pad_batch_and_length_batches():
    ids, valid_length = pad_batch([[5, 6, 7], [8]], PAD_ID, multiple=4)
    assert ids.tolist() == [[5, 6, 7, 1], [8, 1, 1, 1]] and valid_length.tolist() == [3, 1]
    batches = length_batches([5, 1, 4, 2, 3], batch_size=2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 2], [0]]
    assert [b.tolist() for b in length_batches([5, 1, 4], 2, sort_by_length=False)] == [[0, 1], [2]]
    with pytest.raises(InputError):
        pad_batch([[5], []], PAD_ID)


def test_padding_never_exceeds_max_length():
    widths = []
    run_in_batches(lambda ids, vl: widths.append(ids.shape[1]) or np.zeros(len(ids)), [[1] * 63, [1] * 2], PAD_ID,
                   batch_size=1, max_length=63, pad_multiple=8)
    assert sorted(widths) == [8, 63]
    with pytest.raises(InputError, match="sequence 1 has 70 tokens"):
        run_in_batches(lambda ids, vl: np.zeros(len(ids)), [[1] * 3, [1] * 70], PAD_ID, 4, max_length=64)


@pytest.mark.parametrize("name", ["hybrid", "fused"])
@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_batched_embed_equals_one_at_a_time(tiny_config, pooling, name):
    sequences = _random_sequences(13, seed=7)
    plain = _fixture_model(tiny_config, use_decoder=False)
    backend = make_backend(name, _fixture_model(tiny_config, use_decoder=False))
    batched = predict.embed(backend, sequences, PAD_ID, pooling, batch_size=4)
    assert batched.shape == (13, tiny_config.units)
    for index, sequence in enumerate(sequences):
        output = plain(mx.nd.array([sequence])).asnumpy()[0]
        expected = output[0] if pooling == "first" else output.mean(axis=0)
        assert np.abs(batched[index] - expected).max() < 1e-5, index
    unsorted = predict.embed(backend, sequences, PAD_ID, pooling, batch_size=5, sort_by_length=False)
    assert np.abs(unsorted - batched).max() < 1e-5


@pytest.mark.parametrize("name", ["mkldnn", "fused"])
def test_classify_matches_the_classifier(tiny_config, name):
    sequences = _random_sequences(9, seed=8)
    classifier = _fixture_classifier(tiny_config)
    loaded = _fixture_classifier(tiny_config)
    backend = make_backend(name, loaded.bort)
    probabilities = predict.classify(backend, loaded.classifier, sequences, PAD_ID, batch_size=4)
    assert probabilities.shape == (9, 3)
    for index, sequence in enumerate(sequences):
        logits = classifier(mx.nd.array([sequence]), mx.nd.array([len(sequence)])).asnumpy()[0]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert np.abs(probabilities[index] - expected).max() < 1e-6, index


@pytest.mark.parametrize("name", ["hybrid", "fused"])
def test_classify_reproduces_the_fixture_logits(tiny_config, fixture_io, name):
    """The original stack's classifier logits, through the id-level task function."""
    loaded = predict.load_model(os.path.join(FIXTURES_DIR, "tiny_fp32_classifier.params"), "classify",
                                num_heads=4)
    backend = make_backend(name, loaded.encoder)
    sequences = [[int(t) for t in row[:int(length)]]
                 for row, length in zip(fixture_io["input_ids"], fixture_io["valid_length"])]
    probabilities = predict.classify(backend, loaded.head, sequences, PAD_ID, batch_size=2)
    logits = fixture_io["classifier_logits"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.abs(probabilities - expected).max() < 1e-5


@pytest.mark.parametrize("name", ["hybrid", "fused"])
def test_fill_mask_matches_the_mlm_logits(tiny_config, name):
    rng = np.random.RandomState(9)
    sequences = _random_sequences(7, seed=9)
    for sequence in sequences[:6]:  # the last sequence keeps no mask: it must get an empty list
        for position in rng.choice(np.arange(1, len(sequence) - 1), size=2, replace=False):
            sequence[position] = MASK_ID
    sequences[2][3] = MASK_ID  # rows with 1, 2 and 3 masks share a batch
    plain = _fixture_model(tiny_config)
    loaded = _fixture_model(tiny_config)
    backend = make_backend(name, loaded)
    results = predict.fill_mask(backend, loaded.decoder, sequences, MASK_ID, PAD_ID, top_k=4, batch_size=3)
    assert results[6] == []
    for sequence, predictions in zip(sequences[:6], results[:6]):
        positions = [i for i, token in enumerate(sequence) if token == MASK_ID]
        assert [p.position for p in predictions] == positions
        _, logits = plain(mx.nd.array([sequence]), mx.nd.array([len(sequence)]), mx.nd.array([positions]))
        logits = logits.asnumpy()[0]
        for prediction, row in zip(predictions, logits):
            probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
            assert prediction.ids == list(np.argsort(-probabilities, kind="stable")[:4])
            assert np.allclose(prediction.probabilities, probabilities[prediction.ids], atol=1e-6)
            assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)


def test_fill_mask_needs_a_mask_and_a_decoder(tiny_config):
    backend = make_backend("hybrid", _fixture_model(tiny_config))
    with pytest.raises(InputError, match="mask token"):
        predict.fill_mask(backend, None, _random_sequences(2), MASK_ID, PAD_ID)
    with pytest.raises(ParamsError, match="classification head"):
        predict.load_model(os.path.join(FIXTURES_DIR, "tiny_fp32.params"), "classify", num_heads=4)


def test_load_model_for_each_task():
    path = os.path.join(FIXTURES_DIR, "tiny_fp16_classifier.params")
    loaded = predict.load_model(path, "classify", num_heads=4)
    assert loaded.num_classes == 3 and loaded.config.num_heads == 4
    embed_model = predict.load_model(path, "embed", num_heads=4)
    assert isinstance(embed_model.encoder, BortModel) and embed_model.head is None


# ------------------------------------------------------------------------------------------------ input files
def test_read_examples_jsonl_and_tsv(tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a b", "id": 3}\n\n{"text": "c", "text_b": "d"}\n', encoding="utf-8")
    examples = read_examples(str(jsonl))
    assert [(e.line, e.text, e.text_b, e.extra) for e in examples] == [(1, "a b", None, {"id": 3}),
                                                                       (3, "c", "d", {})]
    tsv = tmp_path / "in.tsv"
    tsv.write_text("sentence\tother\nx y\tz\nw\n", encoding="utf-8")
    assert [(e.line, e.text, e.text_b) for e in read_examples(str(tsv), header=True)] == [(2, "x y", "z"),
                                                                                          (3, "w", None)]


@pytest.mark.parametrize("content,fmt,message", [
    ('{"text": "fine"}\n{"text": "broken"\n', "jsonl", r"in\.jsonl:2: broken JSON"),
    ('{"text": "fine"}\n{"txt": "x"}\n', "jsonl", r"in\.jsonl:2: missing field 'text'"),
    ('{"text": 5}\n', "jsonl", r"in\.jsonl:1: field 'text' should be a string"),
    ('["a list"]\n', "jsonl", r"in\.jsonl:1: expected a JSON object"),
    ("a\tb\tc\n", "tsv", r"in\.jsonl:1: 3 tab-separated columns"),
    ("", "jsonl", "no examples"),
])
def test_read_examples_errors_name_file_and_line(tmp_path, content, fmt, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_examples(str(path), fmt)


def test_read_examples_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_examples(str(tmp_path / "nope.jsonl"))
    (tmp_path / "in.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="--format"):
        read_examples(str(tmp_path / "in.csv"))


# ------------------------------------------------------------------------------------------------ the script
@pytest.fixture(scope="module")
def vocab_files(tmp_path_factory):
    """A 300-token byte-level BPE (the fixtures' vocabulary size), <mask> = 299 and <pad> = 1 like RoBERTa."""
    from bort.tokenizer import BortTokenizer, train_byte_level_bpe

    directory = tmp_path_factory.mktemp("vocab")
    train_byte_level_bpe([SAMPLE_TEXT], str(directory), 300)
    files = (str(directory / "vocab.json"), str(directory / "merges.txt"))
    tokenizer = BortTokenizer.from_hf(*files)
    assert (len(tokenizer), tokenizer.mask_id, tokenizer.pad_id) == (300, MASK_ID, PAD_ID)
    return files


def _predict(task, params, vocab_files, input_path, output, *extra):
    argv = [task, "--params", os.path.join(FIXTURES_DIR, params), "--vocab", vocab_files[0], "--merges",
            vocab_files[1], "--num-heads", "4", "--input", str(input_path), "--output", str(output),
            "--progress", "false", "--batch-size", "2", *extra]
    return _script_main("predict")(argv)


def test_tokenize_examples_truncates_and_counts(vocab_files):
    from bort.inference.inputs import Example
    from bort.tokenizer import BortTokenizer

    tokenizer = BortTokenizer.from_hf(*vocab_files)
    long_text = " ".join(["several words here"] * 20)
    examples = [Example(1, "short"), Example(2, long_text), Example(3, "a", "b"), Example(4, long_text, long_text)]
    sequences, truncated = predict.tokenize_examples(tokenizer, examples, max_length=16)
    assert truncated == 2
    assert sequences[0] == tokenizer.encode("short") and sequences[2] == tokenizer.encode_pair("a", "b")
    assert sequences[1] == tokenizer.encode(long_text, max_length=16) and len(sequences[1]) == 16
    assert sequences[3] == tokenizer.encode_pair(long_text, long_text, max_length=16) and len(sequences[3]) == 16


def test_predict_script_classify_and_embed(tmp_path, vocab_files, tiny_config):
    from bort.tokenizer import BortTokenizer

    texts = ["the first text", "a much longer second text with more words in it", "x"]
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts))
                      + json.dumps({"text": "pair a", "text_b": "pair b"}) + "\n", encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    assert _predict("classify", "tiny_fp32_classifier.params", vocab_files, source, out, "--labels", "a,b,c",
                    "--backend", "fused") == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tokenizer = BortTokenizer.from_hf(*vocab_files)
    classifier = _fixture_classifier(tiny_config)
    for index, record in enumerate(records):
        ids = tokenizer.encode(texts[index]) if index < 3 else tokenizer.encode_pair("pair a", "pair b")
        logits = classifier(mx.nd.array([ids]), mx.nd.array([len(ids)])).asnumpy()[0]
        assert record["label_id"] == int(np.argmax(logits)) and record["label"] == "abc"[record["label_id"]]
        assert record["line"] == index + 1 and (index == 3 or record["id"] == index)
        assert abs(sum(record["probabilities"]) - 1) < 1e-4
    vectors_path = tmp_path / "vectors.npy"
    assert _predict("embed", "tiny_fp32.params", vocab_files, source, vectors_path, "--pooling", "mean",
                    "--backend", "mkldnn") == 0
    vectors = np.load(vectors_path)
    assert vectors.shape == (4, tiny_config.units)
    plain = _fixture_model(tiny_config, use_decoder=False)
    expected = plain(mx.nd.array([tokenizer.encode(texts[1])])).asnumpy()[0].mean(axis=0)
    assert np.abs(vectors[1] - expected).max() < 1e-5
    assert sorted(os.listdir(tmp_path)) == ["labels.jsonl", "texts.jsonl", "vectors.npy"], "no temporary files left"


def test_predict_script_fill_mask(tmp_path, vocab_files):
    source = tmp_path / "masked.tsv"
    source.write_text("the <mask> of it\nno mask\n", encoding="utf-8")
    out = tmp_path / "fills.jsonl"
    assert _predict("fill-mask", "tiny_fp32.params", vocab_files, source, out, "--top-k", "3") == 0
    first, second = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(first["masks"]) == 1 and len(first["masks"][0]["predictions"]) == 3
    assert first["filled"].startswith("the") and "<mask>" not in first["filled"]
    assert second["masks"] == [] and second["filled"] == "no mask"


def test_predict_script_onnxruntime_checks_the_file(tmp_path, vocab_files, onnx_file):
    source = tmp_path / "texts.tsv"
    source.write_text("some text\nmore text here\n", encoding="utf-8")
    hybrid, ort = tmp_path / "hybrid.npy", tmp_path / "ort.npy"
    _predict("embed", "tiny_fp32.params", vocab_files, source, hybrid)
    _predict("embed", "tiny_fp32.params", vocab_files, source, ort, "--backend", "onnxruntime", "--onnx", onnx_file)
    assert np.abs(np.load(hybrid) - np.load(ort)).max() < 1e-4
    with pytest.raises(ConfigError, match="does not compute what the .params model computes"):
        _predict("embed", "tiny_fp16.params", vocab_files, source, ort, "--backend", "onnxruntime", "--onnx",
                 onnx_file)


def test_predict_script_errors(tmp_path, vocab_files):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=r"broken\.jsonl:2"):
        _predict("classify", "tiny_fp32_classifier.params", vocab_files, broken, out)
    assert not out.exists()
    good = tmp_path / "good.tsv"
    good.write_text("one text\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="--labels names 2 labels"):
        _predict("classify", "tiny_fp32_classifier.params", vocab_files, good, out, "--labels", "a,b")
    with pytest.raises(ConfigError, match="--vocab and --merges"):
        _script_main("predict")(["embed", "--params", os.path.join(FIXTURES_DIR, "tiny_fp32.params"),
                                 "--input", str(good), "--output", str(tmp_path / "v.npy")])


# ------------------------------------------------------------------------------------------------ benchmark
@pytest.mark.slow
def test_benchmark_inference_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "benchmark.py"), "inference", "--quick",
         "--backends", "hybrid,fused", "--baseline_models", "bert-base", "--baseline_backends", "hybrid",
         "--output", str(out)],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    cells = {(r["model"], r["backend"], r["output"], r["batch"], r["length"]): r for r in result["runs"]}
    assert ("bort", "fused", "sequence", 8, 32) in cells and ("bert-base", "hybrid", "sequence", 1, 16) in cells
    assert all(r["seconds"] > 0 and r["gflops"] > 0 for r in result["runs"])
    assert set(result["gemm_gflops"]) == {"numpy", "mxnet"}
    assert result["output_check"]["bort 8x32"]["fused"]["max_abs_diff"] < 1e-5
    # First-token output: the fused backend's pruned last layer gives hybrid's first row, with fewer products.
    assert result["output_check"]["bort 8x32 first token"]["fused"]["max_abs_diff"] < 1e-5
    first, full = cells[("bort", "fused", "first_token", 8, 32)], cells[("bort", "fused", "sequence", 8, 32)]
    assert first["gflop"] < full["gflop"]
    first_token, sequence = (cells[("bort", "hybrid", kind, 8, 32)]["gflop"] for kind in ("first_token", "sequence"))
    assert first_token == sequence
    assert "bort 8x32 first token" in result["summary"]
    assert result["bucketing"]["seconds"]["sorted_by_length"] > 0
    assert "bort 8x32" in result["summary"] and result["summary"]["bort_vs_bert"]
    assert "goal_1_3x_torch_at_8x128" not in result["summary"]  # no 8x128 cell in a quick run
    assert "tokens/s" in completed.stdout


def test_encoder_flops_of_a_pruned_last_layer():
    from bort.benchmarks.inference import encoder_flops

    config = get_config(None, num_layers=4, num_heads=8, hidden_size=768, units=1024, vocab_size=10)
    full = encoder_flops(config, 8, 128)
    assert full == 4 * (2 * 8 * 128 * (4 * 1024 ** 2 + 2 * 1024 * 768) + 4 * 8 * 128 * 128 * 1024)
    # One position in the last layer: its four units x units products, FFN, and 8 heads x 128 keys x 2.
    one = encoder_flops(config, 8, 128, last_layer_outputs=1)
    assert one - 3 * full / 4 == 2 * 8 * (4 * 1024 ** 2 + 2 * 1024 * 768) + 4 * 8 * 8 * 128 * 1024
    assert one < 0.76 * full


def test_benchmark_torch_runner_has_the_same_weights(tmp_path, onnx_file):
    """transformers + torch on the Bort weights computes what the MXNet backend computes (the benchmark's
    comparison is like for like). onnx_file: torch is already imported by then."""
    import argparse

    from bort.benchmarks.inference import QUICK_ARCHITECTURES, _Models, _random_batch

    args = argparse.Namespace(threads=1, calibration_batches=1)
    models = _Models(args, str(tmp_path), QUICK_ARCHITECTURES, 300, 64)
    ids, valid_length = _random_batch(np.random.RandomState(0), 300, 3, 20)
    valid_length[1:] = [7, 1]
    ids[np.arange(20)[None, :] >= valid_length[:, None]] = PAD_ID
    torch_out = models.runner("bort", "torch").call(ids, valid_length)
    mxnet_out = models.runner("bort", "hybrid").call(ids, valid_length)
    assert np.abs((torch_out - mxnet_out) * _valid_mask(ids, valid_length)).max() < 1e-5


def test_benchmark_dispatcher_lists_benchmarks_and_rejects_bad_shapes(tmp_path):
    completed = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "benchmark.py"), "--help"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "inference" in completed.stdout
    from bort.benchmarks.inference import parse_shapes

    assert parse_shapes("1x128, 8x512") == [(1, 128), (8, 512)]
    with pytest.raises(ConfigError, match="BATCHxLENGTH"):
        parse_shapes("8by128")


def test_benchmark_dispatcher_tolerates_a_missing_module(monkeypatch):
    from bort.cli import benchmark as dispatcher

    monkeypatch.setattr(dispatcher, "BENCHMARKS",
                        dict(dispatcher.BENCHMARKS, not_written_yet="a benchmark whose module is missing"))
    modules, missing = dispatcher.load_benchmarks()
    assert "inference" in modules and "not_written_yet" in missing
    with pytest.raises(ConfigError, match=r"unavailable.*bort/benchmarks/not_written_yet\.py is missing"):
        dispatcher.main(["not_written_yet"])
