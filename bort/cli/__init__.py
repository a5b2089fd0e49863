"""The package's command-line programs: one module per command, each with `build_parser()` (where it has one)
and `main(argv=None)`. Console commands (`bort-finetune`, ...) and the `scripts/*.py` wrappers call these."""
from .common import run_main, str2bool

__all__ = ["run_main", "str2bool"]
