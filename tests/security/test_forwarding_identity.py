"""Issue 12, finding 6: the forwarding hard check must see through Unicode variants.

`reviewer forward` refuses to sign a record in which the report's identity
can still be found. A reporter's keyboard or a copy and paste writes the
same identity in native digits, in Cyrillic letters that look Latin, or
reversed inside a bidi override; the reviewer, reading the screen, may keep
it. Each test walks a report through the real CLI (import, triage, redact,
forward) and checks that forward refuses, naming the field and never the value.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crypto.keyfile import KeyBundle
from reviewer_tool.forwarding import identity_leaks
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox

ROOT = Path(__file__).resolve().parents[2]
IMO = "9074729"
NATIVE_DIGITS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "persian": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "myanmar": "၀၁၂၃၄၅၆၇၈၉",
}


def _native(number: str, digits: str) -> str:
    return "".join(digits[int(d)] for d in number)


#: name → (narrative, identity section, what must never be printed)
CASES = {
    **{
        f"imo-in-{script}-digits": (
            f"Boarded at 0300. Our ship, IMO {_native(IMO[:3], d)} {_native(IMO[3:], d)}.",
            {"identity_imo": IMO},
            _native(IMO[3:], d),
        )
        for script, d in NATIVE_DIGITS.items()
    },
    "ship-name-with-cyrillic-letters": (
        "Robbers boarded the \u041c\u0430r\u0443 \u0410nn at anchor.",  # Cyrillic M, a, y, A
        {"identity_vessel": "Mary Ann"},
        "nn at anchor",
    ),
    "ship-name-reversed-in-a-bidi-override": (
        "Robbers boarded the \u202ennA yraM\u202c at anchor.",
        {"identity_vessel": "Mary Ann"},
        "yraM",
    ),
}
#: an identifier the reporter labelled once and wrote bare later; the identity
#: section is empty, so only the detector knows it names the ship
DETECTED = {
    "call-sign": ("Our call sign is 9VAB2. Later the pilot called 9VAB2 on VHF 16.", "9VAB2"),
    "mmsi": ("Our MMSI 563123456 was on AIS. Port control knew 563 123 456.", "123 456"),
    "imo": ("Our ship, IMO 9074729, was boarded; her number 907 4729 is painted aft.", "4729"),
}

#: the reports the later attacks use: name → (narrative, identity section)
MORE = {
    "hangul-fillers": (
        "We sailed on the Mary\u3164Ann, IMO 907\uffa04729, from Lagos.",
        {"identity_vessel": "Mary Ann", "identity_imo": "IMO 9074729"},
    ),
    "ascii-look-alikes": (
        "Master of the C0SMIC LEADER saw it; call sign 9Vl234.",
        {"identity_vessel": "Cosmic Leader", "identity_call_sign": "9V1234"},
    ),
    "small-capitals": (
        "Boarded: the \u1d0d\u1d00\u0280\u028f \u1d00\u0274\u0274 at anchor.",
        {"identity_vessel": "Mary Ann"},
    ),
    "reversed-words": (
        "A drone flew over the Romania-flagged tug; rats, an edit, evil deeds, drawn knives.",
        {"identity_vessel": "Nord", "identity_company": "Amor"},
    ),
    "c1-controls": (
        "Boarded at 0300.\x9b2J\x9d0;pwned\x9c\x85 Private use \ue000.\u2028Next\u2029line.",
        {},
    ),
    "good": ("An ordinary report, boarded at 0300.", {}),
    "crlf": ("Boarded at 0300.\r\nThey took stores.\rThen left.", {}),
    "bell-escape": ("Boarded\x07 at 0300 \x1b[2J.", {}),
}


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
) -> dict[str, object]:
    """A workspace holding one imported report per case."""
    from reviewer_tool.cli import main as reviewer

    folder = tmp_path_factory.mktemp("forwarding")
    root = folder / "ws-template"
    key_file, keys = reviewer_key_files[0]
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    assert (
        reviewer(["init", "--key", str(key_file), "--portal-key", str(PORTAL.token), *options]) == 0
    )
    assert keys.encryption is not None
    documents = [
        report_document(narrative, identity=identity) for narrative, identity, _ in CASES.values()
    ]
    documents += [report_document(narrative) for narrative, _ in DETECTED.values()]
    documents.append(report_document("Boarded at anchor; nothing else to say."))
    documents += [report_document(narrative, identity=identity)
                  for narrative, identity in MORE.values()]  # fmt: skip
    bundle = folder / "inbox.cso"
    ids = write_inbox(bundle, PORTAL, [keys.encryption.public], [(d, []) for d in documents])
    assert reviewer(["import", str(bundle), *options]) == 0
    names = [*CASES, *(f"detected-{n}" for n in DETECTED), "plain", *MORE]
    return {"template": root, "ids": dict(zip(names, ids, strict=True)),
            "passphrase": passphrase_file}  # fmt: skip


@pytest.fixture
def ws(setup: dict[str, object], tmp_path: Path) -> Iterator[list[str]]:
    root = tmp_path / "ws"
    shutil.copytree(setup["template"], root)  # type: ignore[arg-type]
    return ["--workspace", str(root), "--passphrase-file", str(setup["passphrase"])]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`reviewer ARGS` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "reviewer_tool", *map(str, args)],
        input="", capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
    )  # fmt: skip


def redact_declining_every_suggestion(report: str, ws: list[str]) -> str:
    """`reviewer redact` at a terminal, the reviewer answering no to every suggestion."""
    master, slave = pty.openpty()
    seen = b""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "reviewer_tool", "redact", report, *ws],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
        )  # fmt: skip
        os.close(slave)
        answered = 0
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if not select.select([master], [], [], 0.2)[0]:
                continue
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
            prompts = [(p, seen.count(p)) for p in (b"[Y/n] ", b"[y/N] ", b"Enter for none) ")]
            while sum(count for _, count in prompts) > answered:
                answered += 1
                os.write(master, b"n\r" if seen.rstrip().endswith(b"[Y/n]") else b"\r")
        assert process.wait(timeout=10) == 0, seen.decode(errors="replace")
    finally:
        os.close(master)
    return seen.decode(errors="replace")


def _assert_refused(ws: list[str], tmp_path: Path, secret: str) -> None:
    batch = tmp_path / "batch.jsonl"
    forwarded = run("forward", "--out", batch, *ws)
    assert forwarded.returncode == 1, "forward signed a record that names the ship"
    assert not batch.exists()
    error = forwarded.stderr.strip()
    assert len(error.splitlines()) == 1
    assert "in narrative" in error  # the field is named...
    assert secret not in error  # ...and the value is not


@pytest.mark.parametrize("case", CASES)
def test_reviewer_who_keeps_a_unicode_variant_of_the_identity_cannot_forward_it(
    case: str, setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    report = setup["ids"][case]  # type: ignore[index]
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws).returncode == 0
    redact_declining_every_suggestion(report, ws)
    _assert_refused(ws, tmp_path, CASES[case][2])


@pytest.mark.parametrize("kind", DETECTED)
def test_ship_identifier_the_detector_found_cannot_be_forwarded(
    kind: str, setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    report = setup["ids"][f"detected-{kind}"]  # type: ignore[index]
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws).returncode == 0
    redact_declining_every_suggestion(report, ws)
    _assert_refused(ws, tmp_path, DETECTED[kind][1])


def test_format_characters_in_a_stored_redaction_cannot_be_forwarded(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """A redaction stored by an earlier version kept a bidi override; forward refuses it."""
    from reviewer_tool.workspace import Workspace

    report = setup["ids"]["plain"]  # type: ignore[index]
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws).returncode == 0
    assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    workspace = Workspace.open(Path(ws[1]), Path(ws[3]).read_bytes().strip())
    item = workspace.item(report)
    item.record["redaction"]["fields"]["narrative"] = "Boarded at \u202eroh\u202c anchor."
    with workspace.transaction():
        workspace.put_item(item)
    workspace.db.close()
    _assert_refused(ws, tmp_path, "roh")


def test_a_clean_record_still_forwards(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    report = setup["ids"]["plain"]  # type: ignore[index]
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws).returncode == 0
    assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    forwarded = run("forward", "--out", tmp_path / "batch.jsonl", *ws)
    assert forwarded.returncode == 0, forwarded.stderr


def _confirm(name: str, setup: dict[str, object], ws: list[str]) -> str:
    report: str = setup["ids"][name]  # type: ignore[index]
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws).returncode == 0
    return report


def _batch_records(path: Path) -> list[dict[str, object]]:
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[1:-2]]


#: (identity value, how the text writes it) for the forward check itself
FILLERS = ("\u3164", "\uffa0", "\u115f", "\u1160")
LOOK_ALIKES = (
    ("Ivan Petrov", "lvan Petrov"),
    ("Olga", "0LGA"),
    ("Cosmic Leader", "C0SMIC LEADER"),
    ("9074729", "9O74729"),
    ("9V1234", "9Vl234"),
)
#: (a real ship's name, real narrative text that is not that name)
ORDINARY = (
    ("Halia", "taken to a safe port in Thailand where"),
    ("Iman", "the vessel managed to escape"),
    ("Sol I", "Posn: 04:45S - 011:48E, Pointe Noire"),
    ("Mv Lion", "Posn: 01:10N - 103:26E"),
    ("ING", "the LNG tanker was chased"),
    ("Itri", "armed with assault rifles"),
)
STYLED = (
    ("Mary Ann", "\u1d0d\u1d00\u0280\u028f \u1d00\u0274\u0274"),  # small capitals
    ("9074729", "\u277e\u24ff\u277c\u2779\u277c\u2777\u277e"),  # negative circled digits
    ("9074729", "\u2792\u24ea\u2786\u2783\u2786\u2781\u2792"),  # circled sans-serif, circled 0
    ("9074729", "\u2468\u24ea\u2466\u2463\u2466\u2461\u2468"),  # circled digits
)


def test_identity_padded_with_invisible_fillers_cannot_be_forwarded(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """Hangul fillers are letters to Python but render as nothing: "Mary\u3164Ann"."""
    for filler in FILLERS:
        for value, text in (
            ("Mary Ann", f"Ma{filler}ry{filler}Ann"),
            ("9074729", f"907{filler}4729"),
        ):
            assert identity_leaks({"narrative": f"the {text} was boarded"}, [value]), repr(filler)
    report = _confirm("hangul-fillers", setup, ws)
    redact_declining_every_suggestion(report, ws)
    _assert_refused(ws, tmp_path, "Ann")


def test_ascii_look_alikes_of_an_identity_cannot_be_forwarded(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """Zero for O, lower-case L for I or 1: "C0SMIC LEADER", "9Vl234"."""
    for value, text in LOOK_ALIKES:
        assert identity_leaks({"narrative": f"we saw {text} there"}, [value]), text
    for value, text in ORDINARY:  # real narratives' words, which l for I or 1 once matched
        assert not identity_leaks({"narrative": text}, [value]), text
    report = _confirm("ascii-look-alikes", setup, ws)
    redact_declining_every_suggestion(report, ws)
    _assert_refused(ws, tmp_path, "LEADER")


def test_identity_in_small_capitals_or_circled_digits_cannot_be_forwarded(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    for value, text in STYLED:
        assert identity_leaks({"narrative": f"we saw {text} there"}, [value]), text
    report = _confirm("small-capitals", setup, ws)
    redact_declining_every_suggestion(report, ws)
    _assert_refused(ws, tmp_path, "\u1d00\u0274\u0274")


#: (identity value, an ordinary text holding the value's letters backwards)
BACKWARDS = (
    ("Nord", "A drone flew over the deck."),
    ("Amor", "The tug was flagged in Romania."),
    ("Ward", "They had drawn knives."),
    ("Star", "There were rats in the hold."),
    ("Tide", "The master asked us to edit the log."),
    ("Live", "An evil night."),
)


def test_words_that_spell_an_identity_backwards_still_forward_unchanged(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """Nothing displays backwards in a record (forward refuses bidi controls), so an
    ordinary word that holds a ship's name reversed is not that name."""
    for value, text in BACKWARDS:
        assert not identity_leaks({"narrative": text}, [value]), text
    report = _confirm("reversed-words", setup, ws)
    assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    batch = tmp_path / "batch.jsonl"
    forwarded = run("forward", "--out", batch, *ws)
    assert forwarded.returncode == 0, forwarded.stderr
    assert _batch_records(batch)[0]["narrative"] == MORE["reversed-words"][0]


#: what must never stand in a record: it acts, hides, or ends a line for some reader
_NEVER = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def test_c1_controls_and_line_separators_never_reach_the_signed_batch(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """C1 CSI/OSC, NEL, U+2028/2029 and private use: redact drops them, the batch holds
    none, and a reader splitting lines like str.splitlines sees the same lines."""
    from crypto.batch import sign_batch
    from crypto.keys import SigningKeyPair
    from incident_db.errors import RecordError
    from incident_db.record import parse_record

    report = _confirm("c1-controls", setup, ws)
    assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    batch = tmp_path / "batch.jsonl"
    forwarded = run("forward", "--out", batch, *ws)
    assert forwarded.returncode == 0, forwarded.stderr
    text = batch.read_bytes().decode("utf-8")
    assert text.splitlines() == text.split("\n")[:-1]
    bad = {c for c in text if c != "\n" and unicodedata.category(c) in _NEVER}
    assert not bad, sorted(bad)
    # the shared database refuses such a record whoever signed it...
    for char in ("\x85", "\x9b", "\u2028", "\u2029", "\ue000", "\u3164", "\u202e", "\x07"):
        record = {"schema": "cso-incident/v1", "id": "0" * 32, "category": "other",
                  "verification": {"status": "confirmed", "grade": "B2"},
                  "narrative": f"Boarded{char} at 0300."}  # fmt: skip
        with pytest.raises(RecordError, match="narrative"):
            parse_record(record)
    # ...and a batch line stays one line even for a record nobody checked
    signed = sign_batch([{"note": "a\u2028b\u2029c\x85d"}], SigningKeyPair.generate(),
                        batch_id="0" * 32, created_at=datetime.now(UTC))  # fmt: skip
    assert len(signed.decode().splitlines()) == 3


def test_one_report_with_control_characters_cannot_block_forwarding(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """CR from CRLF, BEL, ESC: redact cleans them; a stored redaction that still holds
    one is refused with the report's id and the way out."""
    from reviewer_tool.workspace import Workspace

    reports = [_confirm(name, setup, ws) for name in ("good", "crlf", "bell-escape")]
    for report in reports:
        assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    batch = tmp_path / "batch.jsonl"
    forwarded = run("forward", "--out", batch, *ws)
    assert forwarded.returncode == 0, forwarded.stderr
    narratives = {str(r["narrative"]) for r in _batch_records(batch)}
    assert "Boarded at 0300.\nThey took stores.\nThen left." in narratives
    workspace = Workspace.open(Path(ws[1]), Path(ws[3]).read_bytes().strip())
    item = workspace.item(reports[2])
    item.record["redaction"]["fields"]["narrative"] = "Boarded\x07 at 0300."  # an older version's
    with workspace.transaction():
        workspace.put_item(item)
    workspace.db.close()
    again = run("forward", "--all", "--out", tmp_path / "again.jsonl", *ws)
    assert again.returncode == 1
    error = again.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert reports[2][:12] in error
    assert f"reviewer redact {reports[2][:12]}" in error
    assert f"reviewer triage {reports[2][:12]} --status rejected" in error


# --- second review: reports built to be slow, crashes, rewritten names, false matches ---


def _best_time(run: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _assert_linear(make: Callable[[int], Callable[[], object]], size: int) -> None:
    """Doubling the input at most ~2.5 times the time (quadratic work gives 4 times)."""
    small, large = make(size), make(2 * size)
    small()  # warm the caches both runs share (ICU, compiled patterns)
    once, twice = _best_time(small), _best_time(large)
    assert twice <= 2.5 * once + 0.05, f"{once:.3f}s for n, {twice:.3f}s for 2n"


def _imo(serial: int) -> str:
    digits = [int(d) for d in f"{100000 + serial:06d}"]
    return "".join(map(str, digits)) + str(
        sum(d * w for d, w in zip(digits, range(7, 1, -1), strict=True)) % 10
    )


def _workspace_item(setup: dict[str, object], ws: list[str]) -> tuple[Any, Any]:
    """The plain report's workspace and item, confirmed and redacted in memory only."""
    from reviewer_tool.workspace import Workspace

    workspace = Workspace.open(Path(ws[1]), Path(ws[3]).read_bytes().strip())
    item = workspace.item(setup["ids"]["plain"])  # type: ignore[index]
    item.record["triage"] = {"status": "confirmed", "grade": "B2"}
    item.record["redaction"] = {"fields": {"narrative": "Boarded."}, "position_decimals": 4,
                                "attachments": [], "on": "2026-01-01"}  # fmt: skip
    return workspace, item


def test_a_report_built_to_be_slow_is_redacted_in_bounded_time() -> None:
    """Thousands of labelled IMO numbers, or a run of "+1 1 1 1 …", once cost
    identifiers × text length, or digits squared, in `reviewer redact`."""
    from reviewer_tool.redaction.detect import detect_identifiers

    def many_numbers(n: int) -> Callable[[], object]:
        text = " ".join(f"IMO {_imo(i)}." for i in range(n))
        known = [("imo", _imo(i)) for i in range(n)]
        return lambda: detect_identifiers(text, ["Mary Ann"], known)

    def phone_run(n: int) -> Callable[[], object]:
        text = "+1" + " 1" * n
        return lambda: detect_identifiers(text, ["Mary Ann"])

    _assert_linear(many_numbers, 300)
    _assert_linear(phone_run, 3000)


def test_a_report_built_to_be_slow_is_forwarded_in_bounded_time(
    setup: dict[str, object], ws: list[str]
) -> None:
    """forward runs the detector over the report's own text, and checked a narrative
    for identity values before finding it too long for any record."""
    from reviewer_tool.errors import ReviewerError
    from reviewer_tool.forwarding import build_record

    workspace, item = _workspace_item(setup, ws)

    def phone_run(n: int) -> Callable[[], object]:
        def run() -> object:
            item.record["report"]["report"]["narrative"] = "+1" + " 1" * n
            return build_record(workspace, item, {})

        return run

    _assert_linear(phone_run, 3000)

    def too_long(size: int) -> Callable[[], object]:
        def run() -> object:
            item.record["redaction"]["fields"]["narrative"] = "Boarded at anchor. " * size
            with pytest.raises(ReviewerError, match="longer than"):
                build_record(workspace, item, {})
            return None

        return run

    barely, huge = too_long(1100), too_long(110_000)  # 20,900 and 2,090,000 characters
    barely()
    assert _best_time(huge, 1) <= 10 * _best_time(barely) + 0.2
    workspace.db.close()


def test_position_off_the_globe_is_refused_in_one_line_not_a_traceback(
    setup: dict[str, object], ws: list[str], tmp_path: Path
) -> None:
    """A latitude of 179.5 in a stored report stops forward with the usual refusal."""
    from reviewer_tool.workspace import Workspace

    report = _confirm("plain", setup, ws)
    assert run("redact", report, "--accept-suggestions", *ws).returncode == 0
    workspace = Workspace.open(Path(ws[1]), Path(ws[3]).read_bytes().strip())
    item = workspace.item(report)
    item.record["report"]["report"].update(latitude=179.5, longitude=3.2)
    with workspace.transaction():
        workspace.put_item(item)
    workspace.db.close()
    forwarded = run("forward", "--out", tmp_path / "batch.jsonl", *ws)
    assert forwarded.returncode == 1
    error = forwarded.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert f"refused: report {report[:12]} has a position" in error, error
    assert f"reviewer triage {report[:12]} --status rejected" in error


#: (identity field value, how a narrative rewrites it)
REWRITTEN = {
    "contact-name-curly-apostrophe": ("Sean O'Brien, +65 6123 4567",
                                      "At 0300 the master, Sean O\u2019Brien, was tied up."),
    "contact-surname-alone": ("Sean O'Brien, +65 6123 4567", "Robbers tied up OBrien."),
    "titled-contact-surname": ("Capt. Sean O'Brien", "Robbers tied up OBrien."),
    "company-without-generic-words": ("Cosmic Shipping Management Pte Ltd",
                                      "The managers, Cosmic Shipping, were informed."),
    "vessel-numeral-as-digit": ("Ocean Star II", "Robbers boarded the Ocean Star 2 at Lagos."),
    "vessel-digit-as-numeral": ("Ocean Star 2", "Robbers boarded the Ocean Star II at Lagos."),
    "saint-abbreviated": ("Saint Mary's Star", "The St Mary's Star was boarded."),
    "sainte-abbreviated": ("Sainte Anne", "The Ste. Anne was boarded."),
}  # fmt: skip


@pytest.mark.parametrize("case", REWRITTEN)
def test_identity_rewritten_as_people_commonly_write_it_cannot_be_forwarded(case: str) -> None:
    value, narrative = REWRITTEN[case]
    assert identity_leaks({"narrative": narrative}, [value]) == ["narrative"]


#: real vessel names from ../shared/data/crime-at-sea that ordinary words once matched
REAL_VESSELS = ("Ina", "Ines", "Argos", "Dover", "Sala", "Alert", "Mana", "Elsa", "Bosun")
CRIME_AT_SEA = ROOT.parent / "shared" / "data" / "crime-at-sea" / "pirate_attacks.csv"


def test_real_narratives_that_do_not_name_the_ship_still_forward() -> None:
    """ "in a" is not "Ina", "jumped overboard" is not "Dover", "alerted" is not "Alert"."""
    if not CRIME_AT_SEA.exists():
        pytest.skip("../shared/data/crime-at-sea is not checked out")
    import csv
    import re

    with CRIME_AT_SEA.open(newline="", encoding="utf-8") as source:
        texts = [row["attack_description"] for row in csv.DictReader(source)]
    texts = [t for t in texts if t != "NA"][::3]
    assert len(texts) > 300
    named = re.compile(r"(?<!\w)(?:" + "|".join(REAL_VESSELS) + r")(?!\w)", re.IGNORECASE)
    refused = [
        text
        for text in texts
        if not named.search(text) and identity_leaks({"narrative": text}, list(REAL_VESSELS))
    ]
    assert not refused, f"{len(refused)} of {len(texts)} refused, e.g. {refused[0][:200]!r}"
    assert identity_leaks({"narrative": "the MV Dover was boarded"}, ["Dover"])
