"""Can the installed MXNet wheel run on these GPUs? Decided before any work, with a message that says what to do.

The PyPI wheels of MXNet 1.9.1 carry machine code (SASS) for a fixed list of GPU architectures and no PTX, so the
driver cannot compile anything for a newer GPU. A GPU runs code built for the same major architecture and an
equal or lower minor one (an sm_75 T4 runs sm_70 code, an sm_89 L4 runs sm_86 code); nothing carries over across
major architectures, so Hopper (sm_90) and Blackwell (sm_100, sm_120) run no kernel of any PyPI build.
"""
import ctypes
import os
from dataclasses import dataclass, field

from ..errors import GpuError

# SASS inside libmxnet.so, read from the wheels' fatbins (cuobjdump): MXNET_CUDA_ARCH "5.0;6.0;7.0;8.0;8.6".
WHEEL_SASS = {
    "mxnet-cu112": (50, 60, 70, 80, 86),
    "mxnet-cu117": (50, 60, 70, 80, 86),
}
NEWEST_WHEEL = "mxnet-cu117"
# MXNet fuses pointwise operators by compiling CUDA source at run time with NVRTC for the GPU's own architecture;
# an NVRTC older than the architecture cannot. Only sm_89 is both runnable by the wheels and newer than the
# NVRTC 11.2 that their libnvrtc.so.11.2 SONAME guarantees.
NVRTC_FOR_ARCH = {89: (11, 8)}
HOPPER_OPTIONS = ("options: (1) build MXNet 1.9.1 from source with MXNET_CUDA_ARCH including 9.0 on CUDA >= 11.8 "
                  "(not tried by this project); (2) run on CPU (--gpu cpu, GPU=cpu); (3) export the model to Hugging "
                  "Face Transformers (scripts/export_weights.py) and fine-tune it there with PyTorch, which supports "
                  "this GPU")
BLACKWELL_OPTIONS = ("options: (1) run on CPU (--gpu cpu, GPU=cpu); (2) export the model to Hugging Face "
                     "Transformers (scripts/export_weights.py) and fine-tune it there with PyTorch. Building MXNet "
                     "1.9.1 from source would need CUDA >= 12.8 for this architecture, which MXNet 1.9.1 was never "
                     "built or tested with")


@dataclass(frozen=True)
class Verdict:
    """`runs`: whether the GPU can run the wheel at all; `how`: 'native', 'compatible' (runs `kernel_arch` code),
    'cannot', 'cpu-wheel' or 'unknown-wheel'; `environment`: variables the run needs (set them before MXNet
    runs an operator)."""
    runs: bool
    how: str
    message: str
    kernel_arch: int | None = None
    environment: dict = field(default_factory=dict)


def sm(arch):
    return f"sm_{arch}"


def compatible_kernel(capability, sass):
    """The architecture of the wheel code a GPU of `capability` runs: same major, highest minor not above its
    own; None when there is none."""
    major, minor = capability
    fits = [arch for arch in sass if arch // 10 == major and arch % 10 <= minor]
    return max(fits) if fits else None


def decide(capability, wheel, nvrtc=None, gpu_name="this GPU"):
    """Verdict for a GPU of compute capability `capability` (major, minor) with the MXNet distribution `wheel`
    ('mxnet', 'mxnet-cu117', ...; None: MXNet not installed) and NVRTC version `nvrtc` ((major, minor) or None
    when unknown)."""
    arch = capability[0] * 10 + capability[1]
    label = f"{gpu_name} ({sm(arch)})"
    if wheel is None or not wheel.startswith("mxnet-cu"):
        installed = "no MXNet is installed" if wheel is None else "the installed MXNet is the CPU build (mxnet)"
        return Verdict(False, "cpu-wheel", f"{label}: a GPU was asked for but {installed}; install the GPU build "
                       f"with `BORT_CUDA=cu117 scripts/setup_env.sh`, or run on CPU (--gpu cpu, GPU=cpu)")
    if wheel not in WHEEL_SASS:
        return Verdict(False, "unknown-wheel", f"{label}: the GPU code inside {wheel} was not checked by this project "
                       f"(checked: {', '.join(sorted(WHEEL_SASS))}); install {NEWEST_WHEEL}==1.9.1 with "
                       f"`BORT_CUDA=cu117 scripts/setup_env.sh`")
    sass = WHEEL_SASS[wheel]
    targets = ", ".join(sm(a) for a in sass)
    if capability[0] < sass[0] // 10:
        return Verdict(False, "cannot", f"{label}: compute capability {capability[0]}.{capability[1]} is older than "
                       f"any MXNet 1.9.1 wheel supports ({wheel} carries {targets}); run on CPU (--gpu cpu, GPU=cpu)")
    kernel = compatible_kernel(capability, sass)
    if kernel is None:
        options = HOPPER_OPTIONS if capability[0] == 9 else BLACKWELL_OPTIONS
        return Verdict(False, "cannot", f"{label}: this GPU cannot run any PyPI MXNet 1.9.1 build: {wheel} carries "
                       f"machine code for {targets} only and no PTX, so every operator would fail with 'no kernel "
                       f"image is available for execution on the device'; {options}")
    environment = {}
    notes = []
    needed_nvrtc = NVRTC_FOR_ARCH.get(arch)
    if needed_nvrtc and (nvrtc is None or tuple(nvrtc) < needed_nvrtc):
        environment["MXNET_USE_FUSION"] = "0"
        have = "an unknown NVRTC" if nvrtc is None else f"NVRTC {nvrtc[0]}.{nvrtc[1]}"
        notes.append(f"operator fusion compiles for {sm(arch)} at run time, which needs NVRTC >= "
                     f"{needed_nvrtc[0]}.{needed_nvrtc[1]} ({have} here): MXNET_USE_FUSION=0 is set")
    if kernel == arch:
        message = f"{label}: runs {wheel}'s native {sm(kernel)} code"
        how = "native"
    else:
        message = f"{label}: runs {wheel}'s {sm(kernel)} code (binary compatible; not tested on this GPU by this " \
                  "project)"
        how = "compatible"
    return Verdict(True, how, "; ".join([message] + notes), kernel, environment)


def installed_mxnet(distributions=None):
    """Name of the installed MXNet distribution ('mxnet', 'mxnet-cu117', ...), or None."""
    if distributions is None:
        from .cuda_libs import mxnet_distributions

        distributions = (name for name, _ in mxnet_distributions())
    names = sorted({name.lower().replace("_", "-") for name in distributions})
    cuda = [name for name in names if name.startswith("mxnet-cu")]
    return cuda[0] if cuda else ("mxnet" if "mxnet" in names else None)


def parse_version(text):
    """'11.8.89' -> (11, 8); None for anything else."""
    parts = (text or "").split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def nvrtc_version(library="libnvrtc.so.11.2"):
    """NVRTC's (major, minor): asked from the library when it loads, else the nvidia-cuda-nvrtc-cu11 wheel's
    version; None when neither is there."""
    try:
        nvrtc = ctypes.CDLL(library)
        major, minor = ctypes.c_int(), ctypes.c_int()
        if nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) == 0:
            return major.value, minor.value
    except (OSError, AttributeError):
        pass
    from importlib import metadata

    try:
        return parse_version(metadata.version("nvidia-cuda-nvrtc-cu11"))
    except metadata.PackageNotFoundError:
        return None


@dataclass
class Report:
    """The preflight's findings: one line per checked GPU, and whether every one of them can run."""
    lines: list
    ok: bool
    no_gpu: bool
    environment: dict
    wheel: str | None = None

    @property
    def cuda_wheel(self):
        return bool(self.wheel) and self.wheel.startswith("mxnet-cu")


def build_report(query, wheel, nvrtc, wanted=None, count=None):
    """Check the GPUs in `query` (a devices.GpuQuery): those with index in `wanted` (None: all), and that at least
    `count` are visible."""
    version = "unknown" if nvrtc is None else f"{nvrtc[0]}.{nvrtc[1]}"
    lines = [f"MXNet: {wheel or 'not installed'}; NVRTC: {version}"]
    if not query.gpus:
        lines.append(f"no NVIDIA GPU is visible to this process ({query.problem}): only CPU runs are possible here "
                     "(--gpu cpu, GPU=cpu)")
        return Report(lines, False, True, {}, wheel)
    lines.append(f"GPUs ({query.source}): " + "; ".join(f"{g.index}: {g.name} {g.sm}" for g in query.gpus))
    ok = True
    by_index = {gpu.index: gpu for gpu in query.gpus}
    chosen = sorted(by_index) if wanted is None else list(wanted)
    if count is not None and len(query.gpus) < count:
        lines.append(f"{count} GPUs were asked for (one per process) but {len(query.gpus)} are visible")
        ok = False
        chosen = sorted(by_index)
    environment = {}
    for index in chosen:
        if index not in by_index:
            lines.append(f"GPU {index} was asked for but only {len(query.gpus)} are visible (indices 0.."
                         f"{len(query.gpus) - 1}; CUDA_VISIBLE_DEVICES renumbers them)")
            ok = False
            continue
        gpu = by_index[index]
        verdict = decide(gpu.capability, wheel, nvrtc, f"GPU {index} {gpu.name}")
        lines.append(("ok: " if verdict.runs else "CANNOT RUN: ") + verdict.message)
        ok = ok and verdict.runs
        environment.update(verdict.environment)
    return Report(lines, ok, False, environment, wheel)


def check_gpus(wanted=None, count=None):
    """The report for this machine (GPUs, installed wheel, NVRTC)."""
    from .devices import visible_gpus

    query = visible_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))
    return build_report(query, installed_mxnet(), nvrtc_version(), wanted, count)


def require_usable_gpu(index, environ=None):
    """Stop with a GpuError before any work unless GPU `index` can run the installed MXNet wheel; sets the
    variables the run needs (MXNET_USE_FUSION=0 on Ada with an old NVRTC) unless the user set them."""
    environ = os.environ if environ is None else environ
    report = check_gpus(wanted=[index])
    if not report.ok:
        raise GpuError("GPU preflight failed:\n  " + "\n  ".join(report.lines))
    for name, value in report.environment.items():
        environ.setdefault(name, value)
    return report
