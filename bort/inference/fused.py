"""An inference-only form of the Bort encoder that lets oneDNN fuse the attention.

Differences from `bort.model.BortEncoder` (the same mathematics: outputs equal to float rounding):
- Q, K and V come from one Dense layer of 3*units outputs whose rows are interleaved per head
  ([q_0 k_0 v_0 q_1 k_1 v_1 ...]), the layout `interleaved_matmul_selfatt_qk/valatt` expect; one larger GEMM
  replaces three, and the MKLDNN subgraph pass fuses it with the attention products (`_sg_mkldnn_selfatt_*`).
- Activations are time-major, (length, batch, units), so heads are split and merged without transposes; only
  the token ids go in transposed and the output comes back batch-major.
- With `at_positions=True` the encoder returns the output only at given positions (B, P), and computes the last
  layer only there (`QueryPositionsCell`, which folds the key and value projections into the P queries so that
  no position's keys or values are formed). A task that reads one vector per sequence (classification,
  first-token embeddings) or only the masked positions (fill-mask) then skips nearly all of the last layer: for
  Bort's four layers, about a quarter of the encoder's work.

The block shares the word embedding, LayerNorms, output projections and FFNs of the source model (no copies)
and holds its own fused Q/K/V weights and position table, taken from the model when the block is built: build
it after the weights are loaded. The source model's parameter names and files are untouched.
"""
import math

import mxnet as mx
from mxnet.gluon import HybridBlock, nn


def _interleave_qkv(attention, num_heads, units):
    """(3*units, units) weight and (3*units,) bias with Q, K, V rows interleaved head by head."""
    head = units // num_heads
    weights = [getattr(attention, f"proj_{name}").weight.data() for name in ("query", "key", "value")]
    biases = [getattr(attention, f"proj_{name}").bias.data() for name in ("query", "key", "value")]
    weight = mx.nd.stack(*[w.reshape((num_heads, head, units)) for w in weights], axis=1).reshape((-1, units))
    bias = mx.nd.stack(*[b.reshape((num_heads, head)) for b in biases], axis=1).reshape((-1,))
    return weight, bias


def _own_parameter(block, name, value):
    """A parameter of `block` holding a copy of `value` (an NDArray), on value's context."""
    with block.name_scope():
        parameter = block.params.get(name, shape=value.shape, init=mx.init.Zero())
    parameter.initialize(ctx=value.context)
    parameter.set_data(value)
    return parameter


class FusedTransformerCell(HybridBlock):
    def __init__(self, cell, num_heads, units, **kwargs):
        super().__init__(**kwargs)
        self._num_heads = num_heads
        self._units = units
        weight, bias = _interleave_qkv(cell.attention_cell, num_heads, units)
        self.qkv_weight = _own_parameter(self, "qkv_weight", weight)
        self.qkv_bias = _own_parameter(self, "qkv_bias", bias)
        self.proj = cell.proj
        self.layer_norm = cell.layer_norm
        self.ffn = cell.ffn

    def hybrid_forward(self, F, x, key_bias, qkv_weight, qkv_bias):
        """x: (L, B, C); key_bias: (B, 1, 1, L) additive mask."""
        qkv = F.FullyConnected(x, qkv_weight, qkv_bias, num_hidden=3 * self._units, flatten=False)
        # The op scales queries by 1/sqrt(head size) itself, as MultiHeadSelfAttention does explicitly.
        scores = F.contrib.interleaved_matmul_selfatt_qk(qkv, heads=self._num_heads)  # (B*H, L, L)
        scores = F.reshape(scores, shape=(-4, -1, self._num_heads, 0, 0))
        weights = F.reshape(F.softmax(F.broadcast_add(scores, key_bias), axis=-1), shape=(-3, 0, 0))
        context = F.contrib.interleaved_matmul_selfatt_valatt(qkv, weights, heads=self._num_heads)  # (L, B, C)
        x = self.layer_norm(x + self.proj(context))
        return self.ffn(x)


class QueryPositionsCell(HybridBlock):
    """A transformer layer evaluated only at P chosen positions, attending over every position of its input.

    Keys and values are never formed. With W_k, W_v the key and value projections of one head and q a query:
    - q . (W_k x_l + b_k) = (W_k^T q) . x_l + q . b_k, and q . b_k is the same for every key l, which softmax
      ignores: so the scores are the input rows x_l times one folded vector W_k^T q per head and query;
    - sum_l a_l (W_v x_l + b_v) = W_v (sum_l a_l x_l) + b_v, as the weights a_l sum to one: so the input rows are
      mixed first and projected once per head and query.
    That costs O(P (units^2 + heads L units)) per sequence instead of the O(L units^2) of projecting every
    position: for one position of a 128-token sequence, the layer is about 1 % of a full one.
    """

    def __init__(self, cell, num_heads, units, **kwargs):
        super().__init__(**kwargs)
        self._num_heads = num_heads
        self._scale = 1.0 / math.sqrt(units // num_heads)
        attention = cell.attention_cell
        head = units // num_heads
        # Per head: (heads, head size, units) weights and a (heads, 1, head size) value bias.
        self.key_weight = _own_parameter(self, "key_weight", attention.proj_key.weight.data().reshape(
            (num_heads, head, units)))
        self.value_weight = _own_parameter(self, "value_weight", attention.proj_value.weight.data().reshape(
            (num_heads, head, units)))
        self.value_bias = _own_parameter(self, "value_bias", attention.proj_value.bias.data().reshape(
            (num_heads, 1, head)))
        self.proj_query = attention.proj_query
        self.proj = cell.proj
        self.layer_norm = cell.layer_norm
        self.ffn = cell.ffn

    def hybrid_forward(self, F, x, key_bias, positions, key_weight, value_weight, value_bias):
        """x: (L, B, C) time-major; key_bias: (B, 1, 1, L); positions: (B, P) -> (B, P, C)."""
        heads = self._num_heads
        batch_index = F.broadcast_like(F.reshape(F.contrib.arange_like(positions, axis=0), shape=(-1, 1)),
                                       positions)
        chosen = F.gather_nd(x, F.stack(positions, batch_index, axis=0))  # (B, P, C)
        tokens = F.transpose(x, axes=(1, 0, 2))  # (B, L, C)
        query = F.reshape(self.proj_query(chosen) * self._scale, shape=(0, 0, heads, -1))  # (B, P, H, D)
        query = F.reshape(F.transpose(query, axes=(2, 0, 1, 3)), shape=(0, -3, 0))  # (H, B*P, D)
        folded = F.batch_dot(query, key_weight)  # (H, B*P, C)
        folded = F.reshape_like(folded, positions, lhs_begin=1, lhs_end=2, rhs_begin=0, rhs_end=2)  # (H, B, P, C)
        folded = F.reshape(F.transpose(folded, axes=(1, 0, 2, 3)), shape=(0, -3, 0))  # (B, H*P, C)
        scores = F.batch_dot(folded, tokens, transpose_b=True)  # (B, H*P, L)
        weights = F.softmax(F.broadcast_add(scores, F.reshape(key_bias, shape=(0, 1, -1))), axis=-1)
        mixed = F.reshape(F.batch_dot(weights, tokens), shape=(0, -4, heads, -1, 0))  # (B, H, P, C)
        mixed = F.reshape(F.transpose(mixed, axes=(1, 0, 2, 3)), shape=(0, -3, 0))  # (H, B*P, C)
        context = F.broadcast_add(F.batch_dot(mixed, value_weight, transpose_b=True), value_bias)  # (H, B*P, D)
        context = F.reshape_like(context, positions, lhs_begin=1, lhs_end=2, rhs_begin=0, rhs_end=2)
        context = F.reshape(F.transpose(context, axes=(1, 2, 0, 3)), shape=(0, 0, -3))  # (B, P, C)
        return self.ffn(self.layer_norm(chosen + self.proj(context)))


class FusedBortEncoder(HybridBlock):
    """`encoder(ids (B, L), valid_length (B,)) -> (B, L, units)`, zero at padded positions, like `BortModel`.

    at_positions=True: `encoder(ids, valid_length, positions (B, P)) -> (B, P, units)`, the output at those
    positions (zero where a position is padding), with the last layer computed only there.
    share_layers_of: another `FusedBortEncoder` of the same model whose fused layers this one reuses (no second
    copy of the Q/K/V weights when a backend keeps both forms).
    """

    def __init__(self, model, at_positions=False, share_layers_of=None, **kwargs):
        super().__init__(**kwargs)
        config = model.config
        self.config = config
        self._at_positions = at_positions
        self.word_embedding = model.word_embed[0]
        # A copy (2 MB): a Parameter shared under another block's name breaks the partitioned graph's inputs.
        self.position_weight = _own_parameter(self, "position_weight", model.encoder.position_weight.data())
        self.layer_norm = model.encoder.layer_norm
        source_cells = list(model.encoder.transformer_cells)
        fused_count = len(source_cells) - 1 if at_positions else len(source_cells)
        shared = list(share_layers_of.cells) if share_layers_of is not None else []
        self.cells = nn.HybridSequential()
        for index in range(fused_count):
            self.cells.add(shared[index] if index < len(shared)
                           else FusedTransformerCell(source_cells[index], config.num_heads, config.units))
        self.last_cell = (QueryPositionsCell(source_cells[-1], config.num_heads, config.units)
                          if at_positions else None)

    def hybrid_forward(self, F, ids, valid_length, positions=None, position_weight=None):
        x = self.word_embedding(F.transpose(ids))  # (L, B, C)
        steps = F.contrib.arange_like(x, axis=0)
        x = self.layer_norm(F.broadcast_add(x, F.expand_dims(F.take(position_weight, steps), axis=1)))
        lengths = F.cast(valid_length, dtype="float32")
        is_real = F.broadcast_lesser(F.reshape(steps, shape=(1, -1)), F.reshape(lengths, shape=(-1, 1)))
        key_bias = F.reshape((1 - is_real) * -1e4, shape=(0, 1, 1, -1))
        for cell in self.cells:
            x = cell(x, key_bias)
        if self._at_positions:
            chosen = self.last_cell(x, key_bias, positions)  # (B, P, C)
            # BortModel's output is zero at padding; a chosen position past the sequence's end reads as such.
            inside = F.broadcast_lesser(F.cast(positions, dtype="float32"), F.reshape(lengths, shape=(-1, 1)))
            return F.broadcast_mul(chosen, F.expand_dims(inside, axis=2))
        x = F.SequenceMask(x, sequence_length=lengths, use_sequence_length=True, axis=0)
        return F.transpose(x, axes=(1, 0, 2))
