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
from bort.inference.precision import choose_backend, resolve

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


def test_auto_keeps_int8_within_the_bound_and_falls_back_beyond_it():
    model = _tiny_model()
    rng = np.random.RandomState(0)
    sequences = [list(rng.randint(5, model.config.vocab_size, size=n)) for n in rng.randint(4, 30, size=16)]
    check = pad_batch(sequences[:8], 1)

    def build(name):
        calibration = calibration_batches(sequences, 1) if name == "int8" else None
        return make_backend(name, model, calibration=calibration)

    backend, why = resolve("auto", "fused", build, model, check, min_cosine=0.99, features=VNNI)
    assert backend.name == "int8" and why.startswith("int8: this CPU has avx512_vnni; cosine")
    cosine = float(why.split("cosine ")[1].split(" ")[0])
    assert 0.99 <= cosine <= 1.0
    # A bound no int8 model meets: the float backend asked for, and the measured cosine in the reason.
    backend, why = resolve("auto", "fused", build, model, check, min_cosine=1.0 + 1e-9, features=VNNI)
    assert backend.name == "fused" and why.startswith("fp32 (fused): int8 outputs reached cosine")
    ids, valid_length = check
    exact = model(mx.nd.array(ids), mx.nd.array(valid_length)).asnumpy()
    assert np.abs(backend(ids, valid_length) - exact).max() < 1e-4
