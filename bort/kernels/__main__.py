"""`python -m bort.kernels [--quiet]`: build (or find in the cache) Bort's CPU kernels and say where they are, or
why they cannot be used here (training and inference then run MXNet's own operators). `--quiet` says nothing
when the cached library is already there. scripts/setup_env.sh runs it."""
import argparse
import os
import sys

from . import KernelsUnavailable, build_library, library_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bort.kernels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="print nothing when the library is already built")
    args = parser.parse_args(argv)
    try:
        cached = os.path.exists(library_path())
        path = build_library()
    except KernelsUnavailable as err:
        print(f"Bort's CPU kernels are not available: {err}\nMXNet's own operators will be used (slower).")
        return 1
    if not (args.quiet and cached):
        print(f"Bort's CPU kernels: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
