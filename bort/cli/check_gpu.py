"""Say whether this machine's GPUs can run the installed MXNet 1.9.1 wheel, before any work is started.

Reads each visible GPU's name and compute capability (CUDA driver API, else nvidia-smi), the installed MXNet
distribution (mxnet or mxnet-cuXXX) and the NVRTC version, and prints one verdict per GPU. Exit status: 0 when
every checked GPU can run the wheel; 1 when one cannot, or when no GPU is visible (0 with --allow-cpu).

Examples:
  check_gpu.py                      every visible GPU
  check_gpu.py --gpus 0             the GPU a run with --gpu 0 would use
  check_gpu.py --count 4            a 4-process Horovod run on this machine (GPUs 0..3)
  check_gpu.py --if-available       GPU=auto: fine when MXNet is the CPU build or no GPU is visible
  check_gpu.py --count 2 --flags --task_name RTE --gpu 0
                                    what a launcher runs: the device comes from the command's own flags
"""
import argparse
import sys

from bort.cli.common import run_main
from bort.cli.finetune import CPU_SPELLINGS
from bort.cli.flags import ArgumentParser


def gpu_list(value):
    """'all' or comma-separated GPU indices."""
    if value.strip().lower() == "all":
        return None
    try:
        indices = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all' or GPU indices such as 0,1, got {value!r}") from None
    if not indices or min(indices) < 0:
        raise argparse.ArgumentTypeError(f"expected 'all' or GPU indices >= 0, got {value!r}")
    return indices


def device_from_flags(flags):
    """What a command's flags ask for: 'cpu', 'auto' (no device flag: GPU when there is one), 'gpu' (pretraining's
    --device gpu) or a GPU index; the last --gpu/--device wins, as in argparse."""
    request = "auto"
    for position, flag in enumerate(flags):
        name, has_value, value = flag.partition("=")
        if name not in ("--gpu", "--device"):
            continue
        if not has_value:
            if position + 1 >= len(flags):
                continue
            value = flags[position + 1]
        value = value.strip().lower()
        if value in CPU_SPELLINGS or value in ("auto", "gpu"):
            request = "cpu" if value in CPU_SPELLINGS else value
        elif value.isdigit():
            request = int(value)
    return request


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=gpu_list, default=None, help="GPU indices to check, as MXNet numbers them "
                   "(after CUDA_VISIBLE_DEVICES), or 'all' (default: all)")
    p.add_argument("--count", type=int, default=None, help="also require at least this many visible GPUs (one per "
                   "Horovod process) and check GPUs 0..count-1")
    p.add_argument("--allow-cpu", action="store_true", help="exit 0 when no GPU is visible (the report still says so)")
    p.add_argument("--if-available", action="store_true", help="check only when a CUDA build of MXNet is installed "
                   "and a GPU is visible (what GPU=auto does); otherwise say the run goes to CPU and exit 0")
    p.add_argument("--flags", nargs=argparse.REMAINDER, default=None, help="the rest of the line is a command's "
                   "flags (bort-finetune, bort-agora, bort-pretrain): check the device its --gpu/--device asks for "
                   "(none given: as --if-available); must come last")
    return p


def main(argv=None):
    from bort.gpu.preflight import check_gpus

    args = build_parser().parse_args(argv)
    if args.flags is not None:
        request = device_from_flags(args.flags)
        if request == "cpu":
            return 0  # a launcher's CPU run: nothing to check, nothing to say
        args.if_available = args.if_available or request == "auto"
        if isinstance(request, int) and (args.count or 1) == 1:
            args.gpus = [request]
    wanted = args.gpus
    if args.count is not None and wanted is None:
        wanted = list(range(args.count))
    report = check_gpus(wanted=wanted, count=args.count)
    if args.if_available and (report.no_gpu or not report.cuda_wheel):
        if args.flags is None:  # launchers stay quiet on the CPU machines where they always run like this
            print(f"{report.lines[0]}; no usable CUDA setup, so GPU=auto runs on CPU")
        return 0
    print("\n".join(report.lines))
    for name, value in report.environment.items():
        print(f"set {name}={value} for the run (the Python commands set it themselves)")
    if report.no_gpu:
        return 0 if args.allow_cpu else 1
    return 0 if report.ok else 1


def console_main():
    """Entry point of the console command."""
    run_main(main)


if __name__ == "__main__":
    sys.exit(main())
