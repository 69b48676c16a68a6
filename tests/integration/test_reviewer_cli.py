"""The `reviewer` command on the offline workstation: each subcommand, its refusals and faults."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from crypto.batch import read_batch
from crypto.bundle import MAGIC
from crypto.keyfile import KeyBundle
from crypto.keys import SigningKeyPair
from reviewer_tool.cli import build_parser
from reviewer_tool.cli import main as reviewer
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE, ROOT
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox

VESSEL = "Sextans Star"


def run(*args: str | Path) -> int:
    return reviewer([str(a) for a in args])


def gps_photo() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0)}
    exif[0x010F] = "CANARY-CAMERA-MAKER"
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def items_in(ws: list[str]) -> int:
    with sqlite3.connect(Path(ws[1]) / "workspace.db") as db:
        return int(db.execute("SELECT count(*) FROM item").fetchone()[0])


def queue(ws: list[str], capsys: pytest.CaptureFixture[str], *filters: str) -> list[dict]:
    capsys.readouterr()
    assert run("list", "--json", *filters, *ws) == 0
    return list(json.loads(capsys.readouterr().out))


def test_import_list_show_triage(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = gps_photo()
    documents = [
        (report_document(f"Robbers took paint from the {VESSEL}.", {"identity_vessel": VESSEL},
                         [("deck.jpg", "image/jpeg", photo)], place_name="Lagos anchorage",
                         incident_local_time="2026-11-19T02:00"), [photo]),
        (report_document("Phishing e-mail to the master.", category="cyber-incident"), []),
    ]  # fmt: skip
    documents[1][0]["report"]["category"] = "cyber-incident"
    first, second = write_inbox(tmp_path / "inbox", PORTAL, [recipient], documents)
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert [row["id"] for row in queue(ws, capsys)] == sorted([first, second])
    assert [row["id"] for row in queue(ws, capsys, "--category", "cyber-incident")] == [second]
    assert queue(ws, capsys, "--since", "2026-11-21") == []
    assert len(queue(ws, capsys, "--until", "2026-11-20")) == 2

    assert run("show", first[:8], *ws) == 0
    text = capsys.readouterr().out
    assert VESSEL in text  # the identity section is shown to the reviewer...
    assert "identity section (never forwarded)" in text  # ...and marked as such
    assert "deck.jpg" in text

    assert run("triage", first, "--status", "confirmed", "--grade", "G7", *ws) == 1
    assert "A-F" in capsys.readouterr().err
    assert run("triage", second, "--status", "confirmed", "--grade", "B2",
               "--duplicate-of", first, *ws) == 0  # fmt: skip
    assert [row["id"] for row in queue(ws, capsys, "--status", "confirmed")] == [second]
    assert run("show", second, "--json", *ws) == 0
    triage = json.loads(capsys.readouterr().out)["triage"]
    assert (triage["status"], triage["grade"], triage["duplicate_of"]) == ("confirmed", "B2", first)

    assert run("export-attachment", first, "deck.jpg", "--out", tmp_path / "clean.jpg", *ws) == 0
    cleaned = (tmp_path / "clean.jpg").read_bytes()
    assert b"CANARY-CAMERA-MAKER" not in cleaned
    assert not Image.open(io.BytesIO(cleaned)).getexif()


def test_importing_twice_changes_nothing(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """crypto/SPEC.md §15.3."""
    write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(report_document("one"), [])] * 3)
    assert run("import", tmp_path / "inbox", *ws) == 0
    before = (Path(ws[1]) / "workspace.db").read_bytes()
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert "0 new report(s), 3 already" in capsys.readouterr().out
    assert items_in(ws) == 3
    assert len(before) == len((Path(ws[1]) / "workspace.db").read_bytes())


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign-signer"])
def test_damaged_bundle_imports_nothing(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:  # fmt: skip
    """crypto/SPEC.md §15.1, §15.2: refused whole, with a clear one-line error."""
    signer = SigningKeyPair.generate() if damage == "foreign-signer" else PORTAL
    path = tmp_path / "inbox"
    write_inbox(path, signer, [recipient], [(report_document("x"), [])] * 5)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(MAGIC) + 500] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    assert run("import", path, *ws) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("reviewer: error:")
    assert items_in(ws) == 0


def test_wrong_passphrase_is_a_clear_error(
    ws: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    assert run("list", "--workspace", ws[1], "--passphrase-file", wrong) == 1
    assert capsys.readouterr().err == (
        "reviewer: error: wrong passphrase, or the key file is damaged\n"
    )


def test_missing_workspace_says_how_to_make_one(
    tmp_path: Path, passphrase_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("list", "--workspace", tmp_path / "none", "--passphrase-file", passphrase_file) == 1
    assert "reviewer keygen" in capsys.readouterr().err


def test_workspace_holds_no_plaintext(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "CANARY-WORKSPACE-91f2"
    photo = gps_photo()
    document = report_document(f"{canary} boarded", {"identity_company": f"{canary} Ltd"},
                                [("p.jpg", "image/jpeg", photo)])  # fmt: skip
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [photo])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", only, "--status", "confirmed", "--grade", "A1", *ws) == 0
    assert run("reply", only, "--message", f"{canary} reply", *ws) == 0
    for path in Path(ws[1]).rglob("*"):
        data = path.read_bytes()
        assert canary.encode() not in data, path
        assert b"CANARY-CAMERA-MAKER" not in data, path


def test_reply_needs_the_reporters_key(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = report_document("no key", reporter_key=False)
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("reply", only, "--message", "hello?", *ws) == 1
    assert "cannot be answered" in capsys.readouterr().err
    assert run("reply", only, "--status", "closed", *ws) == 0  # a status alone is fine


def test_forward_refuses_a_record_that_still_names_the_ship(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    narrative = f"Thieves boarded the mv {VESSEL.lower()} at the outer anchorage."
    document = report_document(narrative, {"identity_vessel": f"MV {VESSEL}"})
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", only, "--status", "confirmed", "--grade", "C3", *ws) == 0
    assert run("forward", "--out", tmp_path / "batch", *ws) == 1
    assert "not redacted" in capsys.readouterr().err
    assert run("redact", only, "--accept-suggestions", *ws) == 0
    # The reviewer then undoes the redaction (as declining a suggestion would):
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    item = workspace.item(only)
    item.record["redaction"]["fields"]["narrative"] = narrative
    with workspace.transaction():
        workspace.put_item(item)
    workspace.close()
    assert run("forward", "--out", tmp_path / "batch", *ws) == 1
    error = capsys.readouterr().err
    assert "refused" in error
    assert "narrative" in error
    assert VESSEL.lower() not in error.lower()  # the message names the field, not the value
    assert not (tmp_path / "batch").exists()


def test_forward_writes_a_signed_batch_with_links(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    when = {"incident_local_time": "2026-11-19T23:50", "incident_utc_offset": "+01:00"}
    reports = [
        (report_document(f"Report {n}: robbers, IMO 9074729.", latitude=6.43219,
                         longitude=3.38765, **when), [])
        for n in range(2)
    ]  # fmt: skip
    first, second = write_inbox(tmp_path / "inbox", PORTAL, [recipient], reports)
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", first, "--status", "confirmed", "--grade", "B2", *ws) == 0
    assert run("triage", second, "--status", "confirmed", "--grade", "C3",
               "--duplicate-of", first, *ws) == 0  # fmt: skip
    for item in (first, second):
        assert run("redact", item, "--accept-suggestions", "--coarsen", "2", *ws) == 0
    assert run("forward", "--out", tmp_path / "batch", *ws) == 0
    capsys.readouterr()
    assert run("pubkey", *ws) == 0
    signing = capsys.readouterr().out.split()[1]
    from crypto.keys import parse_public_key

    batch = read_batch((tmp_path / "batch").read_bytes(), {parse_public_key(signing)})
    records = {r["verification"]["grade"]: r for _, r in batch.records}
    assert records["C3"]["links"] == [{"relation": "duplicate-of", "id": records["B2"]["id"]}]
    assert records["B2"]["position"] == {"lat": 6.43, "lon": 3.39, "decimals": 2}
    assert "9074729" not in (tmp_path / "batch").read_text()
    assert records["B2"]["occurred_local"] == "2026-11-19T23:50"
    # forwarded reports are not forwarded again unless asked
    assert run("forward", "--out", tmp_path / "again", *ws) == 1
    assert "nothing to forward" in capsys.readouterr().err


def test_detect_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "t.txt"
    text.write_text("Call +870 773 123 456 about IMO 9074729.", encoding="utf-8")
    assert run("detect", text) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {f["kind"] for f in found} == {"phone", "imo"}
    assert all({"kind", "start", "end", "text", "confidence"} <= f.keys() for f in found)


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


NETWORK_GUARD = """
import json, sys
def guard(event, args):
    if event.startswith("socket."):
        raise RuntimeError("network use on the offline path: " + event)
sys.addaudithook(guard)
from reviewer_tool.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in ("socket", "ssl", "http.client", "urllib.request", "smtplib",
                            "ftplib", "reviewer_tool.sync_client") if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_offline_commands_load_no_networking_code(
    ws: list[str], recipient: bytes, tmp_path: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:  # fmt: skip
    photo = gps_photo()
    document = report_document("boarded", {"identity_vessel": VESSEL},
                                [("a.jpg", "image/jpeg", photo)])  # fmt: skip
    only, other = write_inbox(tmp_path / "inbox", PORTAL, [recipient],
                              [(document, [photo]), (report_document("again"), [])])  # fmt: skip
    text = tmp_path / "t.txt"
    text.write_text("IMO 9074729")
    passphrase = ["--passphrase-file", ws[3]]
    commands = [
        ["keygen", "--workspace", str(tmp_path / "new"), *passphrase],
        ["init", "--key", str(reviewer_key_files[1][0]), "--workspace", str(tmp_path / "other"),
         *passphrase],
        ["trust-portal", str(PORTAL.token)], ["trust-org", str(SigningKeyPair.generate().token)],
        ["import", str(tmp_path / "inbox")], ["list"], ["show", only],
        ["triage", only, "--status", "confirmed", "--grade", "A1"],
        ["label", only, "boarding"], ["note", only, "seen before"],
        ["note", only, "mine", "--personal"], ["assign", only, "--nobody"],
        ["link", other, only], ["history", only], ["team"],
        ["redact", only, "--accept-suggestions"],
        ["export-attachment", only, "a.jpg", "--out", str(tmp_path / "a.jpg")],
        ["reply", only, "--message", "hi", "--status", "closed"],
        ["export-replies", "--out", str(tmp_path / "replies")],
        ["forward", "--out", str(tmp_path / "batch")], ["pubkey"], ["detect", str(text)],
    ]  # fmt: skip
    # every command but those two: sync runs on the online transfer machine, and desk
    # listens on 127.0.0.1 (tests/integration/test_desk_leaks.py audits its sockets)
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    assert {command[0] for command in commands} == set(verbs) - {"sync", "desk"}
    for command in commands:
        options = [] if "--workspace" in command else ws
        result = _python(NETWORK_GUARD, *command, *options)
        assert result.stdout, (command, result.stderr)
        outcome = json.loads(result.stdout.splitlines()[-1])
        assert outcome == {"code": 0, "loaded": []}, (command, result.stderr)


def test_a_killed_import_resumes_without_duplicates(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = 3000
    path = tmp_path / "inbox"
    write_inbox(path, PORTAL, [recipient], [(report_document("x" * 200), [])] * total)
    process = subprocess.Popen(
        [sys.executable, "-m", "reviewer_tool", "import", str(path), *ws],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    partial = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            partial = items_in(ws)
        except sqlite3.OperationalError:
            partial = 0  # not created or locked yet
        if partial:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < partial < total, "the import was not caught halfway"
    committed = items_in(ws)
    assert committed < total
    assert run("import", path, *ws) == 0
    assert items_in(ws) == total
    assert f"{total - committed} new report(s), {committed} already" in capsys.readouterr().out
    with sqlite3.connect(Path(ws[1]) / "workspace.db") as db:
        assert db.execute("SELECT count(DISTINCT id) FROM item").fetchone()[0] == total


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_redaction_asks_about_each_finding(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    narrative = "IMO 9074729 was boarded at Bonny anchorage; call +44 20 7946 0958."
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient],
                          [(report_document(narrative), [])])  # fmt: skip
    assert run("import", tmp_path / "inbox", *ws) == 0
    answers = iter(["y", "n", "Bonny"])  # redact the IMO, keep the phone, add a word
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert run("redact", only, "--coarsen", "3", *ws) == 0
    assert next(answers, None) is None  # every question was asked
    capsys.readouterr()
    assert run("show", only, "--json", *ws) == 0
    redaction = json.loads(capsys.readouterr().out)["redaction"]
    assert redaction["fields"]["narrative"] == (
        "IMO [redacted: imo] was boarded at [redacted: manual] anchorage; call +44 20 7946 0958."
    )
    assert redaction["position_decimals"] == 3


def test_redact_without_a_terminal_needs_accept_suggestions(
    ws: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("redact", "abcdef", *ws) == 1
    assert "--accept-suggestions" in capsys.readouterr().err


def test_a_malformed_report_does_not_block_the_others(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sender controls the sealed bytes; a bad report is skipped, the rest imported."""
    good = report_document("fine")
    odd = dict(report_document("odd"), report="not an object")
    deep = b'{"schema": "cso-report/v1", "report": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000
    # json.loads lets a lone surrogate through; it cannot be sealed as UTF-8
    surrogate = b'{"schema": "cso-report/v1", "report": {"narrative": "a\\ud800"}}'
    ids = write_inbox(tmp_path / "inbox", PORTAL, [recipient],
                      [(good, []), (odd, []), (deep, []), (surrogate, []), (good, [])])  # fmt: skip
    assert run("import", tmp_path / "inbox", *ws) == 0
    out = capsys.readouterr().out
    assert "2 new report(s)" in out
    assert out.count("could not be decrypted or is malformed") == 3
    assert ids[1] in out
    assert ids[3] in out
    assert items_in(ws) == 2


def test_show_neutralises_terminal_escapes(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "boarded\x1b]52;c;cm0gLXJmIH4=\x07 \u202egpj.exe"
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient],
                          [(report_document(hostile, place_name="\x1b[2J"), [])])  # fmt: skip
    assert run("import", tmp_path / "inbox", *ws) == 0
    capsys.readouterr()
    assert run("show", only, *ws) == 0
    assert run("list", *ws) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown
    assert "\u202e" not in shown


def test_forwarded_attachments_are_chosen_one_by_one_and_cleaned(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    photo = gps_photo()
    document = report_document("Skiff alongside.", {}, [("a.jpg", "image/jpeg", photo),
                               ("b.jpg", "image/jpeg", photo)])  # fmt: skip
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [photo, photo])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", only, "--status", "confirmed", "--grade", "B2", *ws) == 0
    assert run("redact", only, "--accept-suggestions", *ws) == 0
    capsys.readouterr()
    assert run("show", only, "--json", *ws) == 0
    assert json.loads(capsys.readouterr().out)["redaction"]["attachments"] == []  # never automatic
    answers = iter(["", "n", "y"])  # no extra words; skip a.jpg; forward b.jpg
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert run("redact", only, *ws) == 0
    out = tmp_path / "out"
    assert run("forward", "--out", tmp_path / "batch", "--attachments-dir", out, *ws) == 0
    (written,) = list(out.iterdir())
    content = written.read_bytes()
    assert b"CANARY-CAMERA-MAKER" not in content
    # content-addressed, and bound to the first record by the signed header (SPEC §16.9)
    assert written.name == hashlib.sha256(content).hexdigest()
    header = json.loads((tmp_path / "batch").read_bytes().split(b"\n", 1)[0])
    (entry,) = header["attachments"]
    assert entry["sha256"] == written.name
    assert entry["size"] == len(content)
    assert entry["record"] == 1
    assert entry["media_type"] == "image/jpeg"
    assert entry["name"].endswith("-2.jpg")  # made from the record id, never the reporter's
