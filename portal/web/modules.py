"""The static import graph of the page scripts, for ``<link rel="modulepreload">``.

A browser finds a module's imports only once it has that module, so a chain
of imports four deep costs four round trips: about three seconds on a
satellite link. Naming every module of the graph in the page lets the
browser ask for all of them at once, right after the HTML.

Only static imports count (``import … from './x.js'``, ``import './x.js'``,
``export … from './x.js'``); a dynamic ``import()`` is left to load when it
is needed. Specifiers must be relative and stay inside ``portal/web/static``:
the portal serves no third-party script, so anything else is a mistake here
and fails loudly rather than being left out of the list.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path, PurePosixPath

STATIC = Path(__file__).resolve().parent / "static"
#: the specifier of a static import or re-export; comments are removed first
_IMPORT = re.compile(
    r"""(?:^|[;}\s])(?:import|export)\s*(?:[\w*${},\s]+?\s*from\s*)?(['"])([^'"\n]+)\1""",
    re.MULTILINE,
)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


class ModuleGraphError(ValueError):
    """An import names something that is not a module of the portal's own."""


@functools.cache
def module_graph(entry: str) -> tuple[str, ...]:
    """Every module ``entry`` (a path under portal/web/static) reaches, dependencies first.

    Paths are relative to portal/web/static, as ``url_for('static', filename=…)``
    takes them; ``entry`` itself comes last. Read once per process: the
    static files do not change while the portal runs.
    """
    order: list[str] = []
    _visit(PurePosixPath(entry), order, set())
    return tuple(order)


def _visit(module: PurePosixPath, order: list[str], seen: set[PurePosixPath]) -> None:
    if module in seen:
        return
    seen.add(module)
    for specifier in static_imports((STATIC / module).read_text(encoding="utf-8")):
        _visit(_resolve(module, specifier), order, seen)
    order.append(str(module))


def static_imports(source: str) -> list[str]:
    """The specifiers of ``source``'s static imports and re-exports, in order."""
    return [match.group(2) for match in _IMPORT.finditer(_COMMENT.sub(" ", source))]


def _resolve(importer: PurePosixPath, specifier: str) -> PurePosixPath:
    """The module ``specifier`` names, as a path under portal/web/static."""
    if not specifier.startswith(("./", "../")):
        raise ModuleGraphError(f"{importer} imports {specifier!r}: only relative imports")
    parts: list[str] = []
    for part in (*importer.parent.parts, *PurePosixPath(specifier).parts):
        if part == "..":
            if not parts:
                raise ModuleGraphError(f"{importer} imports {specifier!r}, outside static/")
            parts.pop()
        elif part != ".":
            parts.append(part)
    resolved = PurePosixPath(*parts)
    if resolved.suffix != ".js" or not (STATIC / resolved).is_file():
        raise ModuleGraphError(f"{importer} imports {specifier!r}, which is not a module here")
    return resolved
