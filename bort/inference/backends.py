"""Ways to run the Bort encoder on CPU, all with one interface.

A backend is called as `backend(ids, valid_length)` with numpy arrays, ids (B, L) and valid_length (B,), and
returns the sequence output (B, L, units) as float32 numpy, zero at padded positions like `BortModel`. The task
heads (classifier, MLM decoder) run after it in plain MXNet, so every backend serves every task.
`backend(ids, valid_length, positions)` with positions (B, P) returns only the output at those positions
(B, P, units): the `fused` and `int8` backends then compute the last layer only there
(`FusedBortEncoder(at_positions=True)`); the others compute everything and pick the positions out.

- `mxnet`: the Gluon model run imperatively (the reference; slow, for checking).
- `hybrid`: hybridized with static_alloc and static_shape (one cached graph per input shape).
- `mkldnn`: `optimize_for(backend='MKLDNN')`: the oneDNN subgraph pass fuses Dense + bias + GELU.
- `fused`: `bort.inference.fused.FusedBortEncoder` (one Q/K/V GEMM, time-major, oneDNN self-attention fusion)
  with the same MKLDNN pass.
- `int8`: MXNet post-training quantization (`quantize_net_v2`) of the `fused` graph, calibrated on example batches;
  oneDNN int8 kernels, including its quantized self-attention fusion.
- `onnxruntime`: an ONNX file with inputs `input_ids`, `attention_mask` (from `scripts/export_weights.py
  --format onnx`); `onnxruntime-int8` quantizes its weights dynamically (`onnxruntime.quantization`) first.

Thread counts: set up by `bort.threads` when the package is imported (MXNet reads them once, when it loads).
"""
import os
import tempfile
import warnings

import numpy as np

from ..errors import ConfigError, InputError

BACKENDS = ("mxnet", "hybrid", "mkldnn", "fused", "int8", "onnxruntime", "onnxruntime-int8", "torch", "torch-int8")
MXNET_BACKENDS = ("mxnet", "hybrid", "mkldnn", "fused", "int8")
ONNX_BACKENDS = ("onnxruntime", "onnxruntime-int8")
# transformers' BertModel built from the model's own weights (bort/inference/torch_backend.py)
TORCH_BACKENDS = ("torch", "torch-int8")
CALIBRATION_MODES = ("naive", "entropy")


def check_positions(positions, ids):
    """Validate (B, P) output positions for a (B, L) batch."""
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[0] != ids.shape[0] or positions.shape[1] == 0:
        raise InputError(f"positions must have shape ({ids.shape[0]}, P) with P >= 1, got {positions.shape}")
    if positions.min() < 0 or positions.max() >= ids.shape[1]:
        raise InputError(f"positions must lie in [0, {ids.shape[1] - 1}], got {positions.min()} to {positions.max()}")
    return positions


def check_batch(ids, valid_length, vocab_size, max_length):
    """Validate a numpy batch once, cheaply, instead of the model's per-call device checks."""
    ids = np.asarray(ids)
    valid_length = np.asarray(valid_length)
    if ids.ndim != 2 or 0 in ids.shape:
        raise InputError(f"ids must be a non-empty (batch, length) array, got shape {ids.shape}")
    if ids.shape[1] > max_length:
        raise InputError(f"sequence length {ids.shape[1]} exceeds the model's max_length {max_length}")
    if valid_length.shape != (ids.shape[0],):
        raise InputError(f"valid_length must have shape ({ids.shape[0]},), got {valid_length.shape}")
    if valid_length.min() < 1 or valid_length.max() > ids.shape[1]:
        raise InputError(f"valid_length values must lie in [1, {ids.shape[1]}], got {valid_length.min()} to "
                         f"{valid_length.max()}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise InputError(f"token ids must lie in [0, {vocab_size - 1}], got {ids.min()} to {ids.max()}")
    return ids, valid_length


class Backend:
    """Base class: subclasses implement `_run(ids, valid_length) -> (B, L, units) numpy`, and may implement
    `_run_at(ids, valid_length, positions) -> (B, P, units)` more cheaply than running everything."""

    name = "base"

    def __init__(self, config):
        self.config = config

    def __call__(self, ids, valid_length, positions=None):
        ids, valid_length = check_batch(ids, valid_length, self.config.vocab_size, self.config.max_length)
        if positions is None:
            return self._run(ids, valid_length)
        return self._run_at(ids, valid_length, check_positions(positions, ids))

    def _run(self, ids, valid_length):
        raise NotImplementedError

    def _run_at(self, ids, valid_length, positions):
        return np.take_along_axis(self._run(ids, valid_length), positions[:, :, None], axis=1)


class MXNetBackend(Backend):
    """A `BortModel` (its encoder; a decoder it may have is not run) in one of the MXNet modes."""

    def __init__(self, model, mode="hybrid"):
        super().__init__(model.config)
        import mxnet as mx

        if mode not in ("mxnet", "hybrid", "mkldnn", "fused"):
            raise ConfigError(f"unknown MXNet mode {mode!r}")
        self.name = mode
        self._source = model
        if mode == "fused":
            from ..kernels import use_kernels
            from .fused import FusedBortEncoder

            model.validate_inputs = False
            use_kernels(model)  # Bort's CPU LayerNorm (bort/kernels), where it can be built: same values, faster
            model = FusedBortEncoder(model)
        self.model = model
        self._at_positions = None  # the `fused` encoder's form with a pruned last layer, built on first use
        self._mx = mx
        self._optimized = False
        # check_batch already validated; the model's own check costs a device sync per call.
        if hasattr(model, "validate_inputs"):
            model.validate_inputs = False
        if mode == "hybrid":
            model.hybridize(static_alloc=True, static_shape=True)
        elif mode == "mxnet":
            model.hybridize(active=False)

    def _run(self, ids, valid_length):
        mx = self._mx
        inputs = (mx.nd.array(ids, dtype="int32"), mx.nd.array(valid_length, dtype="int32"))
        if self.name in ("mkldnn", "fused") and not self._optimized:
            _optimize(self.model, inputs)
            self._optimized = True
        return _quietly(self.model, inputs)

    def _run_at(self, ids, valid_length, positions):
        if self.name != "fused":
            return super()._run_at(ids, valid_length, positions)
        mx = self._mx
        inputs = (mx.nd.array(ids, dtype="int32"), mx.nd.array(valid_length, dtype="int32"),
                  mx.nd.array(positions, dtype="int32"))
        if self._at_positions is None:
            from .fused import FusedBortEncoder

            self._at_positions = FusedBortEncoder(self._source, at_positions=True, share_layers_of=self.model)
            _optimize(self._at_positions, inputs)
        return _quietly(self._at_positions, inputs)


def _optimize(block, inputs):
    """oneDNN subgraph partitioning, once per block (later shapes reuse it); also hybridizes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not used by any computation")
        block.optimize_for(*inputs, backend="MKLDNN", static_alloc=True, static_shape=True)


def _quietly(block, inputs):
    with warnings.catch_warnings():
        # The MLM decoder of a fill-mask model is run separately, after the backend; Gluon would warn that
        # its parameters are unused by the encoder graph.
        warnings.filterwarnings("ignore", message=".*is not used by any computation")
        return block(*inputs).asnumpy()


def calibration_batches(sequences, pad_id, batch_size=8, max_batches=4):
    """(ids, valid_length) batches for int8 calibration from token id lists (the first examples)."""
    from .batching import pad_batch

    chosen = sequences[:batch_size * max_batches]
    return [pad_batch(chosen[start:start + batch_size], pad_id) for start in range(0, len(chosen), batch_size)]


class QuantizedBackend(Backend):
    """int8 post-training quantization of the encoder with MXNet's oneDNN quantization flow.

    Calibration ('naive': min/max of each layer's outputs; 'entropy': KL-optimal thresholds) runs the float
    model on `calibration` batches; thresholds are then fixed, so inference needs no runtime min/max.
    The word embedding stays float32 by default: its lookup costs nothing and quantizing it only adds error.
    """

    name = "int8"

    def __init__(self, model, calibration, calib_mode="naive", quantize_embedding=False):
        super().__init__(model.config)
        import mxnet as mx

        if calib_mode not in CALIBRATION_MODES:
            raise ConfigError(f"calibration mode must be one of {CALIBRATION_MODES}, got {calib_mode!r}")
        if not calibration:
            raise ConfigError("int8 quantization needs calibration batches (a few examples of the input)")
        self._mx = mx
        self._source = model
        self._calib_mode = calib_mode
        self._excluded = [] if quantize_embedding else ["Embedding"]
        width = max(ids.shape[1] for ids, _ in calibration)
        # One fixed shape for the calibration pass: pad every batch to the widest (padding is masked).
        self._calibration_ids = np.concatenate([np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=0)
                                                for ids, _ in calibration]).astype(np.float32)
        self._calibration_lengths = np.concatenate([length for _, length in calibration]).astype(np.float32)
        check_batch(self._calibration_ids.astype(np.int64), self._calibration_lengths.astype(np.int64),
                    model.config.vocab_size, model.config.max_length)
        self._calibration_batch = min(max(ids.shape[0] for ids, _ in calibration), len(self._calibration_ids))
        self.net = self._quantized(at_positions=False)
        self._at_positions = None  # the quantized form with a pruned last layer, made on first use

    def _quantized(self, at_positions):
        """quantize_net_v2 of the fused encoder, calibrated on the calibration batches. The form with a pruned
        last layer is calibrated at every position, so its thresholds hold for whichever positions are asked."""
        mx = self._mx
        from mxnet.contrib.quantization import quantize_net_v2

        from ..kernels import use_mxnet_operators
        from .fused import FusedBortEncoder

        use_mxnet_operators(self._source)  # the quantization flow is only known to work on MXNet's operators

        inputs = {"data0": mx.nd.array(self._calibration_ids), "data1": mx.nd.array(self._calibration_lengths)}
        if at_positions:
            every_position = np.tile(np.arange(self._calibration_ids.shape[1], dtype=np.float32),
                                     (len(self._calibration_ids), 1))
            inputs["data2"] = mx.nd.array(every_position)
        data = mx.io.NDArrayIter(data=inputs, batch_size=self._calibration_batch, last_batch_handle="pad")
        # The fused graph quantizes into oneDNN's int8 self-attention kernels as well as int8 Dense layers.
        encoder = FusedBortEncoder(self._source, at_positions=at_positions)
        encoder.hybridize(static_alloc=True, static_shape=True)
        net = quantize_net_v2(encoder, quantized_dtype="auto", quantize_mode="full", calib_data=data,
                              calib_mode=self._calib_mode, num_calib_examples=len(self._calibration_ids),
                              ctx=mx.cpu(), exclude_operators=self._excluded)
        net.hybridize(static_alloc=True, static_shape=True)
        return net

    def _run(self, ids, valid_length):
        mx = self._mx
        # The quantized graph was traced with float32 inputs; ids < 2**24 are exact in float32.
        return self.net(mx.nd.array(ids, dtype="float32"), mx.nd.array(valid_length, dtype="float32")).asnumpy()

    def _run_at(self, ids, valid_length, positions):
        mx = self._mx
        if self._at_positions is None:
            self._at_positions = self._quantized(at_positions=True)
        return self._at_positions(mx.nd.array(ids, dtype="float32"), mx.nd.array(valid_length, dtype="float32"),
                                  mx.nd.array(positions, dtype="float32")).asnumpy()


class OnnxRuntimeBackend(Backend):
    """An exported ONNX encoder run by onnxruntime on CPU (optionally with dynamically quantized weights)."""

    def __init__(self, config, onnx_path, threads=None, quantize=False, memory_arena=True):
        super().__init__(config)
        import onnxruntime

        if not onnx_path:
            raise ConfigError("the onnxruntime backends need the model's ONNX file: pass --onnx FILE (make one with "
                              "scripts/export_weights.py --format onnx)")
        if not os.path.isfile(onnx_path):
            raise ConfigError(f"ONNX file {onnx_path!r} does not exist; make one with scripts/export_weights.py "
                              "--format onnx")
        self.name = "onnxruntime-int8" if quantize else "onnxruntime"
        self._workdir = None
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            self._workdir = tempfile.TemporaryDirectory(prefix="bort_ort_int8_")
            quantized = os.path.join(self._workdir.name, "model.int8.onnx")
            quantize_dynamic(onnx_path, quantized, weight_type=QuantType.QInt8)
            onnx_path = quantized
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = memory_arena
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        inputs = {item.name: item.type for item in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - set(inputs)
        if missing:
            raise ConfigError(f"{onnx_path}: the ONNX graph lacks input(s) {sorted(missing)}; it has {sorted(inputs)}")
        self._dtype = {name: np.int32 if kind == "tensor(int32)" else np.int64 for name, kind in inputs.items()}
        outputs = [item.name for item in self.session.get_outputs()]
        self._output = "sequence_output" if "sequence_output" in outputs else outputs[0]

    def _run(self, ids, valid_length):
        mask = (np.arange(ids.shape[1])[None, :] < valid_length[:, None])
        feed = {"input_ids": ids.astype(self._dtype["input_ids"]),
                "attention_mask": mask.astype(self._dtype["attention_mask"])}
        sequence = self.session.run([self._output], feed)[0]
        # BortModel zeroes padded positions; do the same so every backend returns the same thing.
        return np.where(mask[:, :, None], sequence, 0).astype(np.float32, copy=False)


def make_backend(name, model=None, onnx_path=None, calibration=None, calib_mode="naive", threads=None,
                 memory_arena=True):
    """Build backend `name` (one of BACKENDS) for the encoder of `model` (a `BortModel`).

    MXNet backends take over `model` (they hybridize it); pass each its own model. ONNX backends need
    `onnx_path` and use `model` only for its config; int8 needs `calibration` batches. memory_arena=False
    makes onnxruntime free large buffers after each call (lower peak memory, slightly slower).
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name in ONNX_BACKENDS:
        return OnnxRuntimeBackend(model.config, onnx_path, threads=threads, quantize=name == "onnxruntime-int8",
                                  memory_arena=memory_arena)
    if name in TORCH_BACKENDS:
        from .torch_backend import TorchBackend

        return TorchBackend(model, quantize=name == "torch-int8", threads=threads)
    if name == "int8":
        return QuantizedBackend(model, calibration, calib_mode)
    return MXNetBackend(model, name)


def verify_onnx_backend(backend, model, ids, valid_length, path):
    """Check that an ONNX file computes what `model` computes on one batch (it could be another model's export).
    float: max |difference| <= 1e-3; int8 weights: cosine similarity >= 0.99."""
    import mxnet as mx

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not used by any computation")
        expected = model(mx.nd.array(ids, dtype="int32"), mx.nd.array(valid_length, dtype="int32")).asnumpy()
    got = backend(ids, valid_length)
    if got.shape != expected.shape:
        raise ConfigError(f"{path} returns outputs of shape {got.shape}, the model {expected.shape}: it is an "
                          "export of another model")
    if backend.name.endswith("int8"):
        cosine = float((got * expected).sum() / (np.linalg.norm(got) * np.linalg.norm(expected) + 1e-30))
        ok, measure = cosine >= 0.99, f"cosine similarity {cosine:.4f}"
    else:
        difference = float(np.abs(got - expected).max())
        ok, measure = difference <= 1e-3, f"max |difference| {difference:.3g}"
    if not ok:
        raise ConfigError(f"{path} does not compute what the .params model computes ({measure} on a test batch); "
                          "export the ONNX file from the same .params file")
