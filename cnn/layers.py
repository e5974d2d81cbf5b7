"""Runtime layers: a layer record of :mod:`cnnbase.netspec` plus its arrays, run over an engine.

A layer's *configuration* is a frozen netspec record (``Conv2D(32, 3, activation="relu")``): it fixes the
hyperparameters, the JSON form and the shape arithmetic. A *runtime layer* built from it holds the
trainable parameters (``params``), the non-trainable state (``buffers``, batch norm's running statistics),
the gradients of the last backward pass (``grads``) and a ``trainable`` flag, and runs
``forward``/``backward`` by calling the ops of an engine module (``refcnn`` or ``fastcnn``; both have the
same names and signatures). Every layer is written once, for 1-D and 2-D, over any engine.

Two composite blocks, :class:`cnnbase.netspec.Residual` and :class:`cnnbase.netspec.Concat` (re-exported
here), nest other layers, so ResNet- and Inception-style networks fit in a sequential model; their runtime
layers (:mod:`cnn.blocks`) run each path from the block's input and add or concatenate the results.

Initialisation (``specs/training.md``): kernels He-uniform when the layer feeds a ReLU-family activation,
Glorot-uniform otherwise, biases 0, batch norm ``gamma = 1, beta = 0``, running mean 0, variance 1. Each
layer draws from its own generator seeded by ``(seed, layer_index)``, so adding a layer later in a network
does not change the initial weights of the earlier ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cnnbase import netspec
from cnnbase.checks import printable
from cnnbase.conv import conv_geometry, conv_transpose_geometry
from cnnbase.limits import check_bytes, nbytes_of
from cnnbase.dropout import GOLDEN_GAMMA, MASK64, mix64
from cnnbase.netspec import Layer as LayerConfig
from cnnbase.pool import pool_geometry

__all__ = [
    "Residual",
    "Concat",
    "BLOCK_TYPES",
    "layer_from_dict",
    "default_names",
    "derive_seed",
    "Layer",
    "Pass",
    "build_layer",
    "tensor_shapes",
    "walk_layers",
    "check_sizes",
    "RELU_FAMILY",
]

#: Activations after which a kernel gets He initialisation instead of Glorot.
RELU_FAMILY = ("relu", "leaky_relu", "elu")


# --------------------------------------------------------------------------------------------------
# Seeds


def derive_seed(seed: int, *parts: int) -> int:
    """A 64-bit seed that is a pure function of ``seed`` and ``parts``:
    ``z_0 = seed mod 2^64``, ``z_{i+1} = mix64((z_i + (part_i + 1) * gamma) mod 2^64)``.

    Used for dropout masks with ``parts = (layer_index, global_step)``, so a resumed run draws exactly the
    masks an uninterrupted one would, whatever happened before the interruption.
    """
    z = int(seed) & MASK64
    for part in parts:
        z = mix64((z + (int(part) + 1) * GOLDEN_GAMMA) & MASK64)  # the dropout mask's mixer (specs/dropout.md)
    return z


# --------------------------------------------------------------------------------------------------
# Composite block configurations: netspec's, re-exported here for the training package's users

Residual = netspec.Residual
Concat = netspec.Concat

#: Composite block types by their JSON name.
BLOCK_TYPES = netspec.BLOCK_TYPES

#: A layer record from its JSON form, blocks included (:func:`cnnbase.netspec.layer_from_dict`).
layer_from_dict = netspec.layer_from_dict

#: Keras-style names, blocks ``residual``/``concat``, with an optional prefix
#: (:func:`cnnbase.netspec.default_names`).
default_names = netspec.default_names


# --------------------------------------------------------------------------------------------------
# One forward pass: what every layer needs to know about it


@dataclass(frozen=True)
class Pass:
    """The context of one forward pass: the engine module, whether it trains, the float type of the
    activations, and the model seed, global step and shard (None: the batch is not sharded) from which
    dropout seeds are derived."""

    engine: object
    training: bool
    dtype: np.dtype
    seed: int = 0
    step: int = 0
    shard: int | None = None
    #: Run a layer's ReLU inside the max pooling that follows it (:func:`_pair_relu_pools`) when the engine
    #: offers the fused op (fastcnn's ``relu_pool_forward``): :meth:`cnn.Model.forward` sets it; a pass that
    #: looks at each layer's own output (``Model.features``, the pictures) leaves it off.
    fuse: bool = False
    #: Whether the layers keep what their backward needs (their inputs, outputs, winners, statistics). A pass
    #: that nothing goes back through (``Model.forward(..., backward=False)``: evaluate, predict) lets each
    #: layer drop them as it returns, so that every activation is freed once the next layer has read it and
    #: the next output is written to memory just read (still in cache) rather than to blocks last touched a
    #: whole pass ago; the results are the same.
    keep: bool = True


class _Deferred:
    """A convolution's output left uncomputed: the pooled convolution after it computes it sample by sample
    inside its own op (the engine's ``conv_relu_pool_forward(..., producer=...)``, :meth:`_OnConvGeometry._defers`).
    ``producer``: (geometry, x, weight, bias) of the convolution that did not run."""

    def __init__(self, producer: tuple, dtype):
        self.producer, self.dtype = producer, np.dtype(dtype)


def _cast(y: np.ndarray | None, dtype) -> np.ndarray | None:
    # refcnn always returns float64; a float32 model keeps float32 activations on either engine.
    # None: a first layer told that no input gradient is wanted (Layer.input_grad).
    return y if y is None or y.dtype == dtype else y.astype(dtype)


def _activation(engine, name: str | None, x: np.ndarray) -> np.ndarray:
    if name is None:
        return x
    if name in ("softmax", "log_softmax"):
        return getattr(engine, name)(x, dim=1)  # over the channels / classes, never the batch
    return getattr(engine, name)(x)


def _activation_backward(engine, name: str | None, grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    if name is None:
        return grad
    if name in ("softmax", "log_softmax"):
        return getattr(engine, name + "_backward")(grad, x, dim=1)
    return getattr(engine, name + "_backward")(grad, x)


def _glorot_limit(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _he_limit(fan_in: int) -> float:
    return math.sqrt(6.0 / fan_in)


# --------------------------------------------------------------------------------------------------
# Runtime layers


#: The runtime class of each netspec record class, filled by :meth:`Layer.__init_subclass__`.
_RUNTIME: dict[type, type] = {}


class Layer:
    """A runtime layer: ``config`` (a netspec record), ``name``, ``params``/``buffers``/``grads`` (dicts
    of arrays by name), ``trainable``, and ``forward(x, ctx)`` / ``backward(grad_out)``.

    ``index`` is the layer's 1-based position in a depth-first walk of the model (blocks' inner layers
    included); it seeds the layer's initialisation and its dropout masks. ``activation`` is the
    activation applied after the layer's own operation (the model may take a final softmax out of it).

    A subclass names the record class it runs in ``record_type`` and is found from it (subclasses of that
    record included), so a new layer type needs no list to be edited here.
    """

    #: The netspec record class (and its subclasses) this runtime class runs.
    record_type: ClassVar[type | None] = None

    #: Whether ``backward`` must compute the gradient with respect to the input. ``Model.backward`` sets it
    #: False on the first layer for a training step, where the input is the data; a layer that can skip the
    #: work (a convolution: its input gradient is a col2im pass) then returns ``None``, any other computes
    #: it anyway.
    input_grad: bool = True

    #: Whether the layer is made of branches of other layers (:class:`cnn.blocks.Block`), built by
    #: ``build_branches`` instead of ``build``.
    is_block: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("record_type") is not None:
            _RUNTIME[cls.record_type] = cls

    def __init__(self, config: LayerConfig, name: str, index: int):
        self.config = config
        self.name = name
        self.index = index
        self.trainable = True
        self.activation = getattr(config, "activation", None)
        self.params: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray | None] = {}
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()
        self._cache: tuple = ()

    @classmethod
    def tensor_shapes(cls, config, input_shape) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter and buffer a layer of ``config`` holds for samples of ``input_shape``,
        by name; :meth:`build` allocates exactly these, after :func:`check_sizes` has checked their bytes."""
        return {}

    # Subclasses implement these three; the activation is handled here once.
    def build(self, input_shape, seed: int, dtype, he: bool) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.config.infer(self.input_shape).shape)

    def _forward(self, x, ctx: Pass):
        raise NotImplementedError

    def _backward(self, grad):
        raise NotImplementedError

    #: The max pooling layer that may apply this layer's ReLU (set by :func:`_pair_relu_pools`), or None.
    relu_pool: "Layer | None" = None
    #: Whether the last forward pass left the ReLU to ``relu_pool`` (its output was the pre-activation).
    _relu_handed_on: bool = False

    def _hands_relu_on(self, ctx: Pass) -> bool:
        return (ctx.fuse and self.relu_pool is not None and self.activation == "relu"
                and hasattr(ctx.engine, "relu_pool_forward"))

    #: Whether the last forward pass computed the ReLU inside the layer's own op (the engine's
    #: ``conv_relu_forward``): its output, and ``self._pre``, were the activation; its backward takes the
    #: gradient with respect to it.
    _relu_inside: bool = False

    def forward(self, x: np.ndarray, ctx: Pass) -> np.ndarray:
        self._relu_inside = False
        pre = _cast(self._forward(x, ctx), ctx.dtype)
        self._ctx = ctx
        self._pre = pre
        self._relu_handed_on = self._hands_relu_on(ctx)
        if self._relu_handed_on or self._relu_inside:
            out = pre  # the next layer, a max pooling, applies the ReLU as it pools; or it is done already
        else:
            out = _cast(_activation(ctx.engine, self.activation, pre), ctx.dtype)
        if not ctx.keep:
            self._let_go()
        return out

    #: The arrays a layer keeps from its forward pass for its backward (those of its subclasses included).
    _KEPT_FOR_BACKWARD: ClassVar[tuple[str, ...]] = ("_x", "_pre", "_winners", "_saved")

    def _let_go(self) -> None:
        """Drop what the forward pass kept for the backward (a pass with ``Pass.keep`` off)."""
        for name in self._KEPT_FOR_BACKWARD:
            if name in self.__dict__:
                self.__dict__[name] = None

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Gradient with respect to the layer's input; the parameter gradients go to ``self.grads``."""
        ctx = self._ctx
        if not ctx.keep:
            raise RuntimeError(f"layer {self.name}: its last forward pass kept nothing to go back through "
                               "(Pass.keep was off: Model.forward(..., backward=False))")
        if self._relu_handed_on or self._relu_inside:  # the layer's own backward takes grad_out as it is
            return _cast(self._backward(_cast(grad_out, ctx.dtype)), ctx.dtype)
        grad = _cast(_activation_backward(ctx.engine, self.activation, grad_out, self._pre), ctx.dtype)
        return _cast(self._backward(grad), ctx.dtype)

    def count_params(self) -> int:
        """The numbers this layer holds, parameters and buffers: the sizes of its arrays, less any entry
        fixed at 0 that is no parameter (a convolution's weights outside its connection table)."""
        return sum(array.size for array in (*self.params.values(), *self.buffers.values()))

    def sublayers(self) -> list["Layer"]:
        """Every layer inside this one, depth first (none for a plain layer)."""
        return []

    @property
    def ops(self) -> tuple[str, ...]:
        """The spec's ops this layer computes and the engine functions it calls to compute them (a layer
        resolved once calls ``conv_forward`` for what ``conv2d`` computes: it needs both names)."""
        names = self._ops()
        if self.activation is not None:
            names += (self.activation, self.activation + "_backward")
        return names

    def _ops(self) -> tuple[str, ...]:
        return ()


class _OnConvGeometry(Layer):
    """What a convolution and a transposed one share once ``build`` has resolved ``self.geometry``: the
    engines' ``conv_forward`` / ``conv_backward`` on it, with the weight and the optional bias.

    ``self.mask`` (None, or 0/1 of the weight's shape with 1 on the kernel axes) is a fixed connection table:
    the ops run with ``weight * mask`` and the weight's gradient is multiplied by it (see :class:`_Conv`)."""

    mask: np.ndarray | None = None

    def _weight(self) -> np.ndarray:
        weight = self.params["weight"]
        return weight if self.mask is None else weight * self.mask

    def _init_weights(self, shapes: dict, fan_in: int, fan_out: int, seed, dtype, he: bool) -> None:
        """The weight uniform in He's or Glorot's limit for these fans (seeded by the layer's index), the bias
        (when ``shapes`` has one) zero."""
        limit = _he_limit(fan_in) if he else _glorot_limit(fan_in, fan_out)
        rng = np.random.default_rng([seed, self.index])
        self.params["weight"] = rng.uniform(-limit, limit, size=shapes["weight"]).astype(dtype)
        if "bias" in shapes:
            self.params["bias"] = np.zeros(shapes["bias"], dtype=dtype)

    def _ops(self):
        op = self.geometry.op
        return (op, op + "_backward", "conv_forward", "conv_backward")

    #: Whether the last forward pass computed this layer's ReLU and the max pooling after it too (the engine's
    #: ``conv_relu_pool_forward``: the output was the pooled one), and its window winners (None when that pass
    #: did not train: the backward, if one comes, computes them then).
    _pooled: bool = False
    _winners: np.ndarray | None = None
    #: The convolution right before, whose ReLU's mask this layer's pooled backward may apply to its input
    #: gradient (set by :func:`_pair_input_relus`), or None.
    relu_input_from: "Layer | None" = None
    #: Set by the next layer's backward when the gradient it returned to this layer has this layer's ReLU mask
    #: applied already (``input_relu``); read and cleared by this layer's backward.
    _grad_masked: bool = False
    #: This layer's (weight, bias) gradients when the next layer's backward computed them (the engine's
    #: ``conv_relu_pool_backward(..., producer=...)``: :meth:`_producer`); read and cleared by this layer's backward.
    _producer_grads: tuple | None = None
    #: The pooled convolution right after this one (the reverse of ``relu_input_from``), or None.
    relu_output_to: "Layer | None" = None

    def _pools_here(self, ctx: Pass) -> bool:
        """Whether this pass runs the convolution, its ReLU and the max pooling after it as one op: the layer
        hands its ReLU on (:meth:`Layer._hands_relu_on`) and the engine's ``conv_relu_pool_pays`` takes the
        block (fastcnn: a 3x3 layer it computes by Winograd F(4x4, 3x3), then a plain 2x2 pooling)."""
        if self.relu_pool is None:
            return False
        pays = getattr(ctx.engine, "conv_relu_pool_pays", None)
        return (pays is not None and self._hands_relu_on(ctx)
                and pays(self.geometry, self.relu_pool.geometry, np.dtype(ctx.dtype)))

    def _relu_here(self, ctx: Pass) -> bool:
        """Whether this pass computes the layer's ReLU inside the convolution (the engine's
        ``conv_relu_forward``): no max pooling takes the ReLU on, and ``conv_relu_pays`` takes the layer
        (fastcnn: a convolution it computes by im2col + GEMM)."""
        if self.activation != "relu":
            return False
        pays = getattr(ctx.engine, "conv_relu_pays", None)
        return (pays is not None and ctx.fuse and not self._hands_relu_on(ctx)
                and pays(self.geometry, np.dtype(ctx.dtype)))

    #: The batch norm right after this convolution (set by :func:`_pair_conv_norms`), or None.
    norm_next: "Layer | None" = None
    #: Whether the last forward pass computed ``norm_next``'s batch norm (and the ReLU that batch norm would
    #: apply) inside this layer's op (the engine's ``conv_batch_norm_forward``): the output was the batch norm's.
    _norm_inside: bool = False

    def _norm_here(self, ctx: Pass) -> bool:
        """Whether this pass computes the batch norm after this convolution inside it: a pass that does not
        train (the batch norm's running statistics are known before the output is), and the engine's
        ``conv_batch_norm_pays`` takes the layer (fastcnn: one it computes by Winograd F(4x4, 3x3) or im2col +
        GEMM)."""
        pays = getattr(ctx.engine, "conv_batch_norm_pays", None)
        return (self.norm_next is not None and pays is not None and ctx.fuse and not ctx.training
                and self.activation is None and pays(self.geometry, np.dtype(ctx.dtype)))

    #: The shortcut's output, handed over by the residual block whose body this convolution and its batch norm
    #: end (:meth:`cnn.blocks.ResidualBlock._tail`) for this layer's op to add, with the block's ReLU; None otherwise.
    _residual: np.ndarray | None = None

    def _conv_norm(self, engine, x, ctx):
        """The engine's ``conv_batch_norm_forward`` of x: ``norm_next``'s output, ReLU'd when that batch norm
        would apply the ReLU after it (:meth:`_BatchNorm._fuses_relu`); with a residual handed over,
        ``relu(output + residual)``."""
        norm, residual = self.norm_next, self._residual
        return engine.conv_batch_norm_forward(
            self.geometry, x, self._weight(), self.params.get("bias"), norm.buffers["running_mean"],
            norm.buffers["running_var"], norm.params["weight"], norm.params["bias"], eps=norm.config.eps,
            relu=residual is not None or norm._fuses_relu(ctx), residual=residual)

    def _forward(self, x, ctx):
        self._x = x
        bias = self.params.get("bias")
        self._winners = None
        self._grad_masked, self._producer_grads = False, None
        self._norm_inside = self._norm_here(ctx)
        if self._norm_inside:
            self._pooled = False
            return self._conv_norm(ctx.engine, x, ctx)
        self._pooled = self._pools_here(ctx)
        if self._pooled:
            y, self._winners = self._conv_relu_pool(ctx.engine, x, winners=ctx.training)
            return y
        if self._defers(ctx):
            self._relu_inside = True
            return _Deferred((self.geometry, x, self._weight(), bias), ctx.dtype)
        if self._relu_here(ctx):
            self._relu_inside = True
            return ctx.engine.conv_relu_forward(self.geometry, x, self._weight(), bias)
        return ctx.engine.conv_forward(self.geometry, x, self._weight(), bias)

    def _conv_relu_pool(self, engine, x, winners: bool):
        """The engine's ``conv_relu_pool_forward`` of x (or of the layer before's output, left to this op:
        :class:`_Deferred`): (y, the winners or None)."""
        producer = x.producer if isinstance(x, _Deferred) else None
        return engine.conv_relu_pool_forward(
            self.geometry, self.relu_pool.geometry, None if producer else x, self._weight(), self.params.get("bias"),
            **({"producer": producer} if producer else {}), winners=winners)

    def _defers(self, ctx: Pass) -> bool:
        """Whether this layer leaves its output to the pooled convolution after it (``relu_output_to``), which
        then computes it sample by sample inside its own op, the same bits (the engine's
        ``conv_relu_pool_forward(..., producer=...)``): the output, the seeds' conv1's 11 MB at batch 128, is
        never written whole, nor read back. When this layer would compute its ReLU inside its op, the next one
        pools, and the engine's ``conv_relu_pool_producer_fits`` takes the pair (fastcnn: stride 1, few input
        channels; see :meth:`_producer`)."""
        nxt = self.relu_output_to
        fits = getattr(ctx.engine, "conv_relu_pool_producer_fits", None)
        return (nxt is not None and fits is not None and self.mask is None and self._relu_here(ctx)
                and nxt._pools_here(ctx) and fits(nxt.geometry, self.geometry, np.dtype(ctx.dtype)))

    def _producer(self, source) -> "tuple | None":
        """``(geometry, x)`` of the convolution before this pooled one (:func:`_pair_input_relus`) when this
        layer's backward can compute that layer's parameter gradients too: it computed its ReLU inside its
        op, nobody needs its input gradient (a first layer), it has no connection table, and the engine's
        ``conv_relu_pool_producer_fits`` takes it (fastcnn: stride 1, few input channels). Then the
        full-size gradient between the two is never written, nor read back (the seeds' conv1)."""
        fits = getattr(self._ctx.engine, "conv_relu_pool_producer_fits", None)
        if (fits is None or source is None or not source._relu_inside or source.input_grad
                or source.mask is not None or not self.input_grad):
            return None
        return (source.geometry, source._x) if fits(self.geometry, source.geometry, np.dtype(self._ctx.dtype)) else None

    #: The identity shortcut's ``(gradient, block output)``, set for one backward pass by the residual block
    #: whose body this convolution starts (:meth:`cnn.blocks.ResidualBlock._backward_through_norms`): the input gradient
    #: then includes the shortcut's (the engine's ``conv_backward_add``), and ``_added_shortcut`` says so.
    _shortcut_grad: "tuple | None" = None
    _added_shortcut: bool = False
    #: The body's input gradient, set for one backward pass by the residual block whose shortcut this convolution
    #: starts: the input gradient then includes it (the engine's ``conv_backward_sum``), and ``_added_body``
    #: says so.
    _addend: "np.ndarray | None" = None
    _added_body: bool = False

    def _backward(self, grad):
        engine, bias = self._ctx.engine, self.params.get("bias")
        shortcut, self._shortcut_grad, self._added_shortcut = self._shortcut_grad, None, False
        addend, self._addend, self._added_body = self._addend, None, False
        masked, self._grad_masked = self._grad_masked, False
        given, self._producer_grads = self._producer_grads, None
        if given is not None:  # the next layer's backward computed them: see _producer
            gx, (gw, gb) = None, given
        elif self._pooled:  # grad is with respect to the pooled output (the pooling passed it on)
            if self._winners is None:  # a forward pass that did not train: the winners, now
                self._winners = self._conv_relu_pool(engine, self._x, winners=True)[1]
            source, x = self.relu_input_from, self._x
            producer = self._producer(source)
            if isinstance(x, _Deferred):  # the input was computed inside the forward (see _defers)
                if producer is not None:  # and is again, inside the backward
                    producer, x = x.producer, None
                else:  # the input gradient is wanted: the input, once, as the layer before would have given it
                    geometry, x0, weight, b = x.producer
                    x = source._pre = engine.conv_relu_forward(geometry, x0, weight, b)
            if producer is not None:
                gx, gw, gb, source_gw, source_gb = engine.conv_relu_pool_backward(
                    self.geometry, self.relu_pool.geometry, grad, x, self._weight(), bias, self._winners,
                    producer=producer)
                source._producer_grads = (source_gw, source_gb)
                return self._store_grads(gx, gw, gb)
            input_relu = source is not None and source._relu_inside and self.input_grad
            gx, gw, gb = engine.conv_relu_pool_backward(self.geometry, self.relu_pool.geometry, grad, x,
                                                        self._weight(), bias, self._winners,
                                                        input_grad=self.input_grad, input_relu=input_relu)
            if input_relu:
                source._grad_masked = True  # gx is already with respect to its ReLU's input
        elif self._relu_inside and not masked:  # grad is with respect to the ReLU's output, self._pre
            gx, gw, gb = engine.conv_relu_backward(self.geometry, grad, self._x, self._weight(), bias, self._pre,
                                                   input_grad=self.input_grad)
        elif shortcut is not None and self.input_grad:
            gx, gw, gb = engine.conv_backward_add(self.geometry, grad, self._x, self._weight(), bias, *shortcut)
            self._added_shortcut = True
        elif addend is not None and self.input_grad:
            gx, gw, gb = engine.conv_backward_sum(self.geometry, grad, self._x, self._weight(), bias, addend)
            self._added_body = True
        else:
            gx, gw, gb = engine.conv_backward(self.geometry, grad, self._x, self._weight(), bias,
                                              input_grad=self.input_grad)
        return self._store_grads(gx, gw, gb)

    def _store_grads(self, gx, gw, gb):
        """``self.grads`` from the weight and bias gradients; returns the input gradient gx."""
        if self.mask is not None:
            gw = gw * self.mask  # d(weight * mask)/d(weight): no gradient outside the table
        self.grads = {"weight": gw}
        if "bias" in self.params:
            self.grads["bias"] = gb
        return gx


class _Conv(_OnConvGeometry):
    """Conv1D/Conv2D: ``engine.conv_forward(geometry, x, weight, bias)``, the geometry of
    ``conv{1,2}d(x, weight, bias, strides, padding, dilation, groups, padding_mode)`` resolved once, here.

    With a connection table (``connections``, LeNet-5's C3) the weight is still the full
    ``(filters, C_in, *k)`` tensor, PyTorch's layout, with a fixed 0/1 ``mask`` (1 where filter ``co`` reads
    channel ``ci``): the forward convolves with ``weight * mask`` and the backward multiplies the weight's
    gradient by the mask. Why a mask rather than one small convolution per filter: the engines' one
    convolution kernel (and its BLAS path) runs the layer in one call, and the saved weight has the shape every
    tool expects. The unconnected weights start at 0 and their gradient is exactly 0, so every optimizer here
    leaves them at 0 (SGD with momentum and weight decay, Adam, Adadelta, RMSprop: the step of a zero weight
    with a zero gradient and zero state is 0); and since the forward reads ``weight * mask``, a value loaded
    into an unconnected position is ignored. Saved weights therefore hold the full tensor, zeros outside the
    table; :meth:`count_params` counts the connected weights only, as the summary does."""

    record_type = netspec.BaseConv

    def count_params(self):
        unconnected = 0 if self.mask is None else self.mask.size - int(np.count_nonzero(self.mask))
        return super().count_params() - unconnected * math.prod(self.config.kernel_size)

    @classmethod
    def tensor_shapes(cls, config, input_shape):
        shapes = {"weight": (config.filters, input_shape[0] // config.groups) + tuple(config.kernel_size)}
        if config.use_bias:
            shapes["bias"] = (config.filters,)
        return shapes

    def build(self, input_shape, seed, dtype, he):
        super().build(input_shape, seed, dtype, he)
        cfg = self.config
        shapes = self.tensor_shapes(cfg, input_shape)
        shape = shapes["weight"]
        receptive = math.prod(cfg.kernel_size)
        fan_in, fan_out = shape[1] * receptive, cfg.filters * receptive
        if cfg.connections is not None:
            self.mask = self._table_mask(cfg.table, shape, dtype)
            links = int(np.count_nonzero(self.mask))  # the average fans over the connected pairs
            fan_in, fan_out = links * receptive / cfg.filters, links * receptive / shape[1]
        self._init_weights(shapes, fan_in, fan_out, seed, dtype, he)
        if self.mask is not None:
            self.params["weight"] *= self.mask
        # Padding, output sizes and every check, once for the layer's life (one sample stands for any batch).
        self.geometry = conv_geometry(
            f"conv{cfg.rank}d", (1,) + tuple(input_shape), shape, (cfg.filters,) if cfg.use_bias else None,
            cfg.strides, cfg.padding, cfg.dilation, cfg.groups, cfg.padding_mode, cfg.rank)

    @staticmethod
    def _table_mask(table, weight_shape, dtype) -> np.ndarray:
        """0/1 of shape ``(filters, C_in, 1, ...)``: 1 where filter ``co`` reads input channel ``ci``."""
        mask = np.zeros(weight_shape[:2] + (1,) * (len(weight_shape) - 2), dtype=dtype)
        for co, channels in enumerate(table):
            mask[co, list(channels)] = 1
        return mask


class _ConvTranspose(_OnConvGeometry):
    """Conv1DTranspose/Conv2DTranspose: ``engine.conv_forward(geometry, x, weight, bias)`` on the geometry of
    ``conv_transpose{1,2}d`` resolved once, here, from the padding and output padding Keras' arguments mean
    (``BaseConvTranspose.resolved``). The weight is PyTorch's ``(C_in, filters/groups, *kernel)``."""

    record_type = netspec.BaseConvTranspose

    @classmethod
    def tensor_shapes(cls, config, input_shape):
        shapes = {"weight": (input_shape[0], config.filters // config.groups) + tuple(config.kernel_size)}
        if config.use_bias:
            shapes["bias"] = (config.filters,)
        return shapes

    def build(self, input_shape, seed, dtype, he):
        super().build(input_shape, seed, dtype, he)
        cfg = self.config
        shapes = self.tensor_shapes(cfg, input_shape)
        receptive = math.prod(cfg.kernel_size)
        # Keras' glorot reads its kernel (*k, filters, C_in) as fan_in = k * filters, fan_out = k * C_in;
        # PyTorch's init reads (C_in, C_out/groups, *k) the same way: fan_in = k * C_out/groups.
        fan_in, fan_out = shapes["weight"][1] * receptive, input_shape[0] * receptive
        self._init_weights(shapes, fan_in, fan_out, seed, dtype, he)
        pads, added = cfg.resolved()
        self.geometry = conv_transpose_geometry(
            f"conv_transpose{cfg.rank}d", (1,) + tuple(input_shape), shapes["weight"],
            (cfg.filters,) if cfg.use_bias else None, cfg.strides, pads, added, cfg.groups, cfg.dilation, cfg.rank)


class _Pool(Layer):
    """Max or average pooling over windows, 1-D or 2-D: ``engine.pool_forward(geometry, x)``, the geometry
    of ``{max,avg}_pool{1,2}d`` resolved once, here."""

    record_type = netspec.BasePool

    def build(self, input_shape, seed, dtype, he):
        super().build(input_shape, seed, dtype, he)
        cfg = self.config
        kind = "max" if isinstance(cfg, netspec.BaseMaxPool) else "avg"
        self.geometry = pool_geometry(
            f"{kind}_pool{cfg.rank}d", (1,) + tuple(input_shape), cfg.pool_size, cfg.strides, cfg.padding, 1,
            cfg.ceil_mode, cfg.rank, kind=kind, count_include_pad=getattr(cfg, "count_include_pad", True))

    def _ops(self):
        op = self.geometry.op
        return (op, op + "_backward", "pool_forward", "pool_backward")

    #: The layer whose ReLU this max pooling may apply (set by :func:`_pair_relu_pools`), or None.
    relu_from: Layer | None = None
    _fused: bool = False

    #: Whether the last pass found x already pooled by the convolution before (conv_relu_pool_forward).
    _pooled_before: bool = False

    def _forward(self, x, ctx):
        self._x = x
        # Fused only when the layer before handed its ReLU on in this very pass: then x is its pre-activation,
        # or, when that convolution pooled too (_OnConvGeometry._pools_here), this layer's output already.
        self._fused = self.relu_from is not None and self.relu_from._relu_handed_on
        self._pooled_before = self._fused and getattr(self.relu_from, "_pooled", False)
        if self._pooled_before:
            return x
        if self._fused:
            return ctx.engine.relu_pool_forward(self.geometry, x)
        return ctx.engine.pool_forward(self.geometry, x)

    def _backward(self, grad):
        if self._pooled_before:
            return grad  # the convolution's fused backward takes the pooled gradient
        if self._fused:
            return self._ctx.engine.relu_pool_backward(self.geometry, grad, self._x)
        return self._ctx.engine.pool_backward(self.geometry, grad, self._x)


class _GlobalPool(Layer):
    """Global max or average over every position of each channel."""

    record_type = netspec.BaseGlobalPool


    def _op(self):
        kind = "max" if "Max" in self.config.type else "avg"
        return f"global_{kind}_pool{self.config.rank}d"

    def _ops(self):
        return (self._op(), self._op() + "_backward")

    def _forward(self, x, ctx):
        self._x = x
        # The engines keep the spatial axes as size 1 (N, C, 1, 1), as PyTorch does; the layer gives (N, C),
        # the shape netspec promises, so Dense can follow directly.
        return getattr(ctx.engine, self._op())(x).reshape(x.shape[:2])

    def _backward(self, grad):
        kept = grad.reshape(grad.shape + (1,) * (self._x.ndim - 2))
        return getattr(self._ctx.engine, self._op() + "_backward")(kept, self._x)


class _Flatten(Layer):
    """The spec's ``flatten(x, 1)`` and its backward, computed here as NumPy reshapes: a row-major merge of the
    trailing axes moves no value, so a C-contiguous batch (what every engine op returns) is flattened as a
    view, with no copy (the engines' ``flatten`` returns a fresh array, 0.5 ms each way per step on the seeds'
    model). No layer writes into its input, so the view is safe; its values are ``engine.flatten``'s exactly."""

    record_type = netspec.Flatten

    def _ops(self):
        return ("flatten", "flatten_backward")

    def _forward(self, x, ctx):
        self._x_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # -1 is ambiguous for an empty batch

    def _backward(self, grad):
        return grad.reshape(self._x_shape)


class _Dense(Layer):
    """``engine.linear(x, weight, bias)`` with ``weight`` of shape (units, in_features)."""

    record_type = netspec.Dense

    @classmethod
    def tensor_shapes(cls, config, input_shape):
        shapes = {"weight": (config.units, input_shape[0])}
        if config.use_bias:
            shapes["bias"] = (config.units,)
        return shapes

    def build(self, input_shape, seed, dtype, he):
        super().build(input_shape, seed, dtype, he)
        shapes = self.tensor_shapes(self.config, input_shape)
        fan_out, fan_in = shapes["weight"]
        limit = _he_limit(fan_in) if he else _glorot_limit(fan_in, fan_out)
        rng = np.random.default_rng([seed, self.index])
        self.params["weight"] = rng.uniform(-limit, limit, size=(fan_out, fan_in)).astype(dtype)
        if self.config.use_bias:
            self.params["bias"] = np.zeros(shapes["bias"], dtype=dtype)

    def _ops(self):
        return ("linear", "linear_backward")

    def _forward(self, x, ctx):
        self._x = x
        return ctx.engine.linear(x, self.params["weight"], self.params.get("bias"))

    def _backward(self, grad):
        gx, gw, gb = self._ctx.engine.linear_backward(grad, self._x, self.params["weight"], self.params.get("bias"))
        self.grads = {"weight": gw}
        if "bias" in self.params:
            self.grads["bias"] = gb
        return gx


class _Dropout(Layer):
    """Inverted dropout while training, its mask seeded by ``derive_seed(model seed, index, global step)``;
    shard ``r`` of a sharded step (:mod:`cnn.distributed`) by ``derive_seed(model seed, index, global step, r)``,
    so a shard's masks do not depend on which process computes it."""

    record_type = netspec.Dropout


    def _ops(self):
        return ("dropout", "dropout_backward")

    def _forward(self, x, ctx):
        self._x = x
        self._active = ctx.training and self.config.rate > 0.0
        if not self._active:
            return x
        parts = (self.index, ctx.step) if ctx.shard is None else (self.index, ctx.step, ctx.shard)
        self._seed = derive_seed(ctx.seed, *parts)
        return ctx.engine.dropout(x, self.config.rate, True, seed=self._seed)

    def _backward(self, grad):
        if not self._active:
            return grad
        return self._ctx.engine.dropout_backward(grad, self._x, self.config.rate, True, seed=self._seed)


class _BatchNorm(Layer):
    """Batch normalisation over axis 1. Training uses the batch's statistics and updates the running
    ones in place; evaluation, and training of a frozen layer, use the running statistics."""

    record_type = netspec.BatchNorm

    @classmethod
    def tensor_shapes(cls, config, input_shape):
        channels = (input_shape[0],)
        return {"weight": channels, "bias": channels, "running_mean": channels, "running_var": channels}

    def build(self, input_shape, seed, dtype, he):
        super().build(input_shape, seed, dtype, he)
        channels = self.tensor_shapes(self.config, input_shape)["weight"]
        self.params = {"weight": np.ones(channels, dtype=dtype), "bias": np.zeros(channels, dtype=dtype)}
        self.buffers = {"running_mean": np.zeros(channels, dtype=dtype), "running_var": np.ones(channels, dtype=dtype)}

    def _ops(self):
        return ("batch_norm", "batch_norm_backward")

    def _args(self):
        cfg = self.config
        return (self.buffers["running_mean"], self.buffers["running_var"], self.params["weight"], self.params["bias"],
                self._training, cfg.momentum, cfg.eps)

    #: The ReLU layer right after this batch norm (set by :func:`_pair_norm_relus`), or None.
    relu_next: "Layer | None" = None
    #: Whether the last forward pass applied ``relu_next``'s ReLU here (the engine's ``batch_norm_relu``): the
    #: output, and ``self._pre``, were the ReLU's; the backward takes the gradient with respect to it.
    _relu_fused: bool = False

    #: The shortcut's output, set for one forward pass by the residual block whose body this batch norm ends
    #: (:meth:`cnn.blocks.ResidualBlock._norm_tail`): this layer's op adds it and applies the block's ReLU (the engine's
    #: ``batch_norm_add_relu``). None otherwise.
    _residual: np.ndarray | None = None
    #: The block's output, set for one backward pass by that block (or by the block whose shortcut this batch
    #: norm ends): this layer's backward takes its gradient through that ReLU's mask first (the engine's
    #: ``batch_norm_relu_backward``). None otherwise.
    _mask_from: np.ndarray | None = None

    #: The convolution right before this batch norm (set by :func:`_pair_conv_norms`), or None.
    norm_from: "Layer | None" = None
    #: Whether the last forward pass found this batch norm computed already, by ``norm_from``'s op: x passed on.
    _done_by_conv: bool = False

    def _fuses_relu(self, ctx: Pass) -> bool:
        """Whether this pass applies ``relu_next``'s ReLU here (or in the convolution that computes this batch
        norm)."""
        return (ctx.fuse and self.relu_next is not None and self.activation is None
                and hasattr(ctx.engine, "batch_norm_relu"))

    #: The means and variances the last forward pass normalised with, (2, C) float64, where the engine's fused op
    #: wrote them (``saved_stats``): the backward takes them instead of two more passes over x. None otherwise.
    _saved: np.ndarray | None = None

    def _forward(self, x, ctx):
        self._x = x
        self._training = ctx.training and self.trainable
        self._relu_fused = self._fuses_relu(ctx)
        self._saved = None
        self._done_by_conv = self.norm_from is not None and self.norm_from._norm_inside
        if self._done_by_conv:
            return x  # the convolution's op computed this layer's output (and its ReLU's): see _pair_conv_norms
        if x.shape[0] == 0 and not self._training:  # no sample (the ops refuse an empty x): nothing to normalise
            return np.zeros(x.shape, dtype=ctx.dtype)
        if self._residual is None and not self._relu_fused:
            return ctx.engine.batch_norm(x, *self._args())
        self._saved = np.empty((2, x.shape[1]), dtype=np.float64)
        if self._residual is not None:
            return ctx.engine.batch_norm_add_relu(x, self._residual, *self._args(), saved_stats=self._saved)
        return ctx.engine.batch_norm_relu(x, *self._args(), saved_stats=self._saved)

    def _backward(self, grad):
        engine = self._ctx.engine
        if self._done_by_conv:  # the input was never written: the convolution's output, now
            conv = self.norm_from
            self._x = _cast(engine.conv_forward(conv.geometry, conv._x, conv._weight(), conv.params.get("bias")),
                            self._ctx.dtype)
            self._done_by_conv = False
        if self._x.shape[0] == 0 and not self._training:  # no sample: no gradient
            zeros = np.zeros(self.params["weight"].shape, dtype=self._ctx.dtype)
            self.grads = {"weight": zeros, "bias": zeros.copy()}
            return np.zeros(self._x.shape, dtype=self._ctx.dtype)
        if self._mask_from is not None:
            gx, gw, gb = engine.batch_norm_relu_backward(grad, self._x, self._mask_from, *self._args(),
                                                         saved_stats=self._saved)
        elif self._relu_fused:
            gx, gw, gb = engine.batch_norm_relu_backward(grad, self._x, self._pre, *self._args(),
                                                         saved_stats=self._saved)
        else:
            gx, gw, gb = engine.batch_norm_backward(grad, self._x, *self._args())
        self.grads = {"weight": gw, "bias": gb}
        return gx


class _Activation(Layer):
    """An activation on its own: the base class applies ``self.activation`` to the identity."""

    record_type = netspec.Activation

    #: The batch norm right before this layer, which may apply its ReLU (set by :func:`_pair_norm_relus`).
    relu_from_norm: "Layer | None" = None
    #: Whether the last forward pass found the ReLU applied already (by ``relu_from_norm``): x passed on.
    _relu_done: bool = False

    def forward(self, x, ctx):
        self._relu_done = self.relu_from_norm is not None and self.relu_from_norm._relu_fused
        if not self._relu_done:
            return super().forward(x, ctx)
        self._ctx, self._relu_handed_on, self._relu_inside = ctx, False, False
        return x

    def backward(self, grad_out):
        if self._relu_done and self._ctx.keep:
            return grad_out
        return super().backward(grad_out)

    def _forward(self, x, ctx):
        return x

    def _backward(self, grad):
        return grad


class _ChannelPad(Layer):
    """Zero channels before and after axis 1 of the batch: a copy into a zeroed array (no engine op: nothing
    is computed); the backward is the slice of the gradient at the input's channels."""

    record_type = netspec.ChannelPad

    def _forward(self, x, ctx):
        before, after = self.config.pads
        y = np.zeros((x.shape[0], before + x.shape[1] + after) + x.shape[2:], dtype=x.dtype)
        y[:, before:before + x.shape[1]] = x
        return y

    def _backward(self, grad):
        before, _ = self.config.pads
        return np.ascontiguousarray(grad[:, before:before + self.input_shape[0]])


class _ZeroPadding(Layer):
    """Zeros around the spatial axes: a copy into a zeroed array; the backward is the slice of the gradient
    at the input's positions (nothing is computed: no engine op)."""

    record_type = netspec.BaseZeroPadding

    def _inside(self):
        return (slice(None), slice(None)) + tuple(slice(b, b + n) for (b, _), n in
                                                  zip(self.config.pairs, self.input_shape[1:]))

    def _forward(self, x, ctx):
        y = np.zeros((x.shape[0],) + tuple(self.output_shape), dtype=x.dtype)
        y[self._inside()] = x
        return y

    def _backward(self, grad):
        return np.ascontiguousarray(grad[self._inside()])


def _runtime_class(config) -> type:
    for record_class in type(config).__mro__:  # the nearest registered record class
        if record_class in _RUNTIME:
            return _RUNTIME[record_class]
    raise TypeError(f"no runtime layer for {type(config).__name__}; known: {', '.join(c.__name__ for c in _RUNTIME)}")


def _feeds_relu(configs, position: int) -> bool:
    """He initialisation when the layer's own activation is in the ReLU family, or when the next layer
    that is not batch norm or dropout is such an activation (``conv, bn, relu``)."""
    config = configs[position]
    if getattr(config, "activation", None) is not None:
        return config.activation in RELU_FAMILY
    for later in configs[position + 1:]:
        if isinstance(later, (netspec.BatchNorm, netspec.Dropout)):
            continue
        return isinstance(later, netspec.Activation) and later.activation in RELU_FAMILY
    return False


def build_layer(config, name: str, index: int, input_shape, seed: int, dtype, he: bool = False) -> Layer:
    """One runtime layer (not a block) from its record, built for one sample shape."""
    layer = _runtime_class(config)(config, name, index)
    layer.build(tuple(input_shape), seed, np.dtype(dtype), he)
    return layer


def build_layers(configs, input_shape, seed: int, dtype, first_index: int = 1, prefix: str = ""):
    """Runtime layers for a list of records; returns ``(layers, next_index)``.

    Indices run depth first: a block takes one index, then its inner layers the following ones.
    """
    configs = list(configs)
    layers, index, shape = [], first_index, tuple(input_shape)
    for position, (config, name) in enumerate(zip(configs, default_names(configs, prefix))):
        runtime = _runtime_class(config)
        if runtime.is_block:
            layer = runtime(config, name, index)
            index = layer.build_branches(index + 1, shape, seed, np.dtype(dtype))
        else:
            layer = build_layer(config, name, index, shape, seed, dtype, _feeds_relu(configs, position))
            index += 1
        layers.append(layer)
        shape = layer.output_shape
    _pair_relu_pools(layers)
    _pair_norm_relus(layers)
    _pair_input_relus(layers)
    _pair_conv_norms(layers)
    return layers, index


def _pair_relu_pools(layers) -> None:
    """Link each layer with a ReLU activation to a max pooling right after it (conv-ReLU-pool, the seeds'
    ``conv64k3 relu, maxpool2``): with a fusing engine and :attr:`Pass.fuse`, the pooling computes
    ``max_pool(relu(x))`` from the pre-activation in one kernel and its backward in one pass, so the largest
    activation of such a block is never written (issue 16, item 2). The results are the unfused layers' bit
    for bit (the engine's fused op is tested against the composition), only cheaper."""
    for producer, pool in zip(layers, layers[1:]):
        if (isinstance(pool, _Pool) and pool.geometry.kind == "max" and not pool.geometry.return_indices
                and not producer.is_block and producer.activation == "relu"):
            producer.relu_pool = pool
            pool.relu_from = producer


def _pair_input_relus(layers) -> None:
    """Link each convolution whose ReLU may go into the max pooling after it (:func:`_pair_relu_pools`) to a
    convolution with a ReLU right before it (the seeds' ``conv32k3 relu, conv64k3 relu, maxpool2``): when the
    first computed its ReLU inside its own op and the second pooled, the second's backward returns the first
    ReLU's input gradient (the engine's ``conv_relu_pool_backward(..., input_relu=True)``, its mask applied
    while each sample's gradient is in cache) and the first's backward takes it as it is, instead of reading
    the 11 MB gradient and the ReLU's output again for the mask. Bit for bit the unfused layers' results.
    The reverse link (``relu_output_to``) lets a first layer leave its output to the pooled op, which computes it
    sample by sample (:meth:`_OnConvGeometry._defers`, the same bits), and in a training step the pooled op's
    backward gives that layer its parameter gradients (:meth:`_OnConvGeometry._producer`; those two up to the
    order of their sums)."""
    for producer, conv in zip(layers, layers[1:]):
        if (isinstance(producer, _OnConvGeometry) and isinstance(conv, _OnConvGeometry)
                and producer.activation == "relu" and conv.relu_pool is not None):
            conv.relu_input_from, producer.relu_output_to = producer, conv


def _pair_conv_norms(layers) -> None:
    """Link each convolution without an activation to a batch norm right after it (ResNet's ``conv, bn``): in
    a pass that does not train, with a fusing engine and :attr:`Pass.fuse`, the convolution computes the batch
    norm, with the running statistics, as it stores its output (and the ReLU after the batch norm, when that
    batch norm would apply it: :func:`_pair_norm_relus`), and the batch norm and the ReLU layer pass it on
    (fastcnn's ``conv_batch_norm_forward``, where ``conv_batch_norm_pays``). Bit for bit the unfused layers'
    results; a backward after such a pass computes the convolution's output again for the batch norm's."""
    for conv, norm in zip(layers, layers[1:]):
        if isinstance(conv, _Conv) and conv.activation is None and isinstance(norm, _BatchNorm):
            conv.norm_next, norm.norm_from = norm, conv


def _pair_norm_relus(layers) -> None:
    """Link each batch norm to a ReLU layer right after it (ResNet's ``conv, bn, relu``) unless that ReLU goes
    into a max pooling (:func:`_pair_relu_pools`): with a fusing engine and :attr:`Pass.fuse`, the batch norm
    computes ``relu(batch_norm(x))`` in one pass and its backward through the ReLU's mask (fastcnn's
    ``batch_norm_relu``), and the ReLU layer passes its input on; bit for bit the unfused layers' results."""
    for norm, act in zip(layers, layers[1:]):
        if (isinstance(norm, _BatchNorm) and norm.activation is None and isinstance(act, _Activation)
                and act.activation == "relu" and act.relu_pool is None):
            norm.relu_next = act
            act.relu_from_norm = norm



# --------------------------------------------------------------------------------------------------
# Sizes, checked before anything is allocated


def tensor_shapes(config, input_shape) -> dict[str, tuple[int, ...]]:
    """The parameters and buffers (by name, with their shapes) of the runtime layer of ``config``."""
    return _runtime_class(config).tensor_shapes(config, tuple(input_shape))


def walk_layers(configs, input_shape, *, prefix: str = "", number: int | None = None):
    """Every layer of a network, depth first, as ``(number, config, name, input_shape, output_shape)``.

    ``number`` is the layer's 1-based position in the network as ``cnn shape`` numbers it; a layer inside
    a block has the block's number and a name that shows the path (``residual/body/conv2d``). The shapes
    are those of one sample. Nothing is allocated: it is the plan :func:`check_sizes` checks.
    """
    configs, shape = list(configs), tuple(input_shape)
    for position, (config, name) in enumerate(zip(configs, default_names(configs, prefix)), start=1):
        own = number if number is not None else position
        out = tuple(config.infer(shape).shape)
        yield own, config, name, shape, out
        if isinstance(config, netspec.Block):
            for label, inner in config.named_branches().items():
                yield from walk_layers(inner, shape, prefix=f"{name}/{label}/", number=own)
        shape = out


def _layer_label(op: str, number: int, config, name: str) -> str:
    return f"{op}: layer {number} ({config.type} {printable(name)!r})"


def check_sizes(configs, input_shape, dtype, *, batch_size: int | None = None, op: str = "Model") -> None:
    """Refuse, before anything is allocated, a network one of whose arrays would exceed ``CNN_MAX_ARRAY_BYTES``
    (:mod:`cnnbase.limits`): every parameter and buffer, and with ``batch_size`` every layer's output for a
    batch of that many samples. The :class:`~cnnbase.limits.SizeLimitError` names the layer (number, type,
    name), the array and its shape, the bytes it needs and the limit."""
    itemsize = np.dtype(dtype).itemsize
    for number, config, name, in_shape, out_shape in walk_layers(configs, input_shape):
        label = _layer_label(op, number, config, name)
        for tensor, shape in tensor_shapes(config, in_shape).items():
            check_bytes(nbytes_of(shape, itemsize), what=f"{label}: its {tensor} of shape {shape}")
        if batch_size is not None:
            shape = (batch_size,) + out_shape
            check_bytes(nbytes_of(shape, itemsize), what=f"{label}: its output for a batch of {batch_size}, {shape}")
