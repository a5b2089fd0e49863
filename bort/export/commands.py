"""The export and import commands behind `scripts/export_weights.py`: write, then prove parity, then publish.

Every export is written into a temporary directory next to `--out`, checked against the MXNet model there,
and only then renamed onto `--out` (`bort.io_utils.atomic_directory`): a failed or interrupted export leaves
nothing behind, and an existing `--out` is replaced only with `force`.
"""
import dataclasses
import os

from ..checkpoint import MLM, check_vocabulary, open_source
from ..errors import ConfigError, ParamsError
from ..io_utils import atomic_directory
from . import hf
from .parity import DEFAULT_LENGTHS, parity_batches, run_parity
from .tokenizer_files import check_hf_tokenizer, write_tokenizer

FORMATS = ("hf", "onnx", "symbol")
FLOAT32_BOUND = {"hf": 1e-5, "symbol": 1e-5, "onnx": 1e-4}


@dataclasses.dataclass
class ExportResult:
    out: str
    kind: str
    files: list
    reports: list  # ParityReport
    notes: list

    def lines(self):
        lines = [f"wrote {self.out}: {', '.join(sorted(self.files))}"]
        for report in self.reports:
            lines.extend(report.lines())
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def load_tokenizer(vocab, merges, pair_layout="roberta"):
    """A BortTokenizer from HF files (`vocab.json` + `merges.txt`) or GluonNLP's (vocab JSON + BPE ranks)."""
    from ..tokenizer import BortTokenizer

    if bool(vocab) != bool(merges):
        raise ConfigError("--vocab and --merges go together (vocab.json + merges.txt, or GluonNLP's vocabulary "
                          "+ BPE ranks file)")
    if not vocab:
        return None
    if str(merges).endswith(".txt"):
        return BortTokenizer.from_hf(vocab, merges, pair_layout=pair_layout)
    return BortTokenizer.from_gluonnlp(vocab, merges, pair_layout=pair_layout)


def _check_tokenizer(tokenizer, source):
    if tokenizer is not None and len(tokenizer) != source.config.vocab_size:
        raise ConfigError(f"the vocabulary has {len(tokenizer)} tokens but {source.path} has a word embedding of "
                          f"{source.config.vocab_size} rows; pass the vocabulary the model was trained with")


def export(params, fmt, out, model_name=None, num_heads=None, vocab=None, merges=None,
           dtype="float32", with_mlm=None, force=False, lengths=DEFAULT_LENGTHS, allow_nonfinite=False):
    """Export `params` to `fmt` in directory `out`; returns an ExportResult with the parity reports.

    The architecture (heads included), the label names and the pair layout the tokenizer files build come from
    the checkpoint's record; `model_name` gives the heads of a file without one. `num_heads` or a vocabulary
    that contradicts the record is an error unless `force` (which also replaces an existing `out`).
    Raises ParamsError if a float32 export does not reproduce the MXNet model within its bound (nothing is
    written then).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"--dtype must be float32 or float16, got {dtype!r}")
    if dtype == "float16" and fmt != "hf":
        raise ConfigError(f"--dtype float16 is for --format hf only: {fmt} exports run on CPU, where float16 "
                          "inputs cannot hold token ids above 2048 exactly and most kernels are float32")
    notes = []
    with atomic_directory(out, force=force) as tmp:
        source = open_source(params, model_name, num_heads, with_mlm, force=force, allow_nonfinite=allow_nonfinite)
        checkpoint = source.checkpoint
        tokenizer = load_tokenizer(vocab, merges, checkpoint.pair_layout() if vocab else "roberta")
        _check_tokenizer(tokenizer, source)
        if tokenizer is not None:
            check_vocabulary(checkpoint.record, tokenizer, checkpoint.record_file, force=force)
        if fmt == "hf":
            reports = _export_hf(source, tmp, dtype, tokenizer, notes, lengths)
        elif fmt == "onnx":
            reports = _export_onnx(source, tmp, lengths)
        else:
            reports = _export_symbol(source, tmp, lengths)
        if tokenizer is not None:
            notes.extend(write_tokenizer(tokenizer, tmp))
            if fmt != "symbol":  # the HF and ONNX exports need transformers anyway
                notes.extend(check_hf_tokenizer(tokenizer, tmp))
        else:
            notes.append("no tokenizer files were written (pass --vocab and --merges to include them)")
        failed = [report for report in reports if not report.ok]
        if failed:
            raise ParamsError("the export does not reproduce the MXNet model; nothing was written:\n"
                              + "\n".join(line for report in failed for line in report.lines()))
        files = os.listdir(tmp)
    return ExportResult(out=os.path.abspath(out), kind=source.kind, files=files, reports=reports, notes=notes)


def _check_loading(info, what):
    """A conversion bug, not a user error, but never silent: transformers must have used every weight."""
    problems = {key: sorted(value) for key, value in info.items() if value}
    if problems:
        raise ParamsError(f"{what} reported {problems}")


def _export_hf(source, directory, dtype, tokenizer, notes, lengths):
    special_ids = None
    if tokenizer is not None:
        special_ids = {"bos": tokenizer.bos_id, "pad": tokenizer.pad_id, "eos": tokenizer.eos_id}
    hf.write_hf(source, directory, dtype, special_ids)
    model, info = hf.load_hf_model(directory)  # float32 compute; float16 weights are upcast exactly
    architecture = hf.ARCHITECTURES[source.kind]
    _check_loading(info, f"{architecture}.from_pretrained on the export")
    notes.append(f"{architecture}.from_pretrained loads it with no missing or unexpected weights")
    batches = parity_batches(source.config.vocab_size, source.config.max_length, lengths)
    bound = FLOAT32_BOUND["hf"] if dtype == "float32" else None
    target = f"HF {architecture} ({dtype} weights)"
    if source.kind != MLM:
        return [run_parity(source.build_model(), source.kind, hf.hf_runner(model, source.kind), batches, target,
                           bound)]
    hf_eps = model.config.layer_norm_eps
    release_eps = source.config.mlm_layer_norm_eps
    extra = {f"mlm_logits, MLM LayerNorm eps {hf_eps:g} (as loaded)":
             ("mlm_logits", lambda batch: hf.hf_runner(model, MLM)(batch)["mlm_logits"])}
    note = (f"mlm_logits are computed with the release's MLM LayerNorm eps {release_eps:g} "
            f"(bort.export.hf.set_release_mlm_eps(model)); HF's config has one layer_norm_eps ({hf_eps:g}), "
            "which a plain from_pretrained also uses in the MLM head: the line marked 'as loaded' is the "
            "difference that causes")
    return [run_parity(source.build_model(), MLM, hf.hf_runner(model, MLM, mlm_eps=release_eps), batches, target,
                       bound, extra=extra, notes=[note])]


def _export_onnx(source, directory, lengths):
    from .onnx import ONNX_FILE, export_onnx, onnx_runner, open_session

    path = os.path.join(directory, ONNX_FILE)
    # The eager attention is plain matmul/softmax, which the TorchScript exporter handles everywhere.
    model, info = hf.build_hf_model(source, attn_implementation="eager")
    _check_loading(info, "building the PyTorch model for ONNX")
    export_onnx(model, source.kind, path)
    batches = parity_batches(source.config.vocab_size, source.config.max_length, lengths)
    return [run_parity(source.build_model(), source.kind, onnx_runner(open_session(path), source.kind), batches,
                       f"ONNX via onnxruntime CPU ({ONNX_FILE})", FLOAT32_BOUND["onnx"])]


def _export_symbol(source, directory, lengths):
    from .symbol import export_symbol, import_symbol, symbol_runner

    model = source.build_model()
    export_symbol(model, source.kind, source.config, directory)
    # Back to imperative execution: the reference is the Gluon model itself, not the graph that was exported.
    model.hybridize(active=False)
    batches = parity_batches(source.config.vocab_size, source.config.max_length, lengths)
    block = import_symbol(directory, source.kind)
    return [run_parity(model, source.kind, symbol_runner(block, source.kind), batches,
                       "MXNet symbol re-imported with SymbolBlock.imports", FLOAT32_BOUND["symbol"])]


def import_from_hf(directory, out, force=False):
    """Convert a Hugging Face BERT or RoBERTa directory into a Bort `.params` file and its record; the lines to
    print (what was converted, and loudly, what was dropped)."""
    from .hf_import import import_hf

    result = import_hf(directory, out, force=force)
    config = result.config
    head = {"mlm": "with its MLM head", "encoder": "without an MLM head (an encoder; a distillation teacher needs "
            "one)", "classifier": f"with a {result.num_classes}-class head"}[result.report.kind]
    lines = [f"wrote {result.path} and its record {result.record_path}: {config.num_layers} layers, units "
             f"{config.units}, FFN {config.hidden_size}, {config.num_heads} heads, vocab {config.vocab_size}, "
             f"max_length {config.max_length}, layer_norm_eps {config.layer_norm_eps:g}, {head}"]
    lines += result.report.lines()
    lines.append(f"the record holds the architecture: use it as a teacher with --teacher_model bort "
                 f"--teacher_params {result.path}")
    return lines
