"""`--precision fp32|bf16|int8|auto`: which backend computes the encoder, by the CPU at hand and an accuracy bound.

- fp32: the float backend asked for (`--backend`, `fused` by default): exact.
- int8: MXNet's oneDNN int8 graph (`int8`), or `onnxruntime-int8` when the onnxruntime backend was asked for.
- bf16: none. MXNet 1.9.1 bundles oneDNN v2.4, which has no AMX kernels; its bfloat16 matrix products ran at about
  half the float32 rate both on a CPU with AVX-512-BF16 (91 vs 179 GFLOP/s) and on one without (emulated: 28 vs
  44 GFLOP/s, docs/benchmarks.md). A bf16 path would only be slower, so asking for it is an error that says so.
- auto: int8 where the CPU has int8 dot-product instructions (AVX512-VNNI or AMX-INT8) and the int8 outputs on the
  first inputs stay within the bound (cosine similarity to float32 >= `min_cosine`, over the real tokens); else
  fp32. The choice and the measured cosine are reported.
"""
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
    """(backend name, why) for a precision and the --backend asked for; `auto` may still fall back to fp32 after
    `check_int8` (see `resolve`)."""
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


def int8_cosine(backend, model, ids, valid_length):
    """Cosine similarity of an int8 backend's outputs to the float model's, over the real tokens of a batch."""
    import warnings

    import mxnet as mx

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not used by any computation")
        expected = model(mx.nd.array(ids, dtype="int32"), mx.nd.array(valid_length, dtype="int32")).asnumpy()
    got = backend(ids, valid_length)
    real = np.arange(ids.shape[1])[None, :] < np.asarray(valid_length)[:, None]
    expected, got = expected[real].astype(np.float64), got[real].astype(np.float64)
    return float((got * expected).sum() / (np.linalg.norm(got) * np.linalg.norm(expected) + 1e-30))


def resolve(precision, requested, build, model, check_batch, min_cosine=DEFAULT_MIN_COSINE, features=None):
    """The backend to serve with and a sentence saying which and why.

    build(name) makes a backend; check_batch is (ids, valid_length) from the inputs. With `auto`, an int8
    backend whose outputs fall below `min_cosine` is replaced by the float backend asked for.
    """
    name, why = choose_backend(precision, requested, features)
    backend = build(name)
    if precision == "auto" and name.endswith("int8") and not requested.endswith("int8"):
        cosine = int8_cosine(backend, model, *check_batch)
        if cosine < min_cosine:
            return build(requested), (f"fp32 ({requested}): int8 outputs reached cosine {cosine:.5f} < the bound "
                                      f"{min_cosine} on the first inputs")
        why += f"; cosine {cosine:.5f} >= {min_cosine} to float32 on the first inputs"
    return backend, f"{name}: {why}"
