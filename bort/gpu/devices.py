"""The GPUs this process can see: name and compute capability, read without MXNet.

First the CUDA driver API through ctypes (libcuda.so.1), which numbers devices the way MXNet does (after
CUDA_VISIBLE_DEVICES); then `nvidia-smi`, whose list is filtered by CUDA_VISIBLE_DEVICES here. Neither needs a
CUDA toolkit, only the driver.
"""
import ctypes
import shutil
import subprocess
from dataclasses import dataclass

CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    capability: tuple  # (major, minor)

    @property
    def sm(self):
        return f"sm_{self.capability[0]}{self.capability[1]}"


@dataclass(frozen=True)
class GpuQuery:
    """What was seen, and how: `source` is 'driver', 'nvidia-smi' or None; `problem` says why nothing was seen."""
    gpus: tuple
    source: str | None
    problem: str | None = None


def parse_nvidia_smi_csv(text):
    """GpuInfo rows from `nvidia-smi --query-gpu=index,name,compute_cap --format=csv,noheader`."""
    gpus = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.rsplit(",", 1)]
        head, cap = parts if len(parts) == 2 else (parts[0], "")
        index, _, name = head.partition(",")
        major, _, minor = cap.partition(".")
        if not (index.strip().isdigit() and major.isdigit() and minor.isdigit()):
            raise ValueError(f"nvidia-smi line {number} is not 'index, name, major.minor': {line!r}")
        gpus.append(GpuInfo(int(index), name.strip(), (int(major), int(minor))))
    return gpus


def apply_visible_devices(gpus, visible):
    """Renumber nvidia-smi's GPUs as a CUDA process sees them under CUDA_VISIBLE_DEVICES=`visible` (None: all).

    Entries that are not plain indices (UUIDs, MIG names) are matched by nothing here, so the caller reports that
    it could not tell."""
    if visible is None:
        return list(gpus)
    by_index = {gpu.index: gpu for gpu in gpus}
    chosen = []
    for entry in visible.split(","):
        entry = entry.strip()
        if not entry.isdigit() or int(entry) not in by_index:
            break  # CUDA stops at the first entry it cannot use
        source = by_index[int(entry)]
        chosen.append(GpuInfo(len(chosen), source.name, source.capability))
    return chosen


def query_driver(library="libcuda.so.1"):
    """GPUs through the driver API, or a GpuQuery with the problem when the driver is absent or fails."""
    try:
        cuda = ctypes.CDLL(library)
    except OSError:
        return GpuQuery((), None, f"{library} (the NVIDIA driver) not found")
    if cuda.cuInit(0) != 0:
        return GpuQuery((), None, "the NVIDIA driver is installed but cuInit failed (no usable GPU)")
    count = ctypes.c_int()
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return GpuQuery((), None, "cuDeviceGetCount failed")
    gpus = []
    for ordinal in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        if (cuda.cuDeviceGet(ctypes.byref(device), ordinal) != 0
                or cuda.cuDeviceGetName(name, len(name), device) != 0
                or cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                             device) != 0
                or cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                             device) != 0):
            return GpuQuery(tuple(gpus), "driver", f"could not read GPU {ordinal} through the driver API")
        gpus.append(GpuInfo(ordinal, name.value.decode("utf-8", "replace"), (major.value, minor.value)))
    return GpuQuery(tuple(gpus), "driver", None if gpus else "the NVIDIA driver sees no GPU")


def query_nvidia_smi(visible=None, run=subprocess.run):
    """GPUs through nvidia-smi (renumbered for CUDA_VISIBLE_DEVICES=`visible`)."""
    if shutil.which("nvidia-smi") is None:
        return GpuQuery((), None, "nvidia-smi not found")
    try:
        result = run(["nvidia-smi", "--query-gpu=index,name,compute_cap", "--format=csv,noheader"],
                     capture_output=True, text=True, timeout=60, check=False)
        gpus = parse_nvidia_smi_csv(result.stdout) if result.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as err:
        return GpuQuery((), None, f"nvidia-smi failed: {err}")
    if gpus is None:
        return GpuQuery((), None, f"nvidia-smi failed: {(result.stderr or result.stdout).strip()[:200]}")
    gpus = apply_visible_devices(gpus, visible)
    return GpuQuery(tuple(gpus), "nvidia-smi", None if gpus else "nvidia-smi lists no GPU visible to this process")


def visible_gpus(visible=None):
    """The visible GPUs from the driver API, else from nvidia-smi; with the reasons when there are none."""
    driver = query_driver()
    if driver.gpus:
        return driver
    smi = query_nvidia_smi(visible)
    if smi.gpus:
        return smi
    return GpuQuery((), None, f"{driver.problem}; {smi.problem}")
