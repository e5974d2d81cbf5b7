"""What the adapters of ``cnn conform`` share: binding a call to the spec's signature, and padding amounts.

Every adapter receives calls in the spec's form (``specs/adapter.md``): arrays positionally,
hyperparameters as keywords with the spec's names and defaults. :func:`bind` reads them into one dict by
the signature of refcnn's function of the same name (the spec's signature), so an adapter's function body
sees every argument by name. :func:`pads` turns any padding form of ``specs/shapes-and-padding.md`` §3
into one ``(p_b, p_e)`` pair per spatial axis, for implementations that only take explicit amounts; an
adapter that can express ``'same'`` natively (TensorFlow's ``SAME``, ONNX's ``SAME_UPPER``) passes the
string through instead, so that the matrix checks the implementation's own reading of it.

:func:`spec_function` names a function and gives it the spec's signature, and :data:`SHAPE_FUNCTIONS`
with :func:`not_offered_shapes` gives the one reason no library offers the spec's shape arithmetic.
"""

from __future__ import annotations

import inspect
from typing import Callable

import refcnn
from refcnn import shapes

#: The spec's shape functions: arithmetic on sizes that no deep-learning library exposes as a function.
SHAPE_FUNCTIONS = ("conv_output_size", "conv_transpose_output_size", "same_padding", "receptive_field_step")


def signature(op: str) -> inspect.Signature:
    """The spec's signature of ``op`` (refcnn's function of that name)."""
    return inspect.signature(getattr(refcnn, op))


def bind(op: str, args, kwargs) -> dict:
    """The call's arguments by name, defaults filled in, as the spec's signature of ``op`` reads them."""
    bound = signature(op).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def spec_function(op: str, body: Callable) -> Callable:
    """``body(values)`` (the bound arguments) as a function with the spec's name and signature."""

    def function(*args, **kwargs):
        return body(bind(op, args, kwargs))

    function.__name__ = function.__qualname__ = op
    function.__signature__ = signature(op)
    function.__doc__ = body.__doc__
    return function


def as_tuple(value, rank: int) -> tuple:
    """An int (or None) repeated per axis, or the per-axis tuple as given."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def pads(padding, sizes, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Any padding form of the spec as one ``(p_b, p_e)`` pair per spatial axis (the spec's arithmetic,
    ``refcnn.shapes.resolve_padding``; the calls ``cnn conform`` draws are valid, so it never raises)."""
    rank = len(sizes)
    return shapes.resolve_padding(padding, tuple(sizes), as_tuple(kernel, rank), as_tuple(stride, rank),
                                  as_tuple(dilation, rank))


def is_symmetric(pairs) -> bool:
    return all(b == e for b, e in pairs)


def not_offered_shapes() -> dict[str, str]:
    """The reason, per shape function, that an adapter does not offer it."""
    return {name: "shape arithmetic, not a function of the library" for name in SHAPE_FUNCTIONS}
