"""Test-wide helpers: where the reference files live (all inside tests/, so the suite runs from any checkout).

- tests/fixtures/original_gluonnlp083: tiny Bort files made by the original release's stack (mxnet 1.5 +
  gluonnlp 0.8.3) with that stack's outputs; see the README there.
- tests/fixtures/roberta-base: RoBERTa's vocab.json + merges.txt, the vocabulary the released model reads.
- data/sample_text.txt: the release's sample text (pretraining data and tokenizer tests).
"""
import os

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
FIXTURES_DIR = os.path.join(TESTS_DIR, "fixtures", "original_gluonnlp083")
ROBERTA_VOCAB_DIR = os.path.join(TESTS_DIR, "fixtures", "roberta-base")
SAMPLE_TEXT = os.path.join(REPO_ROOT, "data", "sample_text.txt")


# Bort's CPU kernels are built once per test run into a private cache (every test process and the commands the
# tests start inherit it), not into the user's ~/.cache/bort.
os.environ.setdefault("BORT_CACHE_DIR", os.path.join(REPO_ROOT, ".test-cache"))


@pytest.fixture
def fixtures_dir():
    return FIXTURES_DIR


# Markers that follow from what a test uses (registered in pyproject.toml): Horovod runs are also slow, and the
# export extra is needed by the export tests and by any test that builds an ONNX file.
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = os.path.basename(str(item.fspath))
        if module == "test_finetune_horovod.py" or "horovod" in item.name:
            item.add_marker(pytest.mark.horovod)
            item.add_marker(pytest.mark.slow)
        if module == "test_export.py" or "onnx_file" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.export)
