"""Weight export and import: Hugging Face Transformers, ONNX and MXNet symbol, and back from HF.

References are the original stack's own outputs (tests/fixtures/original_gluonnlp083, made with mxnet 1.5 +
gluonnlp 0.8.3), so the exports are checked against the release, not against this package's model alone; the
full-size tests use a random `bort_4_8_768_1024` (vocabulary 50265) and the MXNet model as the reference.
"""
import contextlib
import importlib.util
import json
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bort.cli import run_main  # noqa: E402
from bort.errors import ConfigError, ParamsError, VocabError  # noqa: E402
from bort.export import hf  # noqa: E402
from bort.export.commands import export, import_from_hf  # noqa: E402
from bort.export.hf_import import import_hf  # noqa: E402
from bort.export.onnx import onnx_runner, open_session  # noqa: E402
from bort.export.symbol import import_symbol, symbol_runner  # noqa: E402
from bort.params import release_parameter_names  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
from conftest import FIXTURES_DIR as FIXTURES  # noqa: E402
from conftest import SAMPLE_TEXT  # noqa: E402

TINY = dict(model_name="bort_4_8_768_1024", num_heads=4)  # the fixtures' sizes come from the files
FULL_LENGTHS = (6, 21)  # full-size parity stays short: it runs three models on two shared cores


def _script_main():
    path = os.path.join(HERE, "..", "scripts", "export_weights.py")
    spec = importlib.util.spec_from_file_location("script_export_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _fixture(name):
    return os.path.join(FIXTURES, name)


def _release_io(precision):
    """The original stack's inputs and outputs as a parity batch plus the expected outputs."""
    data = np.load(_fixture(f"tiny_{precision}_io.npz"))
    valid = data["valid_length"].astype(np.int64)
    length = data["input_ids"].shape[1]
    batch = dict(input_ids=data["input_ids"].astype(np.int64), valid_length=valid,
                 attention_mask=(np.arange(length)[None, :] < valid[:, None]).astype(np.int64),
                 masked_positions=data["masked_positions"].astype(np.int64))
    return batch, {name: data[name] for name in ("sequence_output", "mlm_logits", "classifier_logits")}


def _valid_max_diff(got, expected, valid_length):
    mask = np.arange(expected.shape[1])[None, :] < valid_length[:, None]
    return float(np.abs(got - expected)[mask].max())


def _masked_max_diff(got, expected, batch):
    """MLM logits compared at masked positions inside the valid length (the fixture also masks a padded one,
    where the original stack's logits are zero and HF has no equivalent)."""
    inside = batch["masked_positions"] < batch["valid_length"][:, None]
    return float(np.abs(got - expected)[inside].max())


@contextlib.contextmanager
def _transformers_warnings():
    """Collect what transformers logs at WARNING or above (its logger does not propagate to pytest's caplog)."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    root = logging.getLogger("transformers")
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


def _load_clean(model_class, directory, **kwargs):
    """Load and assert: no missing, unexpected or mismatched weights and no warning from transformers."""
    with _transformers_warnings() as warnings:
        model, info = model_class.from_pretrained(directory, output_loading_info=True, **kwargs)
    assert not any(info.values()), f"{model_class.__name__}: {info}"
    assert not warnings, f"{model_class.__name__} warned: {warnings}"
    return model.eval()


# ------------------------------------------------------------------------------------------------ names
def test_name_table_matches_hf_bert_and_covers_the_release():
    """Every release name maps to a distinct HF name, and together with the tied / filled-in ones they are
    exactly the parameters transformers' own BertForMaskedLM has."""
    from transformers import BertConfig, BertForMaskedLM

    table = hf.name_table(num_layers=2, with_decoder=True)
    bort_names = [bort for bort, _ in table]
    assert bort_names == [n for n in release_parameter_names(2, with_decoder=True) if n != "decoder.3.weight"]
    hf_names = [name if name.startswith("cls.") else "bert." + name for _, name in table]
    assert len(set(hf_names)) == len(hf_names)
    model = BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=6, max_position_embeddings=16, type_vocab_size=1))
    expected = set(model.state_dict()) - {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                                          "bert.embeddings.token_type_embeddings.weight"}
    assert set(hf_names) == expected
    with pytest.raises(ParamsError, match="not a Bort parameter"):
        hf.hf_name("encoder.transformer_cells.0.attention_cell.proj_query.scale")


# ------------------------------------------------------------------------------------------------ HF
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_hf_mlm_export_reproduces_the_release(tmp_path, precision, capsys):
    import torch
    from transformers import AutoModelForMaskedLM, BertForMaskedLM, BertModel

    out = tmp_path / "hf"
    assert _script_main()(["--params", _fixture(f"tiny_{precision}.params"), "--format", "hf", "--out", str(out),
                           "--num_heads", "4"]) == 0
    printed = capsys.readouterr().out
    assert "no tokenizer files were written" in printed and "sequence_output" in printed
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert (config["architectures"], config["type_vocab_size"], config["layer_norm_eps"], config["pad_token_id"],
            config["bos_token_id"], config["eos_token_id"], config["hidden_act"]) == (
        ["BertForMaskedLM"], 1, 1e-5, 1, 0, 2, "gelu")

    model = _load_clean(BertForMaskedLM, str(out))
    _load_clean(AutoModelForMaskedLM, str(out))
    batch, expected = _release_io(precision)
    as_loaded = hf.hf_runner(model, "mlm")(batch)
    release_eps = hf.hf_runner(model, "mlm", mlm_eps=1e-12)(batch)
    assert _valid_max_diff(release_eps["sequence_output"], expected["sequence_output"], batch["valid_length"]) < 1e-5
    assert _masked_max_diff(release_eps["mlm_logits"], expected["mlm_logits"], batch) < 1e-5
    # HF's single layer_norm_eps (1e-5) in the MLM head moves the logits measurably, and only that does.
    eps_effect = _masked_max_diff(as_loaded["mlm_logits"], expected["mlm_logits"], batch)
    assert 1e-5 < eps_effect < 1e-2
    assert "as loaded" in printed

    # The MLM export is a BertForMaskedLM checkpoint: BertModel can read its encoder but, having a pooler and no
    # MLM head, reports exactly those (transformers has no per-checkpoint way to silence this; see export.md).
    _, info = BertModel.from_pretrained(str(out), output_loading_info=True)
    assert info["missing_keys"] == {"pooler.dense.weight", "pooler.dense.bias"}
    assert info["unexpected_keys"] == {"cls.predictions.bias", "cls.predictions.transform.dense.weight",
                                       "cls.predictions.transform.dense.bias",
                                       "cls.predictions.transform.LayerNorm.weight",
                                       "cls.predictions.transform.LayerNorm.bias"}
    encoder = BertModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    with torch.no_grad():
        hidden = encoder(input_ids=torch.from_numpy(batch["input_ids"]),
                         attention_mask=torch.from_numpy(batch["attention_mask"])).last_hidden_state.numpy()
    assert _valid_max_diff(hidden, expected["sequence_output"], batch["valid_length"]) < 1e-5


def test_hf_encoder_export_loads_clean_in_bertmodel_and_automodel(tmp_path):
    import torch
    from transformers import AutoModel, BertModel

    result = export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "enc"), with_mlm=False, **TINY)
    assert result.kind == "encoder" and all(report.ok for report in result.reports)
    assert json.loads((tmp_path / "enc" / "config.json").read_text())["architectures"] == ["BertModel"]
    batch, expected = _release_io("fp32")
    for model_class in (BertModel, AutoModel):
        model = _load_clean(model_class, str(tmp_path / "enc"))
        assert type(model).__name__ == "BertModel"
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(batch["input_ids"]),
                        attention_mask=torch.from_numpy(batch["attention_mask"]))
        hidden = out.last_hidden_state.numpy()
        assert _valid_max_diff(hidden, expected["sequence_output"], batch["valid_length"]) < 1e-5
        # The identity pooler: pooler_output is tanh of the first token's vector.
        np.testing.assert_allclose(out.pooler_output.numpy(), np.tanh(hidden[:, 0]), atol=1e-6)
    # Back to .params: the encoder's names only (no decoder), bit-identical, the filled-in pooler dropped silently.
    notes = import_hf(str(tmp_path / "enc"), str(tmp_path / "enc.params")).report.notes()
    assert notes == []
    back, original = mx.nd.load(str(tmp_path / "enc.params")), mx.nd.load(_fixture("tiny_fp32.params"))
    assert list(back) == release_parameter_names(2, with_decoder=False)
    for name, value in back.items():
        assert value.asnumpy().tobytes() == original[name].asnumpy().tobytes(), name


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_hf_classifier_export_carries_the_head(tmp_path, precision):
    import torch
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    result = export(_fixture(f"tiny_{precision}_classifier.params"), "hf", str(tmp_path / "cls"), **TINY)
    assert result.kind == "classifier" and [r.diffs["classifier_logits"] <= 1e-5 for r in result.reports] == [True]
    model = _load_clean(BertForSequenceClassification, str(tmp_path / "cls"))
    _load_clean(AutoModelForSequenceClassification, str(tmp_path / "cls"))
    assert model.config.num_labels == 3
    batch, expected = _release_io(precision)
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(batch["input_ids"]),
                       attention_mask=torch.from_numpy(batch["attention_mask"])).logits.numpy()
    assert np.abs(logits - expected["classifier_logits"]).max() < 1e-5


def test_hf_export_with_tokenizer_gives_the_package_ids(tmp_path, capsys):
    from transformers import AutoTokenizer

    from bort.tokenizer import BortTokenizer, train_byte_level_bpe

    vocab_dir = tmp_path / "vocab"
    train_byte_level_bpe([SAMPLE_TEXT], str(vocab_dir), 300)  # the tiny fixtures' vocabulary size
    vocab, merges = str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt")
    out = tmp_path / "hf"
    assert _script_main()(["--params", _fixture("tiny_fp32.params"), "--format", "hf", "--out", str(out),
                           "--num_heads", "4", "--vocab", vocab, "--merges", merges]) == 0
    assert "no tokenizer files" not in capsys.readouterr().out
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (out / name).is_file(), name
    # transformers treats "<mask>" in text as the mask token; the package does so with parse_special_tokens.
    ours = BortTokenizer.from_hf(vocab, merges, parse_special_tokens=True)
    theirs = AutoTokenizer.from_pretrained(str(out))
    texts = open(SAMPLE_TEXT, encoding="utf-8").read().split("\n")[:40] + ["Hello <mask> world.", "  odd  spacing "]
    for text in texts:
        assert theirs(text)["input_ids"] == ours.encode(text), text


@pytest.mark.parametrize("precision,dtype", [("fp32", "float32"), ("fp16", "float16")])
def test_round_trip_params_hf_params_is_bit_identical(tmp_path, precision, dtype):
    source = _fixture(f"tiny_{precision}.params")
    original = mx.nd.load(source)
    export(source, "hf", str(tmp_path / "hf"), dtype=dtype, **TINY)
    _script_main()(["--from-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back.params")])
    back = mx.nd.load(str(tmp_path / "back.params"))
    assert list(back) == release_parameter_names(2, with_decoder=True)
    assert set(back) == set(original)
    for name, value in original.items():
        expected = value.asnumpy().astype(dtype)
        got = back[name].asnumpy()
        assert got.dtype == np.dtype(dtype) and got.tobytes() == expected.tobytes(), name


def test_classifier_round_trip_keeps_body_and_head(tmp_path):
    source = _fixture("tiny_fp32_classifier.params")
    export(source, "hf", str(tmp_path / "hf"), **TINY)
    import_from_hf(str(tmp_path / "hf"), str(tmp_path / "back.params"))
    original, back = mx.nd.load(source), mx.nd.load(str(tmp_path / "back.params"))
    kept = {name for name in original if not name.startswith("bort.decoder.")}
    assert set(back) == kept
    for name in kept:
        assert back[name].asnumpy().tobytes() == original[name].asnumpy().tobytes(), name


# ------------------------------------------------------------------------------------------------ ONNX
@pytest.mark.parametrize("params,kind", [("tiny_fp32.params", "mlm"), ("tiny_fp16_classifier.params", "classifier")])
def test_onnx_export_runs_in_onnxruntime_with_dynamic_shapes(tmp_path, params, kind):
    import onnx

    result = export(_fixture(params), "onnx", str(tmp_path / "onnx"), **TINY)
    assert result.kind == kind and all(report.ok for report in result.reports)
    path = str(tmp_path / "onnx" / "model.onnx")
    graph = onnx.load(path).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "sequence"], value.name
    session = open_session(path)
    batch, expected = _release_io("fp16" if "fp16" in params else "fp32")
    got = onnx_runner(session, kind)(batch)
    assert _valid_max_diff(got["sequence_output"], expected["sequence_output"], batch["valid_length"]) < 1e-4
    if kind == "mlm":
        assert _masked_max_diff(got["mlm_logits"], expected["mlm_logits"], batch) < 1e-4
    else:
        assert np.abs(got["classifier_logits"] - expected["classifier_logits"]).max() < 1e-4
    # Another batch size and length than the export's example input.
    rows = session.run(None, {"input_ids": np.full((5, 40), 7, dtype=np.int64),
                              "attention_mask": np.ones((5, 40), dtype=np.int64)})
    assert rows[0].shape == (5, 40, 64)


# ------------------------------------------------------------------------------------------------ symbol
@pytest.mark.parametrize("params,kind", [("tiny_fp32.params", "mlm"), ("tiny_fp32_classifier.params", "classifier")])
def test_symbol_export_reimports_with_symbolblock(tmp_path, params, kind):
    result = export(_fixture(params), "symbol", str(tmp_path / "sym"), **TINY)
    assert result.kind == kind and all(report.ok for report in result.reports)
    assert {"bort-symbol.json", "bort-0000.params", "signature.json"} <= set(os.listdir(tmp_path / "sym"))
    block = import_symbol(str(tmp_path / "sym"), kind)
    assert isinstance(block, mx.gluon.SymbolBlock)
    batch, expected = _release_io("fp32")
    got = symbol_runner(block, kind)(batch)
    if kind == "mlm":
        assert _valid_max_diff(got["sequence_output"], expected["sequence_output"], batch["valid_length"]) < 1e-5
        assert _masked_max_diff(got["mlm_logits"], expected["mlm_logits"], batch) < 1e-5
    else:
        assert np.abs(got["classifier_logits"] - expected["classifier_logits"]).max() < 1e-5


def test_symbol_export_without_mlm_has_two_inputs(tmp_path):
    export(_fixture("tiny_fp32.params"), "symbol", str(tmp_path / "sym"), with_mlm=False, **TINY)
    signature = json.loads((tmp_path / "sym" / "signature.json").read_text())
    assert list(signature["inputs"]) == ["data0", "data1"]
    batch, expected = _release_io("fp32")
    got = symbol_runner(import_symbol(str(tmp_path / "sym"), "encoder"), "encoder")(batch)
    assert _valid_max_diff(got["sequence_output"], expected["sequence_output"], batch["valid_length"]) < 1e-5


# ------------------------------------------------------------------------------------------------ bad input
def _leftovers(parent):
    return [name for name in os.listdir(parent) if name.endswith(".tmp") or name.endswith(".old")]


def test_bad_inputs_give_clear_errors_and_write_nothing(tmp_path, capsys):
    main = _script_main()
    foreign = str(tmp_path / "foreign.params")
    mx.nd.save(foreign, {"features.0.weight": mx.nd.zeros((2, 2))})
    with pytest.raises(ParamsError, match="not a Bort parameter file"):
        export(foreign, "hf", str(tmp_path / "a"), **TINY)
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, ["--params", foreign, "--format", "onnx", "--out", str(tmp_path / "a")])
    assert exit_info.value.code == 2 and "not a Bort parameter file" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()

    with pytest.raises(VocabError):
        export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "b"), vocab=str(tmp_path / "missing.json"),
               merges=str(tmp_path / "missing.txt"), **TINY)
    (tmp_path / "garbled.json").write_bytes(b"\xff\xfe not a vocabulary")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(VocabError, match="garbled.json"):
        export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "b"), vocab=str(tmp_path / "garbled.json"),
               merges=str(tmp_path / "merges.txt"), **TINY)
    truncated = tmp_path / "truncated.params"
    truncated.write_bytes(open(_fixture("tiny_fp32.params"), "rb").read()[:5000])
    with pytest.raises(ParamsError, match="truncated.params"):
        export(str(truncated), "symbol", str(tmp_path / "b"), **TINY)
    with pytest.raises(ConfigError, match="--vocab and --merges go together"):
        export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "b"), vocab=str(tmp_path / "x.json"), **TINY)
    with pytest.raises(ConfigError, match="float16 is for --format hf"):
        export(_fixture("tiny_fp32.params"), "onnx", str(tmp_path / "b"), dtype="float16", **TINY)
    with pytest.raises(ConfigError, match="fine-tuned classifier"):
        export(_fixture("tiny_fp32_classifier.params"), "hf", str(tmp_path / "b"), with_mlm=True, **TINY)
    no_decoder = str(tmp_path / "no_decoder.params")
    mx.nd.save(no_decoder, {name: value for name, value in mx.nd.load(_fixture("tiny_fp32.params")).items()
                            if not name.startswith("decoder.")})
    with pytest.raises(ConfigError, match="no MLM decoder"):
        export(no_decoder, "onnx", str(tmp_path / "b"), with_mlm=True, **TINY)
    assert not (tmp_path / "b").exists() and not _leftovers(tmp_path)

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        export(_fixture("tiny_fp32.params"), "symbol", str(existing), **TINY)
    assert os.listdir(existing) == ["keep.txt"]
    export(_fixture("tiny_fp32.params"), "symbol", str(existing), force=True, **TINY)
    assert "keep.txt" not in os.listdir(existing) and "bort-symbol.json" in os.listdir(existing)
    assert not _leftovers(tmp_path)

    with pytest.raises(ParamsError, match="no config.json"):
        import_from_hf(str(tmp_path), str(tmp_path / "x.params"))
    with pytest.raises(ConfigError, match="already exists"):
        import_from_hf(str(existing), _fixture("tiny_fp32.params"))


def test_from_hf_folds_a_token_type_row_and_refuses_other_models(tmp_path):
    from safetensors.numpy import load_file, save_file

    export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "hf"), **TINY)
    weights_path = str(tmp_path / "hf" / "model.safetensors")
    weights = load_file(weights_path)
    shift = np.linspace(-1, 1, 64, dtype=np.float32)
    weights["bert.embeddings.token_type_embeddings.weight"] = shift[None, :]
    save_file(weights, weights_path, metadata={"format": "pt"})
    notes = import_hf(str(tmp_path / "hf"), str(tmp_path / "folded.params")).report.notes()
    assert any("token-type row 0" in note for note in notes)
    folded = mx.nd.load(str(tmp_path / "folded.params"))["encoder.position_weight"].asnumpy()
    original = mx.nd.load(_fixture("tiny_fp32.params"))["encoder.position_weight"].asnumpy()
    np.testing.assert_array_equal(folded, original + shift)

    config_path = tmp_path / "hf" / "config.json"
    config_path.write_text(json.dumps(dict(json.loads(config_path.read_text()), model_type="gpt2")))
    with pytest.raises(ParamsError, match="model_type 'gpt2' is not supported"):
        import_hf(str(tmp_path / "hf"), str(tmp_path / "other.params"))


def test_vocabulary_of_another_size_is_refused_before_anything_is_written(tmp_path):
    from bort.tokenizer import train_byte_level_bpe

    train_byte_level_bpe([SAMPLE_TEXT], str(tmp_path / "vocab"), 290)
    with pytest.raises(ConfigError, match="290 tokens"):
        export(_fixture("tiny_fp32.params"), "hf", str(tmp_path / "out"), vocab=str(tmp_path / "vocab/vocab.json"),
               merges=str(tmp_path / "vocab/merges.txt"), **TINY)
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)


# ------------------------------------------------------------------------------------------------ full size
@pytest.fixture(scope="module")
def full_size_params(tmp_path_factory):
    """A random bort_4_8_768_1024 with the release's vocabulary size and its MLM decoder, saved like the release."""
    from bort.model import get_bort_model
    from bort.params import save_parameters

    mx.random.seed(7)
    model, _ = get_bort_model("bort_4_8_768_1024", vocab_size=50265, use_decoder=True)
    path = str(tmp_path_factory.mktemp("full") / "bort_full.params")
    save_parameters(model, path)
    return path


@pytest.mark.slow
def test_full_size_hf_export_and_bit_identical_round_trip(full_size_params, tmp_path):
    from transformers import BertForMaskedLM

    result = export(full_size_params, "hf", str(tmp_path / "hf"), lengths=FULL_LENGTHS)
    (report,) = result.reports
    assert report.ok and report.diffs["sequence_output"] <= 1e-5 and report.diffs["mlm_logits"] <= 1e-5
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["vocab_size"], config["hidden_size"], config["num_attention_heads"], config["intermediate_size"],
            config["num_hidden_layers"], config["max_position_embeddings"]) == (50265, 1024, 8, 768, 4, 512)
    _load_clean(BertForMaskedLM, str(tmp_path / "hf"))
    import_from_hf(str(tmp_path / "hf"), str(tmp_path / "back.params"))
    original, back = mx.nd.load(full_size_params), mx.nd.load(str(tmp_path / "back.params"))
    assert set(back) == set(original)
    for name, value in original.items():
        assert back[name].asnumpy().tobytes() == value.asnumpy().tobytes(), name


@pytest.mark.slow
def test_full_size_onnx_export(full_size_params, tmp_path):
    result = export(full_size_params, "onnx", str(tmp_path / "onnx"), lengths=FULL_LENGTHS)
    (report,) = result.reports
    assert report.ok and max(report.diffs.values()) <= 1e-4 and set(report.diffs) == {"sequence_output", "mlm_logits"}


@pytest.mark.slow
def test_full_size_symbol_export(full_size_params, tmp_path):
    result = export(full_size_params, "symbol", str(tmp_path / "sym"), lengths=FULL_LENGTHS)
    (report,) = result.reports
    assert report.ok and max(report.diffs.values()) <= 1e-5 and set(report.diffs) == {"sequence_output", "mlm_logits"}
    block = import_symbol(str(tmp_path / "sym"), "mlm")
    ids = mx.nd.array(np.random.RandomState(0).randint(0, 50265, size=(2, 9)))
    sequence, logits = block(ids, mx.nd.array([9, 4]), mx.nd.array([[1, 2], [0, 3]]))
    assert sequence.shape == (2, 9, 1024) and logits.shape == (2, 2, 50265)
    assert not np.any(sequence.asnumpy()[1, 4:])  # padded positions zeroed, like the release's encoder
