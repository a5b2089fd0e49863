"""Bort as Gluon HybridBlocks.

A post-LayerNorm BERT encoder without token-type embedding or pooler, with an optional masked-LM decoder whose
output layer shares the word embedding. Child names mirror GluonNLP's BERT so that the structural parameter
names (`word_embed.0.weight`, `encoder.transformer_cells.0.attention_cell.proj_query.weight`, `decoder.3.bias`,
...) are exactly those of the released `bort.params`; `bort.params` holds the table of names.

Tensors stay batch-major, (batch, length, units), throughout.
"""
import math

import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from .config import BortConfig
from .errors import ConfigError, InputError


def _activation(F, x, kind):
    # MXNet's 'gelu' is the exact erf form, the one GluonNLP's BERT used.
    if kind == "gelu":
        return F.LeakyReLU(x, act_type="gelu")
    return F.relu(x)


class BortLayerNorm(nn.LayerNorm):
    """Gluon's LayerNorm over the last axis, which training and the `fused` backend switch to Bort's CPU kernel
    (`bort.kernels.use_kernels`: same values to float rounding, a backward pass about 15x faster than
    MXNet 1.9.1's). Parameter names are LayerNorm's (`gamma`, `beta`), so checkpoints do not change."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.use_kernel = False

    def _alias(self):
        return "layernorm"  # the name-scope prefix nn.LayerNorm had: the same full parameter names

    def hybrid_forward(self, F, data, gamma, beta):
        if not self.use_kernel:
            return super().hybrid_forward(F, data, gamma, beta)
        # The operator library interface cannot add a gradient to an existing one (grad_req "add", used to
        # accumulate micro-batches): gamma and beta pass through identity, whose backward adds correctly.
        out, _mean, _rstd = F.bort_layer_norm(data, F.identity(gamma), F.identity(beta),
                                               eps=self._kwargs["eps"])
        return out


class MultiHeadSelfAttention(HybridBlock):
    """Scaled dot-product self-attention over `num_heads` heads with separate Q, K, V projections."""

    def __init__(self, units, num_heads, dropout, **kwargs):
        super().__init__(**kwargs)
        self.use_kernel = False  # bort.kernels.use_kernels: softmax(scores + key_bias) in one CPU operator
        self._units = units
        self._num_heads = num_heads
        self._scale = 1.0 / math.sqrt(units // num_heads)
        with self.name_scope():
            self.proj_query = nn.Dense(units, in_units=units, flatten=False)
            self.proj_key = nn.Dense(units, in_units=units, flatten=False)
            self.proj_value = nn.Dense(units, in_units=units, flatten=False)
            self.dropout = nn.Dropout(dropout)

    def _split_heads(self, F, x):
        # (B, L, C) -> (B * H, L, C / H)
        x = F.reshape(x, shape=(0, 0, self._num_heads, -1))
        x = F.transpose(x, axes=(0, 2, 1, 3))
        return F.reshape(x, shape=(-3, 0, 0))

    def hybrid_forward(self, F, x, key_bias=None):
        """x: (B, L, C). key_bias: (B, 1, 1, L) additive mask (0 for real tokens, a large negative for padding)."""
        query = self._split_heads(F, self.proj_query(x) * self._scale)
        key = self._split_heads(F, self.proj_key(x))
        value = self._split_heads(F, self.proj_value(x))
        scores = F.batch_dot(query, key, transpose_b=True)  # (B*H, L, L)
        if key_bias is None:
            weights = F.softmax(scores, axis=-1)
        else:
            scores = F.reshape(scores, shape=(-4, -1, self._num_heads, 0, 0))
            if self.use_kernel:
                weights = F.bort_masked_softmax(scores, key_bias)
            else:
                weights = F.softmax(F.broadcast_add(scores, key_bias), axis=-1)
            weights = F.reshape(weights, shape=(-3, 0, 0))
        weights = self.dropout(weights)
        context = F.batch_dot(weights, value)  # (B*H, L, C/H)
        context = F.reshape(context, shape=(-4, -1, self._num_heads, 0, 0))
        context = F.transpose(context, axes=(0, 2, 1, 3))
        return F.reshape(context, shape=(0, 0, -1))


class PositionwiseFFN(HybridBlock):
    """Dense -> activation -> Dense, with residual connection and LayerNorm (post-LN)."""

    def __init__(self, units, hidden_size, dropout, layer_norm_eps, activation, **kwargs):
        super().__init__(**kwargs)
        self._activation = activation
        with self.name_scope():
            self.ffn_1 = nn.Dense(hidden_size, in_units=units, flatten=False)
            self.ffn_2 = nn.Dense(units, in_units=hidden_size, flatten=False)
            self.dropout = nn.Dropout(dropout)
            self.layer_norm = BortLayerNorm(epsilon=layer_norm_eps, in_channels=units)

    def hybrid_forward(self, F, x):
        hidden = self.dropout(_activation(F, self.ffn_1(x), self._activation))
        return self.layer_norm(x + self.dropout(self.ffn_2(hidden)))


class TransformerCell(HybridBlock):
    """One post-LN encoder layer: self-attention, projection, residual + LayerNorm, then the FFN."""

    def __init__(self, config: BortConfig, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.attention_cell = MultiHeadSelfAttention(config.units, config.num_heads, config.dropout)
            self.proj = nn.Dense(config.units, in_units=config.units, flatten=False)
            self.dropout = nn.Dropout(config.dropout)
            self.layer_norm = BortLayerNorm(epsilon=config.layer_norm_eps, in_channels=config.units)
            self.ffn = PositionwiseFFN(config.units, config.hidden_size, config.dropout,
                                       config.layer_norm_eps, config.activation)

    def hybrid_forward(self, F, x, key_bias=None):
        attended = self.proj(self.attention_cell(x, key_bias))
        x = self.layer_norm(x + self.dropout(attended))
        return self.ffn(x)


class BortEncoder(HybridBlock):
    """Adds learned positions (row p for position p) to the embedded tokens, then runs the layers."""

    def __init__(self, config: BortConfig, **kwargs):
        super().__init__(**kwargs)
        self._max_length = config.max_length
        with self.name_scope():
            self.position_weight = self.params.get(
                "position_weight", shape=(config.max_length, config.units), init=mx.init.Normal(0.02))
            self.dropout = nn.Dropout(config.dropout)
            self.layer_norm = BortLayerNorm(epsilon=config.layer_norm_eps, in_channels=config.units)
            self.transformer_cells = nn.HybridSequential()
            with self.transformer_cells.name_scope():
                for _ in range(config.num_layers):
                    self.transformer_cells.add(TransformerCell(config))

    def hybrid_forward(self, F, embedded, valid_length=None, position_weight=None):
        positions = F.contrib.arange_like(embedded, axis=1)
        x = F.broadcast_add(embedded, F.expand_dims(F.take(position_weight, positions), axis=0))
        x = self.layer_norm(self.dropout(x))
        key_bias = None
        if valid_length is not None:
            # (B, L): 1 for real tokens, 0 for padding -> additive bias (B, 1, 1, L) on attention scores.
            # Built by SequenceMask on ones in the activations' dtype, so it also works in float16.
            ones = F.ones_like(F.slice_axis(embedded, axis=2, begin=0, end=1))  # (B, L, 1)
            is_real = F.SequenceMask(ones, sequence_length=F.cast(valid_length, dtype="float32"),
                                     use_sequence_length=True, axis=1)
            key_bias = F.reshape((1 - is_real) * -1e4, shape=(0, 1, 1, -1))
        for cell in self.transformer_cells:
            x = cell(x, key_bias)
        if valid_length is not None:
            # The release's encoder zeroed padded positions of its output; MLM logits at a padded
            # position therefore come from a zero vector, and we keep that.
            x = F.SequenceMask(x, sequence_length=F.cast(valid_length, dtype="float32"),
                               use_sequence_length=True, axis=1)
        return x


class BortModel(HybridBlock):
    """The Bort encoder with an optional masked-LM decoder.

    `model(inputs, valid_length=None, masked_positions=None)`:
      inputs (B, L) token ids; valid_length (B,) number of real tokens per row (None: no padding);
      masked_positions (B, M) positions to decode. Returns the sequence output (B, L, units), or
      `(sequence_output, mlm_logits (B, M, vocab))` when the model has a decoder and masked_positions is given.
    """

    def __init__(self, config: BortConfig, use_decoder=True, **kwargs):
        super().__init__(**kwargs)
        if config.vocab_size is None:
            raise ConfigError("BortModel needs config.vocab_size")
        self.config = config
        self.use_decoder = use_decoder
        self.validate_inputs = True
        with self.name_scope():
            self.word_embed = nn.HybridSequential()
            with self.word_embed.name_scope():
                self.word_embed.add(nn.Embedding(config.vocab_size, config.units,
                                                 weight_initializer=mx.init.Normal(0.02)))
                if config.embed_dropout:
                    self.word_embed.add(nn.Dropout(config.embed_dropout))
            self.encoder = BortEncoder(config)
            if use_decoder:
                self.decoder = nn.HybridSequential()
                with self.decoder.name_scope():
                    self.decoder.add(nn.Dense(config.units, in_units=config.units, flatten=False))
                    self.decoder.add(_Activation(config.activation))
                    self.decoder.add(BortLayerNorm(epsilon=config.mlm_layer_norm_eps, in_channels=config.units))
                    # The output layer reuses the word embedding matrix (weight tying), as in the release.
                    self.decoder.add(nn.Dense(config.vocab_size, in_units=config.units, flatten=False,
                                              params=self.word_embed[0].params))

    def check_inputs(self, inputs, valid_length=None, masked_positions=None):
        """Raise InputError for inputs the model cannot take (MXNet would clip or crash instead)."""
        if inputs.ndim != 2:
            raise InputError(f"inputs must be (batch, length) token ids, got shape {inputs.shape}")
        batch, length = inputs.shape
        if length > self.config.max_length:
            raise InputError(f"sequence length {length} exceeds the model's max_length "
                             f"{self.config.max_length}; truncate the inputs")
        if length == 0 or batch == 0:
            raise InputError(f"empty input batch of shape {inputs.shape}")
        low, high = (int(v) for v in mx.nd.concat(inputs.min().reshape(1), inputs.max().reshape(1), dim=0)
                     .asnumpy())
        if low < 0 or high >= self.config.vocab_size:
            raise InputError(f"token ids must lie in [0, {self.config.vocab_size - 1}], got ids from {low} "
                             f"to {high}; is the vocabulary the one the model was trained with?")
        if valid_length is not None:
            if valid_length.shape != (batch,):
                raise InputError(f"valid_length must have shape ({batch},), got {valid_length.shape}")
            lengths = valid_length.asnumpy()
            if lengths.min() < 1 or lengths.max() > length:
                raise InputError(f"valid_length values must lie in [1, {length}], got {lengths.min()} "
                                 f"to {lengths.max()}")
        if masked_positions is not None:
            if masked_positions.ndim != 2 or masked_positions.shape[0] != batch:
                raise InputError(f"masked_positions must be ({batch}, num_masked), got {masked_positions.shape}")
            positions = masked_positions.asnumpy()
            if positions.size and (positions.min() < 0 or positions.max() >= length):
                raise InputError(f"masked_positions must lie in [0, {length - 1}]")

    def __call__(self, inputs, valid_length=None, masked_positions=None):
        if isinstance(inputs, mx.nd.NDArray):
            if self.validate_inputs:
                self.check_inputs(inputs, valid_length, masked_positions)
            valid_length = full_valid_length(inputs, valid_length)
            # A hybridized block caches one argument structure; decoding or not is a different graph.
            structure = masked_positions is None
            if getattr(self, "_cached_structure", structure) != structure:
                self._clear_cached_op()
            self._cached_structure = structure
        if masked_positions is not None and not self.use_decoder:
            raise ConfigError("masked_positions were given but the model was built without a decoder "
                              "(use_decoder=False)")
        return super().__call__(inputs, valid_length, masked_positions)

    def hybrid_forward(self, F, inputs, valid_length=None, masked_positions=None):
        sequence_output = self.encoder(self.word_embed(inputs), valid_length)
        if masked_positions is None:
            return sequence_output
        return sequence_output, self.decoder(gather_positions(F, sequence_output, masked_positions))


def full_valid_length(inputs, valid_length):
    """`valid_length`, or every row's full length when it is None (same outputs, one cached graph)."""
    if valid_length is not None:
        return valid_length
    return mx.nd.full((inputs.shape[0],), inputs.shape[1], ctx=inputs.context, dtype="float32")


def gather_positions(F, sequence, positions):
    """sequence (B, L, C), positions (B, M) -> (B, M, C): the vectors at the given positions of each row."""
    positions = F.cast(positions, dtype="int32")
    batch_index = F.broadcast_like(F.reshape(F.contrib.arange_like(positions, axis=0), shape=(-1, 1)),
                                   positions)
    index = F.stack(F.cast(batch_index, dtype="int32"), positions, axis=0)  # (2, B, M)
    return F.gather_nd(sequence, index)


class _Activation(HybridBlock):
    def __init__(self, kind, **kwargs):
        super().__init__(**kwargs)
        self._kind = kind

    def hybrid_forward(self, F, x):
        return _activation(F, x, self._kind)


class BortClassifier(HybridBlock):
    """The release's fine-tuning head over the first token (`<s>`):
    Dropout -> Dense(units, tanh) -> Dropout -> Dense(num_classes). With dropout 0 the Dropout layers are left
    out, as in the release, so the head's parameters are `classifier.0/1` instead of `classifier.1/3`.
    """

    def __init__(self, bort: BortModel, num_classes=2, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        units = bort.config.units
        with self.name_scope():
            self.bort = bort
            self.classifier = nn.HybridSequential()
            with self.classifier.name_scope():
                if dropout:
                    self.classifier.add(nn.Dropout(dropout))
                self.classifier.add(nn.Dense(units, in_units=units, activation="tanh"))
                if dropout:
                    self.classifier.add(nn.Dropout(dropout))
                self.classifier.add(nn.Dense(num_classes, in_units=units))

    def __call__(self, inputs, valid_length=None):
        if isinstance(inputs, mx.nd.NDArray):
            if self.bort.validate_inputs:
                self.bort.check_inputs(inputs, valid_length)
            valid_length = full_valid_length(inputs, valid_length)
        return super().__call__(inputs, valid_length)

    def hybrid_forward(self, F, inputs, valid_length=None):
        sequence_output = self.bort.encoder(self.bort.word_embed(inputs), valid_length)
        first_token = F.reshape(F.slice_axis(sequence_output, axis=1, begin=0, end=1), shape=(0, -1))
        return self.classifier(first_token)


def __getattr__(name):
    # `get_bort_model` builds models from checkpoint files, so it lives in `bort.checkpoint` (which imports this
    # module); `from bort.model import get_bort_model` keeps working.
    if name == "get_bort_model":
        from .checkpoint import get_bort_model

        return get_bort_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
