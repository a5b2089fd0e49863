"""--precision: the backend chosen for fp32 / int8 / bf16 / auto, and auto's accuracy check against float32."""
import ast
import os

import mxnet as mx
import numpy as np
import pytest

from bort.config import get_config
from bort.errors import ConfigError
from bort.inference.backends import calibration_batches, make_backend
from bort.inference.batching import pad_batch
from bort.inference.precision import auto_candidates, choose_backend, pick_fastest, resolve

from conftest import FIXTURES_DIR

VNNI = dict(avx2=True, avx512f=True, avx512_vnni=True)
AVX2 = dict(avx2=True)


@pytest.mark.parametrize("precision, backend, features, chosen", [
    ("fp32", "fused", VNNI, "fused"),
    ("fp32", "onnxruntime", VNNI, "onnxruntime"),
    ("int8", "fused", AVX2, "int8"),
    ("int8", "onnxruntime", VNNI, "onnxruntime-int8"),
    ("auto", "fused", VNNI, "int8"),
    ("auto", "hybrid", dict(amx_int8=True), "int8"),
    ("auto", "onnxruntime", VNNI, "onnxruntime-int8"),
    ("auto", "fused", AVX2, "fused"),
])
def test_choose_backend(precision, backend, features, chosen):
    assert choose_backend(precision, backend, features)[0] == chosen


def test_bf16_and_contradictions_are_explained():
    with pytest.raises(ConfigError, match="no bfloat16 path.*neither AVX512-BF16 nor AMX-BF16"):
        choose_backend("bf16", "fused", VNNI)
    with pytest.raises(ConfigError, match="this CPU has avx512_bf16 and amx_bf16.*no AMX kernels"):
        choose_backend("bf16", "fused", dict(VNNI, avx512_bf16=True, amx_bf16=True))
    with pytest.raises(ConfigError, match="--precision fp32 contradicts --backend int8"):
        choose_backend("fp32", "int8", VNNI)


def _tiny_model():
    from bort.checkpoint import load_parameters
    from bort.model import BortModel

    hp = ast.literal_eval(str(np.load(os.path.join(FIXTURES_DIR, "tiny_fp32_io.npz"))["hparams"]))
    config = get_config(None, **{k: hp[k] for k in ("num_layers", "units", "hidden_size", "max_length",
                                                    "num_heads", "vocab_size")})
    model = BortModel(config, use_decoder=False)
    model.initialize()
    load_parameters(model, os.path.join(FIXTURES_DIR, "tiny_fp32.params"))
    return model


@pytest.mark.parametrize("requested, features, torch_ok, expected", [
    ("fused", VNNI, True, ["fused", "int8", "torch", "torch-int8"]),
    ("fused", AVX2, True, ["fused", "torch", "torch-int8"]),
    ("hybrid", VNNI, False, ["hybrid", "int8"]),
    ("fused", AVX2, False, ["fused"]),
    ("onnxruntime", VNNI, True, ["onnxruntime", "onnxruntime-int8"]),
])
def test_auto_candidates(requested, features, torch_ok, expected):
    assert auto_candidates(requested, features, torch_ok) == expected


def test_pick_fastest_keeps_to_the_bound():
    measured = [("fused", 0.30, 1.0), ("int8", 0.10, 0.9990), ("torch", 0.25, 0.9999999), ("torch-int8", 0.12, 0.9999)]
    assert pick_fastest(measured, 0.999)[0] == "int8"
    name, why = pick_fastest(measured, 0.9995)
    assert name == "torch-int8" and "int8 100.0 ms cosine 0.99900 (below the bound)" in why
    assert pick_fastest(measured, 0.999999)[0] == "torch"
    # Nothing else within the bound: the float reference, even when slower.
    assert pick_fastest([("fused", 0.3, 1.0), ("int8", 0.1, 0.5)], 0.99)[0] == "fused"


def _auto_setup():
    model = _tiny_model()
    rng = np.random.RandomState(0)
    sequences = [list(rng.randint(5, model.config.vocab_size, size=n)) for n in rng.randint(4, 30, size=16)]

    def build(name):
        calibration = calibration_batches(sequences, 1) if name == "int8" else None
        return make_backend(name, model, calibration=calibration)

    return model, build, pad_batch(sequences[:8], 1)


def _reported(why):
    """name -> (ms, cosine) from auto's report."""
    listed = why[why.index("(") + 1:why.rindex(")")]
    rows = {}
    for item in listed.split(", "):
        parts = item.split()
        rows[parts[0]] = (float(parts[1]), float(parts[4]))
    return rows


def test_auto_serves_the_fastest_engine_within_the_bound():
    model, build, check = _auto_setup()
    backend, why = resolve("auto", "fused", build, model, check, min_cosine=0.99, features=VNNI, torch_ok=True)
    rows = _reported(why)
    assert set(rows) == {"fused", "int8", "torch", "torch-int8"}
    within = {name: ms for name, (ms, cosine) in rows.items() if cosine >= 0.99}
    # the report rounds to 0.1 ms, so two engines may print the same time: the one served is among the fastest
    assert within[backend.name] == min(within.values()) and why.startswith(f"{backend.name}: the fastest")
    assert rows["fused"][1] > 0.99999 and rows["torch"][1] > 0.99999  # both float engines compute the same
    ids, valid_length = check
    exact = model(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    tolerance = 1e-4 if backend.name in ("fused", "torch") else 0.1
    assert np.abs(backend(ids, valid_length) - exact).max() < tolerance


def test_auto_falls_back_to_float_when_no_other_engine_meets_the_bound():
    model, build, check = _auto_setup()
    backend, why = resolve("auto", "fused", build, model, check, min_cosine=1.0 + 1e-9, features=VNNI,
                           torch_ok=False)
    assert backend.name == "fused" and "int8" in _reported(why)
    ids, valid_length = check
    exact = model(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    assert np.abs(backend(ids, valid_length) - exact).max() < 1e-4


def test_torch_backends_compute_what_mxnet_computes():
    model = _tiny_model()
    rng = np.random.RandomState(1)
    ids = rng.randint(5, model.config.vocab_size, size=(3, 17)).astype(np.int32)
    valid_length = np.array([17, 9, 2], dtype=np.int32)
    exact = model(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    assert np.abs(make_backend("torch", model)(ids, valid_length) - exact).max() < 1e-5
    quantized = make_backend("torch-int8", model)(ids, valid_length)
    real = np.arange(17)[None, :] < valid_length[:, None]
    cosine = (quantized[real] * exact[real]).sum() / (np.linalg.norm(quantized[real]) * np.linalg.norm(exact[real]))
    assert cosine > 0.99 and np.all(quantized[~real] == 0)
    first = make_backend("torch", model)(ids, valid_length, np.zeros((3, 1), dtype=np.int32))
    assert np.abs(first[:, 0] - exact[:, 0]).max() < 1e-5
