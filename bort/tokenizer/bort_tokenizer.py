"""`BortTokenizer`: one tokenizer object for RoBERTa's byte-level BPE (from Hugging Face or GluonNLP files) and
for SentencePiece vocabularies, with Bort's special tokens, pair layouts, truncation and batching."""
import glob
import json
import os
import shutil

import numpy as np

from ..errors import ConfigError, InputError, VocabError
from ..io_utils import atomic_open, atomic_path
from . import bpe_files
from .layout import assemble, check_pair_layout, num_special_tokens

#: File names GluonNLP 0.10 caches RoBERTa's vocabulary under (in `$MXNET_HOME/models`, default ~/.mxnet).
GLUONNLP_VOCAB_GLOB = "openwebtext_ccnews_stories_books_cased-*.vocab"
GLUONNLP_RANKS_GLOB = "openai_webtext_bpe_ranks-*.json"
SENTENCEPIECE_FILE = "sentencepiece.model"
CONFIG_FILE = "tokenizer_config.json"


def _as_id_list(ids):
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise InputError(f"expected a 1-D sequence of ids, got an array of shape {ids.shape}")
        return [int(idx) for idx in ids]
    return [int(idx) for idx in ids]


def _check_text(text, what="text"):
    if not isinstance(text, str):
        raise InputError(f"{what} must be a str, got {type(text).__name__}")
    return text


class BortTokenizer:
    """Text <-> ids for Bort.

    Build it with `from_hf`, `from_gluonnlp`, `from_gluonnlp_cache`, `from_sentencepiece` or
    `from_directory`. pair_layout: 'roberta' (default, `<s> A </s></s> B </s>`) or 'bort_release'
    (`<s> A </s> B </s>`, the original Bort fine-tuning code); see `bort.tokenizer.layout`.
    """

    def __init__(self, backend, pair_layout="roberta"):
        self._backend = backend
        self.pair_layout = check_pair_layout(pair_layout)
        self.special_tokens = dict(backend.special_tokens)
        self._special_ids = {role: backend.token_to_id(token) for role, token in self.special_tokens.items()}

    # ----------------------------------------------------------------------------------------- construction
    @classmethod
    def from_hf(cls, vocab_json, merges_txt, pair_layout="roberta", parse_special_tokens=False,
                special_tokens=None):
        """RoBERTa-style `vocab.json` + `merges.txt` (as in the `roberta-base` or `amazon/bort` repositories).

        special_tokens: role -> token for roles bos, pad, eos, unk, mask; RoBERTa's by default.
        """
        from .bpe_backend import ByteLevelBPEBackend

        vocabulary = bpe_files.load_hf_files(vocab_json, merges_txt, special_tokens)
        return cls(ByteLevelBPEBackend(vocabulary, parse_special_tokens), pair_layout)

    @classmethod
    def from_gluonnlp(cls, vocab_file, bpe_ranks_file, pair_layout="roberta", parse_special_tokens=False):
        """GluonNLP's vocabulary JSON (`Vocab.to_json()`) + GPT-2 BPE ranks file; special tokens come from
        the vocabulary's own `unknown_token`/`padding_token`/`bos_token`/`eos_token`/`mask_token`."""
        from .bpe_backend import ByteLevelBPEBackend

        vocabulary = bpe_files.load_gluonnlp_files(vocab_file, bpe_ranks_file)
        return cls(ByteLevelBPEBackend(vocabulary, parse_special_tokens), pair_layout)

    @classmethod
    def from_gluonnlp_cache(cls, root=None, pair_layout="roberta", parse_special_tokens=False):
        """RoBERTa's vocabulary from GluonNLP's download cache (`$MXNET_HOME/models`, default ~/.mxnet/models)."""
        if root is None:
            root = os.path.join(os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet")), "models")
        root = os.path.expanduser(root)
        found = {}
        for key, pattern in (("vocab", GLUONNLP_VOCAB_GLOB), ("ranks", GLUONNLP_RANKS_GLOB)):
            matches = sorted(glob.glob(os.path.join(root, pattern)))
            if not matches:
                raise VocabError(f"{root}: no file matching {pattern}; GluonNLP downloads it on first use of "
                                 f"the RoBERTa vocabulary, or pass the files to from_gluonnlp")
            found[key] = matches[-1]
        return cls.from_gluonnlp(found["vocab"], found["ranks"], pair_layout, parse_special_tokens)

    @classmethod
    def from_sentencepiece(cls, model_file, pair_layout="roberta", parse_special_tokens=False):
        """A SentencePiece model with pad/bos/eos/unk and a `<mask>` piece (see scripts/train_vocab.py)."""
        from .sentencepiece_backend import SentencePieceBackend

        return cls(SentencePieceBackend(model_file, parse_special_tokens), pair_layout)

    @classmethod
    def from_directory(cls, directory, pair_layout=None, parse_special_tokens=False):
        """Whatever vocabulary `directory` holds: HF `vocab.json`+`merges.txt`, a `*.model` SentencePiece
        file, or GluonNLP's two files. pair_layout defaults to the one saved by `save_hf`, else 'roberta'."""
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise VocabError(f"{directory}: not a directory")
        saved_layout = "roberta"
        config_path = os.path.join(directory, CONFIG_FILE)
        if os.path.isfile(config_path):
            try:
                with open(config_path, encoding="utf-8") as handle:
                    saved_layout = json.load(handle).get("bort_pair_layout", saved_layout)
            except (OSError, ValueError) as err:
                raise VocabError(f"{config_path}: unreadable ({err})") from None
        layout = pair_layout or saved_layout
        vocab_json, merges = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
        if os.path.isfile(vocab_json) and os.path.isfile(merges):
            return cls.from_hf(vocab_json, merges, layout, parse_special_tokens)
        models = sorted(glob.glob(os.path.join(directory, "*.model")))
        if models:
            return cls.from_sentencepiece(models[0], layout, parse_special_tokens)
        vocabs = sorted(glob.glob(os.path.join(directory, "*.vocab")))
        ranks = sorted(glob.glob(os.path.join(directory, "*bpe_ranks*.json")))
        if vocabs and ranks:
            return cls.from_gluonnlp(vocabs[-1], ranks[-1], layout, parse_special_tokens)
        raise VocabError(f"{directory}: no vocabulary found (looked for vocab.json + merges.txt, *.model, "
                         f"*.vocab + *bpe_ranks*.json)")

    # ----------------------------------------------------------------------------------------- properties
    @property
    def backend_kind(self):
        """'byte_level_bpe' or 'sentencepiece'."""
        return self._backend.kind

    @property
    def engine(self):
        """What turns text into ids: 'native' (byte-level BPE, the fast path: GPT-2's pre-tokenization in C
        with a piece cache over tiktoken's BPE), 'tiktoken' (the same without the C extension, when it is not
        built), 'tokenizers' (byte-level BPE with parse_special_tokens=True, or merges tiktoken cannot follow
        exactly) or 'sentencepiece'."""
        return self._backend.engine

    @property
    def vocab_size(self):
        return self._backend.vocab_size

    def __len__(self):
        return self.vocab_size

    @property
    def bos_id(self):
        return self._special_ids["bos"]

    cls_id = bos_id

    @property
    def eos_id(self):
        return self._special_ids["eos"]

    sep_id = eos_id

    @property
    def pad_id(self):
        return self._special_ids["pad"]

    @property
    def unk_id(self):
        return self._special_ids["unk"]

    @property
    def mask_id(self):
        return self._special_ids["mask"]

    @property
    def special_ids(self):
        """role -> id for bos, pad, eos, unk, mask."""
        return dict(self._special_ids)

    def get_vocab(self):
        """token -> id for the whole vocabulary (a copy)."""
        return self._backend.get_vocab()

    def num_special_tokens(self, pair=False, pair_layout=None):
        """How many special tokens `encode`/`encode_pair` add."""
        return num_special_tokens(pair, pair_layout or self.pair_layout)

    def __repr__(self):
        return (f"BortTokenizer({self.backend_kind}, vocab_size={self.vocab_size}, "
                f"pair_layout={self.pair_layout!r}, special_ids={self._special_ids})")

    # ----------------------------------------------------------------------------------------- encoding
    def tokenize(self, text):
        """The vocabulary pieces of `text` (byte-level BPE: GPT-2's byte-to-unicode spelling, e.g. 'Ġthe')."""
        return self._backend.tokenize(_check_text(text))

    def encode(self, text, add_special_tokens=True, max_length=None):
        """ids of `text`, `<s> ... </s>` around them unless add_special_tokens=False; max_length (including
        the special tokens) keeps the first ids."""
        ids = self._backend.encode_many([_check_text(text)])[0]
        if not add_special_tokens:
            return ids if max_length is None else ids[:max_length]
        return assemble(ids, None, self.bos_id, self.eos_id, self.pair_layout, max_length)

    def encode_pair(self, text_a, text_b, max_length=None, pair_layout=None):
        """ids of a text pair in `pair_layout` (default: the tokenizer's); max_length counts the special
        tokens and is met by trimming the longer text first (GluonNLP's `truncate_seqs_equal`)."""
        ids_a, ids_b = self._backend.encode_many([_check_text(text_a, "text_a"), _check_text(text_b, "text_b")])
        return assemble(ids_a, ids_b, self.bos_id, self.eos_id, check_pair_layout(pair_layout or self.pair_layout),
                        max_length)

    def encode_many(self, texts, add_special_tokens=False, num_threads=None):
        """ids of many texts in one call to the fast batch encoder (for pretraining-data creation).

        num_threads: byte-level BPE on the 'tiktoken' engine splits batches of more than 2048 texts over this
        many threads (default: every core the process may use); pass 1 inside worker processes that already
        share the cores out. The 'native' engine runs on the calling thread and ignores it."""
        texts = list(texts)
        for index, text in enumerate(texts):
            _check_text(text, f"texts[{index}]")
        encoded = self._backend.encode_many(texts, num_threads)
        if add_special_tokens:
            return [[self.bos_id] + ids + [self.eos_id] for ids in encoded]
        return encoded

    def encode_batch(self, texts_or_pairs, max_length=None, pair_layout=None, pad_to_max_length=False):
        """Encode texts and/or (text_a, text_b) pairs with special tokens; returns `(ids, valid_length)`:
        int32 arrays of shape (batch, width) padded with `pad_id`, and (batch,). width is the longest row,
        or max_length with pad_to_max_length=True."""
        layout = check_pair_layout(pair_layout or self.pair_layout)
        if pad_to_max_length and max_length is None:
            raise ConfigError("pad_to_max_length=True needs max_length")
        flat, spans = [], []
        for index, item in enumerate(texts_or_pairs):
            if isinstance(item, str):
                spans.append((len(flat), False))
                flat.append(item)
            elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item):
                spans.append((len(flat), True))
                flat.extend(item)
            else:
                raise InputError(f"texts_or_pairs[{index}]: expected a str or a (str, str) pair, "
                                 f"got {type(item).__name__}")
        encoded = self._backend.encode_many(flat)
        rows = [assemble(encoded[start], encoded[start + 1] if pair else None, self.bos_id, self.eos_id, layout,
                         max_length) for start, pair in spans]
        valid_length = np.array([len(row) for row in rows], dtype=np.int32)
        width = max_length if pad_to_max_length else int(valid_length.max(initial=0))
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int32)
        for row_index, row in enumerate(rows):
            ids[row_index, :len(row)] = row
        return ids, valid_length

    # ----------------------------------------------------------------------------------------- decoding
    def _check_ids(self, ids):
        ids = _as_id_list(ids)
        for position, idx in enumerate(ids):
            if not 0 <= idx < self.vocab_size:
                raise InputError(f"id {idx} at position {position} is outside the vocabulary "
                                 f"(0..{self.vocab_size - 1})")
        return ids

    def convert_ids_to_tokens(self, ids):
        return [self._backend.id_to_token(idx) for idx in self._check_ids(ids)]

    def convert_tokens_to_ids(self, tokens):
        """ids of vocabulary pieces; pieces not in the vocabulary map to `unk_id`."""
        out = []
        for token in tokens:
            idx = self._backend.token_to_id(token)
            out.append(self.unk_id if idx is None else idx)
        return out

    def decode(self, ids, skip_special_tokens=False):
        """Text of `ids`. For byte-level BPE, `decode(encode(x, add_special_tokens=False)) == x` for any str."""
        ids = self._check_ids(ids)
        if skip_special_tokens:
            special = set(self._special_ids.values())
            ids = [idx for idx in ids if idx not in special]
        return self._backend.decode(ids)

    # ----------------------------------------------------------------------------------------- saving
    def _bpe_vocabulary(self, what):
        if self.backend_kind != "byte_level_bpe":
            raise ConfigError(f"{what} needs a byte-level BPE vocabulary; this tokenizer is {self.backend_kind}")
        return self._backend.vocabulary

    def save_hf(self, directory):
        """Write the vocabulary where Hugging Face looks for it: `vocab.json` + `merges.txt` (byte-level BPE,
        loadable by `transformers.RobertaTokenizer.from_pretrained`) or `sentencepiece.model`, plus
        `tokenizer_config.json` and `special_tokens_map.json`. Files are written atomically one by one, so
        `directory` may already hold a model. Returns the directory."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        if self.backend_kind == "byte_level_bpe":
            bpe_files.write_hf_files(directory, self._backend.vocabulary)
            tokenizer_class = "RobertaTokenizer"
        else:
            with atomic_path(os.path.join(directory, SENTENCEPIECE_FILE)) as tmp:
                shutil.copyfile(self._backend.model_file, tmp)
            tokenizer_class = None
        special_map = {f"{role}_token": token for role, token in self.special_tokens.items()}
        special_map.update(cls_token=self.special_tokens["bos"], sep_token=self.special_tokens["eos"])
        # RoBERTa's <mask> swallows the space before it (fairseq's fill-mask does the same); spelled out so
        # transformers loads the same behaviour as parse_special_tokens=True here.
        special_map["mask_token"] = {"content": self.special_tokens["mask"], "lstrip": True, "rstrip": False,
                                     "normalized": False, "single_word": False, "special": True,
                                     "__type": "AddedToken"}
        config = dict(special_map, tokenizer_class=tokenizer_class, add_prefix_space=False,
                      bort_format=self.backend_kind, bort_pair_layout=self.pair_layout,
                      bort_special_ids=self.special_ids)
        for name, payload in ((CONFIG_FILE, config), ("special_tokens_map.json", special_map)):
            with atomic_open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False, indent=2)
        return directory

    def save_gluonnlp(self, vocab_path, bpe_ranks_path):
        """Write GluonNLP's vocabulary JSON (`gluonnlp.Vocab.from_json` reads it) and BPE ranks file."""
        return bpe_files.write_gluonnlp_files(vocab_path, bpe_ranks_path, self._bpe_vocabulary("save_gluonnlp"))
