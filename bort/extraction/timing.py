"""i* measured: the inference time of a candidate with this package's fastest exact backend (`fused`), on the
machine at hand, as the median of repeated timings, cached in a JSON file keyed by everything that changes it
(architecture, input shape, backend, threads, CPU model).

Weights are random (speed does not depend on their values); the whole sequence output of a (batch, seq_len)
batch of full-length rows is timed after two warm-up calls. The record names the CPU and its widest vector ISA.
"""
import json
import os
import platform
import statistics
import time

from ..cpu_features import read_cpuinfo
from ..io_utils import atomic_open

ISA_ORDER = ("avx512_vnni", "avx512f", "avx2", "avx", "sse4_2")
DEFAULT_BACKEND = "fused"


def cpu_description():
    """(CPU model name, widest vector ISA among ISA_ORDER) from /proc/cpuinfo (Linux) or `platform`."""
    model, flags = read_cpuinfo()
    if model in ("", "unknown"):  # no model name anywhere: the machine type still tells timings apart
        model = platform.machine() or "unknown"
    isa = next((name for name in ISA_ORDER if name in flags), "unknown")
    return model, isa


def timing_key(config, seq_len, batch_size, backend, threads, cpu_model):
    shape = f"D{config.num_layers}-A{config.num_heads}-H{config.units}-I{config.hidden_size}-{config.activation}"
    return f"{shape}|V{config.vocab_size}|L{seq_len}|B{batch_size}|{backend}|threads={threads}|{cpu_model}"


def measure_inference_time(config, seq_len, batch_size=1, repeats=10, backend=DEFAULT_BACKEND, seed=0):
    """Median seconds of `repeats` forward passes of a (batch_size, seq_len) batch, and every timing."""
    import mxnet as mx
    import numpy as np

    from ..checkpoint import get_bort_model
    from ..inference.backends import make_backend

    mx.random.seed(seed)
    model, _ = get_bort_model(config, vocab_size=config.vocab_size, use_decoder=False, dropout=0.0,
                              embed_dropout=0.0)
    runner = make_backend(backend, model)
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, size=(batch_size, seq_len)).astype(np.int32)
    valid_length = np.full((batch_size,), seq_len, dtype=np.int32)
    for _ in range(2):
        runner(ids, valid_length)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(ids, valid_length)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


class TimingCache:
    """A JSON file of timing records, rewritten atomically after every new measurement."""

    def __init__(self, path):
        self.path = path
        self.records = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                self.records = json.load(handle)

    def get_or_measure(self, config, seq_len, batch_size, repeats, backend=DEFAULT_BACKEND):
        threads = os.environ.get("OMP_NUM_THREADS", "default")
        cpu_model, isa = cpu_description()
        key = timing_key(config, seq_len, batch_size, backend, threads, cpu_model)
        if key not in self.records:
            median, times = measure_inference_time(config, seq_len, batch_size, repeats, backend)
            self.records[key] = dict(median_s=median, times_s=times, repeats=repeats, backend=backend,
                                     threads=threads, cpu=cpu_model, isa=isa, seq_len=seq_len,
                                     batch_size=batch_size)
            if self.path:
                with atomic_open(self.path, "w", encoding="utf-8") as handle:
                    json.dump(self.records, handle, indent=1, sort_keys=True)
        return self.records[key]
