"""Test-wide helpers: where the shared reference files live.

CI clones the repository with `shared/` beside it; `BORT_SHARED` overrides the location.
"""
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _find_shared():
    candidates = [os.environ.get("BORT_SHARED"), os.path.join(REPO_ROOT, "..", "shared"),
                  os.path.join(REPO_ROOT, "shared"), "/work/shared"]
    for candidate in candidates:
        if candidate and os.path.isdir(os.path.join(candidate, "fixtures")):
            return os.path.abspath(candidate)
    raise RuntimeError("cannot find the shared/ folder with the reference fixtures; set BORT_SHARED")


SHARED_DIR = _find_shared()
FIXTURES_DIR = os.path.join(SHARED_DIR, "fixtures", "original_gluonnlp083")
SAMPLE_TEXT = os.path.join(SHARED_DIR, "data", "sample_text.txt")


@pytest.fixture
def fixtures_dir():
    return FIXTURES_DIR
