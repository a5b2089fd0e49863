"""The tokenizer files that go with an export, building text pairs the way the model was trained.

`BortTokenizer.save_hf` writes `vocab.json` + `merges.txt` and a `tokenizer_config.json` naming
`RobertaTokenizer`, which builds pairs RoBERTa's way (`<s> A </s></s> B </s>`) and, in transformers 5, rebuilds
that post-processor whenever it loads. A model fine-tuned with the release's layout (`<s> A </s> B </s>`)
would then be served other inputs than it was trained on. So every byte-level BPE export also gets a
`tokenizer.json` whose post-processor is a template of the model's own layout, and for the release's layout the
config names the generic `PreTrainedTokenizerFast`, which uses `tokenizer.json` as it is. `check_hf_tokenizer`
then loads the directory with `AutoTokenizer` and compares its ids with the package's.
"""
import json
import os

from ..io_utils import atomic_open

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SAMPLE_PAIR = ("The quick brown fox jumps over the lazy dog.", "A second sentence, with 3 numbers: 1, 2 and 3!")


def pair_template(tokenizer, pair_layout):
    """The `tokenizers` template of a pair in `pair_layout`, e.g. `<s> $A </s> $B </s>`."""
    bos, eos = tokenizer.special_tokens["bos"], tokenizer.special_tokens["eos"]
    middle = f"{eos} {eos}" if pair_layout == "roberta" else eos
    return f"{bos} $A {middle} $B {eos}"


def write_tokenizer(tokenizer, directory):
    """Write the tokenizer into `directory` for transformers; returns notes for the export's report."""
    tokenizer.save_hf(directory)
    layout = tokenizer.pair_layout
    if tokenizer.backend_kind != "byte_level_bpe":
        return [f"WARNING: the SentencePiece tokenizer files carry the pair layout only as bort_pair_layout "
                f"({layout}) in {TOKENIZER_CONFIG}; transformers' AutoTokenizer will not build pairs that way. "
                "Build pair inputs with bort's tokenizer (BortTokenizer.from_directory) instead"]
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    specials, ids = tokenizer.special_tokens, tokenizer.special_ids
    backend = Tokenizer(models.BPE.from_file(os.path.join(directory, "vocab.json"),
                                             os.path.join(directory, "merges.txt")))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{specials['bos']} $A {specials['eos']}", pair=pair_template(tokenizer, layout),
        special_tokens=[(specials["bos"], ids["bos"]), (specials["eos"], ids["eos"])])
    # <mask> swallows the space before it, as in save_hf's special_tokens_map.
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False, lstrip=role == "mask")
                                for role, token in specials.items()])
    with atomic_open(os.path.join(directory, TOKENIZER_JSON), "w", encoding="utf-8") as handle:
        handle.write(backend.to_str())
    if layout != "roberta":
        config_path = os.path.join(directory, TOKENIZER_CONFIG)
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        with atomic_open(config_path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, ensure_ascii=False, indent=2)
    return []


def check_hf_tokenizer(tokenizer, directory):
    """Load `directory` with transformers' AutoTokenizer and compare a text pair's ids with `tokenizer`'s;
    returns notes (a loud one when they differ)."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(directory)
    theirs = list(loaded(*SAMPLE_PAIR)["input_ids"])
    ours = tokenizer.encode_pair(*SAMPLE_PAIR)
    if theirs == ours:
        return [f"AutoTokenizer on the export builds text pairs like the model was trained "
                f"({tokenizer.pair_layout}: {pair_template(tokenizer, tokenizer.pair_layout)})"]
    return [f"WARNING: AutoTokenizer on the export does not reproduce the training pair layout "
            f"({tokenizer.pair_layout}); a sample pair gives {theirs} instead of {ours}. Build pair inputs with "
            "bort's tokenizer (BortTokenizer.from_directory) instead"]
