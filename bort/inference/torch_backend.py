"""transformers + torch as an inference engine for a Bort encoder: the Hugging Face export (`BertModel`) built in
memory from the MXNet model's own weights (no files), optionally with torch's dynamic int8 quantization of the
linear layers. `--precision auto` counts it among the engines it times, so serving uses the fastest engine the
machine has, with its outputs checked against MXNet's.
"""
import os
from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from .backends import Backend


def torch_available():
    """True when torch and transformers can be imported (the `export` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def _in_memory_source(model):
    """What `bort.export.hf` needs of a checkpoint, taken from a loaded `BortModel` instead of a file."""
    from ..checkpoint import ENCODER

    body = {name: param.data().asnumpy() for name, param in model._collect_params_with_prefix().items()}
    return SimpleNamespace(body=lambda: body, config=model.config, kind=ENCODER, path="the loaded model",
                           info=SimpleNamespace(num_classes=None))


def _quietly(function, *args, **kwargs):
    """Run without transformers' weight-loading bar and torch's deprecation notes about its quantized tensors:
    a serving command prints its own report."""
    import warnings

    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return function(*args, **kwargs)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


class TorchBackend(Backend):
    """The encoder of a `BortModel` run by transformers' `BertModel` on torch (float32, or int8 weights)."""

    def __init__(self, model, quantize=False, threads=None):
        super().__init__(model.config)
        if not torch_available():
            raise ConfigError("the torch backends need torch and transformers (pip install '.[export]')")
        import torch

        from ..export.hf import build_hf_model

        hf_model, info = _quietly(build_hf_model, _in_memory_source(model), attn_implementation="sdpa")
        problems = {key: value for key, value in info.items() if value and key != "error_msgs"}
        if problems or info.get("error_msgs"):
            raise ConfigError(f"the torch backend could not take every weight of the model: {problems or info}")
        if quantize:
            hf_model = _quietly(torch.ao.quantization.quantize_dynamic, hf_model, {torch.nn.Linear}, dtype=torch.qint8)
        if threads:
            torch.set_num_threads(threads)
        elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # the pool size bort/threads.py chose
        self.name = "torch-int8" if quantize else "torch"
        self.model = hf_model
        self._torch = torch

    def _run(self, ids, valid_length):
        torch = self._torch
        mask = np.arange(ids.shape[1])[None, :] < valid_length[:, None]
        with torch.inference_mode():
            output = self.model(input_ids=torch.from_numpy(ids.astype(np.int64)),
                                attention_mask=torch.from_numpy(mask.astype(np.int64))).last_hidden_state
        # BortModel zeroes padded positions; do the same so every backend returns the same thing.
        return np.where(mask[:, :, None], output.numpy(), 0).astype(np.float32, copy=False)
