"""Timing in fresh processes, each started the way a user starts one (`--isolation process`, the default).

A benchmark that builds every framework in one long process measures something no user runs: torch's and
MXNet's OpenMP teams and the BLAS pools share the cores, and the process's thread settings are the benchmark's,
not what a user's `python my_script.py` gets. Here every participant (one Bort backend, transformers + torch,
the GEMM yardstick) is a fresh `python -c` program that does what a user does: the MXNet ones import the
package's entry points (`bort.model.get_bort_model`, `bort.inference.backends.make_backend`), the torch one only
torch and transformers (no `bort` import that could size torch's threads). Each gets the user's environment:
the variables this process set itself (bort.threads) are removed. Rounds are interleaved across participants
(round 1: every participant once, round 2: ..., each time a new process) so that a change of load on a shared
machine falls on all of them alike; a participant's time is its best call over all rounds, the median over the
rounds' best calls is kept too.

The same helpers time training updates (`bort.benchmarks.train`).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ..errors import ConfigError
from ..threads import AUTO_MARK, _auto_chosen

# Shared by the workers: the batch of a shape (the same ids in every process) and the timing loop. `call(ids,
# valid_length, positions)` is defined by each worker before this runs.
_TIMING_LOOP = r'''
def _batch(vocab_size, batch, length):
    rng = np.random.RandomState(batch * 1000 + length)
    ids = rng.randint(5, vocab_size, size=(batch, length)).astype(np.int32)
    return ids, np.full((batch,), length, dtype=np.int32)

_report = dict(setup_seconds=time.perf_counter() - _start, cells={})
for cell in spec["cells"]:
    batch, length, output = cell
    ids, valid_length = _batch(spec["vocab_size"], batch, length)
    positions = np.zeros((batch, 1), dtype=np.int64) if output == "first_token" else None
    result = call(ids, valid_length, positions)  # warm-up: graphs, memory
    if spec.get("save_outputs"):
        np.save(os.path.join(spec["save_outputs"], f"{batch}x{length}_{output}.npy"), result)
    seconds = []
    for _ in range(spec["calls"]):
        begin = time.perf_counter()
        call(ids, valid_length, positions)
        seconds.append(time.perf_counter() - begin)
    _report["cells"][f"{batch}x{length}_{output}"] = seconds
print("BENCHMARK_RESULT " + json.dumps(_report))
'''

_PRELUDE = r'''
import json, os, sys, time
_start = time.perf_counter()
spec = json.loads(sys.argv[1])
'''

#: A user of the package: its entry points load MXNet (and size the thread pools on the way).
MXNET_WORKER = _PRELUDE + r'''
from bort.model import get_bort_model
from bort.inference.backends import make_backend
import numpy as np

model, _ = get_bort_model(vocab_size=spec["vocab_size"], params_path=spec["params"], use_decoder=False,
                          **spec["config"])
calibration = None
if spec["backend"] == "int8":
    rng = np.random.RandomState(1)
    length = min(128, spec["config"]["max_length"])
    calibration = [(rng.randint(5, spec["vocab_size"], size=(8, length)).astype(np.int32),
                    np.full((8,), length, dtype=np.int32)) for _ in range(spec["calibration_batches"])]
backend = make_backend(spec["backend"], model, onnx_path=spec.get("onnx"), calibration=calibration)


def call(ids, valid_length, positions):
    return backend(ids, valid_length, positions)
''' + _TIMING_LOOP

#: A user of transformers + torch: nothing of this package is imported.
TORCH_WORKER = _PRELUDE + r'''
import numpy as np
import torch
import transformers

import contextlib

net = transformers.AutoModel.from_pretrained(spec["hf_dir"]).eval()
if spec["variant"] == "torch-int8":
    net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)


def call(ids, valid_length, positions):
    mask = torch.from_numpy((np.arange(ids.shape[1])[None, :] < valid_length[:, None]).astype(np.int64))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if spec["variant"] == "torch-bf16" else (
        contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        sequence = net(input_ids=torch.from_numpy(ids.astype(np.int64)), attention_mask=mask).last_hidden_state
    sequence = sequence.float().numpy()
    return sequence if positions is None else np.take_along_axis(sequence, positions[:, :, None], axis=1)
''' + _TIMING_LOOP

#: The machine's float32 GEMM rate in a user's process (the yardstick for %GEMM): oneDNN's GEMM as MXNet's dense
#: layers run it (FullyConnected), and numpy's OpenBLAS on every core; each call reports the faster of the two.
GEMM_WORKER = _PRELUDE + r'''
import bort  # noqa: F401  (the thread set-up a user's process gets)
import mxnet as mx
import numpy as np
from threadpoolctl import threadpool_limits

size = spec["gemm_size"]
rng = np.random.RandomState(0)
a, b = (rng.rand(size, size).astype(np.float32) for _ in range(2))
a_nd, b_nd = mx.nd.array(a), mx.nd.array(b)
seconds = []
with threadpool_limits(limits=len(os.sched_getaffinity(0)), user_api="blas"):
    for call in range(spec["calls"] + 1):
        begin = time.perf_counter()
        mx.nd.FullyConnected(a_nd, b_nd, no_bias=True, num_hidden=size).wait_to_read()
        middle = time.perf_counter()
        a @ b
        if call:  # the first is the warm-up
            seconds.append(min(middle - begin, time.perf_counter() - middle))
print("BENCHMARK_RESULT " + json.dumps(dict(setup_seconds=0.0, cells={"1x2_gemm": seconds})))
'''


def user_environment(environ=None):
    """The environment a user's process would start with: this one without the variables bort.threads chose."""
    environ = dict(os.environ if environ is None else environ)
    for name in _auto_chosen(environ):
        environ.pop(name, None)
    environ.pop(AUTO_MARK, None)
    return environ


def run_worker(program, spec, timeout=1800):
    """Run a worker program in a fresh process with the user's environment; returns its report dict."""
    env = user_environment()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # A checkout that is not installed must still be importable; PYTHONPATH holds no thread setting.
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    completed = subprocess.run([sys.executable, "-c", program, json.dumps(spec)], env=env, capture_output=True,
                               text=True, timeout=timeout)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("BENCHMARK_RESULT ")]
    if completed.returncode != 0 or not lines:
        raise ConfigError(f"benchmark worker failed (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(lines[-1][len("BENCHMARK_RESULT "):])


def time_in_processes(args, models, plan, first_token_shapes, gemm_size, result):
    """Fill result['runs'] (and GEMM rates, set-up times, output checks) from fresh worker processes."""
    from bort.progress import tqdm

    from .inference import FIRST_TOKEN, SEQUENCE, TORCH_VARIANTS, Runner, _output_differences, run_record

    participants = []  # (model, backend, program, spec)
    for model, backend, shapes in plan:
        cells = [[b, length, SEQUENCE] for b, length in shapes]
        if model == "bort":
            cells += [[b, length, FIRST_TOKEN] for b, length in first_token_shapes]
        config = models.config(model)
        spec = dict(vocab_size=config.vocab_size, cells=cells, calls=args.calls_per_process)
        try:
            if backend in TORCH_VARIANTS:
                program, spec["hf_dir"], spec["variant"] = TORCH_WORKER, models.hf_directory(model), backend
            else:
                program = MXNET_WORKER
                spec.update(params=models.params_file(model), calibration_batches=args.calibration_batches,
                            config=dict(num_layers=config.num_layers, num_heads=config.num_heads,
                                        hidden_size=config.hidden_size, units=config.units,
                                        max_length=config.max_length, dropout=0.0, embed_dropout=0.0))
                if backend.startswith("onnxruntime"):
                    spec["onnx"] = models.onnx_file(model)
                spec["backend"] = backend
        except (ImportError, ConfigError) as err:
            result["unavailable"][f"{model}/{backend}"] = str(err)
            continue
        participants.append((model, backend, program, spec))
    every_shape = sorted({(c[0], c[1]) for _, _, _, spec in participants for c in spec["cells"]})
    gemm_spec = dict(vocab_size=6, cells=[[1, 2, "gemm"]], calls=args.calls_per_process, gemm_size=gemm_size)
    times, setup, gemm_seconds = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="bort_bench_outputs_") as outputs_dir:
        for round_index in tqdm(range(args.rounds), desc="rounds (a fresh process per backend)", unit="round"):
            for model, backend, program, spec in participants:
                save = None
                if round_index == 0 and args.check_outputs:
                    save = os.path.join(outputs_dir, f"{model}_{backend}")
                    os.makedirs(save, exist_ok=True)
                report = run_worker(program, dict(spec, save_outputs=save))
                setup.setdefault(f"{model}/{backend}", []).append(report["setup_seconds"])
                for cell, seconds in report["cells"].items():
                    times.setdefault((model, backend, cell), []).append(min(seconds))
            gemm_seconds.append(min(run_worker(GEMM_WORKER, gemm_spec)["cells"]["1x2_gemm"]))
        gemm_rate = 2.0 * gemm_size ** 3 / min(gemm_seconds) / 1e9
        for shape in every_shape:
            result["gemm_gflops_per_shape"][f"{shape[0]}x{shape[1]}"] = gemm_rate
        for model, backend, _, spec in participants:
            result["setup_seconds"][f"{model}/{backend}"] = round(min(setup[f"{model}/{backend}"]), 2)
            for batch, length, output in spec["cells"]:
                runner = Runner(model, backend, models.config(model), None, 0.0, output=output)
                result["runs"].append(run_record(runner, (batch, length), times[(model, backend,
                                                                                 f"{batch}x{length}_{output}")],
                                                  gemm_rate))
        if args.check_outputs:
            for batch, length in every_shape:
                for output in (SEQUENCE, FIRST_TOKEN):
                    for model in sorted({m for m, _, _, _ in participants}):
                        found = {b: np.load(path) for m, b, _, _ in participants if m == model
                                 for path in [os.path.join(outputs_dir, f"{m}_{b}", f"{batch}x{length}_{output}.npy")]
                                 if os.path.exists(path)}
                        if found:
                            name = f"{model} {batch}x{length}" + (" first token" if output == FIRST_TOKEN else "")
                            result["output_check"][name] = _output_differences(found)
    result["gemm_seconds_per_round"] = gemm_seconds
