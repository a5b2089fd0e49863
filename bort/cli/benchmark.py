"""Benchmarks of this package, one subcommand each; results are printed and written as JSON.

    python scripts/benchmark.py inference --quick            # CI-size check that everything runs
    python scripts/benchmark.py inference --output inference.json
    python scripts/benchmark.py tokenize
    python scripts/benchmark.py pretrain
    python scripts/benchmark.py train                        # one update vs transformers+torch, fresh processes

`python scripts/benchmark.py <name> --help` lists a benchmark's own flags. Timings are wall-clock on the current
machine: compare numbers only within one run. `inference` and `train` time every framework in fresh processes
started the way a user starts them (docs/benchmarks.md); every result line names the CPU's ISA.
"""
import argparse
import importlib
import json

from bort.benchmarks import BENCHMARKS
from bort.cli.common import run_main
from bort.cli.flags import ArgumentParser
from bort.errors import ConfigError
from bort.io_utils import atomic_open


def load_benchmarks():
    """name -> module, and name -> why it is unavailable (its module is missing from this checkout)."""
    modules, missing = {}, {}
    for name in BENCHMARKS:
        module_name = f"bort.benchmarks.{name}"
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise  # the module exists but something it needs does not: show the real error
            missing[name] = f"{module_name} is not in this checkout (bort/benchmarks/{name}.py is missing)"
    return modules, missing


def build_parser(modules, missing):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, description in BENCHMARKS.items():
        if name in missing:
            command = sub.add_parser(name, help=f"(unavailable) {description}", description=missing[name])
            command.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        else:
            command = sub.add_parser(name, help=description, description=(modules[name].__doc__ or description),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
            modules[name].add_arguments(command)
        command.add_argument("--output", default=None,
                             help=f"JSON file for the results (default: benchmark_{name}.json in the current "
                                  "directory; written atomically)")
    return parser


def main(argv=None):
    modules, missing = load_benchmarks()
    args = build_parser(modules, missing).parse_args(argv)
    if args.benchmark in missing:
        raise ConfigError(f"benchmark {args.benchmark!r} is unavailable: {missing[args.benchmark]}")
    result = modules[args.benchmark].run(args)
    output = args.output or f"benchmark_{args.benchmark}.json"
    with atomic_open(output, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    print(f"wrote {output}")
    return 0


def console_main():
    """Entry point of the console command."""
    run_main(main)
