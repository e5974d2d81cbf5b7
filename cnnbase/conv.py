"""Convolution's arguments: every check and every resolved size, from shapes and hyperparameters alone.

Both engines call these before any computation, so refcnn and fastcnn raise the same errors for the same bad
input (``specs/conv.md`` section 4). The result of the checks is a :class:`ConvGeometry`: the integers of one
(transposed) convolution, in the glossary's names. A caller that runs the same layer on many batches (a
``cnn`` layer) resolves its geometry once, when it is built, and hands it to the engines' ``conv_forward`` and
``conv_backward``, which only check that the arrays fit it (:func:`fit_geometry`).

Layout NCHW; weights ``(C_out, C_in/G, KH, KW)`` for a convolution and ``(C_in, C_out/G, KH, KW)`` for a
transposed one. A 1-D op is the 2-D op on an input of height 1 with a kernel of height 1:
:meth:`ConvGeometry.as_2d` and :func:`as_2d` add that unit axis, so the engines write their loops once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from .checks import (FORWARD, Verdicts, array_key, check_float_array, check_int, check_shape, expand_ints, invalid,
                     shown)
from .limits import SizeLimitError, check_arrays
from .padding import check_padding_mode
from .shapes import KERNEL_AXES, SPATIAL_AXES, conv_output_size, conv_transpose_output_size, resolve_padding

__all__ = [
    "ConvGeometry",
    "conv_geometry",
    "conv_transpose_geometry",
    "check_conv_arrays",
    "check_grad_out",
    "conv_geometry_of",
    "conv_transpose_geometry_of",
    "fit_geometry",
    "as_2d",
    "WEIGHT_GRAD_BLOCK",
    "conv_arrays",
    "check_conv_sizes",
]

#: Samples whose weight-gradient terms fastcnn adds up in one private buffer (its ``GW_BLOCK``): a backward
#: pass holds ``ceil(N / WEIGHT_GRAD_BLOCK)`` partial weight gradients, which the size check counts.
WEIGHT_GRAD_BLOCK = 4


@dataclass(frozen=True)
class ConvGeometry:
    """The resolved sizes of one (transposed) convolution call; one entry per spatial axis in the tuples.

    ``sizes`` are the input's spatial sizes (H, W) or (L,), ``out`` the output's (H_out, W_out) or
    (L_out,), ``pads`` one ``(p_b, p_e)`` pair per axis. For a convolution ``pads`` is the padding added to
    the input; for a transposed convolution (``transposed``) it is the amount cropped from the full output.
    ``output_padding`` is all zeros for a convolution.
    """

    op: str
    N: int
    C_in: int
    C_out: int
    G: int
    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]
    padding_mode: str = "zeros"
    output_padding: tuple[int, ...] = ()
    transposed: bool = False

    def __hash__(self) -> int:
        """The fields' hash, computed once: a geometry keys the engines' remembered answers and set-ups (issue 16),
        a few lookups per call, and hashing its fourteen fields anew cost several us each in a training step."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(dataclasses.astuple(self))
            object.__setattr__(self, "_hash", cached)  # not a field: equality and repr read the fields alone
        return cached

    def __getstate__(self) -> dict:
        """The fields alone: a string's hash differs between processes, so a pickled hash would be wrong."""
        return {name: value for name, value in self.__dict__.items() if name != "_hash"}

    @property
    def rank(self) -> int:
        return len(self.sizes)

    @property
    def C_in_per_group(self) -> int:
        return self.C_in // self.G

    @property
    def C_out_per_group(self) -> int:
        return self.C_out // self.G

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.N, self.C_in) + self.sizes

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.C_in, self.C_out_per_group) + self.kernel
        return (self.C_out, self.C_in_per_group) + self.kernel

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.N, self.C_out) + self.out

    def with_batch(self, N: int) -> "ConvGeometry":
        """The same geometry for a batch of ``N`` samples (every other size is per sample)."""
        return self if N == self.N else dataclasses.replace(self, N=int(N))

    def as_2d(self) -> "ConvGeometry":
        """The same call with a leading unit spatial axis when it has one spatial axis: size 1, kernel 1,
        stride 1, dilation 1, no padding, so every 2-D formula reduces to the 1-D one."""
        if self.rank == 2:
            return self
        return dataclasses.replace(
            self, sizes=(1,) + self.sizes, kernel=(1,) + self.kernel, stride=(1,) + self.stride,
            dilation=(1,) + self.dilation, pads=((0, 0),) + self.pads, out=(1,) + self.out,
            output_padding=(0,) + self.output_padding,
        )


def as_2d(a: np.ndarray) -> np.ndarray:
    """``(A, B, L)`` as ``(A, B, 1, L)``, the array side of :meth:`ConvGeometry.as_2d`; 4-D arrays unchanged."""
    return a if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])


# ---------------------------------------------------------------------------------------------------
# The checks, in the order the messages are specified
# ---------------------------------------------------------------------------------------------------


def _shapes_text(x_shape, weight_shape) -> str:
    return f"x.shape={tuple(x_shape)}, weight.shape={tuple(weight_shape)}"


def _layouts(rank: int, transposed: bool) -> tuple[str, str]:
    """The glossary's axes of ``x`` and ``weight``, e.g. ``(N, C_in, H, W)`` and ``(C_out, C_in/G, KH, KW)``."""
    axes, kernel_axes = ", ".join(SPATIAL_AXES[rank]), ", ".join(KERNEL_AXES[rank])
    channels = "C_in, C_out/G" if transposed else "C_out, C_in/G"
    return f"(N, C_in, {axes})", f"({channels}, {kernel_axes})"


def _check_ndim(shape, rank: int, name: str, op: str, axes: str) -> None:
    if len(shape) != rank + 2:
        raise ValueError(
            f"{op}: argument `{name}` must have {rank + 2} dimensions {axes}; received shape {tuple(shape)}."
        )


def _check_positive_sizes(shape, name: str, op: str, axes: str, first: int) -> None:
    """Channel, spatial and kernel sizes from axis ``first`` on must be at least 1 (a batch may be empty)."""
    if any(size < 1 for size in shape[first:]):
        raise ValueError(
            f"{op}: argument `{name}` {axes} must have sizes of at least 1 from axis {first} on; "
            f"received shape {tuple(shape)}."
        )


def _check_groups(op: str, C_in: int, C_out: int, G: int, shapes: str) -> None:
    if C_in % G or C_out % G:
        raise ValueError(
            invalid(op, "groups", f"a positive int that divides C_in = {C_in} and C_out = {C_out}", G,
                    extra=f"({shapes})")
        )


def _check_bias(op: str, bias_shape, C_out: int, shapes: str) -> None:
    if bias_shape is not None and tuple(bias_shape) != (C_out,):
        raise ValueError(
            f"{op}: argument `bias` must have shape (C_out,) = ({C_out},); received bias.shape="
            f"{tuple(bias_shape)} ({shapes})."
        )


def _check_layouts(op, x_shape, weight_shape, rank, transposed) -> None:
    x_axes, w_axes = _layouts(rank, transposed)
    _check_ndim(x_shape, rank, "x", op, x_axes)
    _check_ndim(weight_shape, rank, "weight", op, w_axes)
    _check_positive_sizes(x_shape, "x", op, x_axes, first=1)
    _check_positive_sizes(weight_shape, "weight", op, w_axes, first=0)


# ---------------------------------------------------------------------------------------------------
# The arrays a call allocates, checked against CNN_MAX_ARRAY_BYTES before any of them exists
# ---------------------------------------------------------------------------------------------------


def conv_arrays(geom: ConvGeometry, backward: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """``(label, shape)`` of every array larger than the arguments that a call on ``geom`` allocates in either
    engine (refcnn: the output; fastcnn: also its padded copies and per-sample workspaces), from the geometry
    alone. An int64 index map per padded axis is never larger than the padded array it maps, so it is not
    listed. ``backward`` adds what only the backward pass needs."""
    N, k_cells = geom.N, math.prod(geom.kernel)
    items = [("the output", geom.out_shape)]
    if not geom.transposed:
        padded = tuple(n + pb + pe for n, (pb, pe) in zip(geom.sizes, geom.pads))
        if padded != geom.sizes:
            items.append(("the padded input", (N, geom.C_in) + padded))
        items.append(("the im2col workspace of one sample", (geom.C_in * k_cells, math.prod(geom.out))))
        if all(s == 1 for s in geom.stride):
            # the stride-1 path computes H_out rows of W + p_b + p_e cells per output channel
            items.append(("the stride-1 workspace of one sample", (geom.C_out, math.prod(geom.out[:-1]) * padded[-1])))
        grad_w = (geom.C_out, geom.C_in_per_group * k_cells)
    else:
        full = tuple(max((n - 1) * s + d * (k - 1) + 1, pb + o) for n, k, s, d, (pb, _), o in zip(
            geom.sizes, geom.kernel, geom.stride, geom.dilation, geom.pads, geom.out))
        items.append(("the uncropped output of one sample", (geom.C_out,) + full))
        items.append(("the col2im workspace of one sample", (geom.C_out * k_cells, math.prod(geom.sizes))))
        if backward:
            items.append(("the padded grad_out", (N, geom.C_out) + full))
        grad_w = (geom.C_in, geom.C_out_per_group * k_cells)
    if backward:
        items.append(("the weight-gradient partial sums", (-(-N // WEIGHT_GRAD_BLOCK),) + grad_w))
    return items


def check_conv_sizes(geom: ConvGeometry, backward: bool = False, cause=None) -> None:
    """Refuse a call whose arrays (:func:`conv_arrays`) would not fit ``CNN_MAX_ARRAY_BYTES``, with a
    :class:`~cnnbase.limits.SizeLimitError` naming ``geom.op``, the array and ``cause`` (the arguments as
    received; by default the geometry's resolved ones)."""
    check_arrays(geom.op, conv_arrays(geom, backward), cause or (lambda: _resolved_cause(geom)))


def _resolved_cause(geom: ConvGeometry) -> str:
    tail = f", output_padding={geom.output_padding}" if geom.transposed else ""
    return (f"{_shapes_text(geom.x_shape, geom.weight_shape)}, stride={geom.stride}, padding={geom.pads}, "
            f"dilation={geom.dilation}{tail}")


def _cause(x_shape, weight_shape, stride, padding, dilation, output_padding=None):
    """The arguments as received, for a size error's message (built only when one is raised)."""
    tail = "" if output_padding is None else f", output_padding={shown(output_padding)}"
    return lambda: (f"{_shapes_text(x_shape, weight_shape)}, stride={shown(stride)}, padding={shown(padding)}, "
                    f"dilation={shown(dilation)}{tail}")


#: One object per distinct geometry made here (geometries are immutable): the engines remember answers and set-ups
#: by geometry (issue 16), and a lookup with the very object stored finds it by identity, where an equal one (another
#: layer's of the same shape) is compared field by field, ~5 us in a training step. Bounded: cleared when full.
_CANONICAL: dict = {}


def canonical(geom: ConvGeometry) -> ConvGeometry:
    """The one object of ``geom``'s value (``geom`` itself, the first time it is seen)."""
    if len(_CANONICAL) >= 4096:
        _CANONICAL.clear()
    return _CANONICAL.setdefault(geom, geom)


def conv_geometry(op, x_shape, weight_shape, bias_shape, stride, padding, dilation, groups, padding_mode, rank,
                  *, backward=False):
    """Check a convolution's arguments from their shapes and resolve every size to ints.

    ``x_shape`` is ``(N, C_in, *sizes)``, ``weight_shape`` ``(C_out, C_in/G, *kernel)``, ``bias_shape``
    ``(C_out,)`` or ``None``; ``rank`` is the number of spatial axes (1 or 2). Raises ``ValueError`` (or
    :class:`~cnnbase.shapes.ShapeError` when the window does not fit the padded input) with messages naming
    ``op`` and both shapes, and :class:`~cnnbase.limits.SizeLimitError` when an array of the call (of its
    backward too, with ``backward``) would not fit ``CNN_MAX_ARRAY_BYTES``. Returns a :class:`ConvGeometry`.
    """
    cause = _cause(x_shape, weight_shape, stride, padding, dilation)  # the arguments as received
    _check_layouts(op, x_shape, weight_shape, rank, transposed=False)
    shapes = _shapes_text(x_shape, weight_shape)
    N, C_in, *sizes = (int(v) for v in x_shape)
    C_out, C_in_per_group, *kernel = (int(v) for v in weight_shape)
    G = check_int(groups, "groups", op, minimum=1)
    _check_groups(op, C_in, C_out, G, shapes)
    if C_in_per_group * G != C_in:
        raise ValueError(
            f"{op}: argument `weight` must have shape {_layouts(rank, False)[1]} with C_in/G = {C_in}/{G} = "
            f"{C_in // G} input channels per group on axis 1; received {shapes}."
        )
    _check_bias(op, bias_shape, C_out, shapes)
    stride = expand_ints(stride, rank, "stride", op)
    dilation = expand_ints(dilation, rank, "dilation", op)
    pads = resolve_padding(padding, tuple(sizes), tuple(kernel), stride, dilation, op=op)
    mode = check_padding_mode(padding_mode, pads, sizes, op)
    axes = SPATIAL_AXES[rank]
    out = tuple(
        conv_output_size(sizes[i], kernel[i], stride[i], pads[i][0], pads[i][1], dilation[i],
                         where=f"{op}: axis {axes[i]} ({shapes})")
        for i in range(rank)
    )
    geom = ConvGeometry(op, N, C_in, C_out, G, tuple(sizes), tuple(kernel), stride, dilation, pads, out, mode,
                        (0,) * rank)
    check_conv_sizes(geom, backward, cause)
    return canonical(geom)


def conv_transpose_geometry(op, x_shape, weight_shape, bias_shape, stride, padding, output_padding, groups,
                            dilation, rank, *, backward=False):
    """Check a transposed convolution's arguments from their shapes and resolve every size to ints.

    ``x_shape`` is ``(N, C_in, *sizes)``, ``weight_shape`` ``(C_in, C_out/G, *kernel)``, ``bias_shape``
    ``(C_out,)`` or ``None``. The arguments come in PyTorch's order (``groups`` before ``dilation``).
    ``padding`` is an int, per-axis ints, per-side pairs or ``'valid'``; ``'same'`` is refused because the
    output size of a transposed convolution is not decided by its input size alone. Returns a
    :class:`ConvGeometry` with ``padding_mode='zeros'`` and ``transposed=True``.
    """
    cause = _cause(x_shape, weight_shape, stride, padding, dilation, output_padding)
    _check_layouts(op, x_shape, weight_shape, rank, transposed=True)
    shapes = _shapes_text(x_shape, weight_shape)
    N, C_in, *sizes = (int(v) for v in x_shape)
    weight_C_in, C_out_per_group, *kernel = (int(v) for v in weight_shape)
    G = check_int(groups, "groups", op, minimum=1)
    if weight_C_in != C_in:
        raise ValueError(
            f"{op}: argument `weight` must have shape {_layouts(rank, True)[1]} with C_in = {C_in} on axis 0; "
            f"received {shapes}."
        )
    C_out = C_out_per_group * G
    _check_groups(op, C_in, C_out, G, shapes)
    _check_bias(op, bias_shape, C_out, shapes)
    stride = expand_ints(stride, rank, "stride", op)
    dilation = expand_ints(dilation, rank, "dilation", op)
    if isinstance(padding, str) and padding in ("same", "same_lower"):
        raise ValueError(invalid(
            op, "padding", "an int, per-axis ints, per-side pairs or 'valid'", padding,
            extra="'same' is not defined for a transposed convolution: choose the padding and output_padding "
                  "that give the output size you need.",
        ))
    pads = resolve_padding(padding, tuple(sizes), tuple(kernel), stride, dilation, op=op, allow_strings=("valid",))
    output_padding = expand_ints(output_padding, rank, "output_padding", op, minimum=0)
    axes = SPATIAL_AXES[rank]
    out = tuple(
        conv_transpose_output_size(sizes[i], kernel[i], stride[i], pads[i][0], pads[i][1], dilation[i],
                                   output_padding[i], where=f"{op}: axis {axes[i]} ({shapes})")
        for i in range(rank)
    )
    geom = ConvGeometry(op, N, C_in, C_out, G, tuple(sizes), tuple(kernel), stride, dilation, pads, out, "zeros",
                        output_padding, transposed=True)
    check_conv_sizes(geom, backward, cause)
    return canonical(geom)


def check_conv_arrays(op: str, x, weight, bias) -> None:
    """Type checks of the array arguments (their shapes are the geometry's job)."""
    check_float_array(x, "x", op)
    check_float_array(weight, "weight", op)
    if bias is not None:
        check_float_array(bias, "bias", op)


def check_grad_out(op: str, grad_out, geom: ConvGeometry) -> None:
    """A float ``grad_out`` of the forward output's shape ``(N, C_out, *out)``."""
    check_float_array(grad_out, "grad_out", op)
    out_axes = ", ".join(a + "_out" for a in SPATIAL_AXES[geom.rank])
    check_shape(grad_out, geom.out_shape, "grad_out", op, context=f"(N, C_out, {out_axes}) of the forward output")


def conv_geometry_of(op, rank, x, weight, bias, stride, padding, dilation, groups, padding_mode, grad_out=FORWARD):
    """Every check of one ``conv{rank}d`` call (of its backward when ``grad_out`` is given), in the order the
    errors are specified: the arrays' types, then :func:`conv_geometry` of their shapes, then ``grad_out``."""
    check_conv_arrays(op, x, weight, bias)
    geom = conv_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                         dilation, groups, padding_mode, rank, backward=grad_out is not FORWARD)
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geom)
    return geom


def check_resolved(geom, caller: str) -> None:
    """Require a :class:`ConvGeometry` that :func:`conv_geometry` or :func:`conv_transpose_geometry` would
    return: the kernels trust its sizes to index the arrays, so a hand-made one with inconsistent fields
    must be refused (``TypeError`` for another type, ``ValueError`` otherwise), not crash a kernel."""
    if not isinstance(geom, ConvGeometry):
        raise TypeError(invalid(caller, "geometry", "a ConvGeometry from cnnbase.conv.conv_geometry or "
                                "conv_transpose_geometry", geom))
    try:
        ok = _is_resolved(geom if geom.N == 1 else dataclasses.replace(geom, N=1))  # fit_geometry sets N
    except TypeError:  # a field that cannot be hashed (a list), so not one the resolvers made
        ok = False
    if not ok:
        raise ValueError(invalid(caller, "geometry", "a ConvGeometry from cnnbase.conv.conv_geometry or "
                                 "conv_transpose_geometry, unchanged", geom))


@functools.lru_cache(maxsize=256)
def _is_resolved(geom: ConvGeometry) -> bool:
    """Whether resolving ``geom``'s own arguments again gives ``geom`` (cached: a layer calls with the same few
    geometries, one per batch size, for its whole life)."""
    try:
        if geom.rank not in (1, 2) or not isinstance(geom.op, str) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in (geom.N, geom.C_in, geom.C_out, geom.G)):
            return False
        args = (geom.op, geom.x_shape, geom.weight_shape, None, geom.stride, geom.pads)
        if geom.transposed is True:
            again = conv_transpose_geometry(*args, geom.output_padding, geom.G, geom.dilation, geom.rank)
        elif geom.transposed is False:
            again = conv_geometry(*args, geom.dilation, geom.G, geom.padding_mode, geom.rank)
        else:
            return False
    except SizeLimitError:  # a sample too large for the limit now in force: say so, not "changed"
        raise
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return again == geom


def conv_transpose_geometry_of(op, rank, x, weight, bias, stride, padding, output_padding, groups, dilation,
                               grad_out=FORWARD):
    """Every check of one ``conv_transpose{rank}d`` call (of its backward when ``grad_out`` is given)."""
    check_conv_arrays(op, x, weight, bias)
    geom = conv_transpose_geometry(op, x.shape, weight.shape, None if bias is None else bias.shape, stride,
                                   padding, output_padding, groups, dilation, rank, backward=grad_out is not FORWARD)
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geom)
    return geom


#: fit_geometry's answers: a layer calls with the same few geometries and shapes for its whole life.
_FITTED = Verdicts()


def fit_geometry(geom: ConvGeometry, x, weight, bias, grad_out=FORWARD, *,
                 caller: str = "conv_forward") -> ConvGeometry:
    """Check that arrays fit a geometry resolved earlier (for another batch, perhaps); returns the geometry for
    ``x``'s batch. Only the sample shape must match: ``x`` may hold any number of samples. ``caller`` names
    the public function in the message when ``geom`` itself is refused (:func:`check_resolved`). The checks
    read the geometry, the caller and the arrays' types, dtypes and shapes: their answer is remembered by
    those (``cnnbase.checks.Verdicts``)."""
    keys = (array_key(x), array_key(weight), array_key(bias, (None,)), array_key(grad_out, (FORWARD,)))
    key = None if None in keys else (geom, caller, keys)
    return _FITTED.get(key, lambda: _fit_geometry(geom, x, weight, bias, grad_out, caller))


def _fit_geometry(geom, x, weight, bias, grad_out, caller) -> ConvGeometry:
    check_resolved(geom, caller)
    op = geom.op
    check_conv_arrays(op, x, weight, bias)
    sample = geom.x_shape[1:]
    if x.ndim != len(sample) + 1 or x.shape[1:] != sample:
        raise ValueError(
            f"{op}: argument `x` must have shape (N,) + {sample}, the samples this {op} was resolved for "
            f"({_layouts(geom.rank, geom.transposed)[0]}); received shape {x.shape}."
        )
    geom = geom.with_batch(x.shape[0])
    check_shape(weight, geom.weight_shape, "weight", op, context=_layouts(geom.rank, geom.transposed)[1])
    if bias is not None:
        check_shape(bias, (geom.C_out,), "bias", op, context="C_out,")
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geom)
    check_conv_sizes(geom, backward=grad_out is not FORWARD)
    return geom
