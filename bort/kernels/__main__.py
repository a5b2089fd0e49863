"""`python -m bort.kernels`: build (or find in the cache) Bort's CPU kernels and say where they are, or why they
cannot be used here (training and inference then run MXNet's own operators). scripts/setup_env.sh runs it."""
import sys

from . import KernelsUnavailable, build_library


def main():
    try:
        path = build_library()
    except KernelsUnavailable as err:
        print(f"Bort's CPU kernels are not available: {err}\nMXNet's own operators will be used (slower training).")
        return 1
    print(f"Bort's CPU kernels: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
