"""The 'native' byte-level BPE engine: the C splitter equals GPT-2's regex on nasty text, its ids equal
the tiktoken engine's and GluonNLP's, the piece cache never changes ids, lone surrogates are reported, and the
engine can be switched off or missing."""
import pickle
import random
import sys
import threading

import pytest
import regex
from test_tokenizer import MULTILINGUAL, SAMPLE_TEXT, VIM_TUTORS, _lines, _random_texts, _unicode_stress_texts

from bort.errors import InputError
from bort.tokenizer import BortTokenizer, hf_to_gluonnlp, load_hf_files, train_byte_level_bpe
from bort.tokenizer.bpe_backend import ByteLevelBPEBackend

#: GPT-2's encoder.py pattern, verbatim: the reference for the splitter.
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
NASTY_ALPHABET = (
    list("abcXYZ0123456789!?.,;:-_\"()[]{}<>/\\@#$%^&*+=|~`") + ["'"] * 6
    + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'LL", "'S", "'r", "'v", "'l", "''"]
    + [" "] * 8 + ["  ", "   ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85",
                   "\xa0", "\u1680", "\u2000", "\u2005", "\u200a", "\u2028", "\u2029", "\u202f", "\u3000",
                   "\u180e", "\u200b", "\ufeff"]
    + list("٠١٢٣٤٥٦٧٨٩") + list("²³¹⁴½Ⅻ߀")  # Arabic-Indic digits, superscripts, fractions, numerals
    + list("中文字日本語한국어αβγΩЖжéñßǅ") + ["e\u0301", "\u0301", "\u0928\u093f"]  # CJK, Greek, combining marks
    + ["\U0001F600", "\U0001F389", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\U0001F44D\U0001F3FD",
       "\u200d", "\ufe0f", "\U00010400", "\U0001D400", "\U00020000", "\U000E0041", "\U0010FFFD"]  # emoji, astral
)


def _nasty_texts(seed, count, max_len=40):
    rng = random.Random(seed)
    return ["".join(rng.choice(NASTY_ALPHABET) for _ in range(rng.randint(0, max_len))) for _ in range(count)]


def _file_texts():
    paths = (SAMPLE_TEXT, MULTILINGUAL, VIM_TUTORS)
    return [line for path in paths for line in _lines(path)] + [open(path, encoding="utf-8").read()
                                                                for path in paths]


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("native_bpe")
    train_byte_level_bpe([SAMPLE_TEXT, MULTILINGUAL, VIM_TUTORS], str(directory), 2000)
    return str(directory / "vocab.json"), str(directory / "merges.txt")


@pytest.fixture(scope="module")
def vocabulary(hf_files):
    return load_hf_files(*hf_files)


@pytest.fixture(scope="module")
def native(vocabulary):
    return BortTokenizer(ByteLevelBPEBackend(vocabulary))


@pytest.fixture(scope="module")
def on_tiktoken(vocabulary):
    return BortTokenizer(ByteLevelBPEBackend(vocabulary, use_native=False))


@pytest.fixture(scope="module")
def texts():
    corpus = _file_texts() + _random_texts(0, 300, "".join(_file_texts()))
    edge_cases = ["", " ", "  ", "\n", "\n\n \n", " \n", "a", "'", "''s", " 's", "x" * 3000, " " * 500 + "a",
                  "ab" * 700, "🎉" * 50, "'s'S's", "1" * 99, "<mask> <s>"]
    return corpus + edge_cases + _unicode_stress_texts(7, 500) + _nasty_texts(8, 1500)


# ------------------------------------------------------------------------------------------- splitting
def test_character_classes_are_disjoint_in_regex():
    """The table gives each code point one class; that is only right if `regex` never puts one in two."""
    from bort.tokenizer.native_bpe import CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE, character_classes

    every = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000)
    assert regex.findall(r"(?V1)[[\p{L}&&\p{N}]||[\p{L}&&\s]||[\p{N}&&\s]]", every) == []
    table = character_classes()
    assert len(table) == 0x110000
    for char in "aZéж中ǅ\U00020000":
        assert table[ord(char)] == CLASS_LETTER
    for char in "09٣²Ⅻ½":
        assert table[ord(char)] == CLASS_NUMBER
    for char in " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u3000":
        assert table[ord(char)] == CLASS_SPACE
    # Combining marks, ZWSP, BOM and emoji are 'other'; so are \x1c-\x1f, which `regex`'s \s leaves out
    # (unlike `re` and str.isspace): the table follows the library GPT-2 used.
    for char in "'!\u0301\u200b\ufeff\U0001F600\x1c\x1f\u180e":
        assert table[ord(char)] == 0


def test_split_equals_gpt2_regex(native):
    encoder = native._backend._native
    texts = _nasty_texts(1, 4000) + _nasty_texts(2, 200, max_len=400) + _unicode_stress_texts(3, 1000) + \
        _file_texts()
    for text in texts:
        assert encoder.split(text) == GPT2_PATTERN.findall(text), repr(text)


# ------------------------------------------------------------------------------------------- ids
def test_engine_is_native_and_can_be_switched_off(native, on_tiktoken, hf_files):
    assert native.engine == "native"
    assert on_tiktoken.engine == "tiktoken"
    assert BortTokenizer.from_hf(*hf_files).engine == "native"
    assert BortTokenizer.from_hf(*hf_files, parse_special_tokens=True).engine == "tokenizers"
    vocabulary = load_hf_files(*hf_files)
    assert BortTokenizer(ByteLevelBPEBackend(vocabulary, use_tiktoken=False)).engine == "tokenizers"


def test_native_ids_equal_tiktoken_engine(native, on_tiktoken, texts):
    expected = on_tiktoken.encode_many(texts)
    assert native.encode_many(texts) == expected  # cold cache
    assert native.encode_many(texts) == expected  # warm cache
    assert [native.encode(text, add_special_tokens=False) for text in texts[:300]] == expected[:300]
    assert sum(map(len, expected)) > 60000


def test_native_ids_equal_gluonnlp(hf_files, native, tmp_path):
    from bort.tokenizer.gluonnlp_reference import gluonnlp_gpt2_encoder

    reference = gluonnlp_gpt2_encoder(*hf_to_gluonnlp(*hf_files, str(tmp_path / "test.vocab"),
                                                      str(tmp_path / "test_bpe_ranks.json")))
    texts = _file_texts() + _nasty_texts(9, 600)
    assert native.encode_many(texts) == [reference(text) for text in texts]


def test_native_maps_ranks_back_to_ids_not_in_merge_order(vocabulary, texts):
    import dataclasses

    order = sorted(vocabulary.token_to_id, key=vocabulary.token_to_id.get)
    shuffled = order[:4] + random.Random(3).sample(order[4:-1], len(order) - 5) + order[-1:]
    reordered = dataclasses.replace(vocabulary, token_to_id={token: i for i, token in enumerate(shuffled)})
    fast = BortTokenizer(ByteLevelBPEBackend(reordered))
    slow = BortTokenizer(ByteLevelBPEBackend(reordered, use_tiktoken=False))
    assert fast.engine == "native" and fast._backend._tiktoken.rank_to_id is not None
    assert fast.encode_many(texts[:2000]) == slow.encode_many(texts[:2000])


def test_tiny_cache_gives_the_same_ids(native, texts):
    from bort.tokenizer.native_bpe import NativeEncoder

    backend = native._backend
    expected = native.encode_many(texts)
    for max_entries, max_bytes in ((3, 1 << 20), (1 << 20, 200), (0, 0)):
        tiny = NativeEncoder(backend._tiktoken, backend.vocab_size, max_entries, max_bytes)
        assert tiny.encode_many(texts) == expected
        assert tiny.encode_many(texts[::-1]) == expected[::-1]
        info = tiny.piece_cache().cache_info()
        assert info["entries"] <= max_entries and info["misses"] > 0
        if max_entries:
            assert info["clears"] > 100 and info["hits"] > 0
    big = NativeEncoder(backend._tiktoken, backend.vocab_size)
    big.encode_many(texts)
    again = big.piece_cache().cache_info()
    big.encode_many(texts)
    info = big.piece_cache().cache_info()
    # The second time every piece is a hit, except those too long to be cached.
    from bort.tokenizer._bytelevel import MAX_CACHED_PIECE

    too_long = sum(len(piece) > MAX_CACHED_PIECE for text in texts for piece in big.split(text))
    assert info["clears"] == 0 and info["misses"] == again["misses"] + too_long and too_long >= 3


def test_lone_surrogates_raise_input_error_naming_the_text(native):
    for bad, offset in (("bad \ud800 text", 4), ("\udfff", 0), ("ab\udc00cd", 2), (" \ud83d", 1),
                        ("x\U0001F600 \ud83dy", 3)):
        with pytest.raises(InputError, match=rf"texts\[2\] has a lone surrogate .* at character {offset}:"):
            native.encode_many(["fine", "also fine", bad])
    with pytest.raises(InputError, match=r"texts\[0\] has a lone surrogate '\\ud800' at character 1"):
        native.encode("a\ud800")
    assert native.encode_many(["still fine"]) == [native.encode("still fine", add_special_tokens=False)]


def test_pickled_tokenizer_rebuilds_the_native_engine(native, texts):
    copy = pickle.loads(pickle.dumps(native))
    assert copy.engine == "native" and copy._backend._native._pieces is None
    assert copy.encode_many(texts[:500]) == native.encode_many(texts[:500])


def test_threads_sharing_one_piece_cache_get_their_own_ids(native, texts):
    """The miss callable may be Python code that lets other threads run (here it sleeps): every call must keep
    its own buffers, and the cache must stay consistent when another thread fills or empties it meanwhile."""
    import time

    from bort.tokenizer import _bytelevel
    from bort.tokenizer.native_bpe import character_classes

    encode_piece = native._backend._tiktoken.encoding._core_bpe.encode_single_piece

    def slow_miss(piece):
        time.sleep(0)  # releases the GIL
        return encode_piece(piece)

    shared = _bytelevel.PieceCache(character_classes(), slow_miss, native.vocab_size, 50)
    expected = native.encode_many(texts)
    results = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, shared.encode_many(texts[k::3])))
               for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results.get(k) == expected[k::3] for k in range(3)] == [True] * 3
    assert shared.cache_info()["clears"] > 10


# ------------------------------------------------------------------------------------------- the C type
def test_piece_cache_checks_what_it_is_given():
    from bort.tokenizer import _bytelevel
    from bort.tokenizer.native_bpe import character_classes

    classes = character_classes()
    with pytest.raises(ValueError, match="0x110000|1114112"):
        _bytelevel.PieceCache(classes[:100], list, 10)
    with pytest.raises(TypeError, match="callable"):
        _bytelevel.PieceCache(classes, None, 10)
    out_of_range = _bytelevel.PieceCache(classes, lambda piece: [10], 10)
    with pytest.raises(ValueError, match="id 10, outside 0..9"):
        out_of_range.encode_many(["a"])
    with pytest.raises(ValueError, match="no ids"):
        _bytelevel.PieceCache(classes, lambda piece: [], 10).encode_many(["a"])
    with pytest.raises(ZeroDivisionError):
        _bytelevel.PieceCache(classes, lambda piece: 1 / 0, 10).encode_many(["a"])
    seen = []
    spy = _bytelevel.PieceCache(classes, lambda piece: seen.append(piece) or [len(piece)], 100)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        spy.encode_many(["a", b"b"])
    with pytest.raises(TypeError, match=r"^text must be a str"):
        spy.split(b"b")
    assert spy.encode_many(["Größe 🎉 Größe", "Größe"]) == [[7, 5, 8], [7]]
    assert seen == [b"a", "Größe".encode(), " 🎉".encode(), " Größe".encode()]  # UTF-8 of each new piece, once


def test_missing_extension_falls_back_to_tiktoken(vocabulary, monkeypatch, caplog):
    from bort.tokenizer import native_bpe

    monkeypatch.setitem(sys.modules, "bort.tokenizer._bytelevel", None)  # makes the import fail
    monkeypatch.setattr(native_bpe, "_import_failure_logged", False)
    with caplog.at_level("WARNING", logger="bort.tokenizer.native_bpe"):
        tok = BortTokenizer(ByteLevelBPEBackend(vocabulary))
    assert tok.engine == "tiktoken"
    assert "not built" in caplog.text and "build_ext --inplace" in caplog.text
    assert tok.encode("still encodes") == BortTokenizer(ByteLevelBPEBackend(vocabulary, use_native=False)).encode(
        "still encodes")
