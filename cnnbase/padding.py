"""Padding fill: which input cell a padded coordinate reads.

The padding *amount* (how many cells on each side) is resolved by :func:`cnnbase.shapes.resolve_padding`.
The padding *fill* (what those cells hold) is chosen separately by ``padding_mode``; ``specs/shapes-and-padding.md``
defines every mode by the index map below. A padded coordinate ``i`` (``i < 0`` or ``i >= n``) reads:

    'zeros'      nothing: the cell holds 0
    'replicate'  clamp(i, 0, n-1)                       ... a a a | a b c d | d d d ...
    'reflect'    mirror at the edge cells, edge once     ... d c b | a b c d | c b a ...
    'circular'   i mod n                                 ... b c d | a b c d | a b c ...

'reflect' and 'circular' repeat for amounts larger than the input (``np.pad``'s 'reflect' and 'wrap'
do the same); PyTorch accepts only amounts ``< n`` for 'reflect' and ``<= n`` for 'circular', where both
agree. 'reflect' needs ``n >= 2`` as soon as some amount is positive.

Because padding is an index map, the backward of a padded operation sends the gradient of a padded cell
to the input cell it read (several padded cells may add into one input cell), and drops it for 'zeros'.
"""

from __future__ import annotations

from .checks import check_choice

__all__ = ["PADDING_MODES", "source_index", "check_padding_mode"]

PADDING_MODES = ("zeros", "replicate", "reflect", "circular")


def source_index(i: int, n: int, mode: str) -> int:
    """Input index read by padded coordinate ``i`` along an axis of size ``n``; ``-1`` means the fill 0."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return -1
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    # reflect: the sequence 0, 1, ..., n-1, n-2, ..., 1 repeats with period 2(n-1)
    period = 2 * (n - 1)
    j = i % period
    return j if j < n else period - j


def check_padding_mode(padding_mode, pads, sizes, op: str) -> str:
    """Validate ``padding_mode`` against the resolved amounts ``pads`` and the input ``sizes``."""
    mode = check_choice(padding_mode, "padding_mode", op, PADDING_MODES)
    if mode == "reflect":
        for axis, ((begin, end), n) in enumerate(zip(pads, sizes)):
            if n < 2 and (begin or end):
                raise ValueError(
                    f"{op}: padding_mode='reflect' needs at least 2 input cells along a padded axis; "
                    f"spatial axis {axis} has size {n} and padding ({begin}, {end})."
                )
    return mode
