"""fastcnn: the fast engine.

Numba-compiled, parallel, float32 and float64, with the same public names, arguments, keywords and defaults
as refcnn, and refcnn's docstrings (``specs/`` defines what each computes). Arguments are checked in Python by
the ground floor's functions (:mod:`cnnbase`), as refcnn checks them, so both engines raise the same errors for
the same bad input, before any compiled kernel runs. Each op returns its result in the dtype it was given
(float16 is computed in float32).
"""

from cnnbase import shapes
from cnnbase.padding import PADDING_MODES
from cnnbase.shapes import ShapeError

from ._runtime import get_num_threads, set_num_threads

# Family modules under private names (`from .dropout import *` rebinds `fastcnn.dropout` to the function).
from . import activations as _activations, augment as _augment, conv as _conv, dense as _dense, dropout as _dropout
from . import losses as _losses, norm as _norm, optim as _optim, pool as _pool
# Register algorithm="winograd4" and "winograd" with conv; 'auto' asks them in this order.
from . import winograd4 as _winograd4, winograd as _winograd  # noqa: F401
from .activations import *  # noqa: F401,F403
from .augment import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .conv import conv_backward, conv_forward  # noqa: F401  (GEOMETRY_OPS)
from .pool import pool_backward, pool_forward  # noqa: F401  (GEOMETRY_OPS)
from .pool import FUSED_OPS as _POOL_FUSED, relu_pool_backward, relu_pool_forward  # noqa: F401  (fastcnn only)
from .conv_pool import FUSED_OPS as _CONV_FUSED, conv_relu_pool_pays, conv_relu_pool_producer_fits  # noqa: F401
from .conv_pool import conv_relu_pool_backward, conv_relu_pool_forward  # noqa: F401
from .conv_relu import FUSED_OPS as _CONV_RELU_FUSED, conv_relu_pays  # noqa: F401  (fastcnn only; cnn.layers)
from .conv_relu import conv_relu_backward, conv_relu_forward  # noqa: F401
from .norm_relu import FUSED_OPS as _NORM_RELU_FUSED, batch_norm_relu, batch_norm_relu_backward  # noqa: F401
from .norm_relu import batch_norm_add_relu  # noqa: F401
from .activations import FUSED_OPS as _ADD_RELU_FUSED, add_relu, relu_backward_add  # noqa: F401  (cnn.layers)
from .conv_norm import FUSED_OPS as _CONV_NORM_FUSED, conv_batch_norm_forward, conv_batch_norm_pays  # noqa: F401
from .conv_residual import FUSED_OPS as _CONV_RESIDUAL_FUSED, conv_backward_add, conv_backward_sum  # noqa: F401

#: fastcnn's fused ops (outside the spec's ops, each the composition of plain ops bit for bit): cnn's layers
#: take them when the engine has them.
FUSED_OPS = (_POOL_FUSED + _CONV_FUSED + _CONV_RELU_FUSED + _NORM_RELU_FUSED + _ADD_RELU_FUSED + _CONV_NORM_FUSED
             + _CONV_RESIDUAL_FUSED)

#: Every operation of the spec, by family: the same names as ``refcnn.OPS``.
OPS = {
    "conv": tuple(_conv.__all__),
    "pool": tuple(_pool.__all__),
    "activations": tuple(_activations.__all__),
    "dense": tuple(_dense.__all__),
    "dropout": tuple(_dropout.__all__),
    "norm": tuple(_norm.__all__),
    "losses": tuple(_losses.__all__),
    "optim": tuple(_optim.__all__),
    "augment": tuple(_augment.__all__),
}

#: What runs on a geometry resolved once (by ``cnn``'s layers, when they are built), beside the spec's ops.
GEOMETRY_OPS = ("conv_forward", "conv_backward", "pool_forward", "pool_backward")

# FUSED_OPS are fastcnn's alone, outside OPS and the spec: a ReLU and the max pooling after it in one pass
# (relu_pool_*), a 3x3 convolution with both (conv_relu_pool_*), an im2col + GEMM convolution with its ReLU
# (conv_relu_*), a batch norm with the ReLU after it (batch_norm_relu*), a residual block's sum with its
# ReLU (add_relu), with its last batch norm too (batch_norm_add_relu), its input gradient through the ReLU's
# mask (relu_backward_add), the body's first convolution's backward with that added in (conv_backward_add),
# a projection shortcut's convolution's backward with the body's input gradient added in (conv_backward_sum),
# and a Winograd convolution with the evaluation-mode batch norm after it (and its ReLU:
# conv_batch_norm_forward), which cnn's layers take when the engine has them. Each equals the composition of
# the spec's plain ops bit for bit (tests/test_fast_fused.py, tests/test_fast_conv_pool.py,
# tests/test_fast_conv_relu.py, tests/test_fast_norm_relu.py, tests/test_fast_activations.py,
# tests/test_fast_conv_norm.py, tests/test_fast_conv_residual.py); refcnn keeps only the plain ops.

__all__ = ["shapes", "ShapeError", "PADDING_MODES", "OPS", "set_num_threads", "get_num_threads"] + list(GEOMETRY_OPS) + [
    name for names in OPS.values() for name in names
]
__version__ = "0.1.0"
