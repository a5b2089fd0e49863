#!/usr/bin/env python
"""`bort-create-pretraining-data` from a clone: the command lives in bort/cli/create_pretraining_data.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone, not installed

from bort.cli.common import run_main  # noqa: E402
from bort.cli.create_pretraining_data import build_parser, main  # noqa: E402,F401

if __name__ == "__main__":
    run_main(main)
