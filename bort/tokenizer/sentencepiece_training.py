"""Training a SentencePiece vocabulary whose special ids are stated, not left to SentencePiece's defaults.

The ids follow RoBERTa where SentencePiece allows it: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3; `<mask>` is a
control piece at id 4 (SentencePiece places extra pieces right after the reserved ones, so it cannot be last
as in RoBERTa). The vocabulary size includes all five.
"""
import os
import shutil
import tempfile

from ..errors import ConfigError
from .sentencepiece_backend import MASK_PIECE
from .text_files import check_utf8_files

SENTENCEPIECE_SPECIAL_IDS = {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 4}
MODEL_TYPES = ("bpe", "unigram")
NORMALIZATIONS = ("nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity")


def train_sentencepiece(input_files, model_prefix, vocab_size, model_type="unigram", character_coverage=0.9995,
                        byte_fallback=True, normalization_rule_name="nmt_nfkc", input_sentence_size=0,
                        max_sentence_length=4192, num_threads=1, extra_options=None):
    """Train on UTF-8 text files (one sentence per line); writes `<model_prefix>.model` and `.vocab`.

    Inputs are checked for UTF-8 first (`DataError` naming file and line); both outputs appear together or
    not at all. Returns the path of the `.model` file.
    """
    import sentencepiece

    if model_type not in MODEL_TYPES:
        raise ConfigError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    if normalization_rule_name not in NORMALIZATIONS:
        raise ConfigError(f"normalization_rule_name must be one of {', '.join(NORMALIZATIONS)}, "
                          f"got {normalization_rule_name!r}")
    input_files = [os.fspath(path) for path in input_files]
    if not input_files:
        raise ConfigError("no input files given")
    if vocab_size <= len(SENTENCEPIECE_SPECIAL_IDS):
        raise ConfigError(f"vocab_size={vocab_size} leaves no room beside the {len(SENTENCEPIECE_SPECIAL_IDS)} "
                          f"special tokens")
    check_utf8_files(input_files)
    model_prefix = os.path.abspath(os.fspath(model_prefix))
    out_dir = os.path.dirname(model_prefix)
    os.makedirs(out_dir, exist_ok=True)
    options = dict(
        input=",".join(input_files), model_type=model_type, vocab_size=vocab_size,
        character_coverage=character_coverage, byte_fallback=byte_fallback,
        normalization_rule_name=normalization_rule_name, input_sentence_size=input_sentence_size,
        shuffle_input_sentence=True, max_sentence_length=max_sentence_length, num_threads=num_threads,
        bos_id=SENTENCEPIECE_SPECIAL_IDS["bos"], pad_id=SENTENCEPIECE_SPECIAL_IDS["pad"],
        eos_id=SENTENCEPIECE_SPECIAL_IDS["eos"], unk_id=SENTENCEPIECE_SPECIAL_IDS["unk"],
        bos_piece="<s>", pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        control_symbols=[MASK_PIECE], minloglevel=2)
    options.update(extra_options or {})
    # Train into a scratch directory beside the output so a failed or interrupted run leaves nothing behind.
    scratch = tempfile.mkdtemp(prefix=".spm.", dir=out_dir)
    try:
        options["model_prefix"] = os.path.join(scratch, "model")
        try:
            sentencepiece.SentencePieceTrainer.Train(**options)
        except RuntimeError as err:
            raise ConfigError(f"SentencePiece training on {', '.join(input_files)} failed: {err}") from None
        for suffix in (".vocab", ".model"):
            os.replace(os.path.join(scratch, "model" + suffix), model_prefix + suffix)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return model_prefix + ".model"
