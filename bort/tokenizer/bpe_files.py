"""Byte-level BPE vocabularies on disk: Hugging Face's vocab.json + merges.txt and GluonNLP's vocab JSON +
BPE ranks file. Readers validate everything the tokenizer relies on and raise `VocabError` naming the file
(and line); writers are atomic.

Formats (facts checked against the libraries that write them):
- HF `vocab.json`: one JSON object, token -> id. `merges.txt`: an optional first line `#version: ...`, then one
  merge per line, `left right`, in rank order.
- GluonNLP vocabulary (`gluonnlp.Vocab.to_json()`): a JSON object with `idx_to_token`, `token_to_idx`,
  `unknown_token`, `reserved_tokens` and `identifiers_to_tokens` (`padding_token`, `bos_token`, `eos_token`,
  `mask_token`, ...); files from older GluonNLP put `padding_token`/`bos_token`/`eos_token` at the top level.
- GluonNLP BPE ranks (`openai_webtext_bpe_ranks-*.json`, read by `GPT2BPETokenizer`): despite the suffix it is
  not JSON but GPT-2's merges text. GluonNLP drops the first line unconditionally (the `#version` header) and
  the last one (empty when the file ends with a newline), and ranks the lines between in order.
"""
import dataclasses
import json
import os

from ..errors import VocabError
from ..io_utils import atomic_open
from .text_files import read_utf8_text

#: Role -> token of RoBERTa's special tokens; roles are the names used throughout `BortTokenizer`.
ROBERTA_SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}
SPECIAL_ROLES = tuple(ROBERTA_SPECIAL_TOKENS)
MERGES_HEADER = "#version: 0.2"

# GluonNLP's names for the special-token roles in a serialized Vocab.
_GLUONNLP_IDENTIFIERS = {"pad": "padding_token", "bos": "bos_token", "eos": "eos_token", "mask": "mask_token"}


@dataclasses.dataclass
class BPEVocabulary:
    """Everything that defines a byte-level BPE tokenizer, independent of the file format it came from."""
    token_to_id: dict
    merges: list  # [(left, right)] in rank order
    special_tokens: dict  # role -> token, roles as in ROBERTA_SPECIAL_TOKENS
    source: str = ""

    @property
    def idx_to_token(self):
        tokens = [None] * len(self.token_to_id)
        for token, idx in self.token_to_id.items():
            tokens[idx] = token
        return tokens


def _line_of(text, needle):
    """1-based line where `needle` first occurs in `text`, or None."""
    position = text.find(needle)
    return None if position < 0 else text.count("\n", 0, position) + 1


def _where(path, text, token):
    """`path, line N` for a token of a JSON file (searched in both escaped and raw spellings)."""
    for spelling in (json.dumps(token, ensure_ascii=False), json.dumps(token)):
        line = _line_of(text, spelling)
        if line is not None:
            return f"{path}, line {line}"
    return path


def _load_json(path):
    path = os.fspath(path)
    text = read_utf8_text(path, VocabError)

    def reject_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise VocabError(f"{_where(path, text, key)}: key {key!r} appears twice")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=reject_duplicates), text
    except json.JSONDecodeError as err:
        raise VocabError(f"{path}, line {err.lineno}: not valid JSON ({err.msg}, column {err.colno})") from None


def _check_ids(path, text, token_to_id):
    """Ids must be ints 0..N-1, each used once: the embedding matrix has exactly N rows."""
    owner = {}
    for token, idx in token_to_id.items():
        if not isinstance(token, str) or isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise VocabError(f"{_where(path, text, token)}: token {token!r} has id {idx!r}; "
                             f"ids must be non-negative integers")
        if idx in owner:
            raise VocabError(f"{_where(path, text, token)}: tokens {owner[idx]!r} and {token!r} share id {idx}")
        owner[idx] = token
    missing = [idx for idx in range(len(owner)) if idx not in owner]
    if missing:
        raise VocabError(f"{path}: ids must run from 0 to {len(owner) - 1} without gaps; id {missing[0]} is "
                         f"missing (largest id {max(owner)})")


def _check_specials(path, token_to_id, special_tokens):
    missing = [f"{role} ({token!r})" for role, token in special_tokens.items()
               if token is None or token not in token_to_id]
    if missing:
        raise VocabError(f"{path}: the vocabulary lacks the special tokens {', '.join(missing)}; Bort needs "
                         f"bos, eos, pad, unk and mask (RoBERTa: <s>, </s>, <pad>, <unk>, <mask>)")


def read_hf_vocab(path):
    """token -> id from a Hugging Face `vocab.json`."""
    data, text = _load_json(path)
    if not isinstance(data, dict):
        raise VocabError(f"{path}: expected a JSON object mapping token -> id, found {type(data).__name__}")
    _check_ids(path, text, data)
    return data


def read_merges(path, token_to_id, vocab_path, header="optional"):
    """[(left, right)] in rank order from a merges file, each merge checked against the vocabulary.

    header: 'optional' (Hugging Face: a first line starting with `#version` is skipped) or 'required'
    (GluonNLP: the first line is always skipped, so it must be the header; otherwise GluonNLP would silently
    lose the first merge and our ids would differ from the original pipeline's).
    """
    path = os.fspath(path)
    text = read_utf8_text(path, VocabError)
    lines = text.split("\n")
    if header == "required" and text and not text.endswith("\n"):
        raise VocabError(f"{path}, line {len(lines)}: the file does not end with a newline, so GluonNLP's "
                         f"GPT2BPETokenizer would drop this last merge; add the newline")
    start = 0
    if lines and lines[0].startswith("#version"):
        start = 1
    elif header == "required":
        raise VocabError(f"{path}, line 1: expected the '#version: ...' header line that GluonNLP's "
                         f"GPT2BPETokenizer skips, found {lines[0][:60]!r}")
    while len(lines) > start and lines[-1].strip() == "":
        lines.pop()
    merges, seen = [], {}
    for line_number in range(start + 1, len(lines) + 1):
        line = lines[line_number - 1].rstrip("\r")
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise VocabError(f"{path}, line {line_number}: expected a merge 'left right' (two tokens separated "
                             f"by one space), found {line[:80]!r}")
        pair = (parts[0], parts[1])
        for token in (pair[0], pair[1], pair[0] + pair[1]):
            if token not in token_to_id:
                raise VocabError(f"{path}, line {line_number}: merge {line!r} uses or makes the token "
                                 f"{token!r}, which is not in the vocabulary {vocab_path}")
        if pair in seen:
            raise VocabError(f"{path}, line {line_number}: merge {line!r} repeats line {seen[pair]}")
        seen[pair] = line_number
        merges.append(pair)
    return merges


def load_hf_files(vocab_json, merges_txt, special_tokens=None):
    """A `BPEVocabulary` from Hugging Face files; `special_tokens` (role -> token) defaults to RoBERTa's."""
    special_tokens = dict(ROBERTA_SPECIAL_TOKENS if special_tokens is None else special_tokens)
    token_to_id = read_hf_vocab(vocab_json)
    _check_specials(vocab_json, token_to_id, special_tokens)
    merges = read_merges(merges_txt, token_to_id, vocab_json, header="optional")
    return BPEVocabulary(token_to_id, merges, special_tokens, source=f"{vocab_json} + {merges_txt}")


def read_gluonnlp_vocab(path):
    """(token -> id, role -> special token) from a GluonNLP `Vocab.to_json()` file."""
    data, text = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("idx_to_token"), list):
        raise VocabError(f"{path}: not a GluonNLP vocabulary (expected a JSON object with 'idx_to_token' and "
                         f"'token_to_idx', as written by gluonnlp.Vocab.to_json)")
    idx_to_token = data["idx_to_token"]
    token_to_id = data.get("token_to_idx")
    if not isinstance(token_to_id, dict):
        token_to_id = {token: idx for idx, token in enumerate(idx_to_token)}
    _check_ids(path, text, token_to_id)
    if len(idx_to_token) != len(token_to_id):
        raise VocabError(f"{path}: 'idx_to_token' has {len(idx_to_token)} entries but 'token_to_idx' has "
                         f"{len(token_to_id)}")
    for idx, token in enumerate(idx_to_token):
        if token_to_id.get(token) != idx:
            raise VocabError(f"{_where(path, text, token)}: 'idx_to_token'[{idx}] is {token!r} but "
                             f"'token_to_idx' maps it to {token_to_id.get(token)!r}")
    identifiers = dict(data.get("identifiers_to_tokens") or {})
    for name in ("padding_token", "bos_token", "eos_token", "mask_token"):
        if name in data and name not in identifiers:
            identifiers[name] = data[name]
    special_tokens = {"unk": data.get("unknown_token")}
    for role, name in _GLUONNLP_IDENTIFIERS.items():
        special_tokens[role] = identifiers.get(name)
    special_tokens = {role: special_tokens[role] for role in SPECIAL_ROLES}
    _check_specials(path, token_to_id, special_tokens)
    return token_to_id, special_tokens


def load_gluonnlp_files(vocab_file, bpe_ranks_file):
    """A `BPEVocabulary` from GluonNLP's vocabulary JSON and BPE ranks file."""
    token_to_id, special_tokens = read_gluonnlp_vocab(vocab_file)
    merges = read_merges(bpe_ranks_file, token_to_id, vocab_file, header="required")
    return BPEVocabulary(token_to_id, merges, special_tokens, source=f"{vocab_file} + {bpe_ranks_file}")


def write_merges(path, merges):
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(MERGES_HEADER + "\n")
        for left, right in merges:
            handle.write(f"{left} {right}\n")


def write_hf_files(directory, vocabulary):
    """Write `vocab.json` and `merges.txt` into `directory`; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    vocab_path = os.path.join(directory, "vocab.json")
    merges_path = os.path.join(directory, "merges.txt")
    ordered = dict(sorted(vocabulary.token_to_id.items(), key=lambda item: item[1]))
    with atomic_open(vocab_path, "w", encoding="utf-8") as handle:
        json.dump(ordered, handle, ensure_ascii=False)
    write_merges(merges_path, vocabulary.merges)
    return vocab_path, merges_path


def write_gluonnlp_files(vocab_path, bpe_ranks_path, vocabulary):
    """Write the vocabulary as `gluonnlp.Vocab.to_json()` does and the merges as a GluonNLP BPE ranks file."""
    specials = vocabulary.special_tokens
    identifiers = {name: specials[role] for role, name in _GLUONNLP_IDENTIFIERS.items()}
    payload = {
        "idx_to_token": vocabulary.idx_to_token,
        "token_to_idx": dict(sorted(vocabulary.token_to_id.items(), key=lambda item: item[1])),
        "reserved_tokens": [specials[role] for role in ("bos", "pad", "eos", "mask")],
        "unknown_token": specials["unk"],
        "identifiers_to_tokens": identifiers,
    }
    with atomic_open(vocab_path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False)
    write_merges(bpe_ranks_path, vocabulary.merges)
    return vocab_path, bpe_ranks_path
