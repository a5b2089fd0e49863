"""ONNX export of the converted PyTorch (HF BERT) model, run with onnxruntime.

MXNet 1.9's own ONNX exporter needs an older `onnx` than the pinned one, so the route is Bort -> HF BERT
(`bort.export.hf`) -> `torch.onnx.export` (TorchScript-based exporter; the dynamo exporter needs `onnxscript`,
which the environment does not have).

The graph: inputs `input_ids` and `attention_mask`, both int64 (batch, sequence), both axes dynamic; outputs
`sequence_output` (batch, sequence, units) and, depending on the export, `mlm_logits` (batch, sequence, vocab)
over every position or `classifier_logits` (batch, classes). The MLM head is exported with the release's
LayerNorm epsilon (1e-12): unlike a HF config, an ONNX graph stores it per LayerNorm.
"""
import warnings

from .source import CLASSIFIER, MLM

ONNX_FILE = "model.onnx"
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = {MLM: ("sequence_output", "mlm_logits"), CLASSIFIER: ("sequence_output", "classifier_logits")}


def _wrapper(model, kind):
    import torch

    class BortForOnnx(torch.nn.Module):
        """The HF model with plain tensor outputs, in the order of OUTPUT_NAMES."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            if kind == MLM:
                sequence = self.model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                return sequence, self.model.cls(sequence)
            if kind == CLASSIFIER:
                out = self.model.bert(input_ids=input_ids, attention_mask=attention_mask)
                return out.last_hidden_state, self.model.classifier(out.pooler_output)
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return BortForOnnx().eval()


def output_names(kind):
    return OUTPUT_NAMES.get(kind, ("sequence_output",))


def export_onnx(model, kind, path, opset=OPSET):
    """Write the HF model (loaded with attn_implementation='eager') to `path` as ONNX."""
    import torch

    from .hf import set_release_mlm_eps

    if kind == MLM:
        set_release_mlm_eps(model)
    names = output_names(kind)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES + names if name != "classifier_logits"}
    if kind == CLASSIFIER:
        dynamic["classifier_logits"] = {0: "batch"}
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and about traced Python branches that do
        # not depend on input values; neither changes the graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(_wrapper(model, kind), example, path, input_names=list(INPUT_NAMES),
                          output_names=list(names), dynamic_axes=dynamic, opset_version=opset, dynamo=False,
                          # Folding would store the tied MLM output matrix a second time, transposed (+200 MB
                          # at full size); onnxruntime folds it in memory when it opens the session anyway.
                          do_constant_folding=False)
    return path


def open_session(path):
    """An onnxruntime CPU session for `path`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_runner(session, kind):
    """batch -> outputs named like `bort.export.parity` expects."""
    from .parity import gather_masked

    names = output_names(kind)

    def run(batch):
        values = session.run(list(names), {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
        result = dict(zip(names, values))
        if kind == MLM:
            result["mlm_logits"] = gather_masked(result["mlm_logits"], batch["masked_positions"])
        return result

    return run
