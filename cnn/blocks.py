"""Runtime blocks: layers made of branches of other layers (:class:`cnnbase.netspec.Residual`, ``Concat``).

A block runs each of its branches from the block's input and joins their outputs: a residual block adds its
``body`` and its ``shortcut`` (an empty shortcut is the identity) and applies its activation; a concat block
stacks its branches along the channels. Backward, each branch's layers run in reverse order and the branches'
input gradients are added. The inner layers are :mod:`cnn.layers`' runtime layers, built depth first by
:func:`cnn.layers.build_layers` (a block takes one index, then its inner layers the following ones).

With a fusing engine (``Pass.fuse``) a ReLU residual block moves its sum and its ReLU into its neighbours: into
the convolution or the batch norm that ends the body, forward, and into the batch norms' and the first
convolution's backward (issue 16; the same bits as the plain sum, the engines' fused ops are tested against
the composition).
"""

from __future__ import annotations

import numpy as np

from cnnbase import netspec

from .layers import Layer, Pass, _BatchNorm, _cast, _Conv, build_layers

__all__ = ["Block", "ResidualBlock", "ConcatBlock"]


def _run(layers, x, ctx):
    for layer in layers:
        x = layer.forward(x, ctx)
    return x


def _run_backward(layers, grad):
    for layer in reversed(layers):
        grad = layer.backward(grad)
    return grad


def _masked_backward(layers, grad, out):
    """The backward of ``layers``, which end with a batch norm, of ``relu_backward(grad, out)``: the mask
    applied inside that batch norm's backward (``_BatchNorm._mask_from``)."""
    norm = layers[-1]
    norm._mask_from = out
    try:
        return _run_backward(layers, grad)
    finally:
        norm._mask_from = None


class Block(Layer):
    """A layer made of named branches of layers, each run from the block's input."""

    is_block = True

    def __init__(self, config, name, index):
        super().__init__(config, name, index)
        self.branches: dict[str, list[Layer]] = {}

    def build_branches(self, next_index: int, input_shape, seed, dtype) -> int:
        """Build every inner layer; returns the next free depth-first index."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.config.infer(self.input_shape).shape)
        for label, configs in self.config.named_branches().items():
            built, next_index = build_layers(configs, input_shape, seed, dtype, next_index,
                                             prefix=f"{self.name}/{label}/")
            self.branches[label] = built
        return next_index

    def sublayers(self):
        out = []
        for layers in self.branches.values():
            for layer in layers:
                out.append(layer)
                out.extend(layer.sublayers())
        return out

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in getattr(self, "branches", {}).values():
            for inner in layer:
                inner.trainable = value

    def _ops(self):
        return ()


class ResidualBlock(Block):
    record_type = netspec.Residual

    def _tail(self, ctx: Pass) -> "Layer | None":
        """The convolution that ends the body with its batch norm, when this pass computes that batch norm inside
        it (:func:`cnn.layers._pair_conv_norms`) and the block applies a ReLU: that convolution's op can add the
        shortcut and apply the block's ReLU too, as it stores its output. None otherwise."""
        body = self.branches["body"]
        if not (ctx.fuse and self.activation == "relu" and len(body) >= 2 and isinstance(body[-1], _BatchNorm)):
            return None
        norm, conv = body[-1], body[-2]
        fits = norm.norm_from is conv and norm.activation is None and norm.relu_next is None
        return conv if fits and conv._norm_here(ctx) else None

    def _norm_tail(self, ctx: Pass, x) -> "_BatchNorm | None":
        """The batch norm that ends the body, when this pass has it add the shortcut and apply the block's ReLU
        in its own op (the engine's ``batch_norm_add_relu``, bit for bit ``add_relu`` of the batch norm's
        output and the shortcut): a fusing pass of an engine that has it, a ReLU block, a batch norm of no
        activation of its own, a batch with samples. None otherwise. The backward then takes the body's
        gradient, and a shortcut's ending with a batch norm, through the ReLU's mask inside those batch
        norms' backward, and an identity shortcut's in the engine's ``relu_backward_add``: the masked
        gradient is never written (:meth:`_backward`)."""
        body = self.branches["body"]
        if not (ctx.fuse and self.activation == "relu" and body and isinstance(body[-1], _BatchNorm)
                and hasattr(ctx.engine, "batch_norm_add_relu") and x.shape[0] > 0):
            return None
        norm = body[-1]
        return norm if norm.activation is None and norm.relu_next is None else None

    #: The batch norm that added the shortcut in the last forward pass (:meth:`_norm_tail`), or None.
    _added_by: "_BatchNorm | None" = None

    def _forward(self, x, ctx):
        self._added_by = None
        tail = self._tail(ctx)
        if tail is not None:  # the shortcut first, for the body's last convolution to add (bit for bit add_relu)
            shortcut = _run(self.branches["shortcut"], x, ctx)
            tail._residual = shortcut
            try:
                out = _run(self.branches["body"], x, ctx)
            finally:
                tail._residual = None
            self._relu_inside = True
            return out
        norm = self._norm_tail(ctx, x)
        if norm is not None:  # the shortcut first, for the body's last batch norm to add
            norm._residual = _run(self.branches["shortcut"], x, ctx)
            try:
                out = _run(self.branches["body"], x, ctx)
            finally:
                norm._residual = None
            self._relu_inside, self._added_by = True, norm
            return out
        body = _run(self.branches["body"], x, ctx)
        shortcut = _run(self.branches["shortcut"], x, ctx)
        if ctx.fuse and self.activation == "relu" and hasattr(ctx.engine, "add_relu"):
            self._relu_inside = True  # the sum and the block's ReLU in one pass, bit for bit (fastcnn.add_relu)
            return ctx.engine.add_relu(body, shortcut)
        return body + shortcut

    def _backward(self, grad):
        if self._added_by is not None:  # grad is with respect to the ReLU's output: see _norm_tail
            return self._backward_through_norms(grad)
        if self._relu_inside:  # grad is with respect to the ReLU's output, self._pre: its mask first
            grad = _cast(self._ctx.engine.relu_backward(grad, self._pre), self._ctx.dtype)
        return _run_backward(self.branches["body"], grad) + _run_backward(self.branches["shortcut"], grad)

    def _backward_through_norms(self, grad):
        """:meth:`_backward` after a pass whose body's last batch norm added the shortcut: the ReLU's mask (of
        the block's output, ``self._pre``) applied inside the batch norms that end the body and the shortcut,
        and with an identity shortcut inside the sum of the two gradients: inside the body's first
        convolution's backward (``conv_backward_add``) when it starts the body, else ``relu_backward_add``;
        the same bits as the mask first."""
        engine, dtype, out = self._ctx.engine, self._ctx.dtype, self._pre
        body, shortcut = self.branches["body"], self.branches["shortcut"]
        first = body[0] if isinstance(body[0], _Conv) and hasattr(engine, "conv_backward_add") else None
        if not shortcut and first is not None:  # the first convolution adds the shortcut's gradient
            first._shortcut_grad = (grad, out)
        try:
            body_grad = _masked_backward(body, grad, out)
        finally:
            if first is not None:
                first._shortcut_grad = None
        if not shortcut:
            if first is not None and first._added_shortcut:
                return body_grad
            return _cast(engine.relu_backward_add(grad, out, body_grad), dtype)
        if isinstance(shortcut[-1], _BatchNorm) and shortcut[-1].activation is None:
            return self._sum_in_shortcut(body_grad, lambda: _masked_backward(shortcut, grad, out))
        return body_grad + _run_backward(shortcut, _cast(engine.relu_backward(grad, out), dtype))

    def _sum_in_shortcut(self, body_grad, shortcut_backward):
        """``body_grad + shortcut_backward()``: the block's input gradient. When the shortcut starts with a
        convolution and the engine has ``conv_backward_sum``, that convolution's backward adds ``body_grad`` as
        it writes its input gradient (fastcnn.conv_residual): the shortcut's own, three quarters zeros behind a
        strided 1x1 convolution, is never a whole array and the sum no pass of its own; the same bits."""
        first = self.branches["shortcut"][0]
        if not (isinstance(first, _Conv) and hasattr(self._ctx.engine, "conv_backward_sum")):
            return body_grad + shortcut_backward()
        first._addend = body_grad
        try:
            grad = shortcut_backward()
        finally:
            first._addend = None
        return grad if first._added_body else body_grad + grad


class ConcatBlock(Block):
    record_type = netspec.Concat

    def _forward(self, x, ctx):
        outs = [_run(layers, x, ctx) for layers in self.branches.values()]
        self._splits = np.cumsum([out.shape[1] for out in outs])[:-1]
        return np.concatenate(outs, axis=1)

    def _backward(self, grad):
        parts = np.split(grad, self._splits, axis=1)
        total = None
        for layers, part in zip(self.branches.values(), parts):
            g = _run_backward(layers, np.ascontiguousarray(part))
            total = g if total is None else total + g
        return total
