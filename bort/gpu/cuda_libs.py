"""Load the CUDA 11 libraries of the `nvidia-*-cu11` wheels before MXNet is imported.

The `mxnet-cu117` wheel bundles no CUDA library: its libmxnet.so needs libcudart.so.11.0, libcublas.so.11,
libcudnn.so.8, libnccl.so.2 and others by SONAME. pip puts them under site-packages/nvidia/<package>/lib/, where the
dynamic loader never looks, and LD_LIBRARY_PATH only counts when it is set before the process starts. So, like torch
with its own CUDA wheels, we load each one with `ctypes.CDLL(path, RTLD_GLOBAL)`, dependencies first: a later
dlopen of the same SONAME (by libmxnet.so, Horovod, or cuDNN opening its sub-libraries) then finds the loaded copy.

The decisions are plain functions (`nvidia_lib_dirs`, `index_libraries`, `plan_loads`) so they can be tested on a
machine without a GPU; `prepare_cuda_libraries` strings them together and is a no-op unless a CUDA MXNet wheel is
installed.
"""
import ctypes
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field

from ..errors import GpuError
from .elf import NotElfError, read_dynamic

DRIVER_LIBRARY = "libcuda.so.1"
# What libmxnet.so of mxnet-cu117 1.9.1 needs from CUDA (readelf -d), used only when libmxnet.so cannot be read.
MXNET_CU117_CUDA_NEEDS = ("libcuda.so.1", "libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8", "libnccl.so.2",
                          "libcufft.so.10", "libcurand.so.10", "libcusolver.so.11", "libcusparse.so.11",
                          "libnvrtc.so.11.2", "libnvToolsExt.so.1")
# Library name (SONAME up to ".so") -> the PyPI wheel that carries it, with the release line that fits CUDA 11.
PIP_PACKAGES = {
    "libcudart": "nvidia-cuda-runtime-cu11", "libcublas": "nvidia-cublas-cu11", "libcublasLt": "nvidia-cublas-cu11",
    "libcudnn": "nvidia-cudnn-cu11>=8,<9", "libnccl": "nvidia-nccl-cu11>=2,<3", "libcufft": "nvidia-cufft-cu11",
    "libcurand": "nvidia-curand-cu11", "libcusolver": "nvidia-cusolver-cu11", "libcusparse": "nvidia-cusparse-cu11",
    "libnvrtc": "nvidia-cuda-nvrtc-cu11", "libnvToolsExt": "nvidia-nvtx-cu11",
}
# Opened with dlopen at run time rather than linked, so no DT_NEEDED names them: cuDNN 8's sub-libraries and
# NVRTC's builtins. Loading them up front means dlopen finds them whatever the wheel's RUNPATH says.
RUNTIME_OPENED_PREFIXES = ("libcudnn_", "libnvrtc-builtins")
SETUP_HINT = "BORT_CUDA=cu117 scripts/setup_env.sh"


@dataclass
class LoadPlan:
    """Files to load in this order, and the CUDA libraries found nowhere (SONAME -> pip requirement)."""
    paths: list = field(default_factory=list)
    missing: dict = field(default_factory=dict)
    needs_driver: bool = False


def library_stem(soname):
    """'libcublasLt.so.11' -> 'libcublasLt'."""
    return soname.split(".so", 1)[0]


def mxnet_distributions():
    """(name, version) of the distributions that may have installed the importable `mxnet` package: read from the
    *.dist-info folder names beside it (milliseconds), else from all of importlib.metadata (a second or more in a
    large environment, so only for unusual layouts). Empty when MXNet is not installed."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        return []
    for location in spec.submodule_search_locations:
        site_dir = os.path.dirname(os.path.abspath(location))
        found = []
        for entry in os.listdir(site_dir):
            match = re.fullmatch(r"(mxnet[-_.\w]*?)-([^-]+)\.dist-info", entry, flags=re.IGNORECASE)
            if match:
                found.append((match.group(1), match.group(2)))
        if found:
            return found
    from importlib import metadata  # slow to import, and rarely needed

    return [(d.metadata["Name"] or "", d.version) for d in metadata.distributions()]


def cuda_mxnet_distribution(distributions=None):
    """(name, version) of the installed mxnet-cu* wheel, or None when MXNet is absent or the CPU build.

    `distributions`: (name, version) pairs; default: `mxnet_distributions()`."""
    if distributions is None:
        distributions = mxnet_distributions()
    for name, version in distributions:
        if re.fullmatch(r"mxnet[-_]cu\d+\w*", name.lower()):
            return name.lower().replace("_", "-"), version
    return None


def nvidia_lib_dirs(search_paths):
    """Every existing <path>/nvidia/<package>/lib folder, in search-path order then by package name."""
    found = []
    for base in search_paths:
        root = os.path.join(base or ".", "nvidia")
        if not os.path.isdir(root):
            continue
        for package in sorted(os.listdir(root)):
            lib = os.path.join(root, package, "lib")
            if os.path.isdir(lib) and lib not in found:
                found.append(lib)
    return found


def index_libraries(lib_dirs):
    """SONAME -> (path, needed SONAMEs) for the shared libraries in `lib_dirs`; the first folder wins a name."""
    index = {}
    for lib_dir in lib_dirs:
        for name in sorted(os.listdir(lib_dir)):
            path = os.path.join(lib_dir, name)
            if ".so" not in name or not os.path.isfile(path):
                continue
            try:
                info = read_dynamic(path)
            except (NotElfError, OSError):
                continue
            soname = info.soname or name
            if soname not in index:
                index[soname] = (path, info.needed)
    return index


def plan_loads(required, index, system_has):
    """Order the libraries to load so that each comes after the ones it needs.

    `required`: SONAMEs the program needs (libmxnet.so's DT_NEEDED); `index`: from `index_libraries`;
    `system_has(soname)`: whether the system's loader finds it anyway. Libraries that are neither CUDA's nor in
    `index` (libc, libgomp, ...) are the system's business and left out."""
    plan = LoadPlan()
    done = set()

    def visit(soname, trail):
        if soname in done or soname in trail:
            return
        if soname in index:
            path, needed = index[soname]
            for dependency in needed:
                visit(dependency, trail | {soname})
            plan.paths.append(path)
            done.add(soname)
        elif soname == DRIVER_LIBRARY:
            plan.needs_driver = plan.needs_driver or not system_has(soname)
            done.add(soname)
        elif library_stem(soname) in PIP_PACKAGES:
            if not system_has(soname):
                plan.missing[soname] = PIP_PACKAGES[library_stem(soname)]
            done.add(soname)

    for soname in required:
        visit(soname, frozenset())
    loaded_dirs = {os.path.dirname(path) for path in plan.paths}
    for soname in sorted(index):
        if soname.startswith(RUNTIME_OPENED_PREFIXES) and os.path.dirname(index[soname][0]) in loaded_dirs:
            visit(soname, frozenset())
    return plan


def missing_message(plan, mxnet_wheel):
    """The error for a plan that cannot be carried out, or None when nothing is missing."""
    lines = []
    if plan.missing:
        names = ", ".join(sorted(plan.missing))
        packages = " ".join(f"'{p}'" for p in sorted(set(plan.missing.values())))
        lines.append(f"{mxnet_wheel} is installed but these CUDA libraries are found neither in the environment's "
                     f"nvidia-*-cu11 wheels nor on the system: {names}. Install them with `{SETUP_HINT}`, or "
                     f"`pip install {packages}`.")
    if plan.needs_driver:
        lines.append(f"{mxnet_wheel} is installed but {DRIVER_LIBRARY} (the NVIDIA driver) is not found: this machine "
                     "has no NVIDIA driver, so the GPU build of MXNet cannot even be imported. On a machine without "
                     f"a GPU use the CPU build: `pip uninstall -y {mxnet_wheel.split('==')[0]} && pip install "
                     "mxnet==1.9.1` (or rerun scripts/setup_env.sh without BORT_CUDA).")
    return "\n".join(lines) or None


def mxnet_library_path():
    """Where the installed MXNet package keeps libmxnet.so, found without importing MXNet (None if absent)."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "libmxnet.so")
        if os.path.isfile(path):
            return path
    return None


def required_sonames(libmxnet_path):
    """libmxnet.so's DT_NEEDED, or the known list of mxnet-cu117 when the file is absent or unreadable."""
    if libmxnet_path:
        try:
            return read_dynamic(libmxnet_path).needed
        except (NotElfError, OSError):
            pass
    return MXNET_CU117_CUDA_NEEDS


def system_loader_has(soname):
    """Whether the system's loader (ldconfig cache, LD_LIBRARY_PATH) finds `soname`; loads it if so."""
    try:
        ctypes.CDLL(soname, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def load_in_order(paths, load=None):
    """ctypes-load each path with RTLD_GLOBAL; a library that fails is named in a GpuError."""
    load = load or (lambda path: ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
    handles = []
    for path in paths:
        try:
            handles.append(load(path))
        except OSError as err:
            raise GpuError(f"cannot load the CUDA library {path}: {err}. Reinstall the CUDA wheels with "
                           f"`{SETUP_HINT}`") from None
    return handles


def prepare_cuda_libraries(search_paths=None):
    """Load the CUDA libraries a CUDA MXNet wheel needs, before `import mxnet`. A no-op (None) with the CPU build,
    without MXNet, or when MXNet is already imported; otherwise the loaded paths. Raises GpuError naming what is
    missing."""
    if "mxnet" in sys.modules:
        return None
    wheel = cuda_mxnet_distribution()
    if wheel is None:
        return None
    index = index_libraries(nvidia_lib_dirs(sys.path if search_paths is None else search_paths))
    plan = plan_loads(required_sonames(mxnet_library_path()), index, system_loader_has)
    message = missing_message(plan, "==".join(wheel))
    if message:
        raise GpuError(message)
    load_in_order(plan.paths)
    return plan.paths
