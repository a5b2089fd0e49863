"""Moving Bort weights to and from other formats, with proof that the results compute the same thing.

- `bort.export.hf`: `.params` <-> Hugging Face Transformers BERT directories (config.json + model.safetensors).
- `bort.export.onnx`: the converted PyTorch model to ONNX, run with onnxruntime.
- `bort.export.symbol`: MXNet symbol + params (`HybridBlock.export`) and re-import.
- `bort.export.parity`: the comparison every export prints (several lengths, padding included).
- `bort.export.commands`: what `scripts/export_weights.py` runs.

Submodules import their heavy dependencies (torch, transformers, onnxruntime) only when called.
"""
