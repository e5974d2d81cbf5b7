"""The child entry, ``python -m cnn.bench --child SPEC``: the kinds a parent may ask for, by name.

The parent side and the protocol are in :mod:`cnn.bench.child`; ``cnn bench`` itself is a command of the CLI
(``cnn/cli/bench.py``), not of this module.
"""

import sys

from .child import _child_main
from .startup import _child_compile_all
from .train import _child_idle, _child_train

#: SPEC's ``kind`` -> the function that runs in the child and returns its JSON-ready result.
_CHILDREN = {"train": _child_train, "idle": _child_idle, "compile_all": _child_compile_all}

if __name__ == "__main__":
    _child_main(sys.argv[1:], _CHILDREN)
