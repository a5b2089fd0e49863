#!/usr/bin/env python
"""`bort-extract` run from a clone: the command lives in bort/cli/extract.py (`extract_subarchitecture.py --help`
explains every flag)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone, not installed

from bort.cli.common import run_main  # noqa: E402
from bort.cli.extract import build_parser, main  # noqa: E402,F401

if __name__ == "__main__":
    run_main(main)
