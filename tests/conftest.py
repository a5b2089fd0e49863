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


@pytest.fixture
def fixtures_dir():
    return FIXTURES_DIR
