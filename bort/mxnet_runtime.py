"""Two settings MXNet 1.9.1's CPU wheel fixes when it loads, put right after it has loaded.

1. **Its OpenMP team.** MXNet reads `OMP_NUM_THREADS` once, when `libmxnet.so` loads; if the variable is unset it
   sizes its team at *half* the cores and every engine worker thread keeps that size. `bort.threads` sets the
   variable before MXNet loads, but a script that starts with `import mxnet` (isort puts it before
   `from bort... import`) loads MXNet first and ran on one of two cores: a fine-tuning update took 2.5 s instead
   of 1.4 s. The wheel has no call that resizes the team afterwards (`MXSetNumOMPThreads` sets only the calling
   thread's), so `resize_openmp_team` sets the limit in MXNet's exported OpenMP settings object
   (`mxnet::engine::__init_omp__`, a `{bool enabled; int thread_max; int reserve_cores; bool env_set}` in
   MXNet 1.9.1's src/engine/openmp.h; its values are checked for plausibility before anything is written) and
   runs `MXSetNumOMPThreads` on the engine's CPU worker thread (the one that runs operators) through
   `MXEnginePushSync`. (MXNet's CPU *priority* workers, used for a few copies and kvstore reductions, keep
   their size.)

2. **Its OpenBLAS kernels.** The bundled OpenBLAS 0.3.13 picks its kernels by CPU model at load, and models it
   does not know (Ice Lake and Sapphire Rapids Xeons among them) get the generic "Prescott" SSE3 kernels: 64
   products of 128x128x128 (attention's `batch_dot`) took 7.5 ms instead of 2.3 ms with its Haswell (AVX2/FMA)
   kernels. `OPENBLAS_CORETYPE` chooses them, but it is read at load time and numpy's newer OpenBLAS reads it
   too (which would lose its AVX-512 kernels), so `use_avx2_blas_kernels` re-runs only MXNet's library's kernel
   choice (`gotoblas_dynamic_quit/init`, exported by DYNAMIC_ARCH builds) with the variable set for that call.

`tune_loaded_mxnet` does both, only where MXNet is loaded and only what is needed (a user's `OMP_NUM_THREADS` or
`OPENBLAS_CORETYPE` seen by MXNet at load wins); `bort.threads` calls it, immediately when MXNet is already
loaded, otherwise right after MXNet's import (a one-shot import hook). Anything unexpected (another MXNet
build, no such symbol, values that do not match) leaves MXNet as it is and says so in the returned report.
"""
import ctypes
import os
import sys

#: Kernel families without AVX2 that OpenBLAS 0.3.13 may pick for a CPU it does not know although the CPU has AVX2
#: and FMA (the fallback for unknown Intel models is "Prescott"; older AMD families have AVX/FMA but not AVX2).
PRE_AVX2_CORES = frozenset(("prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn",
                            "dunnington", "nehalem", "atom", "sandybridge", "barcelona", "bobcat", "bulldozer",
                            "piledriver", "steamroller", "unknown"))
OPENMP_SETTINGS_SYMBOL = "_ZN5mxnet6engine12__init_omp__E"
#: MXNet's FnProperty of a normal operation (run by the CPU worker thread(s), not the priority pool).
_NORMAL_OPERATION = 0


class _OpenMPSettings(ctypes.Structure):
    # mxnet::engine::OpenMP in MXNet 1.9.1: volatile bool enabled_; volatile int omp_thread_max_;
    # volatile int reserve_cores_; const bool omp_num_threads_set_in_environment_.
    _fields_ = [("enabled", ctypes.c_bool), ("thread_max", ctypes.c_int), ("reserve_cores", ctypes.c_int),
                ("env_set", ctypes.c_bool)]


class _Context(ctypes.Structure):
    # mxnet::Context: DeviceType dev_type (an int enum; cpu = 1); int32 dev_id.
    _fields_ = [("dev_type", ctypes.c_int), ("dev_id", ctypes.c_int)]


def _mxnet_library():
    mxnet = sys.modules.get("mxnet")
    return getattr(getattr(mxnet, "base", None), "_LIB", None)


def _openmp_settings(lib):
    """MXNet's OpenMP settings object, or None where this build does not export it as 1.9.1 does."""
    try:
        address = ctypes.c_void_p.in_dll(lib, OPENMP_SETTINGS_SYMBOL).value
    except ValueError:
        return None
    if not address:
        return None
    settings = _OpenMPSettings.from_address(address)
    plausible = (settings.enabled in (0, 1) and 0 <= settings.reserve_cores <= 4096
                 and 1 <= settings.thread_max <= 4096 and settings.env_set in (0, 1))
    return settings if plausible else None


def run_on_cpu_workers(function):
    """Call `function()` on the engine's CPU worker thread (once per MXNET_CPU_WORKER_NTHREADS; with several
    workers the engine decides which runs each call) and wait; returns the results."""
    import mxnet as mx

    lib = _mxnet_library()
    calls = []

    def call(_run_context, _param):
        calls.append(function())

    # The callback must outlive the pushes: waitall below runs them before it goes out of scope.
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(call)
    context = _Context(1, 0)
    workers = os.environ.get("MXNET_CPU_WORKER_NTHREADS", "1")
    for _ in range(int(workers) if workers.isdigit() and int(workers) > 0 else 1):
        status = lib.MXEnginePushSync(callback, None, None, ctypes.byref(context), None, 0, None, 0,
                                      ctypes.byref(ctypes.c_int(_NORMAL_OPERATION)), 0, b"bort_thread_setup")
        if status != 0:
            raise RuntimeError(mx.base.py_str(lib.MXGetLastError()))
    mx.nd.waitall()
    return calls


def worker_team_sizes():
    """OpenMP threads an operator gets on the CPU worker thread(s) (what MXNet's kernels and oneDNN use), read on
    the worker itself; for reports and tests."""
    lib = _mxnet_library()
    settings = _openmp_settings(lib)
    gomp = ctypes.CDLL("libgomp.so.1")  # the OpenMP runtime MXNet loaded (same soname: the loaded copy)

    def team():
        threads = gomp.omp_get_max_threads()
        return threads if settings is None else min(threads, settings.thread_max)

    return run_on_cpu_workers(team)


def resize_openmp_team(threads, explicit):
    """Make MXNet's operators use `threads` OpenMP threads. Unless `explicit` (a command's --threads), a size
    MXNet took from the user's OMP_NUM_THREADS at load is kept. Returns a short report."""
    import mxnet as mx

    lib = _mxnet_library()
    settings = _openmp_settings(lib)
    if settings is None:
        return "openmp: left as loaded (this MXNet build does not expose its 1.9.1 OpenMP settings)"
    if settings.env_set and not explicit:
        return f"openmp: {settings.thread_max} threads, as OMP_NUM_THREADS said when MXNet loaded"
    if settings.thread_max == threads and all(size == threads for size in worker_team_sizes()):
        return f"openmp: {threads} threads"
    mx.nd.waitall()  # no operator may run while the size changes
    settings.thread_max = threads
    lib.MXSetNumOMPThreads(ctypes.c_int(threads))  # this thread (operators run inline, e.g. NaiveEngine)
    run_on_cpu_workers(lambda: lib.MXSetNumOMPThreads(ctypes.c_int(threads)))
    return f"openmp: resized to {threads} threads after MXNet had loaded"


def _mxnet_openblas():
    """MXNet's bundled OpenBLAS (a DYNAMIC_ARCH build), or None where this MXNet has none (MKL builds)."""
    path = os.path.join(os.path.dirname(sys.modules["mxnet"].__file__), "libopenblas.so.0")
    if not os.path.exists(path):
        return None
    blas = ctypes.CDLL(path)  # already loaded by libmxnet.so: the same handle
    needed = ("gotoblas_corename", "gotoblas_dynamic_init", "gotoblas_dynamic_quit", "gotoblas_HASWELL")
    if not all(hasattr(blas, name) for name in needed):
        return None
    blas.gotoblas_corename.restype = ctypes.c_char_p
    return blas


def openblas_core():
    """The kernel family MXNet's OpenBLAS runs ('Haswell', 'Prescott', ...), or None without one."""
    blas = _mxnet_openblas() if "mxnet" in sys.modules else None
    return blas.gotoblas_corename().decode() if blas is not None else None


def use_avx2_blas_kernels(environ, cpu_flags=None):
    """Switch MXNet's OpenBLAS to its Haswell kernels where it fell back to pre-AVX2 ones on a CPU with AVX2 and
    FMA. A user's OPENBLAS_CORETYPE (seen by OpenBLAS at load) is kept. Returns a short report."""
    import mxnet as mx

    from .cpu_features import read_cpuinfo

    blas = _mxnet_openblas()
    if blas is None:
        return "openblas: not MXNet's bundled DYNAMIC_ARCH build; left alone"
    core = blas.gotoblas_corename().decode()
    flags = read_cpuinfo()[1] if cpu_flags is None else cpu_flags
    if "OPENBLAS_CORETYPE" in environ or core.lower() not in PRE_AVX2_CORES or not {"avx2", "fma"} <= flags:
        return f"openblas: {core} kernels"
    mx.nd.waitall()  # no product may run while the kernel table changes
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"  # read by gotoblas_dynamic_init only, then taken away again
    try:
        blas.gotoblas_dynamic_quit()
        blas.gotoblas_dynamic_init()
    finally:
        del os.environ["OPENBLAS_CORETYPE"]
    return f"openblas: {core} -> {blas.gotoblas_corename().decode()} kernels"


def tune_loaded_mxnet(threads, explicit, environ):
    """Both fixes for a loaded MXNet; returns their reports (empty where MXNet is not loaded)."""
    if _mxnet_library() is None:
        return []
    reports = []
    for fix in (lambda: resize_openmp_team(threads, explicit), lambda: use_avx2_blas_kernels(environ)):
        try:
            reports.append(fix())
        except (OSError, RuntimeError, AttributeError) as err:  # leave MXNet as loaded; it still works
            reports.append(f"left as loaded: {err}")
    return reports
