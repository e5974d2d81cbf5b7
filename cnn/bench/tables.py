"""The small text table every ``cnn bench`` renderer prints, and how a missing figure reads in it.

A missing figure (an engine not installed, a child that failed, a ratio with nothing to divide) is ``n/a``,
never an error: the benchmarks report what they could measure.
"""

from __future__ import annotations

#: What a cell reads when its figure is missing.
_NA = "n/a"


def _fmt(value, spec: str) -> str:
    return _NA if value is None else format(value, spec)


def _table(headers: list[str], lines: list[list[str]], align: str) -> str:
    """Columns sized to their widest cell; ``align`` has one letter per column, 'l' or 'r'."""
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(headers)]

    def render(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)).rstrip()

    return "\n".join([render(headers), render(["-" * w for w in widths])] + [render(line) for line in lines])
