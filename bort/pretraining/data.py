"""Text files -> masked-LM pretraining shards (`create_pretraining_data`).

Input: UTF-8 text, one sentence per line, a blank line between documents (each file also starts a new
document). Each document yields BERT-style instances of two segments (`<s> A </s></s> B </s>`, or the
release's `<s> A </s> B </s>` with pair_layout='bort_release'): A is one or more consecutive sentences and B
either the sentences that follow (next_sentence_label 0) or a span of another document (label 1, half the
time). Sequences fill up to `max_seq_length` tokens, except with probability `short_seq_prob`, which picks a
shorter target. The sequences are then masked (`MaskingPolicy`).

Every random choice for a document comes from a generator seeded with (seed, dupe, document index), so the
shards are the same whatever the number of worker processes.
"""
import glob
import multiprocessing
import os
import re
import sys
import time

import numpy as np

from ..errors import ConfigError, DataError
from ..tokenizer.layout import assemble, check_pair_layout, num_special_tokens
from ..tokenizer.text_files import read_utf8_lines
from .masking import MaskingPolicy
from .shards import KEYS, write_metadata, write_shard

# State the worker processes inherit by fork (tokenizer, documents), so nothing large is pickled per task.
_WORKER = {}


def expand_inputs(patterns):
    """Files matching comma-separated globs (a list of patterns or one string), sorted and deduplicated."""
    if isinstance(patterns, str):
        patterns = [patterns]
    files = []
    for pattern in patterns:
        for part in filter(None, (p.strip() for p in pattern.split(","))):
            matched = sorted(glob.glob(os.path.expanduser(part)))
            if not matched:
                raise DataError(f"no file matches {part!r}")
            files.extend(matched)
    return list(dict.fromkeys(files))


def read_documents(files):
    """Documents as lists of sentence strings: blank lines and file ends close a document."""
    documents = []
    for path in files:
        current = []
        for line in read_utf8_lines(path):
            line = line.strip()
            if line:
                current.append(line)
            elif current:
                documents.append(current)
                current = []
        if current:
            documents.append(current)
    return documents


def _tokenize_chunk(lines):
    return _WORKER["tokenizer"].encode_many(lines)


def truncate_pair(tokens_a, tokens_b, max_tokens, rng):
    """Shorten the longer of the two lists, one token at a time from a random end, until they fit."""
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def instances_from_document(documents, doc_index, rng, settings):
    """(input_ids, segment_ids, next_sentence_label) for one document, unmasked."""
    document = documents[doc_index]
    max_tokens = settings["max_seq_length"] - settings["num_specials"]
    target = max_tokens
    if rng.random() < settings["short_seq_prob"]:
        target = int(rng.integers(2, max_tokens + 1)) if max_tokens >= 2 else max_tokens
    instances, chunk, chunk_length, index = [], [], 0, 0
    while index < len(document):
        segment = document[index]
        chunk.append(segment)
        chunk_length += len(segment)
        if index == len(document) - 1 or chunk_length >= target:
            a_end = int(rng.integers(1, len(chunk))) if len(chunk) >= 2 else 1
            tokens_a = [t for seg in chunk[:a_end] for t in seg]
            tokens_b = []
            random_next = False
            if len(documents) > 1 and (len(chunk) == 1 or rng.random() < 0.5):
                random_next = True
                other = int(rng.integers(0, len(documents) - 1))
                other += other >= doc_index
                other_doc = documents[other]
                for seg in other_doc[int(rng.integers(0, len(other_doc))):]:
                    tokens_b.extend(seg)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                # The sentences of the chunk not used as A go back to the queue.
                index -= len(chunk) - a_end
            else:
                tokens_b = [t for seg in chunk[a_end:] for t in seg]
            truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            if not tokens_a and tokens_b:
                tokens_a, tokens_b = tokens_b, []
            if tokens_a:
                instances.append(_assemble_instance(tokens_a, tokens_b, random_next, settings))
            chunk, chunk_length = [], 0
        index += 1
    return instances


def _assemble_instance(tokens_a, tokens_b, random_next, settings):
    # A single-sentence document in a one-document corpus has no B: it becomes `<s> A </s>`.
    pair = bool(tokens_b)
    ids = assemble(tokens_a, tokens_b if pair else None, settings["bos_id"], settings["eos_id"],
                   settings["pair_layout"])
    first_segment = len(ids) - len(tokens_b) - 1 if pair else len(ids)
    segment_ids = [0] * first_segment + [1] * (len(ids) - first_segment)
    return ids, segment_ids, int(random_next and pair)


def _document_task(task):
    dupe, doc_index = task
    settings = _WORKER["settings"]
    rng = np.random.default_rng([settings["seed"], dupe, doc_index])
    policy = _WORKER["policy"]
    out = []
    for ids, segment_ids, label in instances_from_document(_WORKER["documents"], doc_index, rng, settings):
        input_ids, positions, labels = policy.mask(ids, rng)
        out.append((input_ids, np.asarray(segment_ids, np.int32), positions, labels, label))
    return out


def _map(function, items, num_workers, chunksize, progress):
    """`function` over `items` in order, in `num_workers` forked processes (or in this one)."""
    if num_workers <= 1:
        for item in items:
            result = function(item)
            progress.update(1)
            yield result
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(num_workers) as pool:
        for result in pool.imap(function, items, chunksize=chunksize):
            progress.update(1)
            yield result


def earlier_output(output_dir, force):
    """The files of an earlier run in `output_dir` (shards, metadata), for removal; an error if the folder
    is not empty and not `force`."""
    from ..locking import LOCK_NAME

    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"--output_dir {output_dir} is an existing file; choose a directory")
    present = sorted(name for name in os.listdir(output_dir) if name != LOCK_NAME) if os.path.isdir(output_dir) else []
    if present and not force:
        raise ConfigError(f"--output_dir {output_dir} is not empty ({', '.join(present[:5])}"
                          f"{', ...' if len(present) > 5 else ''}); pass --force to replace the earlier run's shards, "
                          "or choose an empty directory")
    # What this function writes: part-NNN.npz, metadata.json, and the temporaries of a run killed mid-write.
    ours = [os.path.abspath(os.path.join(output_dir, name)) for name in present
            if re.fullmatch(r"part-\d+\.npz|metadata\.json|\.(part-\d+\.npz|metadata\.json)\..*\.tmp", name)]
    if len(ours) < len(present):
        others = sorted(set(present) - {os.path.basename(p) for p in ours})
        print(f"warning: --force keeps files that are not shards in {output_dir}: {', '.join(others[:5])}",
              file=sys.stderr)
    return ours


def create_pretraining_data(input_files, output_dir, tokenizer, max_seq_length=512, max_predictions_per_seq=80,
                            masked_lm_prob=0.15, short_seq_prob=0.1, dupe_factor=1, seed=12345, num_shards=1,
                            num_workers=1, pair_layout="roberta", show_progress=True, force=False):
    """Write `output_dir/part-000.npz ...` (`num_shards` shards, instances dealt round-robin) and
    `output_dir/metadata.json`; returns a summary dict (counts, seconds, sentences per second).

    A non-empty `output_dir` is refused unless `force`; then the shards and metadata of the earlier run are
    removed once the new shards are written (training globs every shard in the folder, so none may stay)."""
    from bort.progress import tqdm

    check_pair_layout(pair_layout)
    for flag, value in (("--num_outputs", num_shards), ("--dupe_factor", dupe_factor),
                        ("--num_workers", num_workers)):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    previous = earlier_output(output_dir, force)
    specials = num_special_tokens(True, pair_layout)
    if max_seq_length < specials + 2:
        raise ConfigError(f"max_seq_length={max_seq_length} leaves no room for text after {specials} special tokens")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ConfigError(f"short_seq_prob must be in [0, 1], got {short_seq_prob}")
    files = expand_inputs(input_files)
    start = time.time()
    documents = read_documents(files)
    if not documents:
        raise DataError(f"no text found in {', '.join(files)}")
    sentences = [line for doc in documents for line in doc]

    policy = MaskingPolicy(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids.values(),
                           masked_lm_prob, max_predictions_per_seq)
    settings = dict(max_seq_length=max_seq_length, num_specials=specials, short_seq_prob=short_seq_prob,
                    bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, pair_layout=pair_layout, seed=seed)
    _WORKER.update(tokenizer=tokenizer, policy=policy, settings=settings)
    try:
        chunk = 2000
        line_chunks = [sentences[i:i + chunk] for i in range(0, len(sentences), chunk)]
        with tqdm(total=len(line_chunks), desc="tokenizing", unit="chunk", disable=not show_progress) as bar:
            encoded = [ids for part in _map(_tokenize_chunk, line_chunks, num_workers, 1, bar) for ids in part]
        position = 0
        tokenized = []
        for doc in documents:
            kept = [ids for ids in encoded[position:position + len(doc)] if ids]
            position += len(doc)
            if kept:
                tokenized.append(kept)
        _WORKER["documents"] = tokenized
        tasks = [(dupe, index) for dupe in range(dupe_factor) for index in range(len(tokenized))]
        instances = []
        with tqdm(total=len(tasks), desc="creating instances", unit="doc", disable=not show_progress) as bar:
            for result in _map(_document_task, tasks, num_workers, max(1, len(tasks) // (num_workers * 16)), bar):
                instances.extend(result)
    finally:
        _WORKER.clear()
    if len(instances) < num_shards:
        raise DataError(f"only {len(instances)} instances for {num_shards} shards; use fewer shards")

    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for shard in range(num_shards):
        part = instances[shard::num_shards]
        samples = {key: [] for key in KEYS}
        for input_ids, segment_ids, positions, labels, next_label in part:
            samples["input_ids"].append(input_ids)
            samples["segment_ids"].append(segment_ids)
            samples["masked_lm_positions"].append(positions)
            samples["masked_lm_ids"].append(labels)
            samples["masked_lm_weights"].append(np.ones(len(positions), np.float32))
            samples["next_sentence_labels"].append(next_label)
            samples["valid_lengths"].append(len(input_ids))
        paths.append(write_shard(os.path.join(output_dir, f"part-{shard:03d}.npz"), samples))
    replaced = {os.path.abspath(p) for p in paths + [os.path.join(output_dir, "metadata.json")]}
    for old in sorted(set(previous) - replaced):
        os.remove(old)
    seconds = time.time() - start
    summary = dict(num_files=len(files), num_documents=len(tokenized), num_sentences=len(sentences),
                   num_instances=len(instances), num_shards=num_shards, seconds=round(seconds, 3),
                   sentences_per_second=round(len(sentences) / max(seconds, 1e-9), 1),
                   num_masked=int(sum(len(inst[2]) for inst in instances)),
                   num_tokens=int(sum(len(inst[0]) for inst in instances)))
    write_metadata(output_dir, dict(
        summary, vocab_size=tokenizer.vocab_size, special_ids=tokenizer.special_ids, pair_layout=pair_layout,
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob, short_seq_prob=short_seq_prob, dupe_factor=dupe_factor, seed=seed,
        input_files=[os.path.abspath(f) for f in files], shards=[os.path.basename(p) for p in paths]))
    return summary
