"""SentencePiece vocabularies (BPE or unigram) behind the same interface as the byte-level BPE, for
pretraining Bort on other languages. `scripts/train_vocab.py` makes them; see `sentencepiece_training`."""
import os
import re

from ..errors import VocabError

MASK_PIECE = "<mask>"


class SentencePieceBackend:
    """A trained SentencePiece model; special ids come from the model itself (pad/bos/eos/unk ids set at
    training time, `<mask>` as a control or user-defined piece).

    parse_special_tokens: as for the byte-level BPE: True turns literal special-token strings in the text
    into their ids; False (default) leaves text alone (control pieces never match text in SentencePiece).
    """

    kind = engine = "sentencepiece"

    def __init__(self, model_file, parse_special_tokens=False):
        import sentencepiece

        self.model_file = os.path.abspath(os.fspath(model_file))
        if not os.path.isfile(self.model_file):
            raise VocabError(f"{self.model_file}: SentencePiece model file not found")
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.Load(self.model_file)
        except (OSError, RuntimeError) as err:
            raise VocabError(f"{self.model_file}: not a readable SentencePiece model ({err})") from None
        self._sp = processor
        ids = {"bos": processor.bos_id(), "pad": processor.pad_id(), "eos": processor.eos_id(),
               "unk": processor.unk_id(), "mask": processor.piece_to_id(MASK_PIECE)}
        if ids["mask"] == ids["unk"]:
            ids["mask"] = -1
        missing = [role for role, idx in ids.items() if idx < 0]
        if missing:
            raise VocabError(f"{self.model_file}: the SentencePiece model has no {', '.join(missing)} token "
                             f"({MASK_PIECE!r} for mask); train it with scripts/train_vocab.py, which maps "
                             f"all special tokens explicitly")
        self.special_tokens = {role: processor.id_to_piece(idx) for role, idx in ids.items()}
        self._special_ids = ids
        self._special_pattern = None
        if parse_special_tokens:
            alternatives = sorted(self.special_tokens.values(), key=len, reverse=True)
            self._special_pattern = re.compile("(" + "|".join(re.escape(token) for token in alternatives) + ")")

    @property
    def vocab_size(self):
        return self._sp.get_piece_size()

    def token_to_id(self, token):
        idx = self._sp.piece_to_id(token)
        if idx == self._sp.unk_id() and token != self._sp.id_to_piece(idx):
            return None
        return idx

    def id_to_token(self, idx):
        return self._sp.id_to_piece(int(idx))

    def get_vocab(self):
        return {self._sp.id_to_piece(idx): idx for idx in range(self.vocab_size)}

    def _encode_with_specials(self, text):
        token_ids = {token: self._special_ids[role] for role, token in self.special_tokens.items()}
        ids = []
        for index, part in enumerate(self._special_pattern.split(text)):
            if index % 2:
                ids.append(token_ids[part])
            elif part:
                ids.extend(self._sp.encode(part))
        return ids

    def encode_many(self, texts, num_threads=None):
        del num_threads  # one thread: only the tiktoken path splits batches
        texts = list(texts)
        if self._special_pattern is not None:
            return [self._encode_with_specials(text) for text in texts]
        return self._sp.encode(texts) if texts else []

    def tokenize(self, text):
        if self._special_pattern is not None:
            return [self.id_to_token(idx) for idx in self._encode_with_specials(text)]
        return self._sp.encode(text, out_type=str)

    def decode(self, ids):
        """SentencePiece drops control pieces when decoding, so special ids are spelled out here."""
        special_text = {idx: self.special_tokens[role] for role, idx in self._special_ids.items()}
        in_text_ids = {self._special_ids["mask"], self._special_ids["unk"]}
        pieces, run = [], []
        inside_text = False  # a mask or text precedes: a word-start piece then means a space

        def flush():
            if run:
                text = self._sp.decode(run)
                # SentencePiece drops the word-start space of a run's first piece; keep it mid-sentence.
                if inside_text and self._sp.id_to_piece(run[0]).startswith("\u2581"):
                    text = " " + text
                pieces.append(text)
                run.clear()
                return True
            return inside_text

        for idx in ids:
            idx = int(idx)
            if idx in special_text:
                inside_text = flush()
                pieces.append(special_text[idx])
                inside_text = inside_text if idx in in_text_ids else False
            else:
                run.append(idx)
        flush()
        return "".join(pieces)
