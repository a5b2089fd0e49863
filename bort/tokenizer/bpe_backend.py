"""GPT-2/RoBERTa byte-level BPE on the Rust `tokenizers` library, with `tiktoken` (`tiktoken_bpe`) encoding
text to ids where it provably gives the same ids, several times faster, and the 'native' engine
(`native_bpe`: GPT-2's pre-tokenization in C with a piece cache over tiktoken's BPE) faster again.

Only the piece that splits text into ids lives here; special tokens, pairs, truncation and padding are
`BortTokenizer`'s job so that every backend gets them identically.
"""


class ByteLevelBPEBackend:
    """Byte-level BPE with RoBERTa's settings: GPT-2's pre-tokenization regex, no prefix space, no normalizer.

    parse_special_tokens: False (default) encodes a literal `<mask>` or `<s>` in the text as ordinary
    characters, like GluonNLP's `GPT2BPETokenizer` did for the original pretraining and fine-tuning data.
    True recognises them as the special ids, like Hugging Face's `RobertaTokenizer` (`<mask>` also swallows
    the space before it), which is what a fill-mask prompt needs.

    use_tiktoken: encode with tiktoken when `parse_special_tokens` is False and the merges pass the check in
    `tiktoken_bpe` (else `tokenizers`, with the reason logged); False: always `tokenizers`.
    use_native: where tiktoken is used, split and cache pieces with the C extension `_bytelevel` (engine
    'native'; it falls back to plain tiktoken, with the reason logged, when the extension is not built);
    False: plain tiktoken. `engine` says which of 'native', 'tiktoken', 'tokenizers' encodes.
    """

    kind = "byte_level_bpe"

    def __init__(self, vocabulary, parse_special_tokens=False, use_tiktoken=True, use_native=True):
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        self.vocabulary = vocabulary
        self.special_tokens = specials = vocabulary.special_tokens
        model = models.BPE(vocab=dict(vocabulary.token_to_id), merges=list(vocabulary.merges),
                           unk_token=specials["unk"], fuse_unk=False)
        tokenizer = Tokenizer(model)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([
            AddedToken(token, special=True, normalized=False, lstrip=(role == "mask"))
            for role, token in specials.items()])
        tokenizer.encode_special_tokens = not parse_special_tokens
        self._tokenizer = tokenizer
        self._batch_encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        self._id_to_token = vocabulary.idx_to_token
        self._tiktoken = self._native = None
        if use_tiktoken and not parse_special_tokens:
            from .tiktoken_bpe import build_tiktoken_encoder

            self._tiktoken = build_tiktoken_encoder(vocabulary, model)
        if use_native and self._tiktoken is not None:
            from .native_bpe import build_native_encoder

            self._native = build_native_encoder(self._tiktoken, len(self._id_to_token))

    @property
    def engine(self):
        """What turns text into ids: 'native' (C splitter and piece cache over tiktoken's BPE), 'tiktoken' or
        'tokenizers'."""
        if self._native is not None:
            return "native"
        return "tokenizers" if self._tiktoken is None else "tiktoken"

    @property
    def vocab_size(self):
        return len(self._id_to_token)

    def token_to_id(self, token):
        return self.vocabulary.token_to_id.get(token)

    def id_to_token(self, idx):
        return self._id_to_token[idx]

    def get_vocab(self):
        return dict(self.vocabulary.token_to_id)

    def encode_many(self, texts, num_threads=None):
        if self._native is not None:
            return self._native.encode_many(texts, num_threads)
        if self._tiktoken is not None:
            return self._tiktoken.encode_many(texts, num_threads)
        return [encoding.ids for encoding in self._batch_encode(list(texts), add_special_tokens=False)]

    def tokenize(self, text):
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids):
        """Text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD, as in GPT-2's decoder."""
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)
