"""Issue 12, finding 1: an anonymous sender must not control the reviewer's terminal.

The browser lets a sender seal any JSON, so every key, value, file name and
message of a report reaches the reviewer's terminal. These tests build an
inbox bundle whose reports carry escape sequences (ESC, CSI, OSC, DCS, C1),
bidi overrides, zero-width and private-use characters, run every `reviewer`
subcommand that prints as a real subprocess, and check what it wrote.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crypto.keyfile import KeyBundle
from tests.integration.reviewer_helpers import (
    PORTAL,
    followup_document,
    report_document,
    write_inbox,
)

ROOT = Path(__file__).resolve().parents[2]

#: what a terminal obeys: each of these did something to the reviewer's screen
ATTACKS = (
    "\x1b[2J\x1b[H",  # ESC/CSI: clear the screen, cursor home
    "\x1b]0;all clear\x07",  # OSC: set the window title
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8: a hyperlink
    '\x1bP$q"p\x1b\\',  # DCS: a status request the terminal answers
    "\x1b[c",  # device attributes: the terminal types its answer
    "\x9b2J\x9d0;title\x9c",  # C1 CSI and OSC, one byte each
    "\x07\x08\rFAKE",  # bell, backspace, carriage return over the line
    "\u202eevil\u202c\u2066x\u2069\u2067y\u2068z\u2069",  # bidi overrides and isolates
    "\u200b\u200c\u200d\u2060\ufeff",  # zero-width characters
    "\ue000\U000f0000",  # private use
    "[red]styled[/red][link=https://evil.example/]linked[/link]",  # rich markup
)
HOSTILE = "".join(ATTACKS)
EMAIL = "jane.doe@example.org"
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co"})
WIDTH = 100


def _fake_rows(rows: list[str], taken: int) -> str:
    """Text that, after ``taken`` columns, puts each of ``rows`` at column 0 of a row
    of a ``WIDTH``-column terminal: no newline or control character needed."""
    from rich.cells import cell_len

    out = " " * (WIDTH - taken)
    for row in rows:
        out += row + " " * (WIDTH - cell_len(row))
    return out


#: a fake end of the report: what the reviewer would read as the tool's own lines
PADDING = _fake_rows(
    ["narrative:", "  Routine transit, nothing to report.", "identity section (never forwarded):",
     "  identity_vessel: none given", "reporter key: none (cannot reply)", "attachments: 0"],
    len("  place_name: Lagos"),
)  # fmt: skip
#: the same within the 200 characters the form allows a one-line field
SHORT_PADDING = _fake_rows(["identity section (never forwarded):"], len("  place_name: Lagos"))
#: fields whose type the form could never have produced
WRONG_TYPES = {
    "narrative-number": {"report": {"category": "other", "narrative": 5}},
    "narrative-list": {"report": {"category": "other", "narrative": ["Mary Ann", "b"]}},
    "place-list": {"report": {"category": "other", "narrative": "n", "place_name": ["Lagos"]}},
    "category-list": {"report": {"category": ["other"], "narrative": "n"}},
    "count-text": {"report": {"category": "other", "narrative": "n", "crew_killed": "lots"}},
    "count-fraction": {"report": {"category": "other", "narrative": "n", "stowaway_count": 2.5}},
    "latitude-text": {"report": {"category": "other", "narrative": "n", "latitude": "6.4"}},
    "weapons-text": {"report": {"category": "other", "narrative": "n", "weapons": "knives"}},
    "identity-list": {"report": {"category": "other", "narrative": "n"},
                      "identity": {"identity_vessel": ["Mary", "Ann"]}},
    "identity-number": {"report": {"category": "other", "narrative": "n"},
                        "identity": {"identity_imo": 9074729}},
}  # fmt: skip
for _document in WRONG_TYPES.values():
    _document.update({"schema": "cso-report/v1", "encrypted_by": "browser", "attachments": []})

#: spacing marks (rich measures 0 cells, terminals draw 1) and skin-tone modifiers
#: (rich 0, terminals 2): each row of them ends where a terminal wraps to column 0
SPACING_MARK, SKIN_TONE = "\u093e", "\U0001f3fb"
NARROW_TERMINAL = 80
WIDTH_PADDED = "\n".join(
    ["Routine transit, nothing to report.",
     *(SPACING_MARK * (NARROW_TERMINAL - 4) + row for row in (
         "identity section (never forwarded):", "  identity_vessel: none given",
         "reporter key: none (cannot reply)", "attachments: 0")),
     SKIN_TONE * 38 + "conversation: no follow-up messages or replies yet"]
)  # fmt: skip
#: values the form could never have produced: out of range, longer than the form
#: lets anyone type, or a list longer than its choices
OUT_OF_FORM = {
    "latitude-179": {"report": {"category": "other", "narrative": "n", "latitude": 179.5}},
    "latitude-minus-91": {"report": {"category": "other", "narrative": "n", "latitude": -91}},
    "longitude-181": {"report": {"category": "other", "narrative": "n", "longitude": 180.5}},
    "narrative-long": {"report": {"category": "other", "narrative": "n" * 20001}},
    "place-long": {"report": {"category": "other", "narrative": "n", "place_name": "L" * 201}},
    "choice-long": {"report": {"category": "o" * 201, "narrative": "n"}},
    "identity-long": {"report": {"category": "other", "narrative": "n"},
                      "identity": {"identity_contact": "c" * 201}},
    "weapons-many": {"report": {"category": "other", "narrative": "n", "weapons": ["knives"] * 7}},
    "weapons-item-long": {"report": {"category": "other", "narrative": "n",
                                     "weapons": ["k" * 201]}},
}  # fmt: skip
#: every weapon the form offers: the longest list it can produce
ALL_WEAPONS = ["none", "knives-or-machetes", "guns", "rpg-or-explosives", "other", "not-seen"]
for _document in OUT_OF_FORM.values():
    _document.update({"schema": "cso-report/v1", "encrypted_by": "browser", "attachments": []})


def assert_terminal_safe(data: bytes, what: str) -> None:
    """No byte the reviewer's terminal would obey: only text, newline and tab."""
    text = data.decode("utf-8")  # undecodable bytes would be a failure too
    bad = [c for c in text if unicodedata.category(c) in _UNSAFE and c not in "\n\t"]
    assert not bad, f"{what} wrote {sorted(set(bad))!r}"


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
) -> Iterator[dict[str, object]]:
    """A workspace, and an inbox bundle of hostile reports (not imported yet)."""
    from reviewer_tool.cli import main as reviewer

    folder = tmp_path_factory.mktemp("terminal")
    root = folder / "ws-template"
    key_file, keys = reviewer_key_files[0]
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    assert (
        reviewer(["init", "--key", str(key_file), "--portal-key", str(PORTAL.token), *options]) == 0
    )
    assert keys.encryption is not None
    photo = b"not really a photo"
    hostile_values = report_document(
        f"Contact {EMAIL}\x1b[c now.\n{HOSTILE}\nThey left at 0300.",
        identity={"identity_vessel": f"Mary Ann{HOSTILE}", "identity_contact": EMAIL},
        attachments=[("photo.jpg", "image/jpeg", photo)],
        category=HOSTILE,
        place_name=f"Lagos{HOSTILE[:150]}\nidentity section (never forwarded): none",
        suspect_craft_description=HOSTILE,
        weapons=["\x1b[2J\x1b[H\u202eevil"],  # as long as a choice may be
    )
    hostile_keys = report_document("keys", **{f"narrative{HOSTILE}": "x"})
    hostile_identity_key = report_document(
        "identity key", identity={f"identity_\u202evessel{HOSTILE}": "x"}
    )
    unknown_key = report_document("unknown", ship_name="Mary Ann")
    hostile_name = report_document(
        "name", attachments=[(f"evil{HOSTILE}.jpg", "image/jpeg", photo)]
    )
    surrogate = json.dumps(report_document("lone \ud800 surrogate")).encode()
    padded = report_document(
        f"{PADDING}\n  {PADDING}",
        identity={"identity_vessel": "Mary Ann", "identity_contact": SHORT_PADDING},
        place_name=f"Lagos{SHORT_PADDING}",
    )
    bundle = folder / "inbox.cso"
    ids = write_inbox(
        bundle,
        PORTAL,
        [keys.encryption.public],
        [
            (hostile_values, [photo]),
            (hostile_keys, []),
            (hostile_identity_key, []),
            (unknown_key, []),
            (hostile_name, [photo]),
            (surrogate, []),
            (followup_document(f"again {HOSTILE}"), [], 0),
            (padded, []),
            (followup_document(PADDING), [], 7),
            *((json.dumps(d).encode(), []) for d in WRONG_TYPES.values()),
            (report_document(WIDTH_PADDED), []),
            (report_document("in range", latitude=-90, longitude=180), []),
            (report_document("n" * 20000, place_name="L" * 200, weapons=ALL_WEAPONS), []),
            *((json.dumps(d).encode(), []) for d in OUT_OF_FORM.values()),
        ],
    )
    return {"template": root, "bundle": bundle, "ids": ids, "passphrase": passphrase_file}


def _workspace(setup: dict[str, object], tmp_path: Path) -> list[str]:
    root = tmp_path / "ws"
    shutil.copytree(setup["template"], root)  # type: ignore[arg-type]
    return ["--workspace", str(root), "--passphrase-file", str(setup["passphrase"])]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env["COLUMNS"] = "200"
    return env


def run(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """`reviewer ARGS` as a real subprocess; both streams checked for terminal controls."""
    done = subprocess.run(
        [sys.executable, "-m", "reviewer_tool", *map(str, args)],
        input=stdin, capture_output=True, cwd=ROOT, env=_env(), check=False, timeout=120,
    )  # fmt: skip
    shown = " ".join(str(a) for a in args[:2])
    assert_terminal_safe(done.stdout, f"`reviewer {shown}` (stdout)")
    assert_terminal_safe(done.stderr, f"`reviewer {shown}` (stderr)")
    return done


def test_sender_escape_sequences_never_reach_the_terminal(
    setup: dict[str, object], tmp_path: Path
) -> None:
    ws = _workspace(setup, tmp_path)
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    report, followup = ids[0], ids[6]
    imported = run("import", setup["bundle"], *ws)
    assert imported.returncode == 0, imported.stderr
    listed = run("list", *ws)
    assert listed.returncode == 0
    as_json = run("list", "--json", *ws)
    rows = {row["id"]: row for row in json.loads(as_json.stdout)}
    assert rows[report]["category"] == HOSTILE  # escaped, not lost
    shown = run("show", report, *ws)
    assert shown.returncode == 0
    # a one-line field cannot draw a line of its own (a fake section header)
    assert b"\nidentity section (never forwarded): none" not in shown.stdout
    detail = json.loads(run("show", report, "--json", *ws).stdout)
    assert detail["report"]["report"]["category"] == HOSTILE
    run("show", followup, *ws)
    run("show", followup, "--json", *ws)
    run("export-attachment", report, f"photo{HOSTILE}.jpg", "--out", tmp_path / "x", *ws)
    run("export-attachment", report, "photo.jpg", "--out", tmp_path / "p.jpg", "--allow-other", *ws)
    run("redact", report, "--accept-suggestions", *ws)
    run("triage", report, "--status", "confirmed", "--grade", "B2", *ws)
    run("reply", followup, "--message", "thank you", *ws)
    run("forward", "--out", tmp_path / "batch.jsonl", *ws)  # refused: a category no vocabulary has
    text = tmp_path / "text"
    text.write_text(f"{HOSTILE} {EMAIL}{HOSTILE} IMO 9074729", encoding="utf-8")
    found = run("detect", text, "--identity", f"Mary Ann{HOSTILE}", *ws)
    assert "email" in {json.loads(line)["kind"] for line in found.stdout.splitlines()}
    run("detect", *ws, stdin=text.read_bytes())
    run("show", f"{HOSTILE}abcdef", *ws)


def test_sender_keys_outside_the_field_vocabulary_refuse_only_that_report(
    setup: dict[str, object], tmp_path: Path
) -> None:
    ws = _workspace(setup, tmp_path)
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    imported = run("import", setup["bundle"], *ws)
    assert imported.returncode == 0
    listed = {row["id"] for row in json.loads(run("list", "--json", *ws).stdout)}
    assert ids[0] in listed  # the rest of the bundle still imports
    for refused in ids[1:6]:
        assert refused not in listed
        lines = [line for line in imported.stdout.decode().splitlines() if refused in line]
        assert len(lines) == 1, imported.stdout  # one line, with its reason
    unknown = next(line for line in imported.stdout.decode().splitlines() if ids[3] in line)
    assert "ship_name" in unknown  # a printable key is named in the reason


def _drive(process: subprocess.Popen[bytes], master: int, deadline: float) -> bytes:
    """Play the reviewer's terminal: answer a device-attributes query as a real one
    does, and press only Enter at every prompt."""
    seen = b""
    answered = pressed = 0
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        seen += chunk
        while seen.count(b"\x1b[c") > answered:
            answered += 1
            os.write(master, b"\x1b[?62;22c")  # what xterm types back
        prompts = sum(seen.count(p) for p in (b"[Y/n] ", b"[y/N] ", b"Enter for none) "))
        while prompts > pressed:
            pressed += 1
            os.write(master, b"\r")
    return seen


def test_terminal_answers_cannot_decide_a_redaction_prompt(
    setup: dict[str, object], tmp_path: Path
) -> None:
    ws = _workspace(setup, tmp_path)
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    assert run("import", setup["bundle"], *ws).returncode == 0
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "reviewer_tool", "redact", ids[0], *ws],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=_env(),
        )  # fmt: skip
        os.close(slave)
        seen = _drive(process, master, time.monotonic() + 60)
        assert process.wait(timeout=10) == 0, seen.decode(errors="replace")
    finally:
        os.close(master)
    stored = json.loads(run("show", ids[0], "--json", *ws).stdout)
    assert EMAIL not in stored["redaction"]["fields"]["narrative"]
    assert b"\x1b[c" not in seen


def test_no_reviewer_module_can_bypass_the_sanitiser() -> None:
    """The property above holds for commands not run here only if nothing prints
    around reviewer_tool/terminal.py: no print, input, stream write or rich console."""
    import ast

    bypasses = []
    for path in sorted((ROOT / "reviewer_tool").rglob("*.py")):
        if path.name == "terminal.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("print", "input") or name.endswith(
                ("stdout.write", "stderr.write", "Console", ".print", ".log")
            ):
                bypasses.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not bypasses


def test_import_vocabulary_is_the_portals_field_table() -> None:
    """The importer refuses names outside its vocabulary: it must be the form's own."""
    from portal.web.fields import FIELDS
    from reviewer_tool.vocabulary import IDENTITY_FIELDS, REPORT_FIELDS

    assert {f.name for f in FIELDS if f.section == "identity"} == IDENTITY_FIELDS
    assert {f.name for f in FIELDS if f.section != "identity"} == REPORT_FIELDS


@pytest.fixture(scope="module")
def imported(
    setup: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], str]:
    """One workspace with the bundle imported, for tests that only read it; and what
    `reviewer import` printed."""
    ws = _workspace(setup, tmp_path_factory.mktemp("imported"))
    done = run("import", setup["bundle"], *ws)
    assert done.returncode == 0, done.stderr
    return ws, done.stdout.decode()


def _terminal_rows(text: str, width: int) -> list[str]:
    """What a ``width``-column terminal shows: each line wrapped where it overflows."""
    from rich.cells import cell_len

    rows = []
    for line in text.split("\n"):
        row, used = "", 0
        for char in line:
            if used + cell_len(char) > width:
                rows.append(row)
                row, used = "", 0
            row += char
            used += cell_len(char)
        rows.append(row)
    return rows


def test_sender_padding_cannot_draw_lines_at_column_zero(
    setup: dict[str, object], imported: tuple[list[str], str]
) -> None:
    """A one-line value padded with spaces to the terminal's width puts the sender's
    text at column 0 of the rows below, where it reads as the tool's own lines."""
    from rich.cells import cell_len

    ws, _ = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    env = {**_env(), "COLUMNS": str(WIDTH)}
    done = subprocess.run(
        [sys.executable, "-m", "reviewer_tool", "show", ids[7], *ws],
        capture_output=True, cwd=ROOT, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert max(map(cell_len, text.splitlines())) <= WIDTH  # the terminal never wraps a line
    rows = _terminal_rows(text, WIDTH)
    at_margin = [row for row in rows if row[:1].strip()]
    assert len(at_margin) == len(set(at_margin)), at_margin  # each tool heading once
    for fake in ("  Routine transit", "  identity_vessel: none given"):
        assert not any(row.startswith(fake) for row in rows), fake


def test_sender_field_of_the_wrong_type_refuses_only_that_report(
    setup: dict[str, object], imported: tuple[list[str], str]
) -> None:
    """A narrative that is a number or a list once crashed `redact`, so the report
    could never be redacted or forwarded; the form never produces one."""
    ws, printed = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    wrong = ids[9 : 9 + len(WRONG_TYPES)]
    listed = {row["id"] for row in json.loads(run("list", "--json", *ws).stdout)}
    assert ids[0] in listed
    assert ids[7] in listed
    for name, refused in zip(WRONG_TYPES, wrong, strict=True):
        assert refused not in listed, name
        lines = [line for line in printed.splitlines() if refused in line]
        assert len(lines) == 1, (name, printed)
    done = run("redact", ids[7], "--accept-suggestions", *ws)
    assert done.returncode == 0, done.stderr


def test_terminal_that_is_not_utf8_gets_marks_not_a_crash(
    setup: dict[str, object], imported: tuple[list[str], str]
) -> None:
    """The sanitiser's own U+FFFD cannot be written to a Latin-1 terminal."""
    ws, _ = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    env = {**_env(), "PYTHONIOENCODING": "latin-1"}
    for args in (["show", ids[0]], ["show", ids[0], "--json"], ["show", "\u202eabcdef"]):
        done = subprocess.run(
            [sys.executable, "-m", "reviewer_tool", *args, *ws],
            capture_output=True, cwd=ROOT, env=env, check=False, timeout=120,
        )  # fmt: skip
        assert b"Traceback" not in done.stderr, done.stderr.decode("latin-1")
        assert done.returncode == (1 if args[1].startswith("\u202e") else 0)
        for stream in (done.stdout, done.stderr):
            bad = {b for b in stream if (b < 0x20 and b not in b"\n\t") or 0x7F <= b <= 0x9F}
            assert not bad, sorted(bad)


def test_invisible_characters_the_filter_knows_are_unicodes_own() -> None:
    """Hangul fillers render as nothing yet are letters to Python; the one list of
    unsafe characters (crypto/characters.py) must hold every default-ignorable code
    point Unicode names, or a newly listed one would pass the filter."""
    import icu

    from crypto.characters import default_ignorable, unsafe

    ignorable = icu.UnicodeSet("[:DI:]")
    for code in range(0x110000):
        char = chr(code)
        assert default_ignorable(char) == ignorable.contains(char), hex(code)
    assert all(unsafe(c) for c in "\u3164\uffa0\u115f\u1160\x85\u2028\ue000")


def _wcwidth() -> Callable[[str], int]:
    """The C library's wcwidth in a UTF-8 locale: what most terminals draw."""
    import ctypes
    import locale

    locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    libc = ctypes.CDLL(None)
    libc.wcwidth.argtypes = [ctypes.c_wchar]
    libc.wcwidth.restype = ctypes.c_int
    return lambda char: int(libc.wcwidth(char))


def test_width_the_sanitiser_counts_is_never_below_what_a_terminal_draws() -> None:
    """Wrapping at the terminal's width protects column 0 only if no character is
    drawn wider than counted: spacing marks and skin-tone modifiers once counted 0."""
    from crypto.characters import unsafe
    from reviewer_tool.terminal import cells

    wcwidth = _wcwidth()
    under = [
        f"U+{code:04X}"
        for code in range(0x20, 0x110000)
        if not 0xD800 <= code <= 0xDFFF
        and not unsafe(chr(code))
        and cells(chr(code)) < wcwidth(chr(code))
    ]
    assert not under, (len(under), under[:10])


def test_sender_combining_marks_cannot_stack_over_other_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Hundreds of combining marks on one letter draw over the rows above and below."""
    from reviewer_tool.terminal import json_text, say, say_text

    stack = "Z" + "\u0301\u0300\u0323" * 100 + " fine caf\u00e9 \u1ea1\u0302"
    say_text("  narrative: ", stack)
    say(json_text({"narrative": stack}))
    out = capsys.readouterr().out
    runs = re.findall(r"[\u0300-\u036f]+", out)
    assert max(map(len, runs)) <= 4, max(map(len, runs))
    assert "caf\u00e9" in out  # real accents stay
    assert "\u1ea1\u0302" in out
    assert json.loads(out.split("\n", 1)[1]) == {"narrative": stack}  # JSON stays exact


def _tmux_screen(args: list[str], width: int, height: int, folder: Path) -> list[str]:
    """What a real terminal emulator (tmux) of ``width`` columns shows for `reviewer ARGS`."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed")
    socket = folder / "tmux.sock"
    env = {k: v for k, v in _env().items() if k not in ("COLUMNS", "LINES", "TMUX")}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "reviewer_tool", *args))
    base = [tmux, "-u", "-S", str(socket), "-f", "/dev/null"]
    subprocess.run(
        [*base, "new-session", "-d", "-x", str(width), "-y", str(height), "-c", str(ROOT),
         f"{command}; echo __done__; sleep 120"],
        env=env, check=True, timeout=30,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*base, "capture-pane", "-p", "-S", "-"],
                env=env, capture_output=True, check=True, timeout=30,
            ).stdout.decode()  # fmt: skip
            if "__done__" in screen:
                return screen.split("__done__")[0].splitlines()
            time.sleep(0.2)
        raise AssertionError(f"reviewer did not finish: {screen}")
    finally:
        subprocess.run([*base, "kill-server"], env=env, check=False, timeout=30)


def test_sender_wide_characters_cannot_draw_lines_at_column_zero(
    setup: dict[str, object], imported: tuple[list[str], str], tmp_path: Path
) -> None:
    """A row of spacing marks (drawn 1 cell, once counted 0) or skin-tone modifiers
    (drawn 2, once counted 0) fills the terminal's row, so the text after it
    starts at column 0 of the next row, where it reads as the tool's own line."""
    ws, _ = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    rows = _tmux_screen(["show", ids[19], *ws], NARROW_TERMINAL, 150, tmp_path)
    assert any(SPACING_MARK in row for row in rows), rows  # the narrative was shown
    at_margin = [row for row in rows if row[:1].strip()]
    assert len(at_margin) == len(set(at_margin)), at_margin  # each tool heading once
    for fake in ("  identity_vessel: none given", "reporter key: none (cannot reply)"):
        assert sum(row.startswith(fake) for row in rows) <= 1, rows


def test_sender_coordinates_off_the_globe_refuse_only_that_report(
    setup: dict[str, object], imported: tuple[list[str], str]
) -> None:
    """A latitude of 179.5 passed import and then crashed `forward`."""
    ws, printed = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    listed = {row["id"] for row in json.loads(run("list", "--json", *ws).stdout)}
    assert ids[20] in listed  # -90 and 180 are on the globe
    out_of_form = dict(zip(OUT_OF_FORM, ids[22:], strict=True))
    for name in ("latitude-179", "latitude-minus-91", "longitude-181"):
        assert out_of_form[name] not in listed, name
        lines = [line for line in printed.splitlines() if out_of_form[name] in line]
        assert len(lines) == 1, (name, printed)
        assert name.split("-")[0] in lines[0], lines[0]


def test_sender_text_longer_than_the_form_allows_refuses_only_that_report(
    setup: dict[str, object], imported: tuple[list[str], str]
) -> None:
    """A 20 MB narrative passed import, then took gigabytes of memory to redact;
    the form lets no one type more than its limits."""
    ws, printed = imported
    ids: list[str] = setup["ids"]  # type: ignore[assignment]
    listed = {row["id"] for row in json.loads(run("list", "--json", *ws).stdout)}
    assert ids[21] in listed  # exactly at the form's limits
    out_of_form = dict(zip(OUT_OF_FORM, ids[22:], strict=True))
    named = {"narrative-long": "narrative", "place-long": "place_name", "choice-long": "category",
             "identity-long": "identity_contact", "weapons-many": "weapons",
             "weapons-item-long": "weapons"}  # fmt: skip
    for case, field in named.items():
        assert out_of_form[case] not in listed, case
        lines = [line for line in printed.splitlines() if out_of_form[case] in line]
        assert len(lines) == 1, (case, printed)
        assert field in lines[0], lines[0]
        assert len(lines[0]) < 200, lines[0]  # the field, not the value


def test_import_limits_are_the_portals_field_table() -> None:
    """The importer refuses what the form could not produce: the same limits."""
    from portal.web.fields import FIELDS, Kind
    from reviewer_tool.vocabulary import LIST_LIMITS, MAX_LENGTH

    lists = {f.name: (len(f.choices), max(len(v) for v, _ in f.choices))
             for f in FIELDS if f.kind is Kind.MULTI}  # fmt: skip
    texts = {f.name: f.max_length for f in FIELDS
             if f.kind not in (Kind.MULTI, Kind.COUNT, Kind.COORDINATE)}  # fmt: skip
    assert lists == LIST_LIMITS
    assert texts == MAX_LENGTH


def test_sender_spacing_marks_cannot_overflow_a_list_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich lays out `reviewer list` by its own width count, which takes spacing
    marks for zero cells: a place name of them overflowed the row, the terminal
    wrapped it, and what followed started at column 0."""
    from rich.table import Table
    from rich.text import Text

    from reviewer_tool.terminal import GUTTER, cell_width, render

    monkeypatch.setenv("COLUMNS", "80")
    table = Table("id", "place")
    table.add_row(Text("3f9a1c"), Text(SPACING_MARK * 150 + "identity section (never forwarded):"))
    rows = render(table).split("\n")
    assert all(cell_width(row) <= 79 for row in rows), [cell_width(row) for row in rows]
    assert any(row.startswith(GUTTER) for row in rows)  # it was wrapped again, behind the gutter
    assert not any(row.startswith("identity section") for row in rows)
