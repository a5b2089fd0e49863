"""The one place that sizes the thread pools Bort runs on, so that none fights another.

What a process loads: MXNet 1.9.1's CPU wheel runs its operators (oneDNN and its own kernels) on an OpenMP
team and bundles an OpenBLAS built on that same OpenMP; numpy and scipy each bring an OpenBLAS whose pthreads
spin for a while after every call; torch and onnxruntime (benchmarks, exports) have pools of their own.
Left alone, MXNet sizes its OpenMP team at *half* the cores when OMP_NUM_THREADS is not set (it assumes
hyper-threading), so on a machine whose cores are real it runs on half of them, and the BLAS pthreads of
numpy/scipy compete with the OpenMP team whenever numpy multiplies matrices in between.

`configure_threads()` decides, before any of these libraries is loaded:
- OpenMP threads (`OMP_NUM_THREADS`) = the cores this process may use (its CPU affinity, capped by a cgroup
  CPU quota), divided among the ranks Horovod/MPI started on this machine (HOROVOD_LOCAL_SIZE, ...);
- `OPENBLAS_NUM_THREADS=1` for the pthreads OpenBLAS builds (numpy/scipy); MXNet's own OpenBLAS follows the
  OpenMP setting, so it uses the OpenMP team rather than a second pool.
A variable the user set wins and is left alone. The values are written to the environment (child processes
inherit them; `BORT_AUTO_THREADS` records which were chosen here, so a child on other cores recomputes them).
If numpy or MXNet was loaded before Bort, the pthreads BLAS pools are limited through threadpoolctl instead,
and MXNet's OpenMP team is resized in place (`bort.mxnet_runtime`, which also puts MXNet's OpenBLAS on AVX2
kernels where it fell back to generic ones; when MXNet loads after Bort, a one-shot import hook does that).

It runs when the package is first imported (`bort/__init__.py`) and again, with the command's `--threads`,
from the command-line programs; it only sets environment variables (and calls threadpoolctl when a BLAS
library is already loaded), so it costs microseconds. See docs/threads.md.
"""
import dataclasses
import os
import sys

#: Variables through which a user states a thread count explicitly; any of them set means "leave OpenMP alone".
OPENMP_VARIABLES = ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")
BLAS_VARIABLE = "OPENBLAS_NUM_THREADS"
#: Where the values chosen here are recorded ("NAME=value;...") so they are not mistaken for the user's.
AUTO_MARK = "BORT_AUTO_THREADS"
#: Launchers' counts of the processes started on this machine (Horovod, Open MPI, MPICH / Intel MPI, MVAPICH).
LOCAL_SIZE_VARIABLES = ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                        "MV2_COMM_WORLD_LOCAL_SIZE")
#: Modules that load a pthreads OpenBLAS (or MXNet's OpenMP runtime) when imported: once loaded, environment
#: variables no longer reach them.
BLAS_LOADING_MODULES = ("numpy", "mxnet", "scipy", "torch")


@dataclasses.dataclass
class ThreadSetup:
    """What `configure_threads` found and did."""
    cores: int  # cores this process may use
    local_ranks: int  # processes of this job on this machine (Horovod/MPI), sharing the cores
    omp_threads: int  # OpenMP threads of this process (what OMP_NUM_THREADS now says)
    source: str  # "user" (a variable or --threads decided it) or "bort" (chosen here)
    chosen: dict  # the variables set here, name -> value
    late: list  # thread-using modules already imported when this ran (their pools were set by threadpoolctl)
    mxnet: list  # what was done to an already loaded MXNet (bort.mxnet_runtime); empty when it loads later


def usable_cores(cpu_max_path="/sys/fs/cgroup/cpu.max"):
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota if one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        with open(cpu_max_path, encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))  # a quota of 1.5 CPUs keeps 2 threads
    except (OSError, ValueError):
        pass
    return max(1, cores)


def local_ranks(environ):
    """How many processes of this job share the machine, from the launcher's variables (1 if none)."""
    for name in LOCAL_SIZE_VARIABLES:
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return 1


def _positive_int(value):
    """The thread count a variable states, or None; OpenMP's nested form "4,2" states 4 at the outer level."""
    value = (value or "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def _auto_chosen(environ):
    """Variables whose current value is the one an earlier `configure_threads` chose (this process or a parent)."""
    chosen = {}
    for item in environ.get(AUTO_MARK, "").split(";"):
        name, _, value = item.partition("=")
        if name and environ.get(name) == value:
            chosen[name] = value
    return chosen


def plan_threads(environ, cores, threads=None):
    """What to set for an environment; pure, so tests can try any environment. Returns (variables to set,
    the names among them that were derived here rather than asked for, OpenMP threads, source).

    `threads` is an explicit request (a command's --threads): it wins over everything. Otherwise a variable the
    user set wins, and the rest are derived from `cores` shared among the local ranks.
    """
    ours = _auto_chosen(environ)
    user = {name: environ[name] for name in OPENMP_VARIABLES + (BLAS_VARIABLE,) if name in environ and name not in ours}
    wanted, derived = {}, set()
    explicit = next((_positive_int(user[name]) for name in OPENMP_VARIABLES if name in user), None)
    if threads is not None:
        omp, source = threads, "user"
        wanted.update(OMP_NUM_THREADS=str(threads), MXNET_OMP_MAX_THREADS=str(threads))
    elif explicit is not None:
        omp, source = explicit, "user"
        if "OMP_NUM_THREADS" not in user:  # MXNET_OMP_MAX_THREADS alone: oneDNN reads OMP_NUM_THREADS
            wanted["OMP_NUM_THREADS"] = str(explicit)
    else:
        omp, source = max(1, cores // local_ranks(environ)), "bort"
        wanted["OMP_NUM_THREADS"] = str(omp)
        derived.add("OMP_NUM_THREADS")
    if BLAS_VARIABLE not in user:
        wanted[BLAS_VARIABLE] = "1"
        derived.add(BLAS_VARIABLE)
    return wanted, derived, omp, source


def configure_threads(threads=None, environ=None):
    """Size the thread pools for this process (see the module docstring); returns a `ThreadSetup`.

    Call it before MXNet is imported for full effect (the package does so on import). `threads`: an explicit
    OpenMP thread count that overrides the environment (a command's --threads).
    """
    environ = os.environ if environ is None else environ
    if threads is not None and threads < 1:
        from .errors import ConfigError

        raise ConfigError(f"--threads must be at least 1, got {threads}")
    cores = usable_cores()
    wanted, derived, omp, source = plan_threads(environ, cores, threads)
    marked = {name: value for name, value in _auto_chosen(environ).items() if name not in wanted}
    marked.update({name: wanted[name] for name in derived})
    environ.update(wanted)
    environ[AUTO_MARK] = ";".join(f"{name}={value}" for name, value in sorted(marked.items()))
    late = [name for name in BLAS_LOADING_MODULES if name in sys.modules]
    mxnet_reports = []
    if environ is os.environ:  # another mapping (a test's) describes no process: nothing to limit
        if late:
            _limit_loaded_pools(_positive_int(environ.get(BLAS_VARIABLE)) or 1, omp)
        if "mxnet" in sys.modules:
            from .mxnet_runtime import tune_loaded_mxnet

            mxnet_reports = tune_loaded_mxnet(omp, threads is not None, environ)
        else:
            _tune_mxnet_when_imported(omp)
    return ThreadSetup(cores=cores, local_ranks=local_ranks(environ), omp_threads=omp, source=source,
                       chosen=wanted, late=late, mxnet=mxnet_reports)


class _TuneMXNetOnImport:
    """A one-shot import hook: once `import mxnet` has run, apply `bort.mxnet_runtime.tune_loaded_mxnet` (MXNet's
    OpenBLAS picks its kernels when it loads, and only a call after loading can correct a wrong pick)."""

    def __init__(self, omp_threads):
        self.omp_threads = omp_threads

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "mxnet":
            return None
        sys.meta_path.remove(self)  # one shot, and lets the real finders find MXNet below
        import importlib.util

        spec = importlib.util.find_spec("mxnet")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module
        omp_threads = self.omp_threads

        def exec_module(module):
            load(module)
            from .mxnet_runtime import tune_loaded_mxnet

            tune_loaded_mxnet(omp_threads, False, os.environ)

        spec.loader.exec_module = exec_module
        return spec


def _tune_mxnet_when_imported(omp_threads):
    """Install (or update) the hook that tunes MXNet right after it is imported."""
    for finder in sys.meta_path:
        if isinstance(finder, _TuneMXNetOnImport):
            finder.omp_threads = omp_threads
            return
    sys.meta_path.insert(0, _TuneMXNetOnImport(omp_threads))


def _limit_loaded_pools(blas_threads, omp_threads):
    """Libraries already loaded no longer read the environment: set their pools through threadpoolctl.
    Only pthreads OpenBLAS builds are limited: limiting an OpenMP-built OpenBLAS (MXNet's) would also shrink
    the calling thread's OpenMP team."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a dependency, but an environment may lack it; the pools then keep their sizes
        return
    controller = ThreadpoolController()
    controller.select(internal_api="openblas", threading_layer="pthreads").limit(limits=blas_threads)
    controller.select(user_api="openmp").limit(limits=omp_threads)


def pool_sizes():
    """{library file name: threads} of every BLAS/OpenMP pool loaded in this process (for reports and tests)."""
    from threadpoolctl import threadpool_info

    return {os.path.basename(pool["filepath"]): pool["num_threads"] for pool in threadpool_info()}
