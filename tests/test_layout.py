"""The house's floors only look down: no import runs from a lower floor to a higher one, no two modules import
each other in a loop, and no package imports another package's private names (README, "How the code is
organised"). Read from the source, imports inside functions included, so a lazy import cannot hide an
arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Floor of each top-level part, bottom up. A module may import modules of its own floor's package and of
#: lower floors; cnn.cli is cnn's top room, so the rest of cnn stands below it.
FLOORS = {
    "cnnbase": 1,
    "refcnn": 2,
    "fastcnn": 3,  # it borrows refcnn's docstrings (public functions), never the other way round
    "cnnconform": 4,
    "cnn": 5,
    "cnn.cli": 6,
    "cli": 7,
}


def _modules() -> dict[str, Path]:
    found = {"cli": ROOT / "cli.py"}
    for package in ("cnnbase", "refcnn", "fastcnn", "cnnconform", "cnn"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, str]]:
    """``(imported module, line, imported name or '')`` for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in MODULES else base
                out.append((target, node.lineno, "" if submodule in MODULES else alias.name))
    return [(target, line, imported) for target, line, imported in out if _ours(target)]


def _ours(module: str) -> bool:
    return module.split(".")[0] in ("cnnbase", "refcnn", "fastcnn", "cnnconform", "cnn", "cli")


def _floor(module: str) -> int:
    return FLOORS["cnn.cli"] if module == "cnn.cli" or module.startswith("cnn.cli.") else FLOORS[module.split(".")[0]]


def _package(module: str) -> str:
    return "cnn.cli" if _floor(module) == FLOORS["cnn.cli"] else module.split(".")[0]


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_part_of_the_house_is_read():
    assert {"cnnbase.checks", "refcnn.conv", "fastcnn.conv", "cnnconform.checker", "cnn.model", "cnn.cli"} <= set(
        MODULES)
    assert sum(len(edges) for edges in EDGES.values()) > 100


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_look_down(name):
    upward = [f"line {line}: imports {target} (floor {_floor(target)})" for target, line, _ in EDGES[name]
              if _floor(target) > _floor(name)]
    assert not upward, f"{name} (floor {_floor(name)}) " + "; ".join(upward)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_of_another_package(name):
    """A name with a leading underscore is private to its package: one that another package needs belongs
    on a lower floor."""
    private = [f"line {line}: {target}.{imported}" for target, line, imported in EDGES[name]
               if _package(target) != _package(name)
               and (imported.startswith("_") or any(part.startswith("_") and part != "__main__"
                                                    for part in target.split(".")))]
    assert not private, f"{name} imports private names of another package: " + "; ".join(private)


def test_no_import_cycle():
    graph = {name: {target for target, _, _ in EDGES[name] if target in MODULES and target != name}
             for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how it hands names on, not a loop.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                loop = path[path.index(nxt):] + [nxt]
                if not any(b.startswith(a + ".") for a, b in zip(loop, loop[1:])):
                    raise AssertionError("import cycle: " + " -> ".join(loop))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
