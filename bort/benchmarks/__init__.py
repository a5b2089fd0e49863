"""Benchmarks run by `scripts/benchmark.py <name>`: each module has `add_arguments(parser)` and `run(args)`."""
