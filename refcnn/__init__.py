"""refcnn: the reference engine.

Plain Python loops over scalars, float64, one loop per index of the formula. Every public function states
its formula and shapes in its docstring in the notation of ``specs/``; where ``torch.nn.functional`` has a
function, refcnn uses its name, positional order, keyword names and defaults. Each differentiable op has a
``<op>_backward`` beside it that takes ``grad_out`` followed by exactly the forward's arguments.

Arrays in and out are ``numpy.ndarray``; any float dtype is accepted and the result is float64. Arguments are
checked first, by the ground floor's functions (:mod:`cnnbase`), which fastcnn calls too.
"""

from cnnbase import shapes
from cnnbase.padding import PADDING_MODES
from cnnbase.shapes import ShapeError
# The family modules under private names: `from .dropout import *` below rebinds `refcnn.dropout` to the
# function of that name, so the modules themselves are reached through these.
from . import activations as _activations, augment as _augment, conv as _conv, dense as _dense, dropout as _dropout
from . import losses as _losses, norm as _norm, optim as _optim, pool as _pool
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

#: Every operation of the spec, by family; fastcnn exposes the same names.
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

__all__ = ["shapes", "ShapeError", "PADDING_MODES", "OPS"] + list(GEOMETRY_OPS) + [
    name for names in OPS.values() for name in names
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``refcnn.netspec``, the old name of :mod:`cnnbase.netspec`, is imported on first use: building its
    layer classes takes about 70 ms, which ``import refcnn`` need not pay (see ``cnn bench startup``)."""
    if name == "netspec":
        import cnnbase.netspec

        return cnnbase.netspec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
