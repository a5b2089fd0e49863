"""Tokenization: exactness against transformers' RobertaTokenizer and GluonNLP's GPT2BPETokenizer on
vocabularies trained here, both file formats and the converter, pair layouts, truncation, batching,
SentencePiece training and use, and clear errors for bad files."""
import importlib.util
import json
import os
import random
import shutil

import numpy as np
import pytest

from bort.errors import ConfigError, DataError, InputError, VocabError
from bort.tokenizer import BortTokenizer, gluonnlp_to_hf, hf_to_gluonnlp, train_byte_level_bpe, truncate_seqs_equal

HERE = os.path.dirname(os.path.abspath(__file__))
from conftest import SAMPLE_TEXT  # noqa: E402

MULTILINGUAL = os.path.join(HERE, "data", "tokenizer_multilingual.txt")
VIM_TUTORS = os.path.join(HERE, "data", "vim_tutor_excerpts.txt")  # real text in 8 scripts
SHIFT_JIS = os.path.join(HERE, "data", "tutor_ja_shift_jis.txt")  # Vim's Japanese tutor, not UTF-8
BPE_VOCAB_SIZE = 2000


def _script_main(name):
    """`main` of scripts/<name>.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(HERE, "..", "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _lines(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read().split("\n")


def _random_texts(seed, count, source_text):
    """Strings glued from random characters of real text plus odd whitespace: stress for the BPE merges."""
    rng = random.Random(seed)
    alphabet = sorted(set(source_text)) + [" ", "  ", "\t", "\n", "'s", "'ll", "\u00a0", "\U0001F600", "\u200d"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(count)]


@pytest.fixture(scope="module")
def corpus():
    texts = _lines(SAMPLE_TEXT) + _lines(MULTILINGUAL) + _lines(VIM_TUTORS)
    whole_files = [open(path, encoding="utf-8").read() for path in (SAMPLE_TEXT, MULTILINGUAL, VIM_TUTORS)]
    edge_cases = ["", " ", "  ", "\n", "\n\n \n", "a", "ab" * 700, "x" * 3000, "🎉" * 50, "'s'S's", "1" * 99]
    return texts + whole_files + edge_cases + _random_texts(0, 150, "".join(whole_files))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bpe")
    train_byte_level_bpe([SAMPLE_TEXT, MULTILINGUAL, VIM_TUTORS], str(directory), BPE_VOCAB_SIZE)
    return directory


@pytest.fixture(scope="module")
def hf_files(hf_dir):
    return str(hf_dir / "vocab.json"), str(hf_dir / "merges.txt")


@pytest.fixture(scope="module")
def gluonnlp_files(hf_files, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gluonnlp")
    return hf_to_gluonnlp(*hf_files, str(directory / "roberta_test.vocab"),
                          str(directory / "test_bpe_ranks.json"))


@pytest.fixture(scope="module")
def tok(hf_files):
    return BortTokenizer.from_hf(*hf_files)


@pytest.fixture(scope="module")
def hf_reference(hf_dir):
    from transformers import AddedToken, RobertaTokenizer

    # roberta-base's own tokenizer_config gives <mask> lstrip=True; plain files do not carry it.
    return RobertaTokenizer.from_pretrained(str(hf_dir), mask_token=AddedToken("<mask>", lstrip=True))


# ------------------------------------------------------------------------------------------- vocabulary
def test_training_gives_robertas_special_ids(tok, hf_files):
    vocab = json.load(open(hf_files[0], encoding="utf-8"))
    assert [tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id] == [0, 1, 2, 3]
    assert tok.mask_id == tok.vocab_size - 1 == len(vocab) - 1 == BPE_VOCAB_SIZE - 1
    assert vocab["<mask>"] == tok.mask_id
    assert (tok.cls_id, tok.sep_id) == (tok.bos_id, tok.eos_id)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, tok.mask_id]) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


# ------------------------------------------------------------------------------------------- exactness
def test_ids_equal_transformers_roberta_tokenizer(tok, hf_files, hf_reference, corpus):
    parsing = BortTokenizer.from_hf(*hf_files, parse_special_tokens=True)
    for text in corpus:
        expected = hf_reference(text)["input_ids"]
        assert parsing.encode(text) == expected, repr(text)
        assert parsing.tokenize(text) == hf_reference.tokenize(text), repr(text)
        if "<" not in text:  # without special-token look-alikes both modes agree
            assert tok.encode(text) == expected, repr(text)


def test_pairs_equal_transformers_roberta_tokenizer(hf_files, hf_reference, corpus):
    parsing = BortTokenizer.from_hf(*hf_files, parse_special_tokens=True)
    rng = random.Random(1)
    for _ in range(80):
        text_a, text_b = rng.choice(corpus), rng.choice(corpus) or "b"  # transformers treats b="" as no pair
        assert parsing.encode_pair(text_a, text_b) == hf_reference(text_a, text_b)["input_ids"]


def test_ids_equal_gluonnlp_gpt2bpe_tokenizer(hf_files, gluonnlp_files, corpus):
    from bort.tokenizer.gluonnlp_reference import gluonnlp_gpt2_encoder

    reference = gluonnlp_gpt2_encoder(*gluonnlp_files)
    from_gluonnlp = BortTokenizer.from_gluonnlp(*gluonnlp_files)
    from_hf = BortTokenizer.from_hf(*hf_files)
    for text in corpus:
        expected = reference(text)
        assert from_gluonnlp.encode(text, add_special_tokens=False) == expected, repr(text)
        assert from_hf.encode(text, add_special_tokens=False) == expected, repr(text)
        assert from_gluonnlp.tokenize(text) == reference.tokenizer(text)
    assert len(reference.vocab) == from_gluonnlp.vocab_size


def test_special_token_lookalikes_are_text_by_default(tok, hf_files):
    text = "fill <mask> and <s>"
    plain = tok.encode(text, add_special_tokens=False)
    assert tok.mask_id not in plain and tok.bos_id not in plain
    parsed = BortTokenizer.from_hf(*hf_files, parse_special_tokens=True).encode(text, add_special_tokens=False)
    assert tok.mask_id in parsed and tok.bos_id in parsed


def test_round_trip_is_exact(tok, corpus):
    for text in corpus:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text
    assert tok.decode(tok.encode("hi there")) == "<s>hi there</s>"
    assert tok.decode(tok.encode("hi there"), skip_special_tokens=True) == "hi there"
    assert tok.decode(np.array(tok.encode("hi"), dtype=np.int32)) == "<s>hi</s>"


def test_tokenizers_pickle_for_worker_processes(tok):
    import pickle

    copy = pickle.loads(pickle.dumps(tok))
    assert copy.encode_pair("Größe 🎉", "x") == tok.encode_pair("Größe 🎉", "x")
    assert copy.special_ids == tok.special_ids


def test_encode_many_equals_encode(tok, corpus):
    assert tok.encode_many(corpus) == [tok.encode(text, add_special_tokens=False) for text in corpus]
    assert tok.encode_many(corpus[:5], add_special_tokens=True) == [tok.encode(text) for text in corpus[:5]]


# ------------------------------------------------------------------------------------------- tiktoken engine
def _unicode_stress_texts(seed, count):
    """Random code points from all planes, weighted towards whitespace variants, contractions, controls and
    letters/digits of many scripts: where regex engines' Unicode tables and look-ahead handling could differ."""
    rng = random.Random(seed)
    special = list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u3000\u180e\u200b"
                   "\ufeff") + ["'s", "'ll", "'S", "'re", "'d", "٣", "߀", "Ⅻ", "ǅ", "\u0301"]

    def char():
        draw = rng.random()
        if draw < 0.4:
            return rng.choice(special)
        if draw < 0.6:
            return chr(rng.randrange(0x20, 0x250))
        while True:
            code = rng.randrange(0x110000 if draw < 0.8 else 0x10000)
            if not 0xD800 <= code < 0xE000:
                return chr(code)

    return ["".join(char() for _ in range(rng.randint(0, 40))) for _ in range(count)]


def _tokenizer_pair(vocabulary):
    """The same vocabulary on tiktoken (without the native engine, tested in test_tokenizer_native.py) and on
    `tokenizers`."""
    from bort.tokenizer.bpe_backend import ByteLevelBPEBackend

    return (BortTokenizer(ByteLevelBPEBackend(vocabulary, use_native=False)),
            BortTokenizer(ByteLevelBPEBackend(vocabulary, use_tiktoken=False)))


def _transformers_reference(vocab_json, merges_txt):
    from transformers import RobertaTokenizer

    # split_special_tokens: a literal "<s>" in the text stays text, as with parse_special_tokens=False.
    return RobertaTokenizer(vocab=vocab_json, merges=merges_txt, split_special_tokens=True)


def test_tiktoken_engine_equals_tokenizers_and_transformers(hf_files, corpus):
    from bort.tokenizer import load_hf_files

    fast, slow = _tokenizer_pair(load_hf_files(*hf_files))
    assert (fast.engine, slow.engine) == ("tiktoken", "tokenizers")
    assert BortTokenizer.from_hf(*hf_files).engine == "native"
    assert BortTokenizer.from_hf(*hf_files, parse_special_tokens=True).engine == "tokenizers"
    reference = _transformers_reference(*hf_files)
    texts = corpus + _unicode_stress_texts(2, 400) + ["fill <mask> and <s></s>", "<pad><unk>"]
    expected = slow.encode_many(texts)
    assert fast.encode_many(texts) == expected
    assert [fast.encode(text, add_special_tokens=False) for text in texts] == expected
    for text, ids in zip(texts, expected):
        assert reference.encode(text, add_special_tokens=False) == ids, repr(text)
    assert sum(map(len, expected)) > 40000  # a real workload, not a handful of tokens


def test_tiktoken_maps_ranks_back_to_ids_not_in_merge_order(hf_files, corpus):
    """RoBERTa's ids follow fairseq's frequency order, not the merges': tiktoken's ranks must be mapped."""
    import dataclasses

    from bort.tokenizer import load_hf_files

    vocabulary = load_hf_files(*hf_files)
    order = sorted(vocabulary.token_to_id, key=vocabulary.token_to_id.get)
    shuffled = order[:4] + random.Random(3).sample(order[4:-1], len(order) - 5) + order[-1:]
    fast, slow = _tokenizer_pair(dataclasses.replace(vocabulary, token_to_id={t: i for i, t in enumerate(shuffled)}))
    assert fast.engine == "tiktoken"
    texts = corpus + _unicode_stress_texts(4, 100)
    assert fast.encode_many(texts) == slow.encode_many(texts)


def _handmade_vocabulary(directory, merges, drop=()):
    """vocab.json + merges.txt: RoBERTa's special tokens, the 256 byte tokens (less `drop`) and what `merges`
    make, so tests can state merge lists BPE training would never produce."""
    from tokenizers import pre_tokenizers

    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + [char for char in sorted(pre_tokenizers.ByteLevel.alphabet())
                                                  if char not in drop]
    for left, right in merges:
        if left + right not in tokens:
            tokens.append(left + right)
    tokens.append("<mask>")
    directory.mkdir()
    vocab_json = _write(directory / "vocab.json", json.dumps({token: idx for idx, token in enumerate(tokens)}))
    merges_txt = _write(directory / "merges.txt",
                        "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges))
    return vocab_json, merges_txt


def _letter_soup(seed, count, letters="abcd"):
    rng = random.Random(seed)
    return ["".join(rng.choice(letters + "  \n") for _ in range(rng.randint(0, 30))) for _ in range(count)]


def test_tiktoken_falls_back_where_its_merge_rule_differs(tmp_path, caplog):
    import tiktoken

    # "abc" is made by (ab, c), but BPE of "abc" joins (b, c) first and ends at [a, bc]: "abc" is unreachable.
    merges = [("b", "c"), ("a", "b"), ("ab", "c")]
    files = _handmade_vocabulary(tmp_path / "unreachable", merges)
    with caplog.at_level("WARNING", logger="bort.tokenizer.tiktoken_bpe"):
        tok = BortTokenizer.from_hf(*files)
    assert tok.engine == "tokenizers"
    assert "['abc']" in caplog.text and "instead of tiktoken" in caplog.text
    reference = _transformers_reference(*files)
    assert tok.tokenize("abc") == ["a", "bc"] == reference.tokenize("abc")
    for text in _letter_soup(5, 300, "abc"):
        assert tok.encode(text, add_special_tokens=False) == reference.encode(text, add_special_tokens=False)
    # The fallback is needed: tiktoken itself, ranked by merge line, returns the whole piece.
    vocab = json.load(open(files[0], encoding="utf-8"))
    ranks = {char.encode(): vocab[char] for char in "abc"}
    ranks.update({token.encode(): 1000 + line for line, token in enumerate(["bc", "ab", "abc"])})
    ranks.update({bytes([byte]): 2000 + byte for byte in range(256) if bytes([byte]) not in ranks})
    raw = tiktoken.Encoding("raw", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    assert raw.encode_ordinary("abc") == [1002]

    caplog.clear()
    without_byte = _handmade_vocabulary(tmp_path / "no_byte", [("a", "b")], drop=("Ā",))
    with caplog.at_level("WARNING", logger="bort.tokenizer.tiktoken_bpe"):
        assert BortTokenizer.from_hf(*without_byte).engine == "tokenizers"
    assert "byte 0x00" in caplog.text


def test_tiktoken_ranks_a_token_made_twice_by_the_merge_bpe_uses(tmp_path):
    # "abc" is listed as (ab, c) first, but BPE makes it by (a, bc): (b, c) comes before (a, b). Ranking
    # "abc" by its first line would join a+bc before bc+d in "abcd"; GPT-2 makes [a, bcd].
    from bort.tokenizer import load_hf_files

    merges = [("b", "c"), ("a", "b"), ("ab", "c"), ("bc", "d"), ("a", "bc")]
    files = _handmade_vocabulary(tmp_path / "twice", merges)
    tok, _ = _tokenizer_pair(load_hf_files(*files))
    native = BortTokenizer.from_hf(*files)
    assert (tok.engine, native.engine) == ("tiktoken", "native")
    reference = _transformers_reference(*files)
    assert reference.tokenize("abcd") == ["a", "bcd"]
    assert tok.convert_ids_to_tokens(tok.encode("abcd", add_special_tokens=False)) == ["a", "bcd"]
    texts = _letter_soup(6, 500)
    expected = [reference.encode(text, add_special_tokens=False) for text in texts]
    assert tok.encode_many(texts) == expected
    assert native.encode_many(texts) == expected


def test_encode_many_over_threads_equals_encode(hf_files, corpus):
    from bort.tokenizer import load_hf_files
    from bort.tokenizer.tiktoken_bpe import PARALLEL_MIN_TEXTS

    tok, _ = _tokenizer_pair(load_hf_files(*hf_files))  # the tiktoken engine: the one that uses threads
    batch = (corpus * (2 * PARALLEL_MIN_TEXTS // len(corpus) + 2))[::-1]
    assert len(batch) > 2 * PARALLEL_MIN_TEXTS and tok.engine == "tiktoken"
    assert tok.encode_many(batch) == [tok.encode(text, add_special_tokens=False) for text in batch]
    ids, valid_length = tok.encode_batch(batch[:3000])
    assert valid_length.tolist() == [len(tok.encode(text)) for text in batch[:3000]]
    with pytest.raises(InputError, match=r"texts\[2\] has a lone surrogate"):
        tok.encode_many(["fine", "also fine", "bad \ud800 text"])


# ------------------------------------------------------------------------------------------- pairs
def test_pair_layouts(tok, hf_files):
    ids_a = tok.encode("first text", add_special_tokens=False)
    ids_b = tok.encode("second one", add_special_tokens=False)
    bos, eos = tok.bos_id, tok.eos_id
    assert tok.encode_pair("first text", "second one") == [bos, *ids_a, eos, eos, *ids_b, eos]
    assert tok.encode_pair("first text", "second one", pair_layout="bort_release") == \
        [bos, *ids_a, eos, *ids_b, eos]
    release = BortTokenizer.from_hf(*hf_files, pair_layout="bort_release")
    assert release.encode_pair("first text", "second one") == [bos, *ids_a, eos, *ids_b, eos]
    assert tok.num_special_tokens(pair=True) == 4 and release.num_special_tokens(pair=True) == 3
    with pytest.raises(ConfigError, match="pair_layout"):
        tok.encode_pair("a", "b", pair_layout="bert")


def _pop_longer(len_a, len_b, budget):
    """BERT's pair truncation: drop the last token of the longer sequence (the second on ties)."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def test_truncate_seqs_equal_matches_gluonnlp_and_pop_longer():
    from gluonnlp.data.bert.glue import truncate_seqs_equal as gluonnlp_truncate

    for len_a in range(0, 9):
        for len_b in range(0, 9):
            for budget in range(0, 18):
                seqs = [list(range(len_a)), list(range(100, 100 + len_b))]
                ours = truncate_seqs_equal(seqs, budget)
                assert ours == gluonnlp_truncate([list(s) for s in seqs], budget)
                assert (len(ours[0]), len(ours[1])) == _pop_longer(len_a, len_b, budget)
    three = [[1] * 7, [2] * 2, [3] * 5]
    assert truncate_seqs_equal(three, 9) == gluonnlp_truncate([list(s) for s in three], 9)


def test_encode_pair_truncation_counts_special_tokens(tok):
    long_a = "one two three four five six seven eight nine ten eleven twelve"
    short_b = "yes"
    ids_a = tok.encode(long_a, add_special_tokens=False)
    ids_b = tok.encode(short_b, add_special_tokens=False)
    for layout, specials in (("roberta", 4), ("bort_release", 3)):
        for max_length in range(specials, len(ids_a) + len(ids_b) + specials + 3):
            ids = tok.encode_pair(long_a, short_b, max_length=max_length, pair_layout=layout)
            assert len(ids) == min(max_length, len(ids_a) + len(ids_b) + specials)
            cut_a, cut_b = _pop_longer(len(ids_a), len(ids_b), max_length - specials)
            middle = [tok.eos_id] * (specials - 2)
            assert ids == [tok.bos_id, *ids_a[:cut_a], *middle, *ids_b[:cut_b], tok.eos_id]
    assert tok.encode(long_a, max_length=5) == [tok.bos_id, *ids_a[:3], tok.eos_id]
    with pytest.raises(ConfigError, match="max_length"):
        tok.encode_pair("a", "b", max_length=3)


# ------------------------------------------------------------------------------------------- batches
def test_encode_batch_pads_and_reports_valid_length(tok):
    items = ["short", ("a pair", "of texts here"), "", "a much longer single text than the others"]
    ids, valid_length = tok.encode_batch(items)
    expected = [tok.encode("short"), tok.encode_pair("a pair", "of texts here"), tok.encode(""),
                tok.encode("a much longer single text than the others")]
    assert ids.dtype == np.int32 and valid_length.dtype == np.int32
    assert ids.shape == (4, max(len(row) for row in expected))
    assert valid_length.tolist() == [len(row) for row in expected]
    for row, want in zip(ids, expected):
        assert row[:len(want)].tolist() == want
        assert (row[len(want):] == tok.pad_id).all()
    fixed, fixed_length = tok.encode_batch(items, max_length=8, pad_to_max_length=True, pair_layout="bort_release")
    assert fixed.shape == (4, 8)
    assert fixed[1, :fixed_length[1]].tolist() == tok.encode_pair("a pair", "of texts here", max_length=8,
                                                                    pair_layout="bort_release")
    empty_ids, empty_length = tok.encode_batch([])
    assert empty_ids.shape == (0, 0) and empty_length.shape == (0,)
    with pytest.raises(InputError, match=r"texts_or_pairs\[1\]"):
        tok.encode_batch(["ok", 5])


# ------------------------------------------------------------------------------------------- formats
def test_gluonnlp_files_are_read_by_gluonnlp(tok, gluonnlp_files):
    import gluonnlp

    with open(gluonnlp_files[0], encoding="utf-8") as handle:
        vocab = gluonnlp.Vocab.from_json(handle.read())
    assert vocab.idx_to_token == tok.convert_ids_to_tokens(range(tok.vocab_size))
    assert (vocab.unknown_token, vocab.padding_token, vocab.bos_token, vocab.eos_token, vocab.mask_token) == \
        ("<unk>", "<pad>", "<s>", "</s>", "<mask>")


def test_converter_round_trip_is_lossless(hf_files, gluonnlp_files, tmp_path):
    back = gluonnlp_to_hf(*gluonnlp_files, str(tmp_path / "hf"))
    assert json.load(open(back[0], encoding="utf-8")) == json.load(open(hf_files[0], encoding="utf-8"))
    assert _lines(back[1]) == _lines(hf_files[1])


def test_convert_vocab_script(gluonnlp_files, hf_files, tmp_path):
    main = _script_main("convert_vocab")

    assert main(["--to", "hf", "--vocab", gluonnlp_files[0], "--merges", gluonnlp_files[1],
                 "--output_dir", str(tmp_path / "hf")]) == 0
    assert main(["--to", "gluonnlp", "--vocab", str(tmp_path / "hf" / "vocab.json"),
                 "--merges", str(tmp_path / "hf" / "merges.txt"), "--output_dir", str(tmp_path / "g")]) == 0
    again = BortTokenizer.from_gluonnlp(str(tmp_path / "g" / "roberta_vocab.vocab"),
                                        str(tmp_path / "g" / "roberta_bpe_ranks.json"))
    original = BortTokenizer.from_hf(*hf_files)
    text = "Größe 🎉 matters, doesn't it?"
    assert again.encode_pair(text, text) == original.encode_pair(text, text)


def test_save_hf_loads_in_transformers_and_here(tok, tmp_path):
    from transformers import AutoTokenizer

    out = tok.save_hf(str(tmp_path / "saved"))
    reloaded = BortTokenizer.from_directory(out)
    hf = AutoTokenizer.from_pretrained(out)
    parsing = BortTokenizer.from_directory(out, parse_special_tokens=True)
    for text in ("Hello <mask> world!", "Größe 🎉 matters", ""):
        assert reloaded.encode(text) == tok.encode(text)
        assert hf(text)["input_ids"] == parsing.encode(text)
    assert hf.mask_token_id == tok.mask_id and hf.pad_token_id == tok.pad_id


def test_from_gluonnlp_cache_finds_the_cached_files(gluonnlp_files, tmp_path, tok):
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(gluonnlp_files[0], root / "openwebtext_ccnews_stories_books_cased-1a118d55.vocab")
    shutil.copy(gluonnlp_files[1], root / "openai_webtext_bpe_ranks-396d4d8e.json")
    cached = BortTokenizer.from_gluonnlp_cache(str(root))
    assert cached.encode("cached text") == tok.encode("cached text")
    found = BortTokenizer.from_directory(str(root), pair_layout="bort_release")
    assert found.encode_pair("a", "b") == [tok.bos_id, *tok.encode("a", False), tok.eos_id,
                                           *tok.encode("b", False), tok.eos_id]
    with pytest.raises(VocabError, match="no file matching"):
        BortTokenizer.from_gluonnlp_cache(str(tmp_path))


# ------------------------------------------------------------------------------------------- bad input
def _write(path, content, mode="w"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
        handle.write(content)
    return str(path)


def test_bad_vocabulary_files_name_file_and_line(hf_files, tmp_path):
    vocab_json, merges_txt = hf_files
    vocab = json.load(open(vocab_json, encoding="utf-8"))
    merges = open(merges_txt, encoding="utf-8").read().split("\n")

    broken = _write(tmp_path / "broken.json", '{\n"<s>": 0,\n"<pad>" 1\n}')
    with pytest.raises(VocabError, match=r"broken.json, line 3: not valid JSON"):
        BortTokenizer.from_hf(broken, merges_txt)

    latin1 = _write(tmp_path / "latin1.json", b'{"<s>": 0,\n"caf\xe9": 1}', "wb")
    with pytest.raises(VocabError, match=r"latin1.json, line 2: byte 0xe9"):
        BortTokenizer.from_hf(latin1, merges_txt)

    with pytest.raises(VocabError, match="missing.json"):
        BortTokenizer.from_hf(str(tmp_path / "missing.json"), merges_txt)

    no_mask = _write(tmp_path / "no_mask.json", json.dumps({k: v for k, v in vocab.items() if k != "<mask>"}))
    with pytest.raises(VocabError, match=r"lacks the special tokens mask"):
        BortTokenizer.from_hf(no_mask, merges_txt)

    gap = dict(vocab)
    gap["<mask>"] = len(vocab) + 5
    with pytest.raises(VocabError, match="without gaps"):
        BortTokenizer.from_hf(_write(tmp_path / "gap.json", json.dumps(gap)), merges_txt)

    shared = dict(vocab)
    shared["<mask>"] = 0
    with pytest.raises(VocabError, match="share id 0"):
        BortTokenizer.from_hf(_write(tmp_path / "shared.json", json.dumps(shared)), merges_txt)

    unknown = merges[:5] + ["Ġzz qq"] + merges[5:]
    with pytest.raises(VocabError, match=r"unknown_merge.txt, line 6: .*'Ġzz'"):
        BortTokenizer.from_hf(vocab_json, _write(tmp_path / "unknown_merge.txt", "\n".join(unknown)))

    malformed = merges[:3] + ["onlyonetoken"] + merges[3:]
    with pytest.raises(VocabError, match=r"malformed.txt, line 4: expected a merge"):
        BortTokenizer.from_hf(vocab_json, _write(tmp_path / "malformed.txt", "\n".join(malformed)))


def test_bad_gluonnlp_files(gluonnlp_files, tmp_path):
    vocab_file, ranks_file = gluonnlp_files
    ranks = open(ranks_file, encoding="utf-8").read().split("\n")
    headless = _write(tmp_path / "headless_ranks.json", "\n".join(ranks[1:]))
    with pytest.raises(VocabError, match=r"headless_ranks.json, line 1: expected the '#version"):
        BortTokenizer.from_gluonnlp(vocab_file, headless)

    unterminated = _write(tmp_path / "unterminated_ranks.json", "\n".join(ranks).rstrip("\n"))
    with pytest.raises(VocabError, match=rf"unterminated_ranks.json, line {len(ranks) - 1}: .*newline"):
        BortTokenizer.from_gluonnlp(vocab_file, unterminated)

    payload = json.load(open(vocab_file, encoding="utf-8"))
    del payload["identifiers_to_tokens"]["mask_token"]
    no_mask = _write(tmp_path / "no_mask.vocab", json.dumps(payload))
    with pytest.raises(VocabError, match=r"no_mask.vocab: .*lacks the special tokens mask"):
        BortTokenizer.from_gluonnlp(no_mask, ranks_file)

    with pytest.raises(VocabError, match="not a GluonNLP vocabulary"):
        BortTokenizer.from_gluonnlp(_write(tmp_path / "list.vocab", "[1, 2]"), ranks_file)

    out = tmp_path / "not_written"
    with pytest.raises(VocabError):
        gluonnlp_to_hf(no_mask, ranks_file, str(out))
    assert not out.exists()


def test_bad_ids_and_inputs(tok):
    with pytest.raises(InputError, match=f"id {tok.vocab_size} at position 1"):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(InputError, match="text must be a str"):
        tok.encode(b"bytes")


# ------------------------------------------------------------------------------------------- SentencePiece
@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_train_vocab_sentencepiece(model_type, tmp_path):
    main = _script_main("train_vocab")

    prefix = tmp_path / f"spm_{model_type}"
    assert main(["--input", SAMPLE_TEXT, MULTILINGUAL, "--model_prefix", str(prefix), "--vocab_size", "800",
                 "--model_type", model_type, "--normalization_rule_name", "identity"]) == 0
    sp_tok = BortTokenizer.from_sentencepiece(str(prefix) + ".model")
    assert sp_tok.backend_kind == "sentencepiece"
    assert sp_tok.vocab_size == 800
    assert sp_tok.special_ids == {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 4}
    assert sp_tok.convert_ids_to_tokens(range(5)) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

    import sentencepiece

    reference = sentencepiece.SentencePieceProcessor(model_file=str(prefix) + ".model")
    texts = [line for line in _lines(SAMPLE_TEXT) + _lines(MULTILINGUAL) if line.strip()]
    assert sp_tok.encode_many(texts) == [reference.encode(text) for text in texts]
    simple = "The rain had only ceased with the gray streaks of morning."
    ids = sp_tok.encode(simple)
    assert ids[0] == 0 and ids[-1] == 2 and 3 not in ids
    assert sp_tok.decode(ids, skip_special_tokens=True) == simple
    assert sp_tok.encode_pair(simple, "yes", pair_layout="bort_release")[len(ids) - 1:] == \
        [2, *sp_tok.encode("yes", add_special_tokens=False), 2]
    batch, lengths = sp_tok.encode_batch([simple, (simple, "yes")], max_length=12)
    assert batch.shape == (2, 12) and lengths.tolist() == [12, 12]
    assert sp_tok.mask_id not in sp_tok.encode("a <mask> here")
    parsing = BortTokenizer.from_sentencepiece(str(prefix) + ".model", parse_special_tokens=True)
    assert parsing.mask_id in parsing.encode("a <mask> here")
    saved = sp_tok.save_hf(str(tmp_path / "saved"))
    assert BortTokenizer.from_directory(saved).encode(simple) == ids


def test_train_vocab_byte_level_bpe_script(tmp_path):
    main = _script_main("train_vocab")

    out = tmp_path / "bpe"
    assert main(["--input", SAMPLE_TEXT, "--model_prefix", str(out), "--vocab_size", "500",
                 "--model_type", "byte_level_bpe"]) == 0
    trained = BortTokenizer.from_directory(str(out))
    assert trained.vocab_size == 500 and trained.mask_id == 499 and trained.pad_id == 1


def test_sentencepiece_errors(tmp_path):
    import sentencepiece

    main = _script_main("train_vocab")

    prefix = tmp_path / "never"
    with pytest.raises(DataError, match=r"tutor_ja_shift_jis.txt, line 2: byte 0x8b at column 12"):
        main(["--input", SAMPLE_TEXT, SHIFT_JIS, "--model_prefix", str(prefix), "--vocab_size", "800"])
    bad = _write(tmp_path / "bad.txt", b"good line\nsecond line\nbad \xff\xfe line\n", "wb")
    with pytest.raises(DataError, match=r"bad.txt, line 3: byte 0xff at column 5"):
        main(["--input", bad, "--model_prefix", str(prefix), "--vocab_size", "800", "--model_type",
              "byte_level_bpe"])
    assert not os.path.exists(str(prefix))
    assert not os.path.exists(str(prefix) + ".model") and not os.path.exists(str(prefix) + ".vocab")
    with pytest.raises(ConfigError, match="SentencePiece training"):
        main(["--input", SAMPLE_TEXT, "--model_prefix", str(prefix), "--vocab_size", "100000"])
    assert not os.path.exists(str(prefix) + ".model")

    plain = tmp_path / "plain"
    sentencepiece.SentencePieceTrainer.Train(input=SAMPLE_TEXT, model_prefix=str(plain), vocab_size=300,
                                             minloglevel=2)
    with pytest.raises(VocabError, match=r"plain.model: .*no pad, mask"):
        BortTokenizer.from_sentencepiece(str(plain) + ".model")
    garbage = _write(tmp_path / "garbage.model", b"not a model", "wb")
    with pytest.raises(VocabError, match="garbage.model: not a readable SentencePiece model"):
        BortTokenizer.from_sentencepiece(garbage)
