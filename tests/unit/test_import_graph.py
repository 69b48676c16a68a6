"""The project's modules import each other without a circle, and stay small (issue 14).

A circular import works or fails depending on which module Python meets
first, so it is found here by reading the source, not by importing it. The
graph has an edge for every import that runs when a module is loaded: the
``import`` and ``from`` statements and ``importlib.import_module("name")`` (or
``__import__("name")``) calls anywhere but inside a function or lambda, which
run later (a lazy import is how a circle is broken on purpose) or under ``if
TYPE_CHECKING:``, which never runs. So blocks of every kind count (``try``,
``if``, ``for``, ``while``, ``with``, ``match``) and so do class bodies, which
run at import time. ``from pkg import name`` is an edge to ``pkg.name`` when
that is a module, else to ``pkg``. The layers are checked over every import,
lazy ones included: a lower layer must not reach up at all.

Not modelled: importing ``a.b.c`` first runs ``a/__init__`` and ``a/b/__init__``;
a circle through a parent package's ``__init__`` alone is not looked for here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crypto", "portal", "reviewer_tool", "incident_db", "web_hardening")
#: house style asks for about 400 lines; this leaves a small margin
MAX_LINES = 450


def module_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


Importing = ast.Import | ast.ImportFrom | ast.Call
_LATER = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _dynamic(node: ast.AST) -> str | None:
    """The module an ``importlib.import_module("…")`` or ``__import__("…")`` call names."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func, first = node.func, node.args[0]
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}
    )
    if named and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _imports(node: ast.AST, *, lazy: bool) -> Iterator[Importing]:
    """The imports under ``node``: those run at load time, or with ``lazy`` all of them.

    ``if TYPE_CHECKING:`` bodies never run, so they are left out either way.
    """
    if isinstance(node, ast.Import | ast.ImportFrom) or _dynamic(node):
        yield node  # type: ignore[misc]
    if isinstance(node, _LATER) and not lazy:
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body:
            continue
        yield from _imports(child, lazy=lazy)


def _load_time(body: list[ast.stmt]) -> Iterator[Importing]:
    """The imports of ``body`` that run when the module is loaded."""
    for node in body:
        yield from _imports(node, lazy=False)


def _every(tree: ast.Module) -> Iterator[Importing]:
    """Every import, lazy ones included (but not those for type checkers only)."""
    yield from _imports(tree, lazy=True)


def _targets(node: Importing, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The project modules one import in ``module`` loads."""
    if isinstance(node, ast.Call):
        name = _dynamic(node) or ""
        while name and name not in known:  # a module outside the project, or its package
            name = name.rpartition(".")[0]
        if name:
            yield name
        return
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base_parts = here[: len(here) - (node.level - 1)]
        base = ".".join([*base_parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            yield f"{base}.{alias.name}"
        elif base in known:
            yield base


def import_graph(root: Path, *, lazy: bool = False) -> dict[str, set[str]]:
    """Module → the project modules it imports when loaded (with ``lazy``, at any time)."""
    files = module_files(root)
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        statements = _every(tree) if lazy else _load_time(tree.body)
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in statements
            for target in _targets(node, module, is_package, known)
            if target != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules, as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm without recursion: (node, its neighbours still to see)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, neighbours = work[-1]
            for nxt in neighbours:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_circle(graph, group) for group in groups)


def _circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no circle in {group}")  # a strongly connected group has one


def long_modules(root: Path, most: int = MAX_LINES) -> dict[str, int]:
    """Modules over ``most`` lines, with their line counts."""
    counts = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in module_files(root).values()
    }
    return {name: count for name, count in sorted(counts.items()) if count > most}


def reaches(graph: dict[str, set[str]], lower: str, upper: tuple[str, ...]) -> list[str]:
    """Imports from modules in ``lower`` of modules in ``upper``, as "a -> b"."""

    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if inside(source, lower)
        for target in targets
        if any(inside(target, package) for package in upper)
    )


# --- the project ----------------------------------------------------------------------


def test_no_module_imports_itself_around_a_circle() -> None:
    found = cycles(import_graph(ROOT))
    assert found == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_is_too_long() -> None:
    found = long_modules(ROOT)
    assert found == {}, f"modules over {MAX_LINES} lines (split them): " + ", ".join(
        f"{name} ({count})" for name, count in found.items()
    )


def test_web_hardening_is_shared_downward() -> None:
    graph = import_graph(ROOT, lazy=True)
    assert reaches(graph, "web_hardening", ("portal", "incident_db", "reviewer_tool")) == []


def test_storage_sits_below_the_web_and_the_cli() -> None:
    graph = import_graph(ROOT, lazy=True)
    assert reaches(graph, "portal.storage", ("portal.web", "portal.cli")) == []


def test_crypto_imports_nothing_of_the_rest() -> None:
    graph = import_graph(ROOT, lazy=True)
    others = tuple(p for p in PACKAGES if p != "crypto")
    assert reaches(graph, "crypto", others) == []


# --- the checks themselves, on a small tree of their own ------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_circle_through_a_submodule_import_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/web/__init__.py": "",
            "portal/web/a.py": "from portal.web import b\n",
            "portal/web/b.py": "try:\n    from .c import thing\nexcept ImportError:\n    pass\n",
            "portal/web/c.py": "from portal.web.a import x\n",
        },
    )
    assert cycles(import_graph(root)) == [
        ["portal.web.a", "portal.web.b", "portal.web.c", "portal.web.a"]
    ]


def test_lazy_and_type_checking_imports_make_no_circle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/a.py": "from portal import b\n",
            "portal/b.py": "def f():\n    from portal import a\n",
            "portal/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from portal import d\n",
            "portal/d.py": "import portal.c\n",
        },
    )
    assert cycles(import_graph(root)) == []
    assert import_graph(root)["portal.d"] == {"portal.c"}
    assert import_graph(root, lazy=True)["portal.b"] == {"portal.a"}


def test_a_relative_import_in_a_package_resolves_from_the_package(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/storage/__init__.py": "from . import blobs\nfrom ..web import app\n",
            "portal/storage/blobs.py": "",
            "portal/web/__init__.py": "",
            "portal/web/app.py": "",
        },
    )
    graph = import_graph(root, lazy=True)
    assert graph["portal.storage"] == {"portal.storage.blobs", "portal.web.app"}
    assert reaches(graph, "portal.storage", ("portal.web",)) == ["portal.storage -> portal.web.app"]


@pytest.mark.parametrize(("lines", "too_long"), [(MAX_LINES, False), (MAX_LINES + 1, True)])
def test_a_module_over_the_limit_is_named(tmp_path: Path, lines: int, too_long: bool) -> None:
    root = _tree(tmp_path, {"crypto/__init__.py": "", "crypto/big.py": "x = 1\n" * lines})
    expected = {"crypto/big.py": lines} if too_long else {}
    assert long_modules(root) == expected


@pytest.mark.parametrize(
    "block",
    [
        "for _ in ():\n    from portal import b\n",
        "while True:\n    from portal import b\n    break\n",
        "with open(__file__):\n    from portal import b\n",
        "async def f():\n    pass\nasync with x:\n    from portal import b\n",
        "match 1:\n    case 1:\n        from portal import b\n",
        "try:\n    pass\nexcept ImportError:\n    pass\nelse:\n    from portal import b\n",
        "try:\n    pass\nfinally:\n    from portal import b\n",
        "class K:\n    class Inner:\n        from portal import b\n",
        "if True:\n    for _ in ():\n        with x:\n            from portal import b\n",
        "import importlib\nimportlib.import_module('portal.b')\n",
        "from importlib import import_module\nMOD = import_module('portal.b.inner')\n",
        "X = [__import__('portal.b') for _ in ()]\n",
    ],
)
def test_an_import_in_any_load_time_block_is_an_edge(tmp_path: Path, block: str) -> None:
    root = _tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/a.py": block,
            "portal/b.py": "from portal import a\n",
        },
    )
    assert import_graph(root)["portal.a"] == {"portal.b"}
    assert cycles(import_graph(root)) == [["portal.a", "portal.b", "portal.a"]]


def test_an_import_module_call_inside_a_function_is_lazy_but_counts_for_layers(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/storage/__init__.py": "",
            "portal/storage/db.py": "import importlib\n"
            "def app():\n    return importlib.import_module('portal.web.app')\n"
            "f = lambda: __import__('portal.web')\n",
            "portal/web/__init__.py": "",
            "portal/web/app.py": "from portal.storage import db\n",
        },
    )
    assert cycles(import_graph(root)) == []
    graph = import_graph(root, lazy=True)
    assert reaches(graph, "portal.storage", ("portal.web",)) == [
        "portal.storage.db -> portal.web",
        "portal.storage.db -> portal.web.app",
    ]
