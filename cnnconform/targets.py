"""Targets of ``cnn conform``: what an implementation under test offers, and how it is loaded.

A *target* is anything that exposes some of the spec's functions under the spec's names and signatures
(the adapter protocol, ``specs/adapter.md``): refcnn, fastcnn, PyTorch, ONNX Runtime, TensorFlow and JAX
through ``cnnconform.adapters.<name>_adapter`` (:data:`ADAPTERS`, each loaded only when named), or a user's
module or ``.py`` file. This module owns the list of
the spec's functions (:data:`SPEC_OPS`, the rows of a report), turns a command-line word into a
:class:`Target` (:func:`load_target`) and reads ``--ops`` (:func:`select_ops`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import refcnn

__all__ = ["Target", "TargetError", "SPEC_OPS", "SHAPE_FUNCTIONS", "ADAPTERS", "BUILTIN_TARGETS",
           "target_from_namespace", "load_target", "select_ops"]

#: Functions of the spec that live in the shape module rather than among the ops (family "shapes").
SHAPE_FUNCTIONS = ("conv_output_size", "conv_transpose_output_size", "same_padding", "receptive_field_step")

#: Every function of the spec, in family order: the rows of a report.
SPEC_OPS = tuple(name for names in refcnn.OPS.values() for name in names) + SHAPE_FUNCTIONS


#: The adapters of real implementations: target name -> (adapter module, the packages it imports, the
#: optional extra of pyproject.toml that installs them).
ADAPTERS = {
    "torch": ("cnnconform.adapters.torch_adapter", "PyTorch", "torch"),
    "onnxruntime": ("cnnconform.adapters.onnxruntime_adapter", "onnx and onnxruntime", "onnx"),
    "tensorflow": ("cnnconform.adapters.tensorflow_adapter", "TensorFlow", "tensorflow"),
    "jax": ("cnnconform.adapters.jax_adapter", "JAX", "jax"),
}

#: Every target known by name, in the order of a matrix's columns.
BUILTIN_TARGETS = ("refcnn", "fastcnn", *ADAPTERS)

#: Why the torch adapter offers no function for some spec ops (specs/adapter.md, "The torch target").
_TORCH_NOT_OFFERED = {
    **dict.fromkeys(("dropout_mask", "dropout", "dropout_backward"),
                    "the spec's dropout mask is counter-based; PyTorch's comes from its own generator"),
    **dict.fromkeys(("half_squared_error", "half_squared_error_backward"), "not a PyTorch function"),
    "augment": "no torch.nn.functional counterpart of the spec's geometric augmentation",
    **dict.fromkeys(SHAPE_FUNCTIONS, "shape arithmetic, not a function of the library"),
}


class TargetError(Exception):
    """The target cannot be loaded (a usage error: exit status 2)."""


@dataclass
class Target:
    """An implementation under test: its name and the spec functions it offers."""

    name: str
    functions: dict[str, Callable]
    checks_arguments: bool = True  # whether it promises the spec's TypeError/ValueError for bad input
    spec_messages: bool = False  # whether its messages carry the spec's wording (cases' "match")
    not_offered: dict[str, str] = field(default_factory=dict)  # op -> why it is not offered (NOT_OFFERED)
    dtype: str = "float64"  # the widest float dtype it computes every op in (DTYPE; the matrix uses it)

    def offers(self, op: str) -> bool:
        return op in self.functions


def _functions_of(namespace, names=None, with_shapes: bool = False) -> dict[str, Callable]:
    """The spec functions ``namespace`` offers: attributes with spec names that are callable. The engines
    keep the shape functions in their ``shapes`` module (``with_shapes``)."""
    found = {}
    shapes_module = getattr(namespace, "shapes", None) if with_shapes else None
    for op in names if names is not None else SPEC_OPS:
        fn = getattr(namespace, op, None)
        if fn is None and op in SHAPE_FUNCTIONS and shapes_module is not None:
            fn = getattr(shapes_module, op, None)
        if callable(fn):
            found[op] = fn
    return found


def target_from_namespace(namespace, default_name: str) -> Target:
    """A target from a module (or any object): its spec functions and the optional protocol attributes."""
    return Target(
        name=str(getattr(namespace, "NAME", default_name)),
        functions=_functions_of(namespace),
        checks_arguments=bool(getattr(namespace, "CHECKS_ARGUMENTS", True)),
        spec_messages=bool(getattr(namespace, "SPEC_MESSAGES", False)),
        not_offered={str(k): str(v) for k, v in dict(getattr(namespace, "NOT_OFFERED", {})).items()},
        dtype=str(getattr(namespace, "DTYPE", "float64")),
    )


def _builtin_target(name: str) -> Target:
    if name == "refcnn":
        return Target("refcnn", _functions_of(refcnn, with_shapes=True), checks_arguments=True, spec_messages=True)
    if name == "fastcnn":
        try:  # imported here: an engine that fails to import is a usage problem of this one target
            import fastcnn
        except Exception as exc:  # noqa: BLE001
            raise TargetError(f"cannot import fastcnn: {type(exc).__name__}: {exc}") from exc
        # fastcnn offers exactly the names in its __all__ lists (families not written yet offer none)
        offered = [op for op in SPEC_OPS if op in getattr(fastcnn, "__all__", ()) or op in SHAPE_FUNCTIONS]
        return Target("fastcnn", _functions_of(fastcnn, offered, with_shapes=True), checks_arguments=True,
                      spec_messages=True)
    module_name, packages, extra = ADAPTERS[name]
    try:  # imported here: every real implementation is optional
        adapter = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"the {name} target needs {packages}, which cannot be imported ({exc}); install the "
                          f"{extra!r} extra: pip install 'cnn-ref-fast[{extra}]'") from exc
    target = target_from_namespace(adapter, name)
    if name == "torch" and not target.not_offered:
        target.not_offered = dict(_TORCH_NOT_OFFERED)
    return target


def _load_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"_conform_target_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file may fail in any way
        raise TargetError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _load_module(text: str):
    module_name, _, attribute = text.partition(":")
    if "" not in sys.path and "." not in sys.path:  # `cnn conform mypkg.impl` from the project's folder
        sys.path.insert(0, "")
    try:
        namespace = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001
        raise TargetError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in filter(None, attribute.split(".")):
        if not hasattr(namespace, part):
            raise TargetError(f"module {module_name!r} has no attribute path {attribute!r}")
        namespace = getattr(namespace, part)
    return namespace


def load_target(text: str) -> Target:
    """A name of :data:`BUILTIN_TARGETS`, a path to a ``.py`` file, or ``package.module[:attribute]``.

    Raises :class:`TargetError` when it cannot be loaded or offers none of the spec's functions.
    """
    if text in BUILTIN_TARGETS:
        return _builtin_target(text)
    if text.endswith(".py"):
        path = Path(text)
        if not path.is_file():
            raise TargetError(f"no such file: {text}")
        target = target_from_namespace(_load_file(path), path.stem)
    else:
        target = target_from_namespace(_load_module(text), text)
    if not target.functions:
        raise TargetError(
            f"{text} offers none of the spec's functions (it needs attributes named like conv2d, relu, "
            f"max_pool2d; see specs/adapter.md)"
        )
    return target


def select_ops(text: str | None) -> tuple[str, ...]:
    """The ops named by ``--ops`` (comma separated). A forward op brings its backward along.

    Raises ``ValueError`` naming the unknown names.
    """
    if not text:
        return SPEC_OPS
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SPEC_OPS]
    if unknown or not names:
        raise ValueError(f"unknown op name(s) {', '.join(unknown) or repr(text)}; the spec's functions are: "
                         + ", ".join(SPEC_OPS))
    chosen = set(names) | {f"{name}_backward" for name in names if f"{name}_backward" in SPEC_OPS}
    return tuple(op for op in SPEC_OPS if op in chosen)
