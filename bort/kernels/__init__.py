"""Faster CPU kernels for training, as an MXNet operator library built on first use.

MXNet 1.9.1's CPU LayerNorm runs its backward pass as generic broadcast/reduce kernels: about 24 ms for one
8x128x1024 call on 2 cores, nine calls per Bort update, a sixth of a fine-tuning update. `layer_norm.cc` is a
LayerNorm (forward and backward in one pass per row, OpenMP over rows) that gives the same values to float
rounding (tests/test_kernels.py checks outputs and all three gradients against MXNet's) at about 1.5 ms.

How it reaches a model: `load_kernels()` compiles `layer_norm.cc` with MXNet's own operator-library interface
(`mxnet/include/mxnet/lib_api.h` and `mxnet/src/lib_api.cc`, both in the wheel) the first time it is needed,
caches the library under `$BORT_CACHE_DIR` (default `$XDG_CACHE_HOME/bort` or `~/.cache/bort`), keyed by the
sources, compiler flags and MXNet version, and loads it with `mx.library.load`. `use_kernels(model)`
then switches the model's LayerNorm blocks to it; the training commands and the `fused` inference backend call
it, and `use_mxnet_operators(model)` switches back before an export (an exported graph must hold only MXNet's
own operators) or int8 quantization. Where no C++ compiler is found (`$CXX`, `g++`,
`c++`), the build fails, MXNet is not 1.9, the model is not float32 on CPU, or `BORT_FAST_KERNELS=0` is set,
MXNet's LayerNorm is kept and one line says why.
"""
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

LOG = logging.getLogger(__name__)
SOURCES = ("library.cc", "layer_norm.cc", "distillation.cc", "masked_softmax.cc", "adamw.cc", "sum_squares.cc")
HEADERS = ("fast_math.h", "float32_only.h")
OPERATORS = ("bort_layer_norm", "bort_distillation_terms", "bort_masked_softmax", "bort_adamw_update",
             "bort_sum_squares")
EXPORTS = "exports.map"
LIBRARY_NAME = "libbort_kernels.so"
DISABLE_VARIABLE = "BORT_FAST_KERNELS"


class KernelsUnavailable(RuntimeError):
    """Why the kernels cannot be used here (the model then keeps MXNet's operators)."""


def cache_dir(environ=None):
    """Where built libraries are kept: $BORT_CACHE_DIR, else $XDG_CACHE_HOME/bort, else ~/.cache/bort."""
    environ = os.environ if environ is None else environ
    if environ.get("BORT_CACHE_DIR"):
        return environ["BORT_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bort")


def find_compiler(environ=None):
    """The C++ compiler to build with ($CXX, g++ or c++ on PATH), or None."""
    environ = os.environ if environ is None else environ
    for candidate in (environ.get("CXX"), "g++", "c++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def compile_flags(cpu_flags=None):
    """Optimisation flags: AVX2/FMA code where the CPU has them (never -march=native: a cache directory may be
    shared by machines of different kinds, and the flags are part of the cache key)."""
    from ..cpu_features import read_cpuinfo

    flags = read_cpuinfo()[1] if cpu_flags is None else cpu_flags
    vector = ["-mavx2", "-mfma"] if {"avx2", "fma"} <= flags else []
    # No fused multiply-add contraction (GCC's default for C++): the optimizer kernel must round as MXNet's
    # generic-x86 build does, or Adam's division by tiny second moments magnifies the difference.
    return ["-O3", "-std=c++17", "-fPIC", "-shared", "-fopenmp", "-ffp-contract=off", *vector]


def _mxnet_paths():
    import mxnet as mx

    root = os.path.dirname(mx.__file__)
    include, lib_api = os.path.join(root, "include"), os.path.join(root, "src", "lib_api.cc")
    if not (os.path.exists(os.path.join(include, "mxnet", "lib_api.h")) and os.path.exists(lib_api)):
        raise KernelsUnavailable(f"this MXNet ({mx.__version__}) ships no operator-library interface "
                                 "(mxnet/include/mxnet/lib_api.h, mxnet/src/lib_api.cc)")
    return mx.__version__, include, lib_api


def library_path(directory=None, compiler=None):
    """Where the library for these sources, flags, compiler and MXNet is (or will be) cached; raises
    KernelsUnavailable where it cannot be built at all."""
    version, include, lib_api = _mxnet_paths()
    if not version.startswith("1.9"):
        raise KernelsUnavailable(f"the kernels are written against MXNet 1.9's operator interface; this is "
                                 f"MXNet {version}")
    compiler = compiler or find_compiler()
    if compiler is None:
        raise KernelsUnavailable("no C++ compiler found ($CXX, g++, c++); install g++ for faster training")
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for path in _inputs(here) + [lib_api, os.path.join(include, "mxnet", "lib_api.h")]:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    digest.update(" ".join([compiler, version, *compile_flags()]).encode())
    return os.path.join(directory or cache_dir(), "kernels", digest.hexdigest()[:16], LIBRARY_NAME)


def _inputs(here):
    return [os.path.join(here, name) for name in SOURCES + HEADERS + (EXPORTS,)]


def build_library(directory=None, compiler=None):
    """Compile the kernels (if not cached) and return the library's path; raises KernelsUnavailable."""
    compiler = compiler or find_compiler()
    target = library_path(directory, compiler)
    target_dir = os.path.dirname(target)
    _, include, lib_api = _mxnet_paths()
    here = os.path.dirname(os.path.abspath(__file__))
    sources = [os.path.join(here, name) for name in SOURCES]
    exports = os.path.join(here, EXPORTS)
    flags = compile_flags()
    if os.path.exists(target):
        return target
    os.makedirs(target_dir, exist_ok=True)
    # Built under a temporary name and renamed: ranks building at once each finish a whole file.
    handle, partial = tempfile.mkstemp(suffix=".so", dir=target_dir)
    os.close(handle)
    # Symbols bound inside the library (-Bsymbolic) and only MXNet's entry points exported (exports.map).
    command = [compiler, *flags, *sources, lib_api, "-I", include, "-I", here, "-Wl,-Bsymbolic",
               f"-Wl,--version-script={exports}", "-o", partial]
    print(f"[bort] building the CPU kernels once (about 10 s; cached in {target_dir})", file=sys.stderr)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise KernelsUnavailable(f"compiling the kernels failed ({' '.join(command)}):\n"
                                     f"{completed.stderr[-2000:]}")
        os.replace(partial, target)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KernelsUnavailable(f"compiling the kernels failed: {err}") from err
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def kernels_loaded():
    """Whether this process has loaded the kernels (`load_kernels`, which `use_kernels` calls)."""
    import sys

    mxnet = sys.modules.get("mxnet")
    return mxnet is not None and all(hasattr(mxnet.nd, name) for name in OPERATORS)


def _disabled():
    return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off")


def load_kernels():
    """Make `bort_layer_norm` available in mx.nd / mx.sym (building it if needed); raises KernelsUnavailable."""
    import mxnet as mx

    if all(hasattr(mx.nd, name) for name in OPERATORS):
        return
    if _disabled():
        raise KernelsUnavailable(f"{DISABLE_VARIABLE}={os.environ[DISABLE_VARIABLE]} is set")
    path = build_library()
    try:
        mx.library.load(path, verbose=False)
    except mx.base.MXNetError as err:
        raise KernelsUnavailable(f"MXNet could not load {path}: {str(err).splitlines()[0]}") from err


def _kernel_blocks(model):
    """The model's blocks that can run on the kernels: `BortLayerNorm` and `MultiHeadSelfAttention`."""
    from ..model import BortLayerNorm, MultiHeadSelfAttention

    blocks = []
    model.apply(lambda block: blocks.append(block)
                if isinstance(block, (BortLayerNorm, MultiHeadSelfAttention)) else None)
    return blocks


def _retrace(model):
    """A hybridized model traced its graph already: make it trace again with the operators now chosen."""
    import mxnet as mx

    model.apply(lambda block: block._clear_cached_op() if isinstance(block, mx.gluon.HybridBlock) else None)


def use_kernels(model, ctx=None, dtype="float32"):
    """Switch `model`'s LayerNorm blocks and attention softmax to the kernels when they can run here (CPU,
    float32); returns True if it did. MXNet's operators are kept otherwise, with one logged line saying why.
    The training commands and the `fused` inference backend call it; `use_mxnet_operators` undoes it (exports
    call that)."""
    blocks = _kernel_blocks(model)
    reason = None
    if ctx is not None and ctx.device_type != "cpu":
        reason = f"the model runs on {ctx}; the kernels are for CPUs"
    elif dtype != "float32":
        reason = f"the model runs in {dtype}; the kernels are float32"
    else:
        try:
            load_kernels()
        except KernelsUnavailable as err:
            reason = str(err)
            if not _disabled():  # a missing compiler or a failed build: say so where users see it
                warnings.warn(f"Bort's CPU kernels are not used ({reason.splitlines()[0]}); MXNet's slower operators "
                              "run instead (docs/kernels.md)", RuntimeWarning, stacklevel=2)
    if reason is not None:
        LOG.info("LayerNorm and attention softmax: MXNet's own (%s)", reason.splitlines()[0])
        return False
    for block in blocks:
        block.use_kernel = True
    _retrace(model)
    LOG.info("LayerNorm and attention softmax: Bort's CPU kernels (%d blocks)", len(blocks))
    return bool(blocks)


def use_mxnet_operators(model):
    """Put `model`'s LayerNorm and attention blocks back on MXNet's own operators: what an exported graph (a symbol file
    another MXNet, or a converter, will read) must hold."""
    blocks = _kernel_blocks(model)
    if any(block.use_kernel for block in blocks):
        for block in blocks:
            block.use_kernel = False
        _retrace(model)
