"""GPT-2/RoBERTa byte-level BPE on `tiktoken`: the fast path of `ByteLevelBPEBackend.encode_many`.

tiktoken does not implement GPT-2's merge rule, so it is used only where it provably gives the same ids:

- GPT-2 (and `tokenizers`, GluonNLP): in a pre-tokenized piece, join the adjacent pair (x, y) listed first in
  merges.txt, until no adjacent pair is listed.
- tiktoken: join the adjacent pair whose concatenation x+y is a token of lowest rank; a piece whose bytes are
  a token is returned whole at once.

Call a merged token t *reachable* when GPT-2's BPE of t's own bytes is [t], and let m(t) be the merge that
finishes that encoding. In GPT-2's BPE the merges inside a stretch of a piece depend only on that stretch
until something joins across its ends (the pair chosen is the lowest-listed of all, so also of those inside).
Hence adjacent pieces x, y with x+y = t, anywhere, retrace the encoding of t alone, which passes through
[x, y] only as [m(t)] -> [t]. So if every merged token is reachable and ranked by the line of m(t):
(x, y) can be joined by GPT-2 <=> x+y is a token (x, y = m(t)), at the same priority, and the whole-piece
shortcut returns what GPT-2 would. If some merged token t is not reachable, the piece spelling t is encoded
differently (tiktoken: [t]). So "every merged token is reachable" is exactly the condition. Merges learnt by
BPE training meet it (each joins two pieces that BPE with the earlier merges makes), GPT-2's and RoBERTa's
among them (their files are not on the build machine: unchecked there). It is checked at construction with the
`tokenizers` model (0.1 s of the 0.2 s tiktoken adds to building a 30000-token vocabulary). Where it fails (a
hand-edited merges list) or tiktoken is missing, `build_tiktoken_encoder` says why and the caller keeps
`tokenizers`.

tiktoken returns its ranks; they are the vocabulary's ids when the ids of merged tokens grow with the line of
m(t) (vocabularies trained by `tokenizers`), else they are mapped back through a table (RoBERTa's ids follow
fairseq's frequency order).
"""
import contextlib
import gc
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor

from ..errors import InputError

logger = logging.getLogger(__name__)

#: GPT-2's pre-tokenization regex (its encoder.py), with the alternatives before the look-ahead grouped: the
#: same alternatives in the same order, so the same matches, but tiktoken's regex engine then runs the group as
#: one plain regex and only the whitespace look-ahead on its slow backtracking engine (1.7x faster overall).
GPT2_SPLIT_PATTERN = r"""(?:'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+)|\s+(?!\S)|\s+"""
#: Batches longer than this are split over threads (tiktoken releases the GIL while it encodes); shorter
#: ones cost more in thread start-up and GIL hand-offs than they save.
PARALLEL_MIN_TEXTS = 2048
#: Chunks per thread, so that one chunk of long texts does not leave the other threads idle at the end.
CHUNKS_PER_THREAD = 4


def byte_of_char():
    """GPT-2's byte-to-unicode spelling, reversed: vocabulary character -> the byte it stands for.

    Printable latin-1 bytes stand for themselves; the others (controls, space, 0x7f-0xa0, soft hyphen) are
    spelt with U+0100 onwards, in byte order.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | \
        set(range(ord("®"), ord("ÿ") + 1))
    table, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + shifted)] = byte
            shifted += 1
    return table


def _spelling_to_latin1():
    """A `str.translate` table after which `.encode('latin-1')` gives a token's bytes, or fails for a token
    with a character outside GPT-2's byte spelling (such a token can never come out of a text)."""
    table = {ord(char): chr(byte) for char, byte in byte_of_char().items()}
    for code in range(256):
        table.setdefault(code, "\uffff")  # raw latin-1 characters the spelling does not use must not pass
    return table


def _last_merge(token, merge_line):
    """The merge GPT-2's BPE of `token` alone finishes with (for tokens more than one merge makes)."""
    pieces, last = list(token), None
    while len(pieces) > 1:
        pair = min(zip(pieces, pieces[1:]), key=lambda candidate: merge_line.get(candidate, math.inf))
        if pair not in merge_line:
            break
        joined, index = [], 0
        while index < len(pieces):
            if index + 1 < len(pieces) and (pieces[index], pieces[index + 1]) == pair:
                joined.append(pair[0] + pair[1])
                index += 2
            else:
                joined.append(pieces[index])
                index += 1
        pieces, last = joined, pair
    return last


def _unreachable_tokens(bpe_model, merged_tokens, token_to_id):
    """Merged tokens whose own characters `tokenizers`' BPE does not encode as the token itself."""
    from tokenizers import Tokenizer, pre_tokenizers

    checker = Tokenizer(bpe_model)
    # "\n" is outside GPT-2's byte spelling, so it separates the tokens without being part of any.
    checker.pre_tokenizer = pre_tokenizers.CharDelimiterSplit("\n")
    batch_encode = getattr(checker, "encode_batch_fast", checker.encode_batch)
    ids = batch_encode(["\n".join(merged_tokens)], add_special_tokens=False)[0].ids
    if ids == [token_to_id[token] for token in merged_tokens]:
        return []
    bad = []
    for token in merged_tokens:  # only on failure: find the culprits for the message
        if checker.encode(token, add_special_tokens=False).tokens != [token]:
            bad.append(token)
            if len(bad) == 3:
                break
    return bad


def mergeable_ranks(vocabulary, bpe_model):
    """(token bytes -> tiktoken rank, rank -> id list, or None where the ranks are the ids), or
    (None, why tiktoken cannot encode this vocabulary as GPT-2 does)."""
    token_to_id = vocabulary.token_to_id
    byte_tokens = byte_of_char()
    missing = [char for char in byte_tokens if char not in token_to_id]
    if missing:
        return None, (f"the vocabulary lacks the byte token {missing[0]!r} (byte 0x{byte_tokens[missing[0]]:02x}), "
                      f"so such bytes become <unk>")
    to_latin1 = _spelling_to_latin1()
    makers = {}
    for line, (left, right) in enumerate(vocabulary.merges):
        makers.setdefault(left + right, []).append(line)
    spelled = {}
    for token in makers:
        try:
            spelled[token] = token.translate(to_latin1).encode("latin-1")
        except UnicodeEncodeError:
            return None, f"the merged token {token!r} has characters outside GPT-2's byte spelling"
    unreachable = _unreachable_tokens(bpe_model, list(makers), token_to_id)
    if unreachable:
        return None, (f"merged tokens such as {unreachable} are not what BPE makes of their own characters, so "
                      f"tiktoken's merge rule would encode some text differently")
    merge_line = {pair: line for line, pair in enumerate(vocabulary.merges)}
    by_line = sorted(makers, key=lambda token: makers[token][0] if len(makers[token]) == 1
                     else merge_line[_last_merge(token, merge_line)])
    ids = [token_to_id[token] for token in by_line]
    if all(earlier < later for earlier, later in zip(ids, ids[1:])):
        # Byte tokens are never compared with merged ones, so the ids themselves are valid ranks.
        ranks = {bytes([byte]): token_to_id[char] for char, byte in byte_tokens.items()}
        ranks.update((spelled[token], idx) for token, idx in zip(by_line, ids))
        return ranks, None
    ranks = {bytes([byte]): byte for byte in range(256)}
    ranks.update((spelled[token], 256 + position) for position, token in enumerate(by_line))
    rank_to_id = [None] * 256 + ids
    for char, byte in byte_tokens.items():
        rank_to_id[byte] = token_to_id[char]
    return ranks, rank_to_id


def build_tiktoken_encoder(vocabulary, bpe_model):
    """A `TiktokenEncoder` equal to GPT-2's BPE for `vocabulary`, or None (with the reason logged)."""
    try:
        import tiktoken
    except ImportError:
        logger.warning("tiktoken is not installed: byte-level BPE encodes with `tokenizers` (slower); "
                       "pip install tiktoken")
        return None
    ranks, rank_to_id = mergeable_ranks(vocabulary, bpe_model)
    if ranks is None:
        logger.warning("%s: encoding with `tokenizers` instead of tiktoken (same ids, slower): %s",
                       vocabulary.source or "vocabulary", rank_to_id)
        return None
    encoding = tiktoken.Encoding(f"bort_bpe_{len(ranks)}", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={})
    if not hasattr(encoding, "_core_bpe"):
        logger.warning("tiktoken %s has no CoreBPE: encoding with `tokenizers` instead",
                       getattr(tiktoken, "__version__", "?"))
        return None
    return TiktokenEncoder(encoding, rank_to_id)


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Lists of ints cannot form reference cycles, yet every list made counts towards the cyclic collector's
    next pass, and its older generations walk every list the caller holds: a quarter of the time of a large
    batch, for nothing. Other threads' cycles wait until the batch is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class TiktokenEncoder:
    """texts -> id lists with tiktoken, special-token look-alikes encoded as text; picklable."""

    def __init__(self, encoding, rank_to_id):
        self.encoding = encoding
        self.rank_to_id = rank_to_id

    def _encode_chunk(self, texts):
        # The core, not Encoding.encode_ordinary: that one silently replaces lone surrogates with U+FFFD.
        encode = self.encoding._core_bpe.encode_ordinary
        if self.rank_to_id is None:
            return [encode(text) for text in texts]
        lookup = self.rank_to_id.__getitem__
        return [list(map(lookup, encode(text))) for text in texts]

    def encode_many(self, texts, num_threads=None):
        """ids of each text; batches of more than PARALLEL_MIN_TEXTS texts are split over `num_threads` threads
        (default: every core this process may run on)."""
        try:
            threads = min(num_threads or _threads(), -(-len(texts) // PARALLEL_MIN_TEXTS))
            if threads < 2:
                with _cyclic_gc_paused():
                    return self._encode_chunk(texts)
            size = -(-len(texts) // (threads * CHUNKS_PER_THREAD))
            chunks = [texts[start:start + size] for start in range(0, len(texts), size)]
            with _cyclic_gc_paused(), ThreadPoolExecutor(threads) as pool:
                encoded = list(pool.map(self._encode_chunk, chunks))
                return [ids for chunk in encoded for ids in chunk]
        except UnicodeEncodeError:
            for index, text in enumerate(texts):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as err:
                    raise InputError(f"texts[{index}] has a lone surrogate {text[err.start]!r} at character "
                                     f"{err.start}: not encodable text") from None
            raise
