"""Training curves: reading every run's log, drawing PNGs (several runs overlaid), and progress lines in logs."""
import io
import json
import os
import struct

import pytest

from bort.cli.plot import main as plot_main
from bort.errors import InputError, OutputError
from bort.plotting import curves_from_records, load_runs, panel_of, read_records
from bort.training.logs import JsonlLogger

from conftest import REPO_ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == PNG_SIGNATURE
    return struct.unpack(">II", head[16:24])


def _finetune_log(directory, losses, scores):
    logger = JsonlLogger(os.path.join(directory, "metrics.jsonl"))
    logger.log(event="start", task="SST", total_steps=len(losses) * 10, config={"lr": 1e-3})
    for index, loss in enumerate(losses):
        logger.log(event="train", epoch=0, step=10 * (index + 1), loss=loss, lr=1e-3 / (index + 1), grad_norm=1.0)
    for epoch, score in enumerate(scores):
        logger.log(event="dev", epoch=epoch, step=10 * len(losses), split="dev", metrics={"accuracy": score})
    logger.log(event="end", steps=10 * len(losses))
    return directory


def test_fine_tuning_log_gives_loss_lr_and_dev_curves(tmp_path):
    run = _finetune_log(str(tmp_path), [0.9, 0.7, 0.4], [0.5, 0.75])
    curves = curves_from_records(read_records(os.path.join(run, "metrics.jsonl")))
    assert curves["loss"] == [(10, 0.9), (20, 0.7), (30, 0.4)]
    assert [x for x, _ in curves["lr"]] == [10, 20, 30]
    assert curves["dev dev accuracy"] == [(30, 0.5), (30, 0.75)]
    assert {panel_of(name) for name in curves} == {"loss", "learning rate", "dev metric", None}  # grad_norm: none


def test_pretraining_agora_and_extraction_logs_are_read(tmp_path):
    pretrain = JsonlLogger(str(tmp_path / "pre" / "train_log.jsonl"))
    pretrain.log(step=2, lr=1e-4, loss=5.0, mlm_loss=6.0, grad_norm=3.0, tokens_per_s=100.0)
    pretrain.log(step=2, eval_loss=4.5, eval_mlm_accuracy=0.1)
    agora = JsonlLogger(str(tmp_path / "agora" / "log.jsonl"))
    agora.log(event="start", candidates=4)
    agora.log(event="round", round=0, budget_spent=400, best_so_far_score=0.6, best_of_round_score=0.6)
    agora.log(event="round", round=1, budget_spent=800, best_so_far_score=0.7, best_of_round_score=0.65)
    extraction = JsonlLogger(str(tmp_path / "ose" / "log.jsonl"))
    for w in (3.0, 2.0):
        extraction.log(event="candidate", key=f"k{w}", e_star=0.1 * w, e_ratio=w / 3, w=w, p_ratio=0.5)
    (label_a, pre), (label_b, ago), (label_c, ose) = load_runs([str(tmp_path / name) for name in ("pre", "agora",
                                                                                                    "ose")])
    assert (label_a, label_b, label_c) == ("pre", "agora", "ose")
    assert pre["loss"] == [(2, 5.0)] and pre["eval_loss"] == [(2, 4.5)] and pre["lr"] == [(2, 1e-4)]
    assert panel_of("eval_mlm_accuracy") == "dev metric" and panel_of("tokens_per_s") is None
    assert ago["dev best_so_far_score"] == [(400, 0.6), (800, 0.7)]
    assert ose["candidate w"] == [(1, 3.0), (2, 2.0)]


def test_a_cut_last_line_is_dropped_and_a_broken_middle_line_is_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = json.dumps(dict(event="train", step=1, loss=1.0, lr=0.1))
    path.write_text(good + "\n" + '{"event": "train", "st')
    assert len(read_records(str(path))) == 1
    path.write_text(good + "\n{oops\n" + good + "\n")
    with pytest.raises(InputError, match=r"metrics.jsonl:2"):
        read_records(str(path))


def test_plot_command_overlays_runs_and_refuses_to_overwrite(tmp_path, capsys):
    first = _finetune_log(str(tmp_path / "a"), [0.9, 0.5], [0.6])
    second = _finetune_log(str(tmp_path / "b"), [0.8, 0.6, 0.3], [0.7])
    output = tmp_path / "both.png"
    assert plot_main([first, second, "--output", str(output)]) == 0
    width, height = _png_size(output)
    assert width == 800 and height == 960  # three panels of 8 x 3.2 inches at 100 dpi
    assert "loss, learning rate, dev metric of 2 run(s)" in capsys.readouterr().out
    with pytest.raises(OutputError, match="--force"):
        plot_main([first, "--output", str(output)])
    assert plot_main([first, "--output", str(output), "--force"]) == 0
    assert _png_size(output)[1] == 960


def test_plot_command_names_a_directory_without_a_log(tmp_path):
    with pytest.raises(InputError, match="metrics.jsonl"):
        plot_main([str(tmp_path)])


def test_progress_writes_whole_lines_when_not_on_a_terminal(monkeypatch):
    from bort.progress import tqdm

    monkeypatch.setenv("BORT_PROGRESS_INTERVAL", "0")
    stream = io.StringIO()
    with tqdm(total=5, desc="work", file=stream) as bar:
        for _ in range(5):
            bar.update(1)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and all(line.startswith("work:") for line in lines)
    assert "5/5" in lines[-1]


def test_progress_waits_an_interval_between_lines(monkeypatch):
    from bort.progress import tqdm

    monkeypatch.setenv("BORT_PROGRESS_INTERVAL", "3600")
    stream = io.StringIO()
    with tqdm(total=1000, desc="work", file=stream) as bar:
        for _ in range(1000):
            bar.update(1)
    assert len(stream.getvalue().splitlines()) <= 3  # the start, perhaps one, and the final line


def test_progress_postfix_and_description_do_not_add_lines(monkeypatch):
    """A loop that sets the loss on its bar at every update still writes one line per interval to a log."""
    from bort.progress import tqdm

    monkeypatch.setenv("BORT_PROGRESS_INTERVAL", "3600")
    stream = io.StringIO()
    with tqdm(range(200), desc="steps", file=stream) as bar:
        for step in bar:
            bar.set_postfix(loss=1.0 / (step + 1))
            bar.set_description(f"steps {step}")
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 3 and "200/200" in lines[-1] and "loss=" in lines[-1]


@pytest.mark.slow
def test_a_real_fine_tuning_run_is_drawn(tmp_path):
    from bort.cli.finetune import main as finetune_main

    run = tmp_path / "run"
    demo = os.path.join(REPO_ROOT, "data", "demo")
    assert finetune_main(["--task_name", "SST", "--data_dir", os.path.join(demo, "glue"), "--output_dir", str(run),
                          "--vocab", os.path.join(demo, "vocab", "vocab.json"), "--merges",
                          os.path.join(demo, "vocab", "merges.txt"), "--num_layers", "1", "--units", "32",
                          "--hidden_size", "32", "--num_heads", "2", "--model_max_length", "32", "--max_len", "32",
                          "--batch_size", "64", "--dev_batch_size", "200", "--log_interval", "2", "--predict",
                          "false", "--progress", "false", "--gpu", "cpu", "--lr", "1e-3"]) == 0
    assert plot_main([str(run)]) == 0
    curves = load_runs([str(run)])[0][1]
    assert len(curves["loss"]) >= 5 and any(name.startswith("dev ") for name in curves)
    assert _png_size(run / "curves.png") == (800, 960)
