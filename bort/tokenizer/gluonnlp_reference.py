"""GluonNLP 0.10's own GPT-2 BPE tokenizer on local files: the reference the original Bort pipeline used,
for exactness checks and the speed benchmark. Needs `gluonnlp` (and so MXNet) installed."""
import hashlib
import os

from ..errors import VocabError


def _sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gluonnlp_gpt2_encoder(vocab_file, bpe_ranks_file):
    """A function text -> ids doing what the original fine-tuning did: `vocab[GPT2BPETokenizer()(text)]`.

    `GPT2BPETokenizer(root)` looks for its ranks file by a fixed name and SHA-1 and downloads on a mismatch;
    a subclass that names this file and its hash makes it read a local file without touching the network.
    """
    import gluonnlp

    bpe_ranks_file = os.path.abspath(bpe_ranks_file)
    if not os.path.isfile(bpe_ranks_file):
        raise VocabError(f"{bpe_ranks_file}: BPE ranks file not found")

    class LocalGPT2BPETokenizer(gluonnlp.data.GPT2BPETokenizer):
        bpe_ranks_file_hash = (os.path.basename(bpe_ranks_file), _sha1(bpe_ranks_file))

    tokenizer = LocalGPT2BPETokenizer(root=os.path.dirname(bpe_ranks_file))
    with open(vocab_file, encoding="utf-8") as handle:
        vocab = gluonnlp.Vocab.from_json(handle.read())

    def encode(text):
        return vocab[tokenizer(text)]

    encode.tokenizer, encode.vocab = tokenizer, vocab
    return encode
