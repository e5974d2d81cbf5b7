"""Pooling's arguments: every check and every resolved size, from shapes and hyperparameters alone.

Both engines call :func:`pool_geometry` (and, for the global pools, :func:`whole_map`) before any computation,
so refcnn and fastcnn raise the same errors (``specs/pool.md``). The result, a :class:`PoolGeometry`, holds the
integers of one call; a caller that pools many batches the same way (a ``cnn`` layer) resolves it once and
hands it to the engines' ``pool_forward`` and ``pool_backward``, which only check that the arrays fit it
(:func:`fit_geometry`). :meth:`PoolGeometry.as_2d` sees a 1-D pooling as a 2-D one of height 1.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from . import shapes
from .checks import FORWARD, check_bool, check_float_array, check_int64, check_shape, expand_ints, invalid, is_int, shown
from .limits import SizeLimitError, check_arrays

__all__ = [
    "PoolGeometry", "pool_geometry", "check_input_shape", "check_grad_out", "max_pool_geometry_of",
    "avg_pool_geometry_of", "whole_map", "fit_geometry", "check_pool_sizes",
]

_AXIS_NAMES = shapes.SPATIAL_AXES
_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)"}
_KINDS = ("max", "avg")


@dataclass(frozen=True)
class PoolGeometry:
    """The resolved integers of one pooling call (per spatial axis tuples are ordered H, W or just L)."""

    op: str
    kind: str  # 'max' or 'avg'
    batch: int  # N
    channels: int  # C
    sizes: tuple[int, ...]  # (H, W) or (L,)
    kernel: tuple[int, ...]  # (KH, KW) or (K,)
    stride: tuple[int, ...]  # (SH, SW) or (S,)
    dilation: tuple[int, ...]  # (DH, DW) or (D,); always 1 for average pooling
    pads: tuple[tuple[int, int], ...]  # (p_b, p_e) per axis
    out_sizes: tuple[int, ...]  # (H_out, W_out) or (L_out,)
    ceil_mode: bool
    return_indices: bool
    count_include_pad: bool
    divisor_override: int | None

    @property
    def rank(self) -> int:
        return len(self.sizes)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels) + self.sizes

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels) + self.out_sizes

    def with_batch(self, batch: int) -> "PoolGeometry":
        """The same pooling for a batch of ``batch`` samples (every other size is per sample)."""
        return self if batch == self.batch else dataclasses.replace(self, batch=int(batch))

    def as_2d(self) -> "PoolGeometry":
        """The same pooling seen as 2-D: a 1-D map becomes a map of height 1 pooled by a 1-high window."""
        if self.rank == 2:
            return self
        return PoolGeometry(
            op=self.op, kind=self.kind, batch=self.batch, channels=self.channels,
            sizes=(1,) + self.sizes, kernel=(1,) + self.kernel, stride=(1,) + self.stride,
            dilation=(1,) + self.dilation, pads=((0, 0),) + self.pads, out_sizes=(1,) + self.out_sizes,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
            count_include_pad=self.count_include_pad, divisor_override=self.divisor_override,
        )


def check_input_shape(op: str, x_shape: tuple[int, ...], rank: int, name: str = "x") -> tuple[int, ...]:
    """Require ``rank + 2`` dimensions, ``(N, C, L)`` or ``(N, C, H, W)``, and at least one cell per spatial axis."""
    x_shape = tuple(int(v) for v in x_shape)
    layout = _LAYOUTS[rank]
    if len(x_shape) != rank + 2:
        raise ValueError(f"{op}: argument `{name}` must have {rank + 2} dimensions {layout}; received shape {x_shape}.")
    if any(n < 1 for n in x_shape[2:]):
        raise shapes.ShapeError(
            f"{op}: argument `{name}` must have at least 1 cell along every spatial axis of {layout}; "
            f"received shape {x_shape}."
        )
    return x_shape


def _check_divisor_override(op: str, value) -> int | None:
    if value is None:
        return None
    if not is_int(value):
        raise TypeError(invalid(op, "divisor_override", "None or a positive int", value))
    if value < 1:
        raise ValueError(invalid(op, "divisor_override", "None or a positive int", value))
    check_int64(value, "divisor_override", op, "None or a positive int")
    return int(value)


def _reject_empty_windows(op, x_shape, rank, kernel, stride, dilation, pads, out_sizes, why: str) -> None:
    """A window made of padding only has no element to take a maximum or a mean of (specs/pool.md)."""
    for axis in range(rank):
        n, k, s, d, (p_b, _), out = (
            x_shape[2 + axis], kernel[axis], stride[axis], dilation[axis], pads[axis], out_sizes[axis]
        )
        o = shapes.first_empty_window(n, k, s, p_b, d, out)
        if o is None:
            continue
        start = shapes.window_start(o, s, p_b)
        cells = [start + j * d for j in range(k)]
        raise shapes.ShapeError(
            f"{op}: window {o} along axis {_AXIS_NAMES[rank][axis]} covers only padding, so it has {why}. "
            f"It reads the cells o*s - p_b + j*d = {o}*{s} - {p_b} + j*{d} for j = 0..{k - 1}, that is "
            f"{cells}, and none lies inside [0, {n}). x.shape={x_shape}, kernel_size={kernel}, stride={stride}, "
            f"dilation={dilation}, padding={pads}; reduce the padding or the dilation."
        )


def pool_geometry(
    op: str,
    x_shape: tuple[int, ...],
    kernel_size,
    stride,
    padding,
    dilation,
    ceil_mode,
    rank: int,
    *,
    kind: str = "max",
    return_indices=False,
    count_include_pad=True,
    divisor_override=None,
) -> PoolGeometry:
    """Validate a pooling call from its input shape and hyperparameters; return the resolved integers.

    Raises ``TypeError`` for a wrong kind of argument, ``ValueError`` for a wrong value and
    :class:`cnnbase.shapes.ShapeError` (a ``ValueError``) for an impossible output size or a window that
    covers only padding where that is refused (max pooling, and average pooling without
    ``count_include_pad``). Shared by both engines, so they raise identical errors.
    """
    if kind not in _KINDS:
        raise ValueError(invalid("pool_geometry", "kind", "one of 'max', 'avg'", kind))
    x_shape = check_input_shape(op, x_shape, rank)
    kernel = expand_ints(kernel_size, rank, "kernel_size", op)
    strides = kernel if stride is None else expand_ints(stride, rank, "stride", op)
    dilations = expand_ints(dilation, rank, "dilation", op)
    sizes = x_shape[2:]
    pads = shapes.resolve_padding(padding, sizes, kernel, strides, dilations, op=op)
    ceil_mode = check_bool(ceil_mode, "ceil_mode", op)
    return_indices = check_bool(return_indices, "return_indices", op)
    count_include_pad = check_bool(count_include_pad, "count_include_pad", op)
    divisor_override = _check_divisor_override(op, divisor_override)
    out_sizes = tuple(
        shapes.conv_output_size(
            sizes[a], kernel[a], strides[a], pads[a][0], pads[a][1], dilations[a], ceil_mode,
            where=f"{op}: x.shape={x_shape}, axis {_AXIS_NAMES[rank][a]}",
        )
        for a in range(rank)
    )
    geometry = PoolGeometry(
        op=op, kind=kind, batch=x_shape[0], channels=x_shape[1], sizes=sizes, kernel=kernel, stride=strides,
        dilation=dilations, pads=pads, out_sizes=out_sizes, ceil_mode=ceil_mode, return_indices=return_indices,
        count_include_pad=count_include_pad, divisor_override=divisor_override,
    )
    check_pool_sizes(geometry, lambda: (
        f"x.shape={x_shape}, kernel_size={shown(kernel_size)}, stride={shown(stride)}, padding={shown(padding)}, "
        f"dilation={shown(dilation)}, ceil_mode={ceil_mode}"))
    if kind == "max":
        _reject_empty_windows(op, x_shape, rank, kernel, strides, dilations, pads, out_sizes,
                              "no input element to take the maximum of")
    elif not count_include_pad:
        _reject_empty_windows(op, x_shape, rank, kernel, strides, dilations, pads, out_sizes,
                              "no input element to average (count_include_pad=False divides by zero)")
    return geometry


def check_pool_sizes(geometry: PoolGeometry, cause=None) -> None:
    """Refuse a pooling whose output (and, for max pooling, its int64 window indices of the same shape: both
    counted as 8 bytes per element) would not fit ``CNN_MAX_ARRAY_BYTES``. Its backward allocates only an
    array of the input's shape, which exists already."""
    check_arrays(geometry.op, [("the output", geometry.out_shape)], cause or (lambda: (
        f"x.shape={geometry.in_shape}, kernel_size={geometry.kernel}, stride={geometry.stride}, "
        f"padding={geometry.pads}, dilation={geometry.dilation}, ceil_mode={geometry.ceil_mode}")))


def check_grad_out(op: str, grad_out, geometry: PoolGeometry) -> None:
    """A float ``grad_out`` of the pooled output's shape."""
    check_float_array(grad_out, "grad_out", op)
    check_shape(grad_out, geometry.out_shape, "grad_out", op,
                context=f"the pooled output of x.shape={geometry.in_shape}")


def max_pool_geometry_of(op, rank, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                         grad_out=FORWARD) -> PoolGeometry:
    """Every check of one ``max_pool{rank}d`` call (of its backward when ``grad_out`` is given)."""
    check_float_array(x, "x", op)
    geometry = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode, rank, kind="max",
                             return_indices=return_indices)
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geometry)
    return geometry


def avg_pool_geometry_of(op, rank, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                         grad_out=FORWARD) -> PoolGeometry:
    """Every check of one ``avg_pool{rank}d`` call (of its backward when ``grad_out`` is given)."""
    check_float_array(x, "x", op)
    geometry = pool_geometry(op, x.shape, kernel_size, stride, padding, 1, ceil_mode, rank, kind="avg",
                             count_include_pad=count_include_pad, divisor_override=divisor_override)
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geometry)
    return geometry


def whole_map(op: str, x, rank: int) -> tuple[int, ...]:
    """The window of a global pool: the spatial sizes of ``x``, after checking ``x``."""
    check_float_array(x, "x", op)
    return check_input_shape(op, x.shape, rank)[2:]


def fit_geometry(geometry: PoolGeometry, x, grad_out=FORWARD, *, caller: str = "pool_forward") -> PoolGeometry:
    """Check that arrays fit a geometry resolved earlier (for another batch, perhaps); returns the geometry for
    ``x``'s batch. Only the sample shape ``(C, *sizes)`` must match: ``x`` may hold any number of samples.
    ``caller`` names the public function in the message when ``geometry`` itself is refused."""
    check_resolved(geometry, caller)
    op = geometry.op
    check_float_array(x, "x", op)
    sample = geometry.in_shape[1:]
    if x.ndim != len(sample) + 1 or x.shape[1:] != sample:
        raise ValueError(
            f"{op}: argument `x` must have shape (N,) + {sample}, the samples this {op} was resolved for "
            f"{_LAYOUTS[geometry.rank]}; received shape {x.shape}."
        )
    geometry = geometry.with_batch(x.shape[0])
    if grad_out is not FORWARD:
        check_grad_out(op, grad_out, geometry)
    check_pool_sizes(geometry)
    return geometry


def check_resolved(geometry, caller: str) -> None:
    """Require a :class:`PoolGeometry` that :func:`pool_geometry` would return: the kernels trust its sizes to
    index the arrays, so a hand-made one with inconsistent fields is refused (``TypeError`` for another type,
    ``ValueError`` otherwise) rather than read out of bounds."""
    expected = "a PoolGeometry from cnnbase.pool.pool_geometry"
    if not isinstance(geometry, PoolGeometry):
        raise TypeError(invalid(caller, "geometry", expected, geometry))
    try:
        ok = _is_resolved(geometry if geometry.batch == 1 else dataclasses.replace(geometry, batch=1))
    except TypeError:  # a field that cannot be hashed (a list): not one pool_geometry made
        ok = False
    if not ok:
        raise ValueError(invalid(caller, "geometry", expected + ", unchanged", geometry))


@functools.lru_cache(maxsize=256)
def _is_resolved(g: PoolGeometry) -> bool:
    """Whether resolving ``g``'s own arguments again gives ``g`` (cached, as a layer reuses a few)."""
    try:
        if g.rank not in (1, 2) or not isinstance(g.op, str) or not is_int(g.channels):
            return False
        again = pool_geometry(g.op, g.in_shape, g.kernel, g.stride, g.pads, g.dilation, g.ceil_mode, g.rank,
                              kind=g.kind, return_indices=g.return_indices, count_include_pad=g.count_include_pad,
                              divisor_override=g.divisor_override)
    except SizeLimitError:  # a sample too large for the limit now in force: say so
        raise
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return again == g
