"""MXNet symbol + params (`HybridBlock.export`), the format MXNet Model Server and `SymbolBlock.imports` load.

The exported graph's inputs are MXNet's positional names: `data0` token ids (batch, length), `data1`
valid_length (batch,), and for an MLM export `data2` masked positions (batch, num_masked); all float32 NDArrays
by MXNet's default (ids are exact in float32 below 2^24). Outputs: the sequence output, then the MLM logits at
the masked positions; a classifier export returns the class logits only. `signature.json` next to the files
says the same for serving code.
"""
import json
import os
import warnings

from .source import CLASSIFIER, MLM

PREFIX = "bort"
EPOCH = 0
SIGNATURE_FILE = "signature.json"


def input_names(kind):
    return ["data0", "data1", "data2"] if kind == MLM else ["data0", "data1"]


def signature(kind, config):
    inputs = {"data0": "token ids (batch, length), length <= %d" % config.max_length,
              "data1": "valid_length (batch,): number of real tokens per row",
              "data2": "masked positions (batch, num_masked) to compute MLM logits for"}
    outputs = {MLM: ["sequence_output (batch, length, %d)" % config.units,
                     "mlm_logits (batch, num_masked, %d)" % config.vocab_size],
               CLASSIFIER: ["classifier_logits (batch, classes)"]}
    return {"symbol": f"{PREFIX}-symbol.json", "params": f"{PREFIX}-{EPOCH:04d}.params",
            "inputs": {name: inputs[name] for name in input_names(kind)},
            "outputs": outputs.get(kind, ["sequence_output (batch, length, %d)" % config.units]),
            "note": "sequence_output is zero at padded positions, like the release's encoder"}


def export_symbol(model, kind, config, directory):
    """Hybridize `model` (BortModel/BortClassifier with weights), run it once, and write the symbol, params and
    signature into `directory`. Returns the paths of the symbol and params files."""
    import mxnet as mx

    from ..kernels import use_mxnet_operators

    length = min(8, config.max_length)
    ids = mx.nd.ones((2, length), dtype="int32")
    valid = mx.nd.array([length, 1], dtype="int32")
    use_mxnet_operators(model)  # a symbol file other MXNet installations can read: MXNet's own operators only
    model.hybridize(static_alloc=True)
    if kind == MLM:
        model(ids, valid, mx.nd.zeros((2, 1), dtype="int32"))
    else:
        model(ids, valid)
    base = os.path.join(directory, PREFIX)
    model.export(base, epoch=EPOCH)
    with open(os.path.join(directory, SIGNATURE_FILE), "w", encoding="utf-8") as handle:
        json.dump(signature(kind, config), handle, indent=2)
    return f"{base}-symbol.json", f"{base}-{EPOCH:04d}.params"


def import_symbol(directory, kind):
    """The exported model as a `SymbolBlock`."""
    import mxnet as mx

    base = os.path.join(directory, PREFIX)
    with warnings.catch_warnings():
        # MXNet cannot infer the inputs' dtype from the graph and says so; they are given at call time.
        warnings.simplefilter("ignore")
        return mx.gluon.SymbolBlock.imports(f"{base}-symbol.json", input_names(kind), f"{base}-{EPOCH:04d}.params")


def symbol_runner(block, kind):
    """batch -> outputs named like `bort.export.parity` expects."""
    import mxnet as mx

    def run(batch):
        args = [mx.nd.array(batch["input_ids"]), mx.nd.array(batch["valid_length"])]
        if kind == MLM:
            sequence, logits = block(*args, mx.nd.array(batch["masked_positions"]))
            return dict(sequence_output=sequence.asnumpy(), mlm_logits=logits.asnumpy())
        if kind == CLASSIFIER:
            # The classifier graph returns the logits only; the body is checked by the encoder exports.
            return dict(classifier_logits=block(*args).asnumpy())
        return dict(sequence_output=block(*args).asnumpy())

    return run
