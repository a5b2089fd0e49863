"""The 'native' byte-level BPE engine: GPT-2's pre-tokenization in C plus a cache piece -> ids
(`bort/tokenizer/_bytelevel.c`), with tiktoken's BPE asked only for pieces the cache has not seen.

Why it gives the same ids as the tiktoken engine (and so as GPT-2, GluonNLP and `tokenizers`, see
`tiktoken_bpe`): tiktoken's `encode_ordinary` splits the text with GPT-2's regex and runs BPE on each piece
on its own, with the whole-piece shortcut of `encode_single_piece`. Here the C splitter yields the same pieces
(it is GPT-2's regex written out by hand, with the character classes below taken from the `regex` module
itself, the library GPT-2's and GluonNLP's code use), and each piece's ids come from the same
`encode_single_piece`, or from a cache of what it returned before. The cache only ever returns what the miss
callable returned for the same piece, so its size and evictions do not change ids.

The C code holds the GIL throughout, so `num_threads` is ignored: on one core it is already faster than
tiktoken on all cores of a small machine.
"""
import functools
import importlib
import logging

from ..errors import InputError
from .tiktoken_bpe import _cyclic_gc_paused

logger = logging.getLogger(__name__)

NUM_CODE_POINTS = 0x110000
#: Class numbers of the table the C splitter reads (surrogates it marks itself, to reject them).
CLASS_OTHER, CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE = 0, 1, 2, 3
#: Cache limits: about 1 M pieces (a few hundred thousand distinct words is a large corpus); the cache is
#: emptied when either would be passed, which costs only the BPE of the pieces seen again.
CACHE_MAX_ENTRIES = 1 << 20
CACHE_MAX_BYTES = 64 << 20
#: Batches this large pause the cyclic garbage collector while their lists are made (see `_cyclic_gc_paused`).
GC_PAUSE_MIN_TEXTS = 64

_import_failure_logged = False


@functools.lru_cache(maxsize=1)
def character_classes():
    """bytes of 0x110000 entries: the class of every code point for GPT-2's regex, as the `regex` module sees
    \\p{L} (letter), \\p{N} (number) and \\s (whitespace); everything else is 'other'. Built from `regex`
    matches over a str of every code point, so the classes are the reference library's by construction."""
    import numpy as np
    import regex

    every_code_point = np.arange(NUM_CODE_POINTS, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = bytearray(NUM_CODE_POINTS)  # CLASS_OTHER
    # One pattern per class: three simple scans are 1.6x faster than one alternation with groups.
    for cls, pattern in ((CLASS_LETTER, r"\p{L}+"), (CLASS_NUMBER, r"\p{N}+"), (CLASS_SPACE, r"\s+")):
        for match in regex.finditer(pattern, every_code_point):
            start, end = match.span()
            table[start:end] = bytes([cls]) * (end - start)
    return bytes(table)


def _import_extension():
    """The C module, or None with the reason logged once per process."""
    global _import_failure_logged
    try:
        return importlib.import_module(f"{__package__}._bytelevel")
    except ImportError as err:
        if not _import_failure_logged:
            _import_failure_logged = True
            logger.warning("the C tokenizer bort.tokenizer._bytelevel is not built (%s): byte-level BPE encodes "
                           "with tiktoken (same ids, about 3x slower); build it with `python setup.py build_ext "
                           "--inplace` or reinstall bort with a C compiler present", err)
        return None


def _miss_function(tiktoken_encoder):
    """UTF-8 bytes of one pre-tokenized piece -> its vocabulary ids, by tiktoken's BPE (no regex)."""
    encode_piece = tiktoken_encoder.encoding._core_bpe.encode_single_piece
    rank_to_id = tiktoken_encoder.rank_to_id
    if rank_to_id is None:
        return encode_piece
    lookup = rank_to_id.__getitem__

    def ids_of_piece(piece):
        return list(map(lookup, encode_piece(piece)))

    return ids_of_piece


def build_native_encoder(tiktoken_encoder, vocab_size, max_entries=CACHE_MAX_ENTRIES, max_bytes=CACHE_MAX_BYTES):
    """A `NativeEncoder` over `tiktoken_encoder`, or None (reason logged) when the C module is not built."""
    if _import_extension() is None:
        return None
    return NativeEncoder(tiktoken_encoder, vocab_size, max_entries, max_bytes)


class NativeEncoder:
    """texts -> id lists with the C splitter and piece cache; picklable (the C object is rebuilt on first use
    after unpickling, with an empty cache)."""

    def __init__(self, tiktoken_encoder, vocab_size, max_entries=CACHE_MAX_ENTRIES, max_bytes=CACHE_MAX_BYTES):
        self.tiktoken = tiktoken_encoder
        self.vocab_size = vocab_size
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._pieces = self._lone_surrogate_error = None
        self.piece_cache()  # fail here, not on the first text, when the extension is missing

    def piece_cache(self):
        """The C `PieceCache` (built on first use)."""
        if self._pieces is None:
            extension = _import_extension()
            if extension is None:
                raise ImportError("bort.tokenizer._bytelevel is not built")
            self._pieces = extension.PieceCache(character_classes(), _miss_function(self.tiktoken),
                                                self.vocab_size, self.max_entries, self.max_bytes)
            self._lone_surrogate_error = extension.LoneSurrogateError
        return self._pieces

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pieces"] = state["_lone_surrogate_error"] = None
        return state

    def split(self, text):
        """GPT-2's pre-tokenized pieces of `text` (what its regex's findall returns)."""
        return self.piece_cache().split(text)

    def encode_many(self, texts, num_threads=None):
        """ids of each text, on this thread (`num_threads` is accepted and ignored; see the module doc)."""
        del num_threads
        pieces = self.piece_cache()
        try:
            if len(texts) < GC_PAUSE_MIN_TEXTS:  # `encode` of one text: the pause would cost more than it saves
                return pieces.encode_many(texts)
            with _cyclic_gc_paused():
                return pieces.encode_many(texts)
        except self._lone_surrogate_error as err:
            index, offset = err.args
            raise InputError(f"texts[{index}] has a lone surrogate {texts[index][offset]!r} at character "
                             f"{offset}: not encodable text") from None
