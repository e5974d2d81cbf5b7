"""The shape module: integers in, integers out.

Every output size, padding amount, receptive field and cost in the project is computed here, once, so
that both engines, the ``cnn shape`` calculator and every error message agree. Nothing here touches an
array. The formulas are those of ``specs/shapes-and-padding.md`` and ``specs/counting.md``; the symbols
follow the glossary in ``specs/README.md``:

    n      input size along one spatial axis (H, W or L)
    k      kernel size along that axis (KH, KW, K)
    s      stride (SH, SW)
    d      dilation (DH, DW); d = 1 means no dilation
    p_b    padding before (top / left), p_e padding after (bottom / right)

Functions raise :class:`ShapeError` (a ``ValueError``) when a size is impossible; an impossible output
size is always an error, never zero.
"""

from __future__ import annotations

import math

from .checks import check_int64, invalid, is_int

__all__ = [
    "ShapeError",
    "SPATIAL_AXES",
    "KERNEL_AXES",
    "PADDING_STRINGS",
    "kernel_extent",
    "conv_output_size",
    "conv_transpose_output_size",
    "same_padding",
    "resolve_padding",
    "window_start",
    "window_taps",
    "window_touches_input",
    "first_empty_window",
    "receptive_field_step",
    "conv_params",
    "conv_macs",
    "linear_params",
    "linear_macs",
]

#: The glossary's names of the spatial axes and of the kernel's axes, by the number of spatial axes (rank).
SPATIAL_AXES = {1: ("L",), 2: ("H", "W")}
KERNEL_AXES = {1: ("K",), 2: ("KH", "KW")}

#: The padding amounts given by name. ``'same'`` puts an odd extra cell at the end (TensorFlow, ONNX
#: SAME_UPPER), ``'same_lower'`` at the beginning (ONNX SAME_LOWER); ``'valid'`` is no padding.
PADDING_STRINGS = ("valid", "same", "same_lower")


class ShapeError(ValueError):
    """An output size that cannot exist, or a padding amount that cannot be honoured."""


def kernel_extent(kernel: int, dilation: int = 1) -> int:
    """Number of input cells a dilated window spans: ``d*(k-1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    pad_begin: int = 0,
    pad_end: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    *,
    where: str = "",
) -> int:
    """Number of window positions along one axis (convolution and pooling).

    ``floor((n + p_b + p_e - d(k-1) - 1) / s) + 1``. With ``ceil_mode`` the floor becomes a ceiling, except
    that the extra partial window this adds is dropped when it would *start* in the end padding
    (``start = out_floor*s - p_b >= n``), the rule of PyTorch and ONNX.

    ``where`` prefixes the error message (for example ``"conv2d: axis H"``).
    """
    extent = kernel_extent(kernel, dilation)
    padded = n + pad_begin + pad_end
    if padded < extent:
        prefix = f"{where}: " if where else ""
        raise ShapeError(
            f"{prefix}the window spans d*(k-1)+1 = {extent} cells (k={kernel}, d={dilation}) but the padded "
            f"input has only n + p_begin + p_end = {n} + {pad_begin} + {pad_end} = {padded}; "
            f"the output size would be less than 1"
        )
    out = (padded - extent) // stride + 1
    if ceil_mode and (padded - extent) % stride:
        # The ceiling adds one partial window running past the end padding; it is kept only if it starts
        # inside the input or the begin padding. PyTorch and ONNX write this as "if (out-1)*s >= n + p_b:
        # out -= 1" after the ceiling; the two agree whenever p_e < d(k-1)+1, the only case they allow.
        if out * stride - pad_begin < n:
            out += 1
    return out


def conv_transpose_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    pad_begin: int = 0,
    pad_end: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    *,
    where: str = "",
) -> int:
    """Output size of a transposed convolution along one axis.

    ``(n - 1)*s - p_b - p_e + d(k-1) + output_padding + 1``. ``output_padding`` must be smaller than the
    stride or the dilation (PyTorch's rule); it picks one of the ``s`` input sizes that a strided
    convolution maps to the same ``n``.
    """
    prefix = f"{where}: " if where else ""
    if output_padding >= max(stride, dilation):
        raise ShapeError(
            f"{prefix}output_padding must be smaller than either stride or dilation; received "
            f"output_padding={output_padding}, stride={stride}, dilation={dilation}"
        )
    out = (n - 1) * stride - pad_begin - pad_end + kernel_extent(kernel, dilation) + output_padding
    if out < 1:
        raise ShapeError(
            f"{prefix}the output size (n-1)*s - p_begin - p_end + d*(k-1) + output_padding + 1 = "
            f"({n}-1)*{stride} - {pad_begin} - {pad_end} + {dilation}*({kernel}-1) + {output_padding} + 1 "
            f"= {out} is less than 1"
        )
    return out


def same_padding(n: int, kernel: int, stride: int = 1, dilation: int = 1, lower: bool = False) -> tuple[int, int]:
    """``(p_b, p_e)`` that make the output size ``ceil(n / s)``, for any stride.

    The total is ``max((ceil(n/s) - 1)*s + d(k-1) + 1 - n, 0)``. When it is odd the extra cell goes at the
    end (``'same'``, TensorFlow and ONNX SAME_UPPER) or at the beginning (``'same_lower'``).
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + kernel_extent(kernel, dilation) - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def resolve_padding(
    padding,
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    *,
    op: str = "conv",
    name: str = "padding",
    allow_strings: tuple[str, ...] = PADDING_STRINGS,
) -> tuple[tuple[int, int], ...]:
    """Turn any accepted padding amount into one ``(p_b, p_e)`` pair per spatial axis.

    Accepted forms, for ``r`` spatial axes:

    * an int ``p``: ``p`` on both sides of every axis;
    * per-axis: ``r`` ints, ``(PH, PW)``: ``PH`` above and below, ``PW`` left and right;
    * per-side: ``r`` pairs, ``((top, bottom), (left, right))``;
    * ``'valid'``: no padding; ``'same'`` and ``'same_lower'``: see :func:`same_padding`.

    Lists are accepted wherever tuples are (JSON has no tuples). All amounts must be >= 0.
    """
    rank = len(sizes)
    axis_word = "1 int" if rank == 1 else f"{rank} ints"
    expected = (
        f"a non-negative int, a tuple of {axis_word} (per axis), a tuple of {rank} (begin, end) pairs "
        f"(per side), or one of {', '.join(repr(s) for s in allow_strings)}"
    )
    if isinstance(padding, str):
        if padding not in allow_strings:
            raise ValueError(invalid(op, name, expected, padding))
        if padding == "valid":
            return ((0, 0),) * rank
        lower = padding == "same_lower"
        return tuple(same_padding(sizes[i], kernel[i], stride[i], dilation[i], lower) for i in range(rank))
    if is_int(padding):
        if padding < 0:
            raise ValueError(invalid(op, name, expected, padding))
        check_int64(padding, name, op, expected)
        return ((int(padding), int(padding)),) * rank
    if not isinstance(padding, (tuple, list)) or len(padding) != rank:
        raise ValueError(invalid(op, name, expected, padding))
    pairs = []
    for item in padding:
        if is_int(item):
            pair = (item, item)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(is_int(v) for v in item):
            pair = tuple(item)
        else:
            raise ValueError(invalid(op, name, expected, padding))
        if pair[0] < 0 or pair[1] < 0:
            raise ValueError(invalid(op, name, expected, padding))
        for v in pair:
            check_int64(v, name, op, expected, shown=padding)
        pairs.append((int(pair[0]), int(pair[1])))
    kinds = {isinstance(item, (tuple, list)) for item in padding}
    if len(kinds) > 1:
        # ((1, 1), 2) mixes the per-side and per-axis forms; refuse rather than guess.
        raise ValueError(invalid(op, name, expected, padding))
    return tuple(pairs)


def window_start(out_index: int, stride: int, pad_begin: int) -> int:
    """Input coordinate of the first cell of window ``out_index``: ``o*s - p_b`` (may be negative)."""
    return out_index * stride - pad_begin


def window_taps(start: int, kernel: int, dilation: int, lo: int, hi: int) -> range:
    """The taps ``j`` (0 <= j < k) of a window whose cells ``start + j*d`` lie inside ``[lo, hi)``, in order.

    Computed, not searched: a window of 10^8 taps costs what a window of 3 does."""
    first = max(0, -((start - lo) // dilation))  # ceil((lo - start) / d), the first tap at or after lo
    last = min(kernel, -((start - hi) // dilation))  # ceil((hi - start) / d), the first tap at or after hi
    return range(first, max(first, last))


def window_touches_input(start: int, kernel: int, dilation: int, n: int) -> bool:
    """Whether some cell ``start + j*d`` (0 <= j < k) of a window lies inside ``[0, n)``."""
    return len(window_taps(start, kernel, dilation, 0, n)) > 0


def first_empty_window(
    n: int, kernel: int, stride: int, pad_begin: int, dilation: int, out: int
) -> int | None:
    """Index of the first of ``out`` windows that covers only padding, or ``None`` when every window
    touches the input. Pooling refuses such windows (``specs/pool.md``); convolution does not need to.

    Solved, not searched window by window (an axis of 10^12 cells costs what one of 10 does). Window ``o``
    starts at ``t = o*s - p_b``. A window with ``0 <= t < n`` touches the input at its first tap; one with
    ``t >= n`` does not, and the first such is ``o = ceil((n + p_b) / s)``. A window with ``t < 0`` reaches
    the input at its first tap at or after 0, tap ``ceil(-t/d)`` at cell ``t mod d``: it touches the input when
    that tap exists (``-t <= (k-1)*d``, false only for the earliest windows) and ``t mod d < n``. The latter
    always holds when ``n >= d``; otherwise ``t mod d`` repeats with period ``d / gcd(s, d)`` in ``o``, so only
    that many windows need a look.
    """
    past_end = -(-(n + pad_begin) // stride)  # the first window starting at or after the input's end
    before_start = min(out, -(-pad_begin // stride))  # the windows starting in the leading padding
    if before_start > 0 and pad_begin > (kernel - 1) * dilation:
        return 0  # window 0 lies wholly in the leading padding
    if n < dilation:
        period = dilation // math.gcd(stride, dilation)
        for o in range(min(before_start, period)):
            if window_start(o, stride, pad_begin) % dilation >= n:
                return o
    return past_end if past_end < out else None


def receptive_field_step(
    rf: int, jump: int, begin: int, kernel: int, stride: int = 1, dilation: int = 1, pad_begin: int = 0
) -> tuple[int, int, int]:
    """Receptive field after one windowed layer, measured in input cells of the network.

    ``rf`` is the receptive field size of one unit of the layer's input, ``jump`` the distance in network
    input cells between two neighbouring units, ``begin`` the network-input coordinate of the first cell
    seen by unit 0 (negative when it lies in padding). After the layer::

        rf'    = rf + d(k-1) * jump
        jump'  = jump * s
        begin' = begin - p_b * jump

    The network input itself has ``rf = 1, jump = 1, begin = 0``.
    """
    return rf + (kernel_extent(kernel, dilation) - 1) * jump, jump * stride, begin - pad_begin * jump


def conv_params(c_in: int, c_out: int, kernel: tuple[int, ...], groups: int = 1, bias: bool = True) -> int:
    """Parameters of a convolution: ``C_out * (C_in/groups) * prod(K) + (C_out if bias)``."""
    return c_out * (c_in // groups) * math.prod(kernel) + (c_out if bias else 0)


def conv_macs(c_in: int, c_out: int, kernel: tuple[int, ...], out_sizes: tuple[int, ...], groups: int = 1) -> int:
    """Multiply-accumulates of one sample: ``prod(out) * C_out * (C_in/groups) * prod(K)``.

    Bias additions are not counted (one MAC = one multiply and one add = 2 FLOPs; ``specs/counting.md``).
    """
    return math.prod(out_sizes) * c_out * (c_in // groups) * math.prod(kernel)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a dense layer: ``out*in + (out if bias)``."""
    return out_features * in_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of one sample of a dense layer: ``out*in``."""
    return out_features * in_features
