"""The README's quick start runs as written: its Python block and its command, in a directory whose model/ holds a
tiny Bort with an MLM head (made here) and RoBERTa's real vocabulary (tests/fixtures/roberta-base)."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, ROBERTA_VOCAB_DIR

MARKER = "<!-- tested by tests/test_readme.py: the next {} block runs as written -->"


def _readme_block(language):
    text = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    marker = MARKER.format(language)
    assert text.count(marker) == 1, f"README.md should mark exactly one {language} block with {marker!r}"
    after = text[text.index(marker) + len(marker):]
    match = re.match(rf"\s*```{language}\n(.*?)\n```", after, re.S)
    assert match, f"no ```{language} block right after the marker"
    return match.group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory laid out as after `bort-download --output_dir model`, with a tiny model in place of bort.params."""
    from bort.model import get_bort_model
    from bort.params import save_parameters

    directory = tmp_path_factory.mktemp("quickstart")
    model_dir = directory / "model"
    model_dir.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(ROBERTA_VOCAB_DIR, name), model_dir / name)
    # 8 heads: what a file without a record is assumed to have (the released architecture's count).
    model, _ = get_bort_model(None, vocab_size=50265, num_layers=1, num_heads=8, units=32, hidden_size=48,
                              max_length=64, use_decoder=True)
    save_parameters(model, str(model_dir / "bort.params"))
    return directory


def _environment():
    bin_dir = os.path.dirname(sys.executable)  # where the bort-* console commands are installed
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), OMP_NUM_THREADS="1",
                PYTHONPATH=REPO_ROOT)


@pytest.mark.slow
def test_quick_start_python_runs_as_written(workdir):
    code = _readme_block("python")
    result = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600,
                            env=_environment())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one <mask> in the text
    predictions = eval(lines[0], {})  # the block prints a list of (token, probability) pairs
    assert len(predictions) == 5
    probabilities = [p for _, p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and all(0 <= p <= 1 for p in probabilities)
    assert all(isinstance(token, str) for token, _ in predictions)


@pytest.mark.slow
def test_quick_start_command_runs_as_written(workdir):
    script = _readme_block("bash")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, capture_output=True,
                            text=True, timeout=600, env=_environment())
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in open(workdir / "fills.jsonl", encoding="utf-8")]
    assert len(records) == 1
    record = records[0]
    assert record["text"] == "The capital of France is <mask>."
    [mask] = record["masks"]
    assert len(mask["predictions"]) == 5
    top = mask["predictions"][0]["token"]
    assert record["filled"].startswith("The capital of France is") and "<mask>" not in record["filled"]
    assert top.strip() in record["filled"]
