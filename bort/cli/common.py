"""Shared plumbing for the command-line programs (bort/cli/*.py)."""
import argparse
import sys

from ..errors import BortError
from ..gpu.cuda_libs import prepare_cuda_libraries
from ..threads import configure_threads


def str2bool(value):
    """argparse type for boolean flags that can be switched off (`--flag false`), unlike `type=bool`."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def positive_float(value):
    """argparse type for a finite number > 0 (a learning rate): 'inf' and 'nan' parse as floats but would only
    fail, or silently learn nothing, once training has started."""
    import math

    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {value!r}")
    return number


def run_main(main, argv=None):
    """Run `main(argv)`; a `BortError` is printed as `error: ...` on stderr and exits with status 2."""
    try:
        # A CUDA build of MXNet needs the nvidia-*-cu11 wheels' libraries loaded before `import mxnet`.
        prepare_cuda_libraries()
        # Thread pools sized before MXNet loads (importing `bort` already did; a no-op unless something changed).
        configure_threads()
        code = main(argv)
    except BortError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        import errno

        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        where = err.filename or "an output file"  # writes outside bort.io_utils may not name it
        print(f"error: cannot write {where}: {err.strerror}; free some space and run again", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
