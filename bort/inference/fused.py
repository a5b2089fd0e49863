"""An inference-only form of the Bort encoder that lets oneDNN fuse the attention.

Differences from `bort.model.BortEncoder` (same arithmetic, same outputs to float rounding):
- Q, K and V come from one Dense layer of 3*units outputs whose rows are interleaved per head
  ([q_0 k_0 v_0 q_1 k_1 v_1 ...]), the layout `interleaved_matmul_selfatt_qk/valatt` expect; one larger GEMM
  replaces three, and the MKLDNN subgraph pass fuses it with the attention products (`_sg_mkldnn_selfatt_*`).
- Activations are time-major, (length, batch, units), so heads are split and merged without transposes; only
  the token ids go in transposed and the output comes back batch-major.

The block shares the word embedding, LayerNorms, output projections and FFNs of the source model (no copies)
and holds its own fused Q/K/V weights and position table, taken from the model when the block is built: build
it after the weights are loaded. The source model's parameter names and files are untouched.
"""
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


class FusedTransformerCell(HybridBlock):
    def __init__(self, cell, num_heads, units, **kwargs):
        super().__init__(**kwargs)
        self._num_heads = num_heads
        self._units = units
        weight, bias = _interleave_qkv(cell.attention_cell, num_heads, units)
        with self.name_scope():
            self.qkv_weight = self.params.get("qkv_weight", shape=weight.shape, init=mx.init.Zero())
            self.qkv_bias = self.params.get("qkv_bias", shape=bias.shape, init=mx.init.Zero())
        context = weight.context
        self.qkv_weight.initialize(ctx=context)
        self.qkv_bias.initialize(ctx=context)
        self.qkv_weight.set_data(weight)
        self.qkv_bias.set_data(bias)
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


class FusedBortEncoder(HybridBlock):
    """`encoder(ids (B, L), valid_length (B,)) -> (B, L, units)`, zero at padded positions, like `BortModel`."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        config = model.config
        self.config = config
        self.word_embedding = model.word_embed[0]
        source_positions = model.encoder.position_weight.data()
        with self.name_scope():
            # A copy (2 MB): a Parameter shared under another block's name breaks the partitioned graph's inputs.
            self.position_weight = self.params.get("position_weight", shape=source_positions.shape,
                                                   init=mx.init.Zero())
        self.position_weight.initialize(ctx=source_positions.context)
        self.position_weight.set_data(source_positions)
        self.layer_norm = model.encoder.layer_norm
        self.cells = nn.HybridSequential()
        for cell in model.encoder.transformer_cells:
            self.cells.add(FusedTransformerCell(cell, config.num_heads, config.units))

    def hybrid_forward(self, F, ids, valid_length, position_weight):
        x = self.word_embedding(F.transpose(ids))  # (L, B, C)
        steps = F.contrib.arange_like(x, axis=0)
        x = self.layer_norm(F.broadcast_add(x, F.expand_dims(F.take(position_weight, steps), axis=1)))
        lengths = F.cast(valid_length, dtype="float32")
        is_real = F.broadcast_lesser(F.reshape(steps, shape=(1, -1)), F.reshape(lengths, shape=(-1, 1)))
        key_bias = F.reshape((1 - is_real) * -1e4, shape=(0, 1, 1, -1))
        for cell in self.cells:
            x = cell(x, key_bias)
        x = F.SequenceMask(x, sequence_length=lengths, use_sequence_length=True, axis=0)
        return F.transpose(x, axes=(1, 0, 2))
