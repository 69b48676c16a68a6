"""Writing a command's result to a file (atomically) or to standard output."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO


@contextlib.contextmanager
def text_output(path: str | None) -> Iterator[TextIO]:
    """A text stream to ``path``, which appears only once complete; stdout for None or "-"."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str, str]],
    *,
    as_json: bool,
    empty: str,
    show: Callable[[str], str],
) -> None:
    """Print ``rows`` as JSON or as a table; ``empty`` when there are none.

    ``columns`` are (key, title, format spec such as ``"<6"``); the first one
    is free text (a handle, a name), printed only through ``show`` and as wide
    as its widest value. JSON escapes everything outside ASCII, so nothing a
    terminal could obey reaches it that way either.
    """
    if as_json:
        print(json.dumps(list(rows), indent=2, ensure_ascii=True))
        return
    if not rows:
        print(empty)
        return
    first, title, _spec = columns[0]
    width = max(len(title), *(len(show(row[first])) for row in rows))
    specs = [f"<{width}", *(spec for _key, _title, spec in columns[1:])]
    print(
        "  ".join(f"{t:{spec}}" for (_k, t, _s), spec in zip(columns, specs, strict=True)).rstrip()
    )
    for row in rows:
        cells = [show(row[first]), *(row[key] if row[key] is not None else "-"
                                      for key, _t, _s in columns[1:])]  # fmt: skip
        print("  ".join(f"{c:{spec}}" for c, spec in zip(cells, specs, strict=True)).rstrip())
