"""The two engines expose one API: the same families, names, parameters, kinds and defaults."""

import inspect

import pytest

import fastcnn
import refcnn


def test_same_families_and_names():
    assert fastcnn.OPS == refcnn.OPS


@pytest.mark.parametrize("name", [n for names in refcnn.OPS.values() for n in names])
def test_same_signature(name):
    ref, fast = inspect.signature(getattr(refcnn, name)), inspect.signature(getattr(fastcnn, name))
    describe = lambda sig: [(p.name, p.kind, p.default) for p in sig.parameters.values()]  # noqa: E731
    assert describe(fast) == describe(ref), f"{name}: fastcnn{fast} != refcnn{ref}"


def test_same_ops_on_a_resolved_geometry():
    """conv_forward, pool_forward and their backwards: one set of names and signatures in both engines."""
    assert fastcnn.GEOMETRY_OPS == refcnn.GEOMETRY_OPS == ("conv_forward", "conv_backward", "pool_forward",
                                                           "pool_backward")
    for name in refcnn.GEOMETRY_OPS:
        ref, fast = inspect.signature(getattr(refcnn, name)), inspect.signature(getattr(fastcnn, name))
        assert list(ref.parameters.items()) == list(fast.parameters.items()), f"{name}: {fast} != {ref}"


def test_every_differentiable_op_has_a_backward():
    names = {n for names in refcnn.OPS.values() for n in names}
    forwards = {n for n in names if not n.endswith("_backward")}
    no_backward = {"dropout_mask", "sgd_step", "adam_step", "adadelta_step", "rmsprop_step", "augment"}
    assert {n for n in forwards - no_backward if f"{n}_backward" not in names} == set()
    for n in forwards - no_backward:
        fwd = list(inspect.signature(getattr(refcnn, n)).parameters)
        bwd = list(inspect.signature(getattr(refcnn, f"{n}_backward")).parameters)
        assert bwd == ["grad_out", *fwd], f"{n}_backward{bwd} does not take grad_out then {n}'s arguments"


def test_every_op_has_a_docstring_with_a_formula_and_shapes():
    for name in (n for names in refcnn.OPS.values() for n in names):
        doc = inspect.getdoc(getattr(refcnn, name)) or ""
        assert len(doc) > 80, f"refcnn.{name} has no real docstring"
