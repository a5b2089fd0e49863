"""One checkpoint loader and the record every checkpoint carries (bort/checkpoint.py).

A tiny RTE model with 4 heads (not the predefined 8) is fine-tuned once with the release's pair layout; every
consumer (predict, the exports, the onnxruntime backend, get_bort_model) must rebuild it from its record alone.
"""
import json
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from bort.checkpoint import (
    CLASSIFIER,
    get_bort_model,
    make_record,
    open_checkpoint,
    read_record,
    record_path,
    vocabulary_identity,
)
from bort.errors import CheckpointError, ConfigError, ParamsError
from bort.finetune.config import FinetuneConfig
from bort.finetune.trainer import finetune

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE = os.path.join(REPO, "tests", "data", "glue")
VOCAB_DIR = os.path.join(REPO, "data", "demo", "vocab")
VOCAB, MERGES = os.path.join(VOCAB_DIR, "vocab.json"), os.path.join(VOCAB_DIR, "merges.txt")
PAIRS = [("A man is playing a guitar on the stage.", "A man plays music."),
         ("The cat sat on the mat.", "No animal is on the mat."),
         ("Paris is the capital of France.", "France has a capital.")]
LABELS = ["not_entailment", "entailment"]  # RTE's labels in class-id order
HEADS = 4  # the predefined bort_4_8_768_1024 has 8: a consumer that ignores the record gets it wrong


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """model_bort_RTE.params (+ its record) of a 4-head model fine-tuned with the release's pair layout."""
    out = tmp_path_factory.mktemp("rte")
    config = FinetuneConfig(task_name="RTE", data_dir=GLUE, output_dir=str(out / "run"), vocab=VOCAB, merges=MERGES,
                            num_layers=1, units=16, hidden_size=32, num_heads=HEADS, model_max_length=128,
                            max_len=96, batch_size=4, dev_batch_size=16, epochs=1, ramp_up_epochs=1, progress=False,
                            lr=1e-3, predict=False, pair_layout="bort_release")
    return finetune(config)["model_path"]


def _tokenizer(layout):
    from bort.tokenizer import BortTokenizer

    return BortTokenizer.from_hf(VOCAB, MERGES, pair_layout=layout)


def _pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(dict(text=a, text_b=b)) + "\n" for a, b in PAIRS), encoding="utf-8")
    return path


def _predict(params, tmp_path, *extra, name="out.jsonl"):
    from bort.cli.predict import main

    out = tmp_path / name
    assert main(["classify", "--params", str(params), "--vocab", VOCAB, "--merges", MERGES, "--input",
                 str(_pairs_file(tmp_path)), "--output", str(out), "--progress", "false", *extra]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _probabilities(model, tokenizer, max_length=96):
    rows = []
    for a, b in PAIRS:
        ids = tokenizer.encode_pair(a, b, max_length=max_length)
        logits = model(mx.nd.array([ids], dtype="int32"), mx.nd.array([len(ids)], dtype="int32")).asnumpy()[0]
        rows.append(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    return np.array(rows)


def _copy_without_record(params, directory):
    os.makedirs(directory, exist_ok=True)
    copy = os.path.join(directory, "model.params")
    shutil.copyfile(params, copy)
    return copy


# ------------------------------------------------------------------------------------------------ the record
def test_finetuning_records_everything_needed_to_rebuild_and_serve(finetuned):
    record = read_record(finetuned)
    assert record["format"] == "bort-checkpoint-record" and record["format_version"] == 1
    assert record["kind"] == CLASSIFIER and record["dtype"] == "float32"
    assert record["architecture"]["num_heads"] == HEADS and record["architecture"]["units"] == 16
    assert record["task"] == "RTE" and record["labels"] == LABELS
    assert record["pair_layout"] == "bort_release" and record["max_seq_length"] == 96
    assert record["vocabulary"] == vocabulary_identity(_tokenizer("roberta"))
    assert record["vocabulary"]["size"] == 858 and len(record["vocabulary"]["sha256"]) == 64


def test_pretraining_checkpoint_rebuilds_from_its_record_alone(tmp_path):
    from bort.model import BortModel
    from bort.training.checkpoint import save_checkpoint

    model, _ = get_bort_model(None, vocab_size=50, num_layers=1, units=16, hidden_size=8, num_heads=2,
                              max_length=32, dropout=0.0, embed_dropout=0.0)
    directory = save_checkpoint(str(tmp_path / "ckpt"), 7, model)
    params = os.path.join(directory, "model.params")
    assert read_record(params)["architecture"]["num_heads"] == 2
    rebuilt, _ = get_bort_model(None, params_path=params)  # no num_heads: 2 comes from model.json
    assert isinstance(rebuilt, BortModel) and rebuilt.config == model.config
    ids = mx.nd.array([[3, 5, 7, 9, 11]], dtype="int32")
    np.testing.assert_array_equal(rebuilt(ids).asnumpy(), model(ids).asnumpy())
    with pytest.raises(ConfigError, match=r"num_heads 8 contradicts .*model\.json.*num_heads 2"):
        get_bort_model(None, params_path=params, num_heads=8)


def test_a_pretraining_run_writes_records_its_checkpoints_rebuild_from(tmp_path):
    from bort.pretraining.data import create_pretraining_data
    from bort.pretraining.trainer import PretrainConfig, pretrain
    from bort.training.checkpoint import latest_checkpoint

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"{a}\n{b}" for a, b in PAIRS * 3) + "\n", encoding="utf-8")
    create_pretraining_data([str(corpus)], str(tmp_path / "shards"), _tokenizer("roberta"), max_seq_length=32,
                            max_predictions_per_seq=4, num_shards=1, show_progress=False)
    cfg = PretrainConfig(train_files=[str(tmp_path / "shards" / "part-000.npz")], ckpt_dir=str(tmp_path / "run"),
                         vocab=VOCAB_DIR, model=None, teacher_model=None, teacher_ce_weight=0.0, mlm_weight=1.0,
                         model_overrides=dict(num_layers=1, units=16, hidden_size=8, num_heads=2, max_length=32),
                         num_steps=2, ckpt_interval=2, batch_size=4, progress=False)
    pretrain(cfg)
    params = os.path.join(latest_checkpoint(cfg.ckpt_dir), "model.params")
    record = read_record(params)
    assert record["kind"] == "mlm" and record["architecture"]["num_heads"] == 2
    assert record["vocabulary"] == vocabulary_identity(_tokenizer("roberta"))
    model, _ = get_bort_model(None, params_path=params)  # "model": null in state.json; the record suffices
    assert model.config.num_heads == 2 and model.use_decoder


def test_a_record_of_another_file_is_refused(finetuned, tmp_path):
    params = _copy_without_record(finetuned, tmp_path)
    record = read_record(finetuned)
    record["architecture"]["units"] = 32
    with open(record_path(params), "w") as handle:
        json.dump(record, handle)
    with pytest.raises(CheckpointError, match="does not describe.*units 32 \\(file: 16\\)"):
        get_bort_model(None, params_path=params, use_decoder=False)


# ------------------------------------------------------------------------------------------------ consumers
@pytest.mark.slow
def test_hf_export_takes_heads_labels_and_pair_layout_from_the_record(finetuned, tmp_path, capsys):
    from transformers import AutoTokenizer

    from bort.cli.export import main

    out = tmp_path / "hf"
    assert main(["--params", finetuned, "--format", "hf", "--out", str(out), "--vocab", VOCAB, "--merges",
                 MERGES]) == 0
    printed = capsys.readouterr().out
    assert "EXCEEDS" not in printed and "AutoTokenizer on the export builds text pairs like the model" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["num_attention_heads"] == HEADS
    assert config["id2label"] == {"0": LABELS[0], "1": LABELS[1]}
    assert config["label2id"] == {LABELS[0]: 0, LABELS[1]: 1}
    # The exported tokenizer builds pairs the way the model was trained: <s> A </s> B </s>.
    exported = AutoTokenizer.from_pretrained(str(out))
    release, roberta = _tokenizer("bort_release"), _tokenizer("roberta")
    for a, b in PAIRS:
        assert exported(a, b)["input_ids"] == release.encode_pair(a, b) != roberta.encode_pair(a, b)
        assert exported(a)["input_ids"] == release.encode(a)
    with pytest.raises(ConfigError, match=r"num_heads 8 contradicts .*model_bort_RTE\.json.*num_heads 4"):
        main(["--params", finetuned, "--format", "hf", "--out", str(tmp_path / "hf8"), "--num_heads", "8"])
    assert not (tmp_path / "hf8").exists()


def test_predict_serves_with_the_record_labels_heads_and_pair_layout(finetuned, tmp_path):
    from bort.checkpoint import open_checkpoint

    rows = _predict(finetuned, tmp_path)
    assert {row["label"] for row in rows} <= set(LABELS)
    model = open_checkpoint(finetuned).build()
    expected = _probabilities(model, _tokenizer("bort_release"))
    got = np.array([row["probabilities"] for row in rows])
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # ... and not those of RoBERTa's layout, which the predict command used before it read the record.
    assert not np.allclose(got, _probabilities(model, _tokenizer("roberta")), atol=2e-6)
    assert [row["label"] for row in rows] == [LABELS[int(i)] for i in expected.argmax(1)]


@pytest.mark.parametrize("flags,match", [
    (["--num_heads", "8"], r"num_heads 8 contradicts .*which records num_heads 4"),
    (["--labels", "yes,no"], r"--labels yes,no contradicts .*labels not_entailment,entailment"),
    (["--pair_layout", "roberta"], r"--pair_layout roberta contradicts .*pair_layout bort_release"),
])
def test_predict_flags_that_contradict_the_record_are_errors_unless_forced(finetuned, tmp_path, flags, match):
    with pytest.raises(ConfigError, match=match):
        _predict(finetuned, tmp_path, *flags)
    assert not (tmp_path / "out.jsonl").exists()
    rows = _predict(finetuned, tmp_path, *flags, "--force")
    if "--labels" in flags:
        assert {row["label"] for row in rows} <= {"yes", "no"}


def test_finetuning_inference_refuses_another_pair_layout_than_the_record(finetuned, tmp_path):
    config = FinetuneConfig(task_name="RTE", data_dir=GLUE, output_dir=str(tmp_path / "inf"), vocab=VOCAB,
                            merges=MERGES, only_inference=True, model_parameters=finetuned, max_len=96,
                            progress=False, pair_layout="roberta")
    with pytest.raises(ConfigError, match="--pair_layout roberta contradicts .*pair_layout bort_release"):
        finetune(config)


def test_a_vocabulary_other_than_the_recorded_one_is_refused(finetuned, tmp_path):
    vocabulary = json.loads(open(VOCAB, encoding="utf-8").read())
    first, second = sorted(token for token in vocabulary if token.isalpha())[:2]
    vocabulary[first], vocabulary[second] = vocabulary[second], vocabulary[first]  # same size, other ids
    other = tmp_path / "vocab.json"
    other.write_text(json.dumps(vocabulary), encoding="utf-8")
    from bort.cli.predict import main

    with pytest.raises(ConfigError, match="not the one the model was trained with"):
        main(["classify", "--params", finetuned, "--vocab", str(other), "--merges", MERGES, "--input",
              str(_pairs_file(tmp_path)), "--output", str(tmp_path / "x.jsonl")])


def test_onnxruntime_backend_builds_the_reference_from_the_record(finetuned, tmp_path):
    from bort.export.commands import export

    export(finetuned, "onnx", str(tmp_path / "onnx"), lengths=(7,))
    onnx_rows = _predict(finetuned, tmp_path, "--backend", "onnxruntime", "--onnx",
                         str(tmp_path / "onnx" / "model.onnx"), name="onnx.jsonl")
    fused_rows = _predict(finetuned, tmp_path, name="fused.jsonl")
    np.testing.assert_allclose([r["probabilities"] for r in onnx_rows], [r["probabilities"] for r in fused_rows],
                               atol=1e-4)


def test_old_checkpoints_without_a_record_load_with_notes(finetuned, tmp_path, capsys):
    params = _copy_without_record(finetuned, tmp_path / "old")
    rows = _predict(params, tmp_path, "--num_heads", str(HEADS))
    assert {row["label"] for row in rows} <= {"0", "1"}
    err = capsys.readouterr().err
    assert "no pair layout recorded" in err and "'bort_release'" in err
    checkpoint = open_checkpoint(params)
    assert checkpoint.record is None
    assert checkpoint.config().num_heads == 8 and "attention heads" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ NaN / Inf
def test_nonfinite_weights_are_refused_naming_the_tensors(finetuned, tmp_path, capsys):
    arrays = mx.nd.load(finetuned)
    weight = "bort.encoder.transformer_cells.0.ffn.ffn_1.weight"
    arrays[weight][0, 0] = np.nan
    arrays[weight][0, 1] = np.nan
    arrays["classifier.3.bias"][1] = np.inf
    broken = str(tmp_path / "broken.params")
    mx.nd.save(broken, arrays)
    shutil.copyfile(record_path(finetuned), record_path(broken))
    with pytest.raises(ParamsError, match=r"non-finite weights in 2 tensors: .*ffn_1\.weight \(2 NaN, 0 infinite\)"
                                          r".*classifier\.3\.bias \(0 NaN, 1 infinite\).*--allow_nonfinite"):
        open_checkpoint(broken)
    with pytest.raises(ParamsError, match="ffn_1.weight"):
        _predict(broken, tmp_path)
    assert open_checkpoint(broken, allow_nonfinite=True).nonfinite == [(weight, 2, 0), ("classifier.3.bias", 0, 1)]
    from bort.cli.inspect_params import main as inspect_main

    capsys.readouterr()
    assert inspect_main([broken]) == 1
    out = capsys.readouterr().out
    assert "NON-FINITE:  2 tensors" in out and "classifier.3.bias: 0 NaN, 1 infinite" in out
    assert inspect_main([finetuned]) == 0
    out = capsys.readouterr().out
    assert "heads:       4" in out and "pair_layout:    bort_release" in out and "values:      all finite" in out


# ------------------------------------------------------------------------------------------------ one read
def test_each_load_reads_the_file_once(finetuned, tmp_path, monkeypatch):
    from bort.cli.predict import main as predict_main
    from bort.export.commands import export
    from bort.finetune.build import build_classifier
    from bort.params import save_parameters
    from bort.pretraining.teacher import load_teacher
    from bort.tasks import get_task

    reads = []
    real_load = mx.nd.load
    monkeypatch.setattr(mx.nd, "load", lambda path, *args: reads.append(path) or real_load(path, *args))

    def count(run):
        reads.clear()
        run()
        return len(reads)

    teacher, _ = get_bort_model(None, vocab_size=858, num_layers=1, units=16, hidden_size=8, num_heads=2)
    pretrained = str(tmp_path / "teacher.params")
    save_parameters(teacher, pretrained)  # no record: the heads come from the argument
    assert count(lambda: predict_main(["classify", "--params", finetuned, "--vocab", VOCAB, "--merges", MERGES,
                                       "--input", str(_pairs_file(tmp_path)), "--output", str(tmp_path / "o"),
                                       "--progress", "false"])) == 1
    assert count(lambda: export(finetuned, "hf", str(tmp_path / "hf"), lengths=(7,))) == 1
    config = FinetuneConfig(task_name="RTE", model_parameters=finetuned, num_heads=HEADS, max_len=96,
                            progress=False)
    assert count(lambda: build_classifier(config, get_task("RTE"), 858, mx.cpu())) == 1
    assert count(lambda: get_bort_model(None, params_path=finetuned, use_decoder=False)) == 1
    assert count(lambda: load_teacher("bort", pretrained, 858, num_heads=2)) == 1


def test_make_record_reads_the_model(finetuned):
    model = open_checkpoint(finetuned).build()
    record = make_record(model)
    assert record["kind"] == CLASSIFIER and record["num_labels"] == 2 and "labels" not in record
    assert record["architecture"]["num_heads"] == HEADS


def test_older_records_still_give_the_architecture(finetuned, tmp_path):
    """The head record fine-tuning wrote before format versions carries the architecture: the heads come from it."""
    architecture = read_record(finetuned)["architecture"]
    for name, record in (("head", dict(task="RTE", head="classification", num_labels=2, labels=LABELS,
                                       model_config=architecture)),):
        params = _copy_without_record(finetuned, tmp_path / name)
        with open(record_path(params), "w") as handle:
            json.dump(record, handle)
        checkpoint = open_checkpoint(params)
        assert checkpoint.config().num_heads == HEADS and checkpoint.notes == []
        assert checkpoint.labels() == LABELS
    with open(record_path(params), "w") as handle:
        json.dump({"something": "else"}, handle)
    with pytest.raises(CheckpointError, match="is not a Bort checkpoint record"):
        open_checkpoint(params)
