"""Fine-tuning end to end on tiny models and the tiny official-format files under tests/data/."""
import importlib.util
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from bort.errors import BortError, CheckpointError, ConfigError, ParamsError
from bort.finetune.config import FinetuneConfig
from bort.finetune.features import global_batches, local_share
from bort.finetune.heads import summed_loss
from bort.finetune.trainer import finetune
from bort.tasks import TASKS, get_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_DATA = os.path.join(REPO, "tests", "data")
DEMO_DATA = os.path.join(REPO, "data", "demo")
VOCAB = dict(vocab=os.path.join(DEMO_DATA, "vocab", "vocab.json"),
             merges=os.path.join(DEMO_DATA, "vocab", "merges.txt"))
TINY = dict(VOCAB, num_layers=1, units=16, hidden_size=32, num_heads=2, model_max_length=128, max_len=96,
            batch_size=4, dev_batch_size=16, epochs=1, ramp_up_epochs=1, progress=False, init="gaussian", prob=0.02,
            lr=1e-3)


def tiny_config(tmp_path, **overrides):
    settings = dict(TINY, output_dir=str(tmp_path / "out"))
    settings.update(overrides)
    return FinetuneConfig(**settings)


def read_params(path):
    return {name: value.asnumpy() for name, value in mx.nd.load(str(path)).items()}


def model_weights(model):
    return {name: param.data().asnumpy() for name, param in model._collect_params_with_prefix().items()}


def count_examples(task, split, data_dir):
    return len(task.read(data_dir, split))


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_trains_evaluates_and_writes_its_submission_file(tmp_path, name):
    task = get_task(name)
    data_dir = os.path.join(TEST_DATA, task.benchmark)
    result = finetune(tiny_config(tmp_path, task_name=name, data_dir=data_dir))
    train_task = get_task(task.train_task)
    assert result["task"] == train_task.name and result["steps"] >= 1
    dev = result["history"][-1]["dev"]
    assert set(dev) == set(train_task.dev_splits)
    for metrics in dev.values():
        assert list(metrics) == list(train_task.metrics)
    for split, file_name in task.submission.items():
        path = tmp_path / "out" / file_name
        assert result["predictions"][file_name] == str(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        expected = count_examples(task, split, data_dir)
        if task.benchmark == "glue":
            assert lines[0] == "index\tprediction" and len(lines) == expected + 1
        elif task.head == "answer_scoring" or task.benchmark == "race":  # one line per passage / article
            records = [json.loads(line) for line in lines]
            assert records and all(isinstance(r, dict) for r in records)
        else:
            assert len(lines) == expected
            assert all("idx" in json.loads(line) and "label" in json.loads(line) for line in lines)
    assert (tmp_path / "out" / f"model_bort_{train_task.name}.params").exists()
    log = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log][0] == "start" and log[-1]["event"] == "end"
    assert any(r["event"] == "train" and np.isfinite(r["loss"]) for r in log)


def write_keyword_task(root, rng, counts=(("train", 192), ("dev", 96), ("test", 16))):
    """An SST-2-format task whose label is which of two keywords a short sentence contains."""
    filler = "the a this film story cast plot was is quite very rather so".split()
    os.makedirs(root / "SST-2")
    for split, count in counts:
        rows = []
        for _ in range(count):
            label = int(rng.randint(2))
            words = list(rng.choice(filler, size=3)) + ["good" if label else "bad"]
            rng.shuffle(words)
            rows.append((" ".join(words), label))
        with open(root / "SST-2" / f"{split}.tsv", "w") as handle:
            if split == "test":
                handle.write("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(rows)))
            else:
                handle.write("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))


def test_dev_accuracy_rises_well_above_chance_on_a_learnable_task(tmp_path):
    write_keyword_task(tmp_path / "data", np.random.RandomState(0))
    config = tiny_config(tmp_path, task_name="SST-2", data_dir=str(tmp_path / "data"), units=32, hidden_size=64,
                         max_len=16, batch_size=16, epochs=5, ramp_up_epochs=5, lr=2e-3, warmup_ratio=0.1,
                         dropout=0.0, dev_batch_size=96)
    result = finetune(config)
    accuracies = [epoch["dev"]["dev"]["accuracy"] for epoch in result["history"]]
    assert max(accuracies) >= 0.9, accuracies
    assert result["best_score"] == max(accuracies)
    assert result["best_epoch"] == accuracies.index(max(accuracies))
    # The saved model is the best epoch's: predicting with it reproduces the best dev score.
    again = finetune(tiny_config(tmp_path, task_name="SST-2", data_dir=str(tmp_path / "data"), only_inference=True,
                                 model_parameters=result["model_path"], output_dir=str(tmp_path / "inference"),
                                 units=32, hidden_size=64, max_len=16, dev_batch_size=96))
    assert again["dev"]["dev"]["accuracy"] == pytest.approx(max(accuracies))
    assert (tmp_path / "inference" / "SST-2.tsv").read_text() == (tmp_path / "out" / "SST-2.tsv").read_text()


WNLI = dict(task_name="WNLI", data_dir=os.path.join(DEMO_DATA, "glue"), batch_size=8, epochs=2, ramp_up_epochs=2,
            dropout=0.1)


def test_cpu_runs_are_repeatable_by_seed(tmp_path):
    first = finetune(tiny_config(tmp_path / "a", **WNLI))
    second = finetune(tiny_config(tmp_path / "b", **WNLI))
    other_seed = finetune(tiny_config(tmp_path / "c", seed=3, **WNLI))
    a, b, c = (model_weights(r["model"]) for r in (first, second, other_seed))
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert any(not np.array_equal(a[name], c[name]) for name in a)


def test_resume_after_an_interruption_continues_exactly(tmp_path):
    settings = dict(WNLI, checkpoint_steps=2, keep_checkpoints=0)
    whole = finetune(tiny_config(tmp_path / "whole", **settings))

    def interrupt(step):
        if step == 7:  # mid-way through the second epoch (5 updates per epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_config(tmp_path / "cut", **settings), on_update=interrupt)
    with pytest.raises(ConfigError, match="--resume true"):
        finetune(tiny_config(tmp_path / "cut", **settings))
    resumed = finetune(tiny_config(tmp_path / "cut", resume=True, **settings))
    assert resumed["steps"] == whole["steps"] == 10
    expected, got = model_weights(whole["model"]), model_weights(resumed["model"])
    assert all(np.array_equal(expected[name], got[name]) for name in expected)
    last = f"checkpoint-{whole['steps']:08d}"
    assert all(np.array_equal(read_params(tmp_path / "whole" / "out" / "checkpoints" / last / "model.params")[k], v)
               for k, v in read_params(tmp_path / "cut" / "out" / "checkpoints" / last / "model.params").items())
    assert [h["dev"] for h in resumed["history"]] == [h["dev"] for h in whole["history"]]


def test_only_inference_with_a_checkpoint_and_errors_for_another_tasks_head(tmp_path):
    rte = finetune(tiny_config(tmp_path / "rte", task_name="RTE", data_dir=os.path.join(TEST_DATA, "glue")))
    inference = finetune(tiny_config(tmp_path / "inf", task_name="RTE", data_dir=os.path.join(TEST_DATA, "glue"),
                                     only_inference=True, model_parameters=rte["model_path"]))
    assert inference["dev"]["dev"]["accuracy"] == pytest.approx(rte["best_score"])
    assert (tmp_path / "inf" / "out" / "RTE.tsv").read_text() == (tmp_path / "rte" / "out" / "RTE.tsv").read_text()
    # Same head size (2 classes) but another task: the sidecar names the task.
    with pytest.raises(CheckpointError, match="fine-tuned for RTE.*WNLI"):
        finetune(tiny_config(tmp_path / "x", task_name="WNLI", data_dir=os.path.join(TEST_DATA, "glue"),
                             only_inference=True, model_parameters=rte["model_path"]))
    # Without the sidecar (e.g. a release checkpoint) the head's shape is what tells: 2 classes vs MNLI's 3.
    os.remove(os.path.splitext(rte["model_path"])[0] + ".json")
    with pytest.raises(ParamsError, match=r"classifier\.3\.weight.*\(2, 16\).*\(3, 16\)"):
        finetune(tiny_config(tmp_path / "y", task_name="MNLI", data_dir=os.path.join(TEST_DATA, "glue"),
                             only_inference=True, model_parameters=rte["model_path"]))
    # The diagnostic AX is predicted by an MNLI model only.
    with pytest.raises(ParamsError):
        finetune(tiny_config(tmp_path / "z", task_name="AX", data_dir=os.path.join(TEST_DATA, "glue"),
                             only_inference=True, model_parameters=rte["model_path"]))
    mnli = finetune(tiny_config(tmp_path / "mnli", task_name="MNLI", data_dir=os.path.join(TEST_DATA, "glue"),
                                predict=False))
    ax = finetune(tiny_config(tmp_path / "ax", task_name="AX", data_dir=os.path.join(TEST_DATA, "glue"),
                              only_inference=True, model_parameters=mnli["model_path"]))
    assert sorted(ax["predictions"]) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]
    rows = (tmp_path / "ax" / "out" / "AX.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(get_task("AX").read(os.path.join(TEST_DATA, "glue"), "test"))
    assert {row.split("\t")[1] for row in rows[1:]} <= set(get_task("MNLI").labels)


def test_constant_learning_rate_when_the_scheduler_is_switched_off(tmp_path):
    finetune(tiny_config(tmp_path, use_scheduler=False, log_interval=1, lr=2e-4, **WNLI))
    log = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    rates = {r["lr"] for r in log if r["event"] == "train"}
    assert rates == {2e-4}


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    settings = dict(WNLI, dropout=0.0, epochs=1)
    big = finetune(tiny_config(tmp_path / "big", **dict(settings, batch_size=8)))
    accumulated = finetune(tiny_config(tmp_path / "acc", **dict(settings, batch_size=2, accumulate=4)))
    assert big["steps"] == accumulated["steps"] == 5
    a, b = model_weights(big["model"]), model_weights(accumulated["model"])
    assert all(np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


def test_multiple_choice_loss_is_a_softmax_across_each_questions_options():
    # Two questions with 3 and 2 options: rows 0-2 and 3-4; index pads the second with -1.
    outputs = mx.nd.array([[0.5], [1.5], [-0.2], [2.0], [0.1]])
    index = np.array([[0, 1, 2], [3, 4, -1]])
    labels = mx.nd.array([1, 0])
    loss = summed_loss("multiple_choice", outputs, labels, index, mx.cpu()).asscalar()
    first = np.array([0.5, 1.5, -0.2])
    second = np.array([2.0, 0.1])
    expected = -(first[1] - np.log(np.exp(first).sum())) - (second[0] - np.log(np.exp(second).sum()))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_global_batches_are_shared_out_to_ranks_without_loss_or_overlap():
    lengths = list(np.random.RandomState(0).randint(3, 40, size=37))
    batches = global_batches(lengths, 8, seed=5, epoch=2)
    assert batches == global_batches(lengths, 8, seed=5, epoch=2)
    assert batches != global_batches(lengths, 8, seed=5, epoch=3)
    assert sorted(i for b in batches for i in b) == list(range(37))
    for batch in batches:
        shares = [local_share(batch, rank, 2) for rank in range(2)]
        assert sorted(shares[0] + shares[1]) == sorted(batch) and not set(shares[0]) & set(shares[1])


def run_script(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "finetune_bort.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def script_main():
    spec = importlib.util.spec_from_file_location("finetune_bort_script",
                                                  os.path.join(REPO, "scripts", "finetune_bort.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


COMMON_FLAGS = ["--vocab", VOCAB["vocab"], "--merges", VOCAB["merges"], "--num_layers", "1", "--units", "16",
                "--hidden_size", "32", "--num_heads", "2", "--model_max_length", "64", "--max_len", "64",
                "--progress", "false", "--data_dir", os.path.join(TEST_DATA, "superglue")]


@pytest.mark.slow
def test_script_end_to_end(tmp_path):
    done = run_script("--task_name", "WSC", "--epochs", "1", "--output_dir", str(tmp_path / "wsc"), *COMMON_FLAGS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"]["WSC.jsonl"] == str(tmp_path / "wsc" / "WSC.jsonl")
    bad_task = run_script("--task_name", "NOPE", *COMMON_FLAGS)
    assert bad_task.returncode == 2 and "error: unknown task 'NOPE'" in bad_task.stderr
    assert "MultiRC" in bad_task.stderr and "Traceback" not in bad_task.stderr


@pytest.mark.parametrize("flags, error", [
    (["--task_name", "NOPE"], "unknown task 'NOPE'; valid tasks: CoLA"),
    (["--task_name", "WSC", "--batch_size", "0"], "--batch_size must be a positive integer"),
    (["--task_name", "WSC", "--warmup_ratio", "1.5"], "--warmup_ratio must be in [0, 1]"),
    (["--task_name", "WSC", "--dtype", "float16"], "needs a GPU"),
    (["--task_name", "WSC", "--only_inference", "true"], "--only_inference needs --model_parameters"),
    (["--task_name", "WSC", "--vocab", "v.json"], "--vocab and --merges go together"),
    (["--task_name", "WSC", "--pretrained_parameters", "missing.params"], "missing.params does not exist"),
    (["--task_name", "BoolQ", "--data_dir", "/nonexistent/dir"], "/nonexistent/dir"),
])
def test_bad_settings_raise_clear_errors(tmp_path, flags, error):
    main = script_main()
    argv = list(COMMON_FLAGS)
    argv += flags + ["--output_dir", str(tmp_path / "out")]
    if "--vocab" in flags:  # replace the valid vocabulary flags by the broken ones
        argv = flags + ["--output_dir", str(tmp_path / "out")]
    with pytest.raises(BortError) as caught:
        main(argv)
    assert error in str(caught.value)


@pytest.mark.parametrize("flags", [["--task_name", "WSC", "--use_scheduler", "maybe"],
                                   ["--task_name", "WSC", "--gpu", "first"], ["--epochs", "1"]])
def test_malformed_flags_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit) as caught:
        script_main()(flags)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as caught:
        script_main()(["--help"])
    assert caught.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--ramp_up_epochs", "--accumulate", "--early_stop", "--pair_layout", "--distributed", "--resume",
                 "--only_inference", "--model_parameters", "--spm_model", "--gluonnlp_vocab", "--checkpoint_steps"):
        assert flag in shown


def test_early_stopping_after_epochs_without_a_better_dev_score(tmp_path):
    # A learning rate too small to change any prediction: the dev score never improves after epoch 0.
    result = finetune(tiny_config(tmp_path, **dict(WNLI, epochs=6, early_stop=2, use_scheduler=False, lr=1e-10)))
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]
    assert result["best_epoch"] == 0 and result["steps"] == 15


def test_hybridized_and_imperative_training_agree(tmp_path):
    settings = dict(WNLI, dropout=0.0, epochs=1)
    graph = finetune(tiny_config(tmp_path / "graph", hybridize=True, **settings))
    eager = finetune(tiny_config(tmp_path / "eager", hybridize=False, **settings))
    a, b = model_weights(graph["model"]), model_weights(eager["model"])
    assert all(np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)
