"""`scripts/benchmark.py inference`: CPU latency and throughput of Bort in this package's backends, the same
weights in transformers + torch, and BERT-base / BERT-large shapes, all in one run on one machine.

Timing: every (model, backend) of one input shape is timed round-robin — one call each per round, several
rounds — so load from other processes on a shared machine falls on all of them alike; the best round is the
reported time (the median is kept in the JSON). Weights are random (Normal(0.02)): speed does not depend on them.
Achieved GFLOP/s count the encoder's matrix products (dense layers and attention), set against the float32 GEMM
rate measured with MXNet's dot in the same rounds as the shape (numpy's, timed once at the start, is reported too).

Two outputs are timed: the whole sequence output (B, L, units), and the first token's output only (B, units), what
classification and first-token embeddings read. For the second, the `fused` and `int8` backends compute the
last layer at that position alone; every other backend (and torch, which has no such path) computes the whole
output and keeps one row. GFLOP/s count the products each backend actually computes.
"""
import dataclasses
import gc
import os
import tempfile
import time

import numpy as np

from ..cli import str2bool
from ..errors import ConfigError

ARCHITECTURES = {
    # name: (num_layers, num_heads, hidden_size (FFN), units)
    "bort": (4, 8, 768, 1024),
    "bert-base": (12, 12, 3072, 768),
    "bert-large": (24, 16, 4096, 1024),
}
# --quick: the same three models shrunk so the whole run takes seconds (checks the code path, not speed).
QUICK_ARCHITECTURES = {"bort": (2, 4, 48, 64), "bert-base": (3, 4, 128, 64), "bert-large": (4, 4, 128, 96)}
VOCAB_SIZE = 50265
QUICK_VOCAB_SIZE = 300
TORCH = "torch"
#: torch's own faster paths on the same weights: `torch.autocast` bfloat16, `quantize_dynamic` int8 Linear layers.
TORCH_VARIANTS = (TORCH, "torch-bf16", "torch-int8")
MXNET_CHOICES = ("mxnet", "hybrid", "mkldnn", "fused", "int8", "onnxruntime", "onnxruntime-int8")
PAPER_SPEEDUP = {"bert-base": 7.9, "bert-large": 20.0}
SEQUENCE, FIRST_TOKEN = "sequence", "first_token"
#: Backends whose output at chosen positions skips work (the rest compute everything and pick rows).
PRUNING_BACKENDS = ("fused", "int8")


def add_arguments(parser):
    parser.add_argument("--isolation", choices=("process", "inprocess"), default="process",
                        help="'process': every backend (and torch) timed in a fresh Python process started the way "
                             "a user starts one (the package's entry points, the user's environment), rounds "
                             "interleaved across backends; 'inprocess': all in this process, round-robin (faster to "
                             "run, but the frameworks' thread pools share the process) (default: %(default)s)")
    parser.add_argument("--calls_per_process", type=int, default=3,
                        help="--isolation process: timed calls per shape in each process (after one warm-up call); "
                             "a process reports its best (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="CI-size run: tiny models and shapes, one timed round (checks that everything runs)")
    parser.add_argument("--backends", default="hybrid,mkldnn,fused,int8,onnxruntime,onnxruntime-int8,torch",
                        help="comma-separated backends for Bort: any of " + ", ".join(MXNET_CHOICES)
                             + ", torch (transformers BertModel with the same weights), torch-bf16 (the same under "
                             "torch.autocast bfloat16), torch-int8 (quantize_dynamic int8 Linear layers) "
                             "(default: %(default)s)")
    parser.add_argument("--baseline_models", default="bert-base,bert-large",
                        help="comma-separated reference models timed with --baseline_backends: bert-base, "
                             "bert-large, or 'none' (default: %(default)s)")
    parser.add_argument("--baseline_backends", default="fused",
                        help="backends for the reference models; 'torch' adds them in transformers as well (about "
                             "1.5 GiB more memory for BERT-large); int8/onnxruntime set-up on BERT-large takes "
                             "minutes (default: %(default)s)")
    parser.add_argument("--shapes", default="1x128,8x128,32x128,1x512,8x512",
                        help="comma-separated BATCHxLENGTH shapes for Bort; add 32x512 for the largest batch at "
                             "512 tokens (about 0.9 TFLOP per call: minutes over all backends on 2 cores, and "
                             "several GiB of buffers per backend) (default: %(default)s)")
    parser.add_argument("--baseline_shapes", default="1x128,8x128",
                        help="shapes for the reference models; BERT-large at 32x512 alone would take minutes "
                             "per call on 2 cores (default: %(default)s)")
    parser.add_argument("--first_token_shapes", default="1x128,8x128",
                        help="shapes at which Bort's backends and torch are also timed returning the first token's "
                             "output only (classification, first-token embeddings), where the fused and int8 "
                             "backends prune the last layer; 'none' skips them (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds per shape (after one warm-up call each) (default: %(default)s)")
    parser.add_argument("--max_seconds_per_cell", type=float, default=20.0,
                        help="stop adding rounds for a shape once a single round of it took longer than this; at "
                             "least one timed round always runs (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every framework (default: what bort.threads gives a user's process: "
                             "the usable cores)")
    parser.add_argument("--gemm_size", type=int, default=2048,
                        help="n of the n x n x n float32 GEMM that measures the machine's rate: numpy and MXNet "
                             "once at the start, MXNet again in every shape's rounds; each shape's %%GEMM uses the "
                             "rate from its own rounds (default: %(default)s)")
    parser.add_argument("--calibration_batches", type=int, default=2,
                        help="int8: batches of 8 random sequences of 128 tokens used for calibration "
                             "(default: %(default)s)")
    parser.add_argument("--bucketing_examples", type=int, default=64,
                        help="also time Bort on this many sequences of random lengths (8 to 128 tokens) in batches "
                             "of 8, sorted by length vs in input order, with the first MXNet backend of --backends; "
                             "0 skips it (default: %(default)s)")
    parser.add_argument("--check_outputs", type=str2bool, default=True,
                        help="record each backend's largest difference from the MXNet float32 output "
                             "(default: %(default)s)")


@dataclasses.dataclass
class Runner:
    model: str
    backend: str
    config: object
    call: object  # (ids, valid_length[, positions]) -> sequence output (or the output at positions)
    setup_seconds: float
    note: str = ""
    output: str = "sequence"  # or FIRST_TOKEN: the runner asks for position 0 only


def parse_shapes(text):
    shapes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            batch, length = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ConfigError(f"shape {item!r} is not BATCHxLENGTH, e.g. 8x128") from None
        if batch < 1 or length < 2:
            raise ConfigError(f"shape {item!r}: batch must be >= 1 and length >= 2")
        shapes.append((batch, length))
    return shapes


def _names(text, allowed, what):
    names = [name.strip() for name in text.split(",") if name.strip() and name.strip() != "none"]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return names


def encoder_flops(config, batch, length, last_layer_outputs=None):
    """Multiply-adds x 2 of the encoder's matrix products for one forward pass; with `last_layer_outputs` P, of a
    pass whose last layer is computed at P positions per sequence the way `QueryPositionsCell` does (the key and
    value projections folded into each query: no keys or values are formed)."""
    units, ffn, heads = config.units, config.hidden_size, config.num_heads
    full_layer = 2 * batch * length * (4 * units * units + 2 * units * ffn) + 2 * 2 * batch * length * length * units
    if last_layer_outputs is None:
        return config.num_layers * full_layer
    queries = batch * last_layer_outputs
    # query, folded key, value and output projections, FFN; scores and mixing against every position per head
    last_layer = 2 * queries * (4 * units * units + 2 * units * ffn) + 2 * 2 * queries * heads * length * units
    return (config.num_layers - 1) * full_layer + last_layer


def gemm_calls(size):
    """name -> call of one float32 size^3 GEMM in numpy and in MXNet (the practical peak the models are held to).

    MXNet's is a FullyConnected layer: oneDNN's GEMM, what the model's dense layers run. `mx.nd.dot` would
    measure MXNet's bundled OpenBLAS, built for a generic x86-64 target (threadpoolctl reports 'Prescott'),
    several times slower than the machine can go."""
    import mxnet as mx

    rng = np.random.RandomState(0)
    a = rng.rand(size, size).astype(np.float32)
    b = rng.rand(size, size).astype(np.float32)
    a_nd, b_nd = mx.nd.array(a), mx.nd.array(b)
    return {"numpy": lambda: a @ b,
            "mxnet": lambda: mx.nd.FullyConnected(a_nd, b_nd, no_bias=True, num_hidden=size).wait_to_read()}


def measure_gemm(size, rounds=3):
    """Best float32 GEMM GFLOP/s of numpy and of MXNet over `rounds`."""
    from threadpoolctl import threadpool_limits

    calls = gemm_calls(size)
    best = {name: float("inf") for name in calls}
    # numpy's BLAS runs on one thread in this package's processes (bort.threads); the machine's rate needs all.
    with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
        for call in calls.values():
            call()
        for _ in range(rounds):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: 2.0 * size ** 3 / seconds / 1e9 for name, seconds in best.items()}


def _random_batch(rng, vocab_size, batch, length):
    # Ids above the special tokens, every row full-length: the benchmark times whole sequences.
    ids = rng.randint(5, vocab_size, size=(batch, length)).astype(np.int32)
    return ids, np.full((batch,), length, dtype=np.int32)


class _Models:
    """Builds each model's weights once (saved to a scratch .params file) and a runner per backend."""

    def __init__(self, args, scratch, architectures, vocab_size, max_length):
        self.args = args
        self.scratch = scratch
        self.architectures = architectures
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.params = {}
        self.configs = {}

    def config(self, model):
        from ..config import get_config

        if model not in self.configs:
            layers, heads, ffn, units = self.architectures[model]
            self.configs[model] = get_config(None, num_layers=layers, num_heads=heads, hidden_size=ffn, units=units,
                                             max_length=self.max_length, vocab_size=self.vocab_size, dropout=0.0,
                                             embed_dropout=0.0)
        return self.configs[model]

    def params_file(self, model):
        import mxnet as mx

        from ..model import BortModel
        from ..params import save_parameters

        if model not in self.params:
            mx.random.seed(0)
            net = BortModel(self.config(model), use_decoder=False)
            net.initialize(mx.init.Normal(0.02))
            path = os.path.join(self.scratch, f"{model}.params")
            save_parameters(net, path)
            del net
            gc.collect()  # BERT-large's 1.3 GB of weights: each backend loads its own copy from the file
            self.params[model] = path
        return self.params[model]

    def fresh_model(self, model):
        import mxnet as mx

        from ..checkpoint import load_parameters
        from ..model import BortModel

        net = BortModel(self.config(model), use_decoder=False)
        net.initialize(mx.init.Normal(0.02))
        load_parameters(net, self.params_file(model))
        return net

    def runner(self, model, backend):
        start = time.perf_counter()
        note = ""
        if backend in TORCH_VARIANTS:
            call = self._torch_call(model, backend)
            note = "transformers BertModel (sdpa attention), torch.inference_mode"
        elif backend in ("onnxruntime", "onnxruntime-int8"):
            call = self._onnx_call(model, backend)
        else:
            from ..inference.backends import make_backend

            calibration = None
            if backend == "int8":
                rng = np.random.RandomState(1)
                length = min(128, self.max_length)
                calibration = [_random_batch(rng, self.vocab_size, 8, length)
                               for _ in range(self.args.calibration_batches)]
                note = f"calibrated ('naive') on {8 * len(calibration)} random sequences of {length} tokens"
            call = make_backend(backend, self.fresh_model(model), calibration=calibration)
        return Runner(model, backend, self.config(model), call, time.perf_counter() - start, note)

    def hf_directory(self, model):
        """The model's weights as a transformers BertModel directory (written once)."""
        from ..checkpoint import open_source
        from ..export import hf

        directory = os.path.join(self.scratch, f"{model}_hf")
        if not os.path.exists(os.path.join(directory, "config.json")):
            os.makedirs(directory, exist_ok=True)
            source = open_source(self.params_file(model), num_heads=self.config(model).num_heads, with_mlm=False)
            hf.write_hf(source, directory)
        return directory

    def _torch_call(self, model, variant=TORCH):
        import contextlib

        import torch

        from ..export import hf

        torch.set_num_threads(self.args.threads)
        net, _ = hf.load_hf_model(self.hf_directory(model))
        if variant == "torch-int8":
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "torch-bf16" else (
            contextlib.nullcontext)

        def call(ids, valid_length, positions=None):
            mask = torch.from_numpy((np.arange(ids.shape[1])[None, :] < valid_length[:, None]).astype(np.int64))
            with torch.inference_mode(), autocast():
                sequence = net(input_ids=torch.from_numpy(ids.astype(np.int64)), attention_mask=mask
                               ).last_hidden_state.float().numpy()
            return sequence if positions is None else np.take_along_axis(sequence, positions[:, :, None], axis=1)

        return call

    def onnx_file(self, model):
        """The model exported to ONNX (written once)."""
        try:
            from ..export.commands import export
        except ImportError as err:
            raise ConfigError(f"the ONNX export (bort.export) is not available: {err}") from None
        directory = os.path.join(self.scratch, f"{model}_onnx")
        if not os.path.exists(directory):
            export(self.params_file(model), "onnx", directory, num_heads=self.config(model).num_heads,
                   lengths=(7, 32))
        return os.path.join(directory, "model.onnx")

    def _onnx_call(self, model, backend):
        from ..inference.backends import make_backend

        # Without the arena onnxruntime returns large buffers after each call instead of keeping the peak.
        return make_backend(backend, self.fresh_model(model), onnx_path=self.onnx_file(model),
                            threads=self.args.threads, memory_arena=False)


def _gemm_runners(size):
    """The GEMMs as round-robin participants: the rate they reach in the same rounds as a shape's models is the
    fair yardstick on a machine whose load changes from minute to minute."""
    config = type("GemmShape", (), {"vocab_size": 6})()  # only for the unused random ids
    # MXNet's only: OpenBLAS worker threads (numpy's) busy-wait after each call and would steal the cores from
    # whatever runs next in the round.
    return [Runner("gemm", "mxnet", config, lambda ids, valid_length, call=gemm_calls(size)["mxnet"]: call(), 0.0)]


def first_token_runner(runner):
    """The same model and backend, asked for the first token's output only."""
    def call(ids, valid_length):
        return runner.call(ids, valid_length, np.zeros((ids.shape[0], 1), dtype=np.int64))

    return dataclasses.replace(runner, call=call, output=FIRST_TOKEN)


def _time_shape(runners, shape, args, vocab_size, reference_outputs):
    """Round-robin timing of all runners on one shape; returns {(model, backend, output): seconds list}."""
    rng = np.random.RandomState(shape[0] * 1000 + shape[1])
    batches = {}
    times = {}
    for runner in runners:
        if runner.model not in batches:
            batches[runner.model] = _random_batch(rng, runner.config.vocab_size, *shape)
        ids, valid_length = batches[runner.model]
        output = runner.call(ids, valid_length)  # warm-up: builds graphs, allocates memory
        if args.check_outputs and runner.model != "gemm":
            reference_outputs.setdefault((runner.model, shape, runner.output), {})[runner.backend] = output
        times[_key(runner)] = []
    for _ in range(args.rounds):
        round_seconds = 0.0
        for runner in runners:
            ids, valid_length = batches[runner.model]
            start = time.perf_counter()
            runner.call(ids, valid_length)
            elapsed = time.perf_counter() - start
            times[_key(runner)].append(elapsed)
            round_seconds += elapsed
        if round_seconds > args.max_seconds_per_cell:
            break
    return times


def _key(runner):
    return runner.model, runner.backend, runner.output


def _output_differences(outputs):
    """Largest |difference| and cosine of each backend's output against the MXNet float32 reference."""
    reference_name = next((name for name in ("hybrid", "mkldnn", "fused", "mxnet") if name in outputs), None)
    if reference_name is None:
        return {}
    reference = outputs[reference_name].astype(np.float64)
    result = {}
    for name, output in outputs.items():
        output = output.astype(np.float64)
        cosine = float((output * reference).sum() / (np.linalg.norm(output) * np.linalg.norm(reference) + 1e-30))
        result[name] = dict(reference=reference_name, max_abs_diff=float(np.abs(output - reference).max()),
                            relative_error=float(np.linalg.norm(output - reference) / np.linalg.norm(reference)),
                            cosine=cosine)
    return result


def time_bucketing(runner, count, max_length, rounds):
    """Seconds to embed `count` random-length sequences in batches of 8, sorted by length and in input order."""
    from ..inference.predict import embed

    rng = np.random.RandomState(2)
    longest = min(128, max_length)
    lengths = rng.randint(min(8, longest), longest + 1, size=count)
    sequences = [list(rng.randint(5, runner.config.vocab_size, size=length)) for length in lengths]
    seconds = {}
    for sort_by_length in (True, False):
        embed(runner.call, sequences, 1, batch_size=8, sort_by_length=sort_by_length)  # warm-up: every shape
    for _ in range(rounds):
        for sort_by_length in (True, False):
            start = time.perf_counter()
            embed(runner.call, sequences, 1, batch_size=8, sort_by_length=sort_by_length)
            key = "sorted_by_length" if sort_by_length else "input_order"
            seconds[key] = min(seconds.get(key, float("inf")), time.perf_counter() - start)
    return dict(backend=runner.backend, sequences=count, tokens=int(lengths.sum()), batch_size=8,
                seconds=seconds, speedup=seconds["input_order"] / seconds["sorted_by_length"])


def run_record(runner, shape, seconds, gemm_rate):
    """One result row: the best of `seconds` (and their median) for a runner at a shape, with its GFLOP/s and
    their share of the GEMM rate measured alongside."""
    best = min(seconds)
    pruned = runner.output == FIRST_TOKEN and runner.backend in PRUNING_BACKENDS
    flops = encoder_flops(runner.config, *shape, last_layer_outputs=1 if pruned else None)
    return dict(model=runner.model, backend=runner.backend, output=runner.output, batch=shape[0], length=shape[1],
                seconds=best, median_seconds=float(np.median(seconds)), rounds=len(seconds),
                sequences_per_s=shape[0] / best, tokens_per_s=shape[0] * shape[1] / best, gflop=flops / 1e9,
                gflops=flops / best / 1e9, gemm_fraction=flops / best / 1e9 / gemm_rate)


def _time_in_process(args, models, plan, backends, shapes, baseline_shapes, first_token_shapes, gemm_size,
                     max_length, result):
    """--isolation inprocess: every runner built in this process, timed round-robin shape by shape."""
    from bort.progress import tqdm

    vocab_size = models.vocab_size
    runners = {}
    for model, backend, _ in tqdm(plan, desc="building models", unit="model"):
        try:
            runner = models.runner(model, backend)
        except (ImportError, ConfigError) as err:
            result["unavailable"][f"{model}/{backend}"] = str(err)
            continue
        runners[(model, backend)] = runner
        result["setup_seconds"][f"{model}/{backend}"] = round(runner.setup_seconds, 2)
        if runner.note:
            result["notes"][f"{model}/{backend}"] = runner.note
    timed_baseline_shapes = set(baseline_shapes) if any(model != "bort" for model, _, _ in plan) else set()
    all_shapes = sorted(set(shapes) | timed_baseline_shapes | set(first_token_shapes), key=lambda s: (s[1], s[0]))
    outputs = {}
    gemm_runners = _gemm_runners(gemm_size)
    for shape in tqdm(all_shapes, desc="timing shapes", unit="shape"):
        active = [runners[(m, b)] for m, b, model_shapes in plan if (m, b) in runners and shape in model_shapes]
        if shape in first_token_shapes:
            active += [first_token_runner(runners[("bort", b)]) for b in backends if ("bort", b) in runners]
        times = _time_shape(active + gemm_runners, shape, args, vocab_size, outputs)
        gemm_rate = max(2.0 * gemm_size ** 3 / min(times[_key(g)]) / 1e9 for g in gemm_runners)
        result["gemm_gflops_per_shape"][f"{shape[0]}x{shape[1]}"] = gemm_rate
        for runner in active:
            result["runs"].append(run_record(runner, shape, times[_key(runner)], gemm_rate))
    bucketing_runner = next((runners[("bort", b)] for b in backends
                             if b in ("hybrid", "mkldnn", "fused", "mxnet") and ("bort", b) in runners), None)
    if args.bucketing_examples and bucketing_runner is not None:
        result["bucketing"] = time_bucketing(bucketing_runner, args.bucketing_examples, max_length,
                                             args.rounds)
    for (model, shape, output), by_backend in outputs.items():
        name = f"{model} {shape[0]}x{shape[1]}" + (" first token" if output == FIRST_TOKEN else "")
        result["output_check"][name] = _output_differences(by_backend)


def run(args):
    from ..threads import configure_threads

    # Before MXNet is first imported by this process; without --threads, what a user's process gets.
    args.threads = configure_threads(args.threads).omp_threads
    if args.rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {args.rounds}")
    if args.quick:
        architectures, vocab_size, max_length = QUICK_ARCHITECTURES, QUICK_VOCAB_SIZE, 64
        shapes, baseline_shapes = [(1, 16), (8, 32)], [(1, 16), (8, 32)]
        first_token_shapes = [(8, 32)] if args.first_token_shapes != "none" else []
        gemm_size, args.rounds = min(args.gemm_size, 256), 1
    else:
        architectures, vocab_size, max_length = ARCHITECTURES, VOCAB_SIZE, 512
        shapes, baseline_shapes = parse_shapes(args.shapes), parse_shapes(args.baseline_shapes)
        first_token_shapes = parse_shapes(args.first_token_shapes) if args.first_token_shapes != "none" else []
        gemm_size = args.gemm_size
    too_long = [s for s in shapes + baseline_shapes + first_token_shapes if s[1] > max_length]
    if too_long:
        raise ConfigError(f"shapes {too_long} exceed the models' max_length {max_length}")
    backends = _names(args.backends, MXNET_CHOICES + TORCH_VARIANTS, "backend")
    baseline_models = _names(args.baseline_models, ("bert-base", "bert-large"), "baseline model")
    baseline_backends = _names(args.baseline_backends, MXNET_CHOICES + TORCH_VARIANTS, "baseline backend")
    wall = time.perf_counter()

    import mxnet as mx

    gemm = measure_gemm(gemm_size)
    from ..cpu_features import describe_cpu

    result = dict(threads=args.threads, cpu_count=os.cpu_count(), quick=bool(args.quick), mxnet=mx.__version__,
                  cpu=describe_cpu(), load_average=os.getloadavg(), isolation=args.isolation,
                  gemm_size=gemm_size, gemm_gflops=gemm, gemm_gflops_per_shape={}, unavailable={}, runs=[],
                  setup_seconds={}, notes={},
                  output_check={})
    with tempfile.TemporaryDirectory(prefix="bort_bench_") as scratch:
        models = _Models(args, scratch, architectures, vocab_size, max_length)
        plan = [("bort", backend, shapes) for backend in backends]
        plan += [(model, backend, baseline_shapes) for model in baseline_models for backend in baseline_backends]
        if args.isolation == "process":
            from .isolated import time_in_processes

            time_in_processes(args, models, plan, first_token_shapes, gemm_size, result)
            bucketing_backend = next((b for b in backends if b in ("hybrid", "mkldnn", "fused", "mxnet")), None)
            if args.bucketing_examples and bucketing_backend is not None:  # in this process, also a user's
                result["bucketing"] = time_bucketing(models.runner("bort", bucketing_backend),
                                                     args.bucketing_examples, max_length, args.rounds)
        else:
            _time_in_process(args, models, plan, backends, shapes, baseline_shapes, first_token_shapes, gemm_size,
                             max_length, result)
    result["summary"] = summarize(result, architectures)
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)
    print_report(result)
    return result


def _run_lookup(result, output=SEQUENCE):
    """(model, backend, batch, length) -> run, for the runs of one output kind."""
    return {(r["model"], r["backend"], r["batch"], r["length"]): r for r in result["runs"] if r["output"] == output}


def _best_of_cell(cell, torch_run):
    """The fastest of this package's runs of one shape and output, and its speed-up over torch's."""
    best = min(cell, key=lambda r: r["seconds"])
    entry = dict(best_backend=best["backend"], best_seconds=best["seconds"], best_gemm_fraction=best["gemm_fraction"])
    if torch_run:
        entry["speedup_vs_torch"] = torch_run["seconds"] / best["seconds"]
    mxnet_cell = [r for r in cell if not r["backend"].startswith("onnxruntime")]
    if mxnet_cell:
        best_mxnet = min(mxnet_cell, key=lambda r: r["seconds"])
        entry.update(best_mxnet_backend=best_mxnet["backend"], best_mxnet_gemm_fraction=best_mxnet["gemm_fraction"])
        if torch_run:
            entry["best_mxnet_speedup_vs_torch"] = torch_run["seconds"] / best_mxnet["seconds"]
    return entry


def summarize(result, architectures):
    """The issue's goals as ratios measured in this run."""
    from ..config import get_config

    runs = _run_lookup(result)
    summary = {}
    for output, suffix in ((SEQUENCE, ""), (FIRST_TOKEN, " first token")):
        by_cell = _run_lookup(result, output)
        bort_runs = [r for r in by_cell.values() if r["model"] == "bort"]
        for batch, length in sorted({(r["batch"], r["length"]) for r in bort_runs}):
            cell = [r for r in bort_runs if (r["batch"], r["length"]) == (batch, length)
                    and r["backend"] not in TORCH_VARIANTS]
            if cell:
                entry = _best_of_cell(cell, by_cell.get(("bort", TORCH, batch, length)))
                torch_paths = [r for r in bort_runs if (r["batch"], r["length"]) == (batch, length)
                               and r["backend"] in TORCH_VARIANTS]
                if torch_paths:  # the fastest of torch's paths, whatever its accuracy (see output_check)
                    fastest = min(torch_paths, key=lambda r: r["seconds"])
                    entry.update(fastest_torch_backend=fastest["backend"],
                                 best_speedup_vs_fastest_torch=fastest["seconds"] / entry["best_seconds"])
                summary[f"bort {batch}x{length}{suffix}"] = entry

    def flop_ratio(model, length):
        def cfg(name):
            layers, heads, ffn, units = architectures[name]
            return get_config(None, num_layers=layers, num_heads=heads, hidden_size=ffn, units=units, vocab_size=2)

        return encoder_flops(cfg(model), 1, length) / encoder_flops(cfg("bort"), 1, length)

    ratios = []
    for (model, backend, batch, length), run in runs.items():
        if model == "bort":
            continue
        bort_run = runs.get(("bort", backend, batch, length))
        if bort_run:
            ratios.append(dict(model=model, backend=backend, batch=batch, length=length,
                               speed_ratio=run["seconds"] / bort_run["seconds"],
                               flop_ratio=flop_ratio(model, length), paper_claim=PAPER_SPEEDUP.get(model)))
    summary["bort_vs_bert"] = sorted(ratios, key=lambda r: (r["model"], r["backend"], r["length"], r["batch"]))
    goal_cell = summary.get("bort 8x128")
    if goal_cell:
        summary["goal_1_3x_torch_at_8x128"] = goal_cell.get("speedup_vs_torch", 0) >= 1.3
        summary["goal_70pct_gemm_at_8x128"] = goal_cell["best_gemm_fraction"] >= 0.7
    first_token_cell = summary.get("bort 8x128 first token")
    if first_token_cell and "speedup_vs_torch" in first_token_cell:
        summary["goal_1_3x_torch_at_8x128_first_token"] = first_token_cell["speedup_vs_torch"] >= 1.3
    base = [r for r in ratios
            if r["model"] == "bert-base" and r["length"] == 128 and r["backend"] not in TORCH_VARIANTS]
    if base:
        summary["goal_base_ratio_at_least_flop_ratio"] = all(r["speed_ratio"] >= r["flop_ratio"] for r in base)
    return summary


QUICK_BANNER = ("SMOKE CHECK (--quick): tiny models, one round each. These numbers only show that every path "
                "runs; they are not a measurement (speed-ups, %GEMM and goals mean nothing at this size).")


def print_report(result):
    if result["quick"]:
        print(QUICK_BANNER)
    from ..cpu_features import isa_summary

    gemm = result["gemm_gflops"]
    print(f"CPU {result['cpu']['model']}, ISA {isa_summary(result['cpu'])}; load average "
          + " ".join(f"{x:.2f}" for x in result["load_average"]) + f" at the start; isolation: {result['isolation']}")
    print(f"float32 GEMM {result['gemm_size']}^3 at the start: "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in gemm.items())
          + f"; {result['threads']} threads on {result['cpu_count']} cores; during each shape's rounds: "
          + ", ".join(f"{k} {v:.1f}" for k, v in result["gemm_gflops_per_shape"].items()))
    header = (f"{'model':11s} {'backend':17s} {'output':11s} {'shape':>7s} {'ms':>9s} {'seq/s':>8s} {'tokens/s':>9s} "
              f"{'GFLOP/s':>8s} {'%GEMM':>6s} {'isa':s}")
    print(header)
    print("-" * len(header))
    for r in sorted(result["runs"], key=lambda r: (r["length"], r["batch"], r["output"], r["model"], r["seconds"])):
        print(f"{r['model']:11s} {r['backend']:17s} {r['output']:11s} {r['batch']:>3d}x{r['length']:<3d} "
              f"{1000 * r['seconds']:9.1f} {r['sequences_per_s']:8.2f} {r['tokens_per_s']:9.0f} {r['gflops']:8.1f} "
              f"{100 * r['gemm_fraction']:5.0f}% {result['cpu']['isa']}")
    summary = result["summary"]
    for key, entry in summary.items():
        if key.startswith("bort ") and "speedup_vs_torch" in entry:
            line = (f"{key}: best backend {entry['best_backend']}, {entry['speedup_vs_torch']:.2f}x "
                    f"transformers+torch, {100 * entry['best_gemm_fraction']:.0f}% of GEMM")
            if "best_speedup_vs_fastest_torch" in entry:
                line += (f"; {entry['best_speedup_vs_fastest_torch']:.2f}x torch's fastest path "
                         f"({entry['fastest_torch_backend']})")
            if "best_mxnet_speedup_vs_torch" in entry:
                line += (f"; best MXNet backend {entry['best_mxnet_backend']}, "
                         f"{entry['best_mxnet_speedup_vs_torch']:.2f}x, {100 * entry['best_mxnet_gemm_fraction']:.0f}%")
            print(line)
    for ratio in summary.get("bort_vs_bert", []):
        claim = f" (paper: {ratio['paper_claim']}x)" if ratio["paper_claim"] else ""
        print(f"{ratio['model']}/bort {ratio['backend']} {ratio['batch']}x{ratio['length']}: "
              f"{ratio['speed_ratio']:.2f}x slower, FLOP ratio {ratio['flop_ratio']:.2f}x{claim}")
    for name, checks in result["output_check"].items():
        for backend, check in checks.items():
            if backend != check["reference"]:
                print(f"output check {name} {backend} vs {check['reference']}: max |diff| "
                      f"{check['max_abs_diff']:.2e}, cosine {check['cosine']:.6f}")
    if "bucketing" in result:
        bucketing = result["bucketing"]
        print(f"length bucketing ({bucketing['backend']}, {bucketing['sequences']} sequences of 8-128 tokens, "
              f"batch 8): sorted {bucketing['seconds']['sorted_by_length']:.2f} s, input order "
              f"{bucketing['seconds']['input_order']:.2f} s ({bucketing['speedup']:.2f}x)")
    for name, why in result["unavailable"].items():
        print(f"unavailable: {name}: {why}")
    if result["quick"]:
        print("goals: not judged in a --quick smoke check; run without --quick to measure. " + QUICK_BANNER)
        return
    for key in ("goal_1_3x_torch_at_8x128", "goal_1_3x_torch_at_8x128_first_token", "goal_70pct_gemm_at_8x128",
                "goal_base_ratio_at_least_flop_ratio"):
        if key in summary:
            print(f"{key}: {'met' if summary[key] else 'NOT met'}")
