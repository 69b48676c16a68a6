"""The one way the reviewer tool writes to the terminal.

A report's keys, values, file names and messages were chosen by an anonymous
sender, and a terminal obeys some characters: escape sequences (ESC, CSI,
OSC, DCS, and their one-byte C1 forms) can clear the screen, set the window
title, draw a fake report, or make the terminal type an answer to a prompt;
bidi overrides and zero-width characters make text read other than it is.
So every line the tool prints goes through :func:`say`, which replaces each
character crypto/characters.py calls unsafe (Unicode categories Cc, C0 and
C1 controls; Cf, format: bidi, zero-width; Cs, surrogates; Co, private use;
Cn, unassigned here, so perhaps a format character to a newer terminal; Zl
and Zp; and every default-ignorable character, such as the Hangul fillers
that render as nothing) with U+FFFD, so that the reviewer sees that
something was there. Newline and tab pass only where the caller prints
several lines; :func:`printable` keeps a sender's value on one line and
squeezes long runs of spaces. No module of the tool calls ``print`` (a test
checks), and rich only ever renders into a string that goes through here.

Even plain text can draw: a value padded with spaces to the terminal's width
puts what follows at column 0 of the next row, where it reads as the tool's
own line. So a sender's text is printed by :func:`say_text`, which wraps it
at the terminal's width itself and starts every row it wraps onto with a
gutter (``  │ ``): no row of a sender's text starts at column 0. That holds
only if no character is drawn wider than counted, and terminals disagree
(spacing marks, emoji, East Asian "ambiguous" letters), so :func:`cells` takes
the widest any terminal might draw. A letter with hundreds of combining marks
draws over the rows around it, so at most :data:`MAX_MARKS` stay on a letter.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import traceback
import unicodedata
from types import TracebackType
from typing import Any, TextIO

from crypto.characters import unsafe

REPLACEMENT = "\ufffd"
#: the start of every row a sender's text wraps onto
GUTTER = "  \u2502 "
#: a quoted value longer than this is shown by its two ends
QUOTED_MAX = 60
_SPACES = re.compile(r"\s{4,}")
#: combining marks kept on one letter (Vietnamese uses two, Indic and Tibetan
#: stacks a few more); the rest of a run become one U+FFFD
MAX_MARKS = 4
#: blocks some terminals draw two cells wide though Unicode calls them narrow:
#: symbols drawn as emoji with or without a variation selector (arrows to
#: miscellaneous symbols and arrows; U+1F000..U+1FAFF: cards, flags,
#: pictographs, skin tones), and the Yijing hexagrams (wide to glibc)
_WIDE_BLOCKS = ((0x2100, 0x2BFF), (0x4DC0, 0x4DFF), (0x1F000, 0x1FAFF))


def cells(char: str) -> int:
    """The most terminal cells any terminal draws ``char`` in; never fewer.

    Wrapping must never count a row shorter than it is drawn, or the terminal
    wraps it and the sender's text lands at column 0. Nonspacing and enclosing
    marks (Mn, Me) draw on the letter before them. Everything a terminal might
    draw two cells wide counts two: East Asian wide, fullwidth and ambiguous
    characters (wide in a CJK locale), spacing marks (Mc: one cell or two,
    by terminal) and the blocks above.
    """
    category = unicodedata.category(char)
    if category in ("Mn", "Me"):
        return 0
    if char.isascii():
        return 1
    code = ord(char)
    if (
        category == "Mc"
        or unicodedata.east_asian_width(char) in ("W", "F", "A")
        or any(low <= code <= high for low, high in _WIDE_BLOCKS)
    ):
        return 2
    return 1


def cell_width(text: str) -> int:
    """:func:`cells` summed over ``text``."""
    return sum(cells(char) for char in text)


def _cap_marks(text: str, *, escape: bool = False) -> str:
    """``text`` with every run of combining marks cut to :data:`MAX_MARKS` (a run's
    length is the sender's choice). The rest of a run becomes one U+FFFD, or with
    ``escape`` (JSON text) each is written as its ``\\uXXXX`` escape, which keeps the data."""
    out: list[str] = []
    run = 0
    for char in text:
        run = run + 1 if unicodedata.category(char).startswith("M") else 0
        if run <= MAX_MARKS:
            out.append(char)
        elif escape:
            out.append(json.dumps(char)[1:-1])
        elif run == MAX_MARKS + 1:
            out.append(REPLACEMENT)
    return "".join(out)


def _safe(text: str, keep: str) -> str:
    return _cap_marks("".join(REPLACEMENT if unsafe(c, keep) else c for c in text))


def _squeeze(text: str) -> str:
    return _SPACES.sub(lambda run: f" [{len(run.group())} spaces] ", text)


def printable(value: object) -> str:
    """A sender's value for one line of output: no controls, not even a newline, and
    no long run of spaces."""
    return _squeeze(_safe(str(value), ""))


def quoted(value: object) -> str:
    """A value shown next to a question, quoted so its ends are visible (``'…'``).

    ``repr`` escapes every character that is not printable (``\\x1b``,
    ``\\u202e``), so the reviewer sees exactly what the text holds; runs of
    spaces are counted and a long value is cut in the middle, so that the
    question stays on one row.
    """
    text = _squeeze(str(value))
    if len(text) > QUOTED_MAX:
        text = f"{text[: QUOTED_MAX // 2]}…{text[-QUOTED_MAX // 3 :]}"
    return repr(text)


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """JSON for the terminal: readable non-ASCII, but every unsafe character escaped.

    ``json.dumps`` escapes only C0 controls; C1 controls, bidi overrides and
    private-use characters would reach the terminal as they are. Such a
    character can only stand inside a JSON string, where ``\\uXXXX`` is its
    exact equivalent, so a program reading the output gets the same data.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    escaped = "".join(json.dumps(c)[1:-1] if unsafe(c, "\n") else c for c in text)
    return _cap_marks(escaped, escape=True)


def say(*parts: object, err: bool = False, sep: str = " ") -> None:
    """Print one line (or several, for the tool's own layout), made safe for the terminal."""
    stream: TextIO = sys.stderr if err else sys.stdout
    stream.write(_safe(sep.join(str(p) for p in parts), "\n\t") + "\n")
    stream.flush()


def columns() -> int:
    """The terminal's width (``COLUMNS`` first), at least enough for a gutter and a word."""
    return max(20, shutil.get_terminal_size().columns)


def say_text(first: str, text: str, *, gutter: str = GUTTER, err: bool = False) -> None:
    """Print ``first`` (the tool's words) and ``text`` (a sender's, as :func:`printable`
    makes it), wrapped at the terminal's width; every later row starts with ``gutter``.

    The wrapping counts terminal cells as :func:`cells` does (never fewer than
    drawn), and stops one column short, so that the terminal itself never wraps a row.
    """
    say("\n".join(_wrap(first, printable(text), gutter)), err=err)


def _wrap(first: str, text: str, gutter: str) -> list[str]:
    """``first`` then ``text`` in rows that fit the terminal as :func:`cells` counts them;
    every row after the first starts with ``gutter``."""
    limit = columns() - 1
    rows, row, used = [], first, cell_width(first)
    for char in text:
        size = cells(char)
        if used + size > limit and used > cell_width(gutter):
            rows.append(row)
            row, used = gutter, cell_width(gutter)
        row += char
        used += size
    rows.append(row)
    return rows


def prepare_streams() -> None:
    """Let output reach a terminal that is not UTF-8: a character it cannot show
    (U+FFFD included) is written as a backslash escape instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def ask(prompt: str) -> str:
    """Read one answer at the terminal after showing ``prompt`` (made safe first).

    Raises ``EOFError`` at the end of input.
    """
    return input(_safe(prompt, ""))


def report_crash(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    """``sys.excepthook`` for the tool: a traceback can quote report text, so it too
    goes through :func:`say`."""
    say("".join(traceback.format_exception(kind, error, trace)).rstrip("\n"), err=True)


def render(renderable: Any) -> str:
    """What rich would print for a table, as plain text (no styles, no hyperlinks)."""
    from rich.console import Console

    console = Console(width=columns() - 1, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(renderable)
    # rich lays the table out by its own width count, which takes spacing marks and
    # some emoji for narrower than terminals draw them: a row that is wider by ours
    # is wrapped again, its continuation behind the gutter, never at column 0
    rows = []
    for line in capture.get().rstrip("\n").split("\n"):
        rows += _wrap("", line, GUTTER) if cell_width(line) > columns() - 1 else [line]
    return "\n".join(rows)
