"""A small BERT or RoBERTa made with transformers itself and saved like a downloaded checkpoint (config.json,
model.safetensors, vocab.json, merges.txt): the stand-in teacher of `run_recipe.sh DEMO` and of the tests, where
nothing may be downloaded.

With `corpus` and `steps`, the model is first trained for a few masked-LM steps on the corpus's lines, so that
the distillation that follows has something to teach (a random teacher's distribution is nearly uniform).
"""
import os
import shutil

from ..errors import ConfigError

FAMILIES = ("roberta", "bert")


def _lines(corpus, tokenizer, max_length):
    with open(corpus, encoding="utf-8") as handle:
        texts = [line.strip() for line in handle if line.strip()]
    if not texts:
        raise ConfigError(f"{corpus}: no text to train the teacher on")
    return [tokenizer.encode(text, max_length=max_length) for text in texts]


def _train_masked_lm(model, sequences, tokenizer, steps, lr, batch_size, seed, logits_of, progress):
    """A few steps of masked-LM training (15% of the real tokens replaced by <mask>) with AdamW."""
    import numpy as np
    import torch

    from bort.progress import tqdm

    rng = np.random.RandomState(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    special = {tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id}
    model.train()
    bar = tqdm(range(steps), desc="teacher masked-LM steps", disable=not progress)
    for _ in bar:
        batch = [sequences[i] for i in rng.randint(0, len(sequences), size=batch_size)]
        length = max(len(ids) for ids in batch)
        ids = np.full((batch_size, length), tokenizer.pad_id, dtype=np.int64)
        for row, sequence in enumerate(batch):
            ids[row, :len(sequence)] = sequence
        attention = (ids != tokenizer.pad_id).astype(np.int64)
        can_mask = attention.astype(bool) & ~np.isin(ids, list(special))
        masked = can_mask & (rng.rand(*ids.shape) < 0.15)
        labels = np.where(masked, ids, -100)
        inputs = np.where(masked, tokenizer.mask_id, ids)
        logits = logits_of(model(input_ids=torch.from_numpy(inputs), attention_mask=torch.from_numpy(attention)))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(labels).view(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def build_hf_teacher(out_dir, vocab_dir, family="roberta", num_layers=2, num_heads=4, units=64, hidden_size=128,
                     max_length=64, seed=0, corpus=None, steps=0, lr=1e-3, batch_size=16, progress=False):
    """Write a `RobertaForMaskedLM` (family 'roberta') or a `BertForPreTraining` (family 'bert': two token types,
    pooler, next-sentence head) with `vocab_dir`'s byte-level BPE vocabulary into `out_dir`; returns the model."""
    import torch
    import transformers

    from ..tokenizer import BortTokenizer

    if family not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    tokenizer = BortTokenizer.from_directory(vocab_dir)
    torch.manual_seed(seed)
    common = dict(vocab_size=tokenizer.vocab_size, hidden_size=units, num_hidden_layers=num_layers,
                  num_attention_heads=num_heads, intermediate_size=hidden_size, layer_norm_eps=1e-5,
                  pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)
    if family == "roberta":
        # RoBERTa numbers real tokens from pad_token_id + 1: that many extra position rows.
        config = transformers.RobertaConfig(max_position_embeddings=max_length + tokenizer.pad_id + 1,
                                            type_vocab_size=1, **common)
        model = transformers.RobertaForMaskedLM(config)
        logits_of = lambda out: out.logits  # noqa: E731
    else:
        config = transformers.BertConfig(max_position_embeddings=max_length, type_vocab_size=2, **common)
        model = transformers.BertForPreTraining(config)
        logits_of = lambda out: out.prediction_logits  # noqa: E731
    if corpus is not None and steps:
        model = _train_masked_lm(model, _lines(corpus, tokenizer, max_length), tokenizer, steps, lr, batch_size,
                                 seed, logits_of, progress)
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(vocab_dir, name), os.path.join(out_dir, name))
    return model
