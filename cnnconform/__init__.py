"""cnnconform: the conformance kit, one floor above both engines.

It checks any implementation against the specification (``specs/``): the named cases of
``specs/cases/*.json`` (:mod:`~cnnconform.cases`), Hypothesis strategies that draw valid calls
(:mod:`~cnnconform.strategies`, also used by the test suite), the targets ``cnn conform`` can load
(:mod:`~cnnconform.targets`), the checker that runs and judges them against refcnn
(:mod:`~cnnconform.checker`), its report and renderings (:mod:`~cnnconform.report`), and the PyTorch
adapter (:mod:`cnnconform.adapters.torch_adapter`).

Only the cases are imported with the package: the rest pulls in Hypothesis and the engines, which a
program that only runs the named cases (``cnn bench startup``'s child) must not pay for, so those names
are imported on first use.
"""

from importlib import import_module

from cnnconform.cases import Case, CaseResult, compare, decode_arg, decode_expected, load_cases, run_case

#: Names handed on from the modules that import Hypothesis or the engines, by module.
_LAZY = {
    "cnnconform.targets": ("Target", "TargetError", "SPEC_OPS", "load_target", "select_ops"),
    "cnnconform.checker": ("Options", "DEFAULT_TOLERANCE", "conform"),
    "cnnconform.report": ("Report", "OpRow", "Failure", "render_text", "render_json"),
}
_FROM = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["Case", "CaseResult", "compare", "decode_arg", "decode_expected", "load_cases", "run_case",
           "strategies", *_FROM]


def __getattr__(name: str):
    if name == "strategies":
        return import_module("cnnconform.strategies")
    if name in _FROM:
        return getattr(import_module(_FROM[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
