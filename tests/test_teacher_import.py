"""Teachers from Hugging Face: BERT (token types, pooler, next-sentence head) and RoBERTa (offset positions, its MLM
head) checkpoints, safetensors and pytorch_model.bin, imported into Bort `.params` + record and checked against
transformers on the same weights; bad checkpoints give errors naming the file and the field; and the whole path
import -> distillation with the imported teacher -> export back to HF -> transformers loads it.

Every model is built here with transformers from a seed (random weights, no network)."""
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bort.checkpoint import get_bort_model, read_record  # noqa: E402
from bort.errors import ConfigError, ParamsError  # noqa: E402
from bort.export.hf_import import import_hf  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_VOCAB = os.path.join(REPO, "data", "demo", "vocab")
SIZES = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48)
BOUND = 1e-5


def _randomize(model, seed):
    """Weights far from transformers' init (LayerNorm 1/0, zero biases) so that a misplaced tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def _bert(directory, vocab_size=60, seed=0, model_class="BertForPreTraining", **overrides):
    """BertForPreTraining: MLM head, pooler, next-sentence head, two token types (row 0 not zero)."""
    config = transformers.BertConfig(vocab_size=vocab_size, max_position_embeddings=40, type_vocab_size=2,
                                     layer_norm_eps=1e-12, **dict(SIZES, **overrides))
    model = _randomize(getattr(transformers, model_class)(config), seed)
    model.save_pretrained(directory)
    return model


def _roberta(directory, vocab_size=60, seed=1, model_class="RobertaForMaskedLM", **overrides):
    config = transformers.RobertaConfig(vocab_size=vocab_size, max_position_embeddings=42, type_vocab_size=1,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                                        **dict(SIZES, **overrides))
    model = _randomize(getattr(transformers, model_class)(config), seed)
    model.save_pretrained(directory)
    return model


def _batch(vocab_size, length=20, valid=(20, 13, 1), seed=0):
    """Right-padded ids without the pad id (1) among the real tokens (RoBERTa numbers positions by it)."""
    rng = np.random.RandomState(seed)
    valid = np.array(valid)
    ids = rng.randint(3, vocab_size, size=(len(valid), length))
    ids[np.arange(length)[None, :] >= valid[:, None]] = 1
    masked = np.stack([rng.randint(0, v, size=4) for v in valid])
    attention = (np.arange(length)[None, :] < valid[:, None]).astype(np.int64)
    return ids, valid, masked, attention


def _differences(hf_model, params_path, vocab_size):
    """(max |sequence output difference| over real tokens, max |MLM logit difference|) MXNet vs transformers."""
    ids, valid, masked, attention = _batch(vocab_size)
    with torch.no_grad():
        out = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(attention),
                       output_hidden_states=True)
    logits = getattr(out, "prediction_logits", None)
    logits = (out.logits if logits is None else logits).numpy()
    model, _ = get_bort_model(None, params_path=params_path, dropout=0.0, embed_dropout=0.0)
    sequence, mlm = model(mx.nd.array(ids), mx.nd.array(valid), mx.nd.array(masked))
    real = attention.astype(bool)
    sequence_diff = np.abs(sequence.asnumpy() - out.hidden_states[-1].numpy())[real].max()
    mlm_diff = np.abs(mlm.asnumpy() - np.take_along_axis(logits, masked[:, :, None], axis=1)).max()
    return float(sequence_diff), float(mlm_diff)


# ------------------------------------------------------------------------------------------------ exactness
def test_bert_with_token_types_pooler_and_nsp_head_matches_transformers(tmp_path):
    model = _bert(str(tmp_path / "bert"))
    result = import_hf(str(tmp_path / "bert"), str(tmp_path / "bert.params"))
    assert _differences(model, str(tmp_path / "bert.params"), 60) < (BOUND, BOUND)

    config = result.config
    assert (config.num_layers, config.num_heads, config.units, config.hidden_size, config.max_length,
            config.vocab_size, config.layer_norm_eps, config.mlm_layer_norm_eps) == (3, 4, 32, 48, 40, 60, 1e-12, 1e-12)
    lost = " | ".join(result.report.lost)
    assert "token-type rows 1..1" in lost and "segment B" in lost
    assert "bert.pooler.dense" in lost and "cls.seq_relationship" in lost
    assert any("token-type row 0 added" in note for note in result.report.exact)
    # Row 0 is folded into the positions, row 1 is gone.
    hf_state = model.state_dict()
    positions = mx.nd.load(str(tmp_path / "bert.params"))["encoder.position_weight"].asnumpy()
    expected = (hf_state["bert.embeddings.position_embeddings.weight"]
                + hf_state["bert.embeddings.token_type_embeddings.weight"][0]).numpy()
    np.testing.assert_array_equal(positions, expected)
    record = read_record(str(tmp_path / "bert.params"))
    assert record["architecture"]["num_heads"] == 4 and record["kind"] == "mlm"
    assert record["imported_from"]["model_type"] == "bert" and "vocabulary" not in record


@pytest.mark.parametrize("weights", ["safetensors", "sharded", "bin"])
def test_roberta_matches_transformers(tmp_path, weights):
    model = _roberta(str(tmp_path / "roberta"))
    if weights == "sharded":
        shutil.rmtree(str(tmp_path / "roberta"))
        model.save_pretrained(str(tmp_path / "roberta"), max_shard_size="20KB")
        assert os.path.isfile(str(tmp_path / "roberta" / "model.safetensors.index.json"))
    if weights == "bin":
        # Older checkpoints: a pickled state dict that also stores the tied decoder weight and bias.
        os.remove(str(tmp_path / "roberta" / "model.safetensors"))
        torch.save(model.state_dict(), str(tmp_path / "roberta" / "pytorch_model.bin"))
    result = import_hf(str(tmp_path / "roberta"), str(tmp_path / "roberta.params"))
    assert _differences(model, str(tmp_path / "roberta.params"), 60) < (BOUND, BOUND)
    assert result.config.max_length == 40 and result.config.mlm_layer_norm_eps == 1e-5
    assert result.report.lost == []  # nothing of a RobertaForMaskedLM is lost
    positions = mx.nd.load(str(tmp_path / "roberta.params"))["encoder.position_weight"].asnumpy()
    state = model.state_dict()
    expected = (state["roberta.embeddings.position_embeddings.weight"][2:]
                + state["roberta.embeddings.token_type_embeddings.weight"][0]).numpy()
    np.testing.assert_array_equal(positions, expected)


def test_roberta_classifier_head_becomes_the_fine_tuning_head(tmp_path):
    from bort.checkpoint import open_checkpoint

    model = _roberta(str(tmp_path / "cls"), model_class="RobertaForSequenceClassification", num_labels=3)
    result = import_hf(str(tmp_path / "cls"), str(tmp_path / "cls.params"))
    assert result.num_classes == 3 and result.report.kind == "classifier"
    ids, valid, _, attention = _batch(60)
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(attention)).logits.numpy()
    checkpoint = open_checkpoint(str(tmp_path / "cls.params"))
    classifier = checkpoint.build("classifier", checkpoint.config())
    got = classifier(mx.nd.array(ids), mx.nd.array(valid)).asnumpy()
    assert np.abs(got - expected).max() < BOUND


def test_cli_prints_the_loading_report_and_the_vocabulary_is_recorded(tmp_path, capsys):
    from bort.cli.export import main

    _roberta(str(tmp_path / "hf"), vocab_size=858)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(DEMO_VOCAB, name), str(tmp_path / "hf" / name))
    # A BertModel: no MLM head, a pooler that is not the identity (dropped, and said so).
    _bert(str(tmp_path / "bert"), vocab_size=858, model_class="BertModel")
    assert main(["--from_hf", str(tmp_path / "bert"), "--output", str(tmp_path / "bert.params")]) == 0
    out = capsys.readouterr().out
    assert "WARNING dropped: the pooler (bert.pooler.dense)" in out and "without an MLM head" in out

    assert main(["--from_hf", str(tmp_path / "hf"), "--output", str(tmp_path / "t.params")]) == 0
    out = capsys.readouterr().out
    assert "4 heads" in out and "--teacher_params" in out
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["vocabulary"]["size"] == 858 and record["vocabulary"]["special_ids"]["mask"] == 857
    with pytest.raises(ConfigError, match="already exists"):
        main(["--from_hf", str(tmp_path / "hf"), "--output", str(tmp_path / "t.params")])
    assert main(["--from_hf", str(tmp_path / "hf"), "--output", str(tmp_path / "t.params"), "--force"]) == 0


# ------------------------------------------------------------------------------------------------ bad input
def _edit_config(directory, **changes):
    path = os.path.join(directory, "config.json")
    config = json.load(open(path, encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)


@pytest.mark.parametrize("change,message", [
    (dict(model_type="gpt2"), r"config.json: model_type 'gpt2' is not supported"),
    (dict(model_type=None), r"config.json: no 'model_type' field"),
    (dict(hidden_size=64, num_attention_heads=4), r"shapes disagree with config.json \(hidden_size 64"),
    (dict(num_hidden_layers=2), r"hold layers 0, 1, 2 but config.json's num_hidden_layers is 2"),
    (dict(hidden_act="gelu_new"), r"config.json: hidden_act 'gelu_new' is not supported"),
    (dict(vocab_size=None), r"config.json: no 'vocab_size' field"),
    (dict(pad_token_id=None), r"config.json: pad_token_id is None"),
    (dict(position_embedding_type="relative_key"), r"position_embedding_type 'relative_key'"),
])
def test_bad_config_is_named_with_its_field(tmp_path, change, message):
    directory = str(tmp_path / "roberta")
    _roberta(directory)
    _edit_config(directory, **change)
    with pytest.raises(ParamsError, match=message):
        import_hf(directory, str(tmp_path / "out.params"))
    assert not os.path.exists(tmp_path / "out.params") and not os.path.exists(tmp_path / "out.json")


def test_bad_directories_and_weights(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match="empty: no config.json"):
        import_hf(str(tmp_path / "empty"), str(tmp_path / "x.params"))
    with pytest.raises(ParamsError, match="not a directory"):
        import_hf(str(tmp_path / "nowhere"), str(tmp_path / "x.params"))
    # config.json is judged before any weight is looked for.
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ParamsError, match="model_type 'gpt2' is not supported"):
        import_hf(str(tmp_path / "empty"), str(tmp_path / "x.params"))
    os.remove(str(tmp_path / "empty" / "config.json"))
    directory = str(tmp_path / "bert")
    _bert(directory)
    with pytest.raises(ConfigError, match="name the .params file"):
        import_hf(directory, str(tmp_path / "x.bin"))
    # RoBERTa's config over BERT's weights: the names give it away.
    _edit_config(directory, model_type="roberta", pad_token_id=1)
    with pytest.raises(ParamsError, match="no roberta.embeddings.\\* weights"):
        import_hf(directory, str(tmp_path / "x.params"))
    _edit_config(directory, model_type="bert")
    os.rename(os.path.join(directory, "model.safetensors"), os.path.join(directory, "model.bin"))
    with pytest.raises(ParamsError, match="no weights; looked for model.safetensors"):
        import_hf(directory, str(tmp_path / "x.params"))
    with open(os.path.join(directory, "pytorch_model.bin"), "wb") as handle:
        handle.write(b"not a pickle")
    with pytest.raises(ParamsError, match="pytorch_model.bin: unreadable PyTorch weights"):
        import_hf(directory, str(tmp_path / "x.params"))
    assert sorted(os.listdir(tmp_path)) == ["bert", "empty"]


def test_untied_decoder_is_refused(tmp_path):
    directory = str(tmp_path / "roberta")
    model = _roberta(directory)
    state = {name: value.clone() for name, value in model.state_dict().items()}
    state["lm_head.decoder.weight"] = state["lm_head.decoder.weight"] + 1.0
    os.remove(os.path.join(directory, "model.safetensors"))
    torch.save(state, os.path.join(directory, "pytorch_model.bin"))
    with pytest.raises(ParamsError, match="lm_head.decoder.weight differs from the word embedding"):
        import_hf(directory, str(tmp_path / "x.params"))


# ------------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def demo_shards(tmp_path_factory):
    from bort.pretraining.data import create_pretraining_data
    from bort.tokenizer import BortTokenizer

    root = tmp_path_factory.mktemp("shards")
    create_pretraining_data([os.path.join(REPO, "data", "sample_text.txt")], str(root), BortTokenizer.from_directory(
        DEMO_VOCAB), max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1, seed=0, num_shards=1,
        show_progress=False)
    return sorted(str(path) for path in root.glob("*.npz"))


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_hf_teacher_from_import_to_exported_student(tmp_path, demo_shards, family):
    """transformers model -> import -> the distillation teacher (exact) -> a few distillation steps -> export of
    the student to HF -> transformers loads it with nothing missing and computes what MXNet computes."""
    from bort.export.commands import export
    from bort.export.hf import load_hf_model
    from bort.export.hf_teacher import build_hf_teacher
    from bort.pretraining.teacher import load_teacher
    from bort.pretraining.trainer import PretrainConfig, pretrain

    hf_model = build_hf_teacher(str(tmp_path / "hf"), DEMO_VOCAB, family=family, num_layers=2, num_heads=4, units=32,
                                hidden_size=64, max_length=32, seed=3)
    teacher_params = str(tmp_path / "teacher.params")
    import_hf(str(tmp_path / "hf"), teacher_params)

    # The teacher pretraining builds from the file and its record (heads, epsilons) is transformers' model.
    teacher = load_teacher("bort", teacher_params, vocab_size=858)
    ids, valid, masked, attention = _batch(858, length=16, valid=(16, 9))
    with torch.no_grad():
        out = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(attention))
    expected = np.take_along_axis((out.logits if family == "roberta" else out.prediction_logits).numpy(),
                                  masked[:, :, None], axis=1)
    got = teacher(mx.nd.array(ids), mx.nd.array(valid), mx.nd.array(masked)).asnumpy()
    assert np.abs(got - expected).max() < BOUND

    student = dict(num_layers=1, num_heads=2, units=32, hidden_size=48, max_length=32, dropout=0.0, embed_dropout=0.0)
    summary = pretrain(PretrainConfig(
        train_files=demo_shards, ckpt_dir=str(tmp_path / "run"), vocab=DEMO_VOCAB, model=None,
        model_overrides=student, teacher_model="bort", teacher_params=teacher_params, num_steps=3, batch_size=4,
        lr=1e-3, log_interval=1, ckpt_interval=100, progress=False))
    log = [json.loads(line) for line in open(tmp_path / "run" / "train_log.jsonl", encoding="utf-8")]
    assert [r["teacher_ce"] > 0 and np.isfinite(r["teacher_ce"]) for r in log if "teacher_ce" in r] == [True] * 3

    result = export(os.path.join(summary["checkpoint"], "model.params"), "hf", str(tmp_path / "student"),
                    num_heads=2, vocab=os.path.join(DEMO_VOCAB, "vocab.json"),
                    merges=os.path.join(DEMO_VOCAB, "merges.txt"))
    assert all(report.ok for report in result.reports)  # parity with MXNet within 1e-5, checked by the export
    model, info = load_hf_model(str(tmp_path / "student"))
    assert not any(info.values()), info
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (1, 32, 858)


# ------------------------------------------------------------------------------------------------ run_recipe.sh
def _recipe(*args):
    import subprocess

    return subprocess.run([os.path.join(REPO, "run_recipe.sh"), *args], capture_output=True, text=True, timeout=60)


def test_recipe_help_and_arguments_checked_before_any_work(tmp_path):
    done = _recipe("--help")
    assert done.returncode == 0
    for step in ("import", "extract", "distil", "agora", "export", "DEMO", "--resume", "--force"):
        assert step in done.stdout, step
    (tmp_path / "teacher").mkdir()
    existing = tmp_path / "run"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    cases = [
        (["DEMO", "--nope"], "unknown argument --nope"),
        (["DEMO", "--force", "--resume"], "choose one"),
        (["DEMO", "--corpus", "x.txt"], "DEMO chooses its own"),
        ([str(tmp_path / "absent")], "is not a directory"),
        ([str(tmp_path / "teacher")], "has no config.json"),
        (["DEMO", "--out", str(existing)], "already exists; pass --resume"),
        (["DEMO", "--pretrain_steps", "0", "--out", str(tmp_path / "new")], "positive integer"),
    ]
    for args, message in cases:
        done = _recipe(*args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert os.listdir(existing) == ["keep.txt"] and not (tmp_path / "new").exists()
