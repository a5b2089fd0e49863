"""p*: exact parameter counts of a Bort architecture, from its configuration alone.

    embeddings = V*H (words) + P*H (positions) + 2H (embedding LayerNorm)
    per layer  = 4(H*H + H) (query, key, value, output projections) + 2H (LayerNorm)
               + (H*I + I) + (I*H + H) (feed-forward) + 2H (LayerNorm)
    decoder    = (H*H + H) + 2H + V (MLM transform, LayerNorm, output bias; its weight is the tied word embedding)

`effective` is the encoder layers alone (the paper's "effective size" leaves the embeddings out), `total` adds the
embeddings (the size figures of the paper's README leave out the MLM head), `with_decoder` adds the MLM head too.
"""


def count_parameters(config):
    """Dict of exact parameter counts: embeddings, effective, decoder, total, with_decoder."""
    units, ffn, vocab = config.units, config.hidden_size, config.vocab_size
    if vocab is None:
        raise ValueError("counting parameters needs config.vocab_size")
    embeddings = vocab * units + config.max_length * units + 2 * units
    per_layer = 4 * (units * units + units) + 2 * units + (units * ffn + ffn) + (ffn * units + units) + 2 * units
    effective = config.num_layers * per_layer
    decoder = units * units + units + 2 * units + vocab
    total = embeddings + effective
    return dict(embeddings=embeddings, effective=effective, decoder=decoder, total=total,
                with_decoder=total + decoder)
