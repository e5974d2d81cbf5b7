"""The exceptions of the network-description language.

Every other module of the package raises them, so they sit below all of them and import nothing:
:class:`NetSpecError` for a network that cannot be built, :class:`SpecParseError` for a description that
cannot be read, and the private :class:`_DoesNotFit` that a layer's shape inference raises before the walk
of :mod:`cnnbase.netspec.summary` puts the layer's index and name in front of the message.
"""

from __future__ import annotations


class NetSpecError(ValueError):
    """A network that cannot be built: a layer that does not fit its input, or a description that
    cannot be read. The message is one line naming the layer (index, type, name) and the numbers."""


class SpecParseError(NetSpecError):
    """A text, JSON or shape description that cannot be read; the message names the bad token and
    where it is."""


class _DoesNotFit(Exception):
    """Raised inside a layer's shape inference; :func:`summarize` adds the layer's index and name."""
