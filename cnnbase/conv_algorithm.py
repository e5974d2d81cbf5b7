"""Which algorithm computes a convolution: the ``algorithm`` keyword of conv2d, conv2d_backward, conv_forward and
conv_backward, checked the same way by both engines (``specs/conv.md``, "Algorithms").

The algorithm is an implementation choice: every one computes the same formula; they differ in speed and in
rounding. refcnn has one algorithm, the formula's loops, and accepts the keyword (checked like fastcnn's) so that
code runs unchanged on both engines.
"""

from __future__ import annotations

from .checks import check_choice, invalid

__all__ = ["ALGORITHMS", "check_algorithm", "winograd_obstacle"]

#: ``auto``: the engine picks (fastcnn by a measured rule); ``direct``: a direct (im2col or per-tap GEMM)
#: convolution; ``winograd``: Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2015); ``winograd4``:
#: F(4x4, 3x3), 4x fewer multiplications than direct, larger float32 rounding.
ALGORITHMS = ("auto", "direct", "winograd", "winograd4")
WINOGRAD = ("winograd", "winograd4")


def winograd_obstacle(geom) -> str | None:
    """Why Winograd F(2x2, 3x3) or F(4x4, 3x3) cannot compute the convolution ``geom`` (a ConvGeometry), or None when it
    can: it is a 2-D, ungrouped convolution with a 3x3 kernel, stride 1 and dilation 1."""
    if geom.transposed:
        return "a transposed convolution"
    if geom.rank != 2:
        return f"a {geom.rank}-D convolution (only 2-D)"
    if geom.kernel != (3, 3):
        return f"kernel {geom.kernel} (only 3x3)"
    if geom.stride != (1, 1):
        return f"stride {geom.stride} (only 1)"
    if geom.dilation != (1, 1):
        return f"dilation {geom.dilation} (only 1)"
    if geom.G != 1:
        return f"groups={geom.G} (only 1)"
    return None


def check_algorithm(op: str, algorithm, geom) -> str:
    """Require one of :data:`ALGORITHMS`; ``'winograd'`` and ``'winograd4'`` also require a convolution it can compute
    (:func:`winograd_obstacle`). A ValueError naming ``algorithm`` otherwise."""
    check_choice(algorithm, "algorithm", op, ALGORITHMS)
    if algorithm in WINOGRAD:
        reason = winograd_obstacle(geom)
        if reason is not None:
            raise ValueError(invalid(op, "algorithm", "'auto' or 'direct' for this convolution: "
                                     f"'{algorithm}' computes 2-D, groups=1, 3x3 kernels with stride 1 and "
                                     "dilation 1, not " + reason,
                                     algorithm))
    return algorithm
