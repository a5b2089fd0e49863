"""`--precision fp32|bf16|int8|auto`: which backend computes the encoder, by the CPU at hand and an accuracy bound.

- fp32: the float backend asked for (`--backend`, `fused` by default): exact.
- int8: MXNet's oneDNN int8 graph (`int8`), or `onnxruntime-int8` when the onnxruntime backend was asked for.
- bf16: none. MXNet 1.9.1 bundles oneDNN v2.4, which has no AMX kernels; its bfloat16 matrix products ran at about
  half the float32 rate both on a CPU with AVX-512-BF16 (91 vs 179 GFLOP/s) and on one without (emulated: 28 vs
  44 GFLOP/s, docs/benchmarks.md). A bf16 path would only be slower, so asking for it is an error that says so.
- auto: the fastest engine on this machine among those whose outputs on the first inputs stay within the bound
  (cosine similarity to MXNet's float32 >= `min_cosine`, over the real tokens): the float backend asked for,
  MXNet's int8 where the CPU has int8 dot-product instructions (AVX512-VNNI or AMX-INT8), and, when torch and
  transformers are installed, the same weights in transformers' `BertModel` on torch, float32 and dynamic int8
  (`torch`, `torch-int8`). Each is timed on the first inputs (median of 3 calls after a warm-up) the way the task
  calls it; the choice and every candidate's time and cosine are reported.
"""
import time

import numpy as np

from ..cpu_features import cpu_features
from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16", "int8", "auto")
#: Default accuracy bound of `auto`: int8 outputs' cosine similarity to float32 over the real tokens.
DEFAULT_MIN_COSINE = 0.999
INT8_INSTRUCTIONS = ("avx512_vnni", "amx_int8")


def bf16_unavailable(features):
    """Why there is no bf16 path, naming what this CPU has."""
    has = [name for name in ("avx512_bf16", "amx_bf16") if features.get(name)]
    cpu = f"this CPU has {' and '.join(has)}" if has else "this CPU has neither AVX512-BF16 nor AMX-BF16"
    return (f"--precision bf16: no bfloat16 path ({cpu}). MXNet 1.9.1's oneDNN v2.4 has no AMX kernels and runs "
            "bfloat16 matrix products slower than float32 even with AVX512-BF16; use --precision fp32 or int8 "
            "(or auto)")


def choose_backend(precision, backend, features=None):
    """(backend name, why) for a precision and the --backend asked for. For `auto` this is the int8 engine it
    considers beside the float one (see `auto_candidates`), or the --backend itself when there is none."""
    features = cpu_features() if features is None else features
    onnx = backend.startswith("onnxruntime")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        raise ConfigError(bf16_unavailable(features))
    if precision == "fp32":
        if backend.endswith("int8"):
            raise ConfigError(f"--precision fp32 contradicts --backend {backend}; pick a float backend or "
                              "--precision int8")
        return backend, "fp32 as asked"
    int8_backend = "onnxruntime-int8" if onnx else "int8"
    if precision == "int8":
        return int8_backend, "int8 as asked"
    if backend.endswith("int8"):
        return backend, f"--backend {backend} is int8"
    found = [name for name in INT8_INSTRUCTIONS if features.get(name)]
    if not found:
        return backend, "fp32, this CPU has no int8 dot-product instructions (AVX512-VNNI / AMX-INT8)"
    return int8_backend, f"this CPU has {', '.join(found)}"


def auto_candidates(requested, features, torch_ok):
    """The engines `auto` times: the float backend asked for first (the reference), then the int8 one where the CPU
    has int8 dot products, then torch float32 and int8 when torch is installed (not with an onnxruntime --backend,
    which names its engine)."""
    int8_name, _ = choose_backend("auto", requested, features)
    names = [requested] + ([int8_name] if int8_name != requested else [])
    if torch_ok and not requested.startswith("onnxruntime"):
        names += [name for name in ("torch", "torch-int8") if name not in names]
    return names


def pick_fastest(measured, min_cosine):
    """measured: [(name, seconds, cosine)], the reference first. The fastest within the bound (the reference always
    is: it is the float model itself) and a sentence listing every candidate."""
    eligible = [row for row in measured[1:] if row[2] >= min_cosine] + [measured[0]]
    name, _, _ = min(eligible, key=lambda row: row[1])
    listed = ", ".join(f"{n} {s * 1000:.1f} ms cosine {c:.5f}{'' if c >= min_cosine else ' (below the bound)'}"
                       for n, s, c in measured)
    return name, f"{name}: the fastest within cosine >= {min_cosine} to float32 on the first inputs ({listed})"


def output_cosine(backend, expected, ids, valid_length, positions=None):
    """Cosine similarity of a backend's outputs to the float model's `expected` (B, L, C), over the real tokens
    (or the rows at `positions`)."""
    got = backend(ids, valid_length, positions)
    if positions is None:
        real = np.arange(ids.shape[1])[None, :] < np.asarray(valid_length)[:, None]
        expected, got = expected[real], got[real]
    else:
        expected = np.take_along_axis(expected, np.asarray(positions)[:, :, None], axis=1)
    expected, got = expected.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    return float((got @ expected) / (np.linalg.norm(got) * np.linalg.norm(expected) + 1e-30))


def time_backend(backend, ids, valid_length, positions=None, repeats=3):
    """Median seconds of `repeats` calls after one warm-up call (which also builds lazily optimized graphs)."""
    backend(ids, valid_length, positions)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend(ids, valid_length, positions)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def resolve(precision, requested, build, model, check_batch, min_cosine=DEFAULT_MIN_COSINE, features=None,
            positions=None, torch_ok=None):
    """The backend to serve with and a sentence saying which and why.

    build(name) makes a backend; check_batch is (ids, valid_length) from the inputs; `positions` the rows the task
    reads (None: every token). With `auto` every candidate is built, checked against `model` (the float MXNet
    encoder) and timed, and the fastest within `min_cosine` is served.
    """
    if precision != "auto":
        name, why = choose_backend(precision, requested, features)
        return build(name), f"{name}: {why}"
    features = cpu_features() if features is None else features
    if torch_ok is None:
        from .torch_backend import torch_available

        torch_ok = torch_available()
    ids, valid_length = check_batch
    import warnings

    import mxnet as mx

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not used by any computation")
        expected = model(mx.nd.array(ids, dtype="int32"), mx.nd.array(valid_length, dtype="int32")).asnumpy()
    built, measured = {}, []
    for name in auto_candidates(requested, features, torch_ok):
        built[name] = build(name)
        cosine = output_cosine(built[name], expected, ids, valid_length, positions)
        measured.append((name, time_backend(built[name], ids, valid_length, positions), cosine))
    chosen, why = pick_fastest(measured, min_cosine)
    return built[chosen], why
