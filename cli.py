"""The ``cnn`` command line from a checkout: ``python cli.py ...`` runs what the installed ``cnn`` runs.

The commands live in :mod:`cnn.cli`; this file only makes the packages beside it importable and hands on
:data:`cnn.cli.cnn` (the click group) and :func:`cnn.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # `python cli.py` from a checkout: make `import cnn` find the package beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from cnn.cli import cnn, main  # noqa: E402

__all__ = ["cnn", "main"]

if __name__ == "__main__":
    main()
