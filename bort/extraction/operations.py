"""i* as an operation count: additions, multiplications and other operations (exp, erf, division, square root,
comparison) of one forward pass of one sequence of `seq_len` tokens, summed over the layers (the approximation
paper's inference surrogate; the exact per-operation conventions are ours, docs/extraction.md "Readings").

Conventions (every count is exact for these conventions):
- a product (m x k)(k x n) costs m*k*n multiplications and m*(k-1)*n additions; a bias adds m*n additions, so a
  dense layer over L tokens costs L*k*n of each;
- softmax over a row of L scores: L comparisons (max), L subtractions, L exponentials, L-1 additions,
  L divisions; the padding mask is one addition per score; the 1/sqrt(head) scale one multiplication per query
  element;
- LayerNorm over a row of H: 4H-1 additions, 3H multiplications, 3 others (two divisions, one square root);
- GELU per element (0.5 x (1 + erf(x / sqrt 2))): 3 multiplications, 1 addition, 1 other; ReLU: 1 other;
- residual connections: one addition per element; the embedding stage: position addition + LayerNorm;
- lookups, reshapes, dropout (off at inference) and the MLM decoder (not part of the encoder) cost nothing.
"""


def _dense(tokens, inputs, outputs):
    return dict(mul=tokens * inputs * outputs, add=tokens * inputs * outputs, other=0)


def _layer_norm(rows, width):
    return dict(mul=rows * 3 * width, add=rows * (4 * width - 1), other=rows * 3)


def _activation(elements, kind):
    if kind == "gelu":
        return dict(mul=3 * elements, add=elements, other=elements)
    return dict(mul=0, add=0, other=elements)


def _attention(seq_len, units, heads):
    scores = heads * seq_len * seq_len
    head = units // heads
    return dict(
        # query scale; Q K^T; weights V
        mul=seq_len * units + scores * head + scores * head,
        # Q K^T and weights V sums; mask bias; softmax subtraction and row sums
        add=scores * (head - 1) + seq_len * (seq_len - 1) * units + scores + scores + heads * seq_len * (seq_len - 1),
        # softmax max comparisons, exponentials, divisions
        other=3 * scores)


def _sum(*parts):
    return {kind: sum(part[kind] for part in parts) for kind in ("mul", "add", "other")}


def layer_operations(config, seq_len):
    """Operations of one encoder layer."""
    units, ffn, tokens = config.units, config.hidden_size, seq_len
    residual = dict(mul=0, add=tokens * units, other=0)
    return _sum(_dense(tokens, units, 3 * units), _attention(seq_len, units, config.num_heads),
                _dense(tokens, units, units), residual, _layer_norm(tokens, units),
                _dense(tokens, units, ffn), _activation(tokens * ffn, config.activation), _dense(tokens, ffn, units),
                residual, _layer_norm(tokens, units))


def count_operations(config, seq_len):
    """Dict mul, add, other, total: one sequence of `seq_len` tokens through the embedding stage and all layers."""
    if seq_len < 1 or seq_len > config.max_length:
        raise ValueError(f"seq_len must lie in [1, {config.max_length}], got {seq_len}")
    embedding = _sum(dict(mul=0, add=seq_len * config.units, other=0), _layer_norm(seq_len, config.units))
    layer = layer_operations(config, seq_len)
    counts = {kind: embedding[kind] + config.num_layers * layer[kind] for kind in ("mul", "add", "other")}
    counts["total"] = counts["mul"] + counts["add"] + counts["other"]
    return counts
