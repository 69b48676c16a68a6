"""Words the reviewer removes by hand, and the files forwarding and exporting write.

A word typed to be removed must leave nothing of itself in what is forwarded,
whatever the report's text does that a plain ``lower()`` gets wrong: letters
whose lower case is longer (Turkish dotted capital I), letters that fold to
two (sharp s, ligatures), accents written apart from their letter, vowel
marks of Arabic, invisible characters inside a name, line breaks between
words. Nothing after the reviewer's redaction looks for the typed word again
(the hard check knows only identity values and ship identifiers), so the
finding itself must be right.

The replies bundle, a batch and its attachments are written where the
reviewer says, often on removable media someone else prepared: a symbolic
link planted there must not make the tool write anywhere else.
"""

# ruff: noqa: RUF001 -- Turkish dotless i and Greek capitals are the point of these tests

from __future__ import annotations

import io
import json
import os
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from reviewer_tool.cli import main as reviewer
from reviewer_tool.desk.app import create_app
from reviewer_tool.redaction_flow import redact_field, words_in
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox

TOKEN = "flow-test-" + "x" * 22
PORT = 48125  # the test client never listens; the guard only compares it
ORIGIN = f"http://127.0.0.1:{PORT}"
GONE = "[redacted: manual]"


def run(*args: str | Path) -> int:
    return reviewer([str(a) for a in args])


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


#: (text, typed words, the text as forwarded)
CASES = {
    "dotted capital I before the name": (
        "Master İbrahim (İzmir, İstanbul) reported: Ahmed Bello was beaten.",
        "Ahmed Bello",
        f"Master İbrahim (İzmir, İstanbul) reported: {GONE} was beaten.",
    ),
    "dotted capitals in the name": (
        "İzmir crew: İBRAHİM YILMAZ was hurt.",
        "İbrahim Yılmaz",
        f"İzmir crew: {GONE} was hurt.",
    ),
    "dotless i typed, capitals written": (
        "Kaptan ILGAZ IŞIK yaralandı.",
        "ılgaz ışık",
        f"Kaptan {GONE} yaralandı.",
    ),
    "sharp s": ("Bosun Hans Straße was hurt.", "HANS STRASSE", f"Bosun {GONE} was hurt."),
    "capital sharp s": ("Bosun HANS STRAẞE was hurt.", "Hans Strasse", f"Bosun {GONE} was hurt."),
    "fi ligature": ("The ﬁsherman Raﬁq Khan saw it.", "Rafiq Khan", f"The ﬁsherman {GONE} saw it."),
    "accents written apart": (
        nfd("Crew: José Martínez, AB."),
        "José Martínez",
        f"Crew: {GONE}, AB.",
    ),
    "accent after the last letter": (nfd("Cook André said"), "andre", f"Cook {GONE} said"),
    "Greek final sigma": (
        "Ο ναύτης ΝΙΚΟΛΑΟΣ ΠΑΠΑΣ χτυπήθηκε.",
        "Νικόλαος Παπάς",
        f"Ο ναύτης {GONE} χτυπήθηκε.",
    ),
    "emoji around the name": (
        "👩🏽\u200d✈️ İpek saw ⚓\ufe0f Ahmed Bello 👍🏽 fall.",
        "ipek|Ahmed Bello",
        f"👩🏽\u200d✈ {GONE} saw ⚓ {GONE} 👍🏽 fall.",  # variation selectors dropped
    ),
    "Arabic with vowel marks": (
        "قال الربان مُحَمَّد بِلُّو إن القراصنة صعدوا",
        "محمد بلو",
        f"قال الربان {GONE} إن القراصنة صعدوا",
    ),
    "invisible characters inside the name": (
        "Then Ahm\u200bed Bel\u00adlo was beaten.",
        "Ahmed Bello",
        f"Then {GONE} was beaten.",
    ),
    "a line break between the words": (
        "Then Ahmed\n   Bello was beaten.",
        "ahmed bello",
        f"Then {GONE} was beaten.",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_typed_word_is_removed_whole(case: str) -> None:
    text, typed, forwarded = CASES[case]
    findings = words_in(text, typed.split("|"))
    assert findings
    for finding in findings:
        assert finding.text == text[finding.start : finding.end]
    assert redact_field("narrative", text, findings)[0] == forwarded


def test_words_that_fold_to_nothing_find_nothing() -> None:
    assert words_in("Ahmed Bello", ["\u200b", " ", "\u0301"]) == []


@pytest.fixture
def confirmed(ws: list[str], recipient: bytes, tmp_path: Path) -> tuple[list[str], str]:
    """A confirmed report whose narrative holds every case above, one to a line."""
    text = "\n".join(case[0] for case in CASES.values())
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(report_document(text), [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", only, "--status", "confirmed", "--grade", "B2", *ws) == 0
    return ws, only


def test_the_desk_forwards_nothing_of_a_typed_name(
    confirmed: tuple[list[str], str], tmp_path: Path
) -> None:
    ws, only = confirmed
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    try:
        client = create_app(workspace, TOKEN, port=PORT).test_client()
        headers = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}

        def post(path: str, form: dict[str, str]) -> int:
            answer = client.post(f"/{TOKEN}/{path}", data=form, base_url=ORIGIN, headers=headers)
            return answer.status_code

        typed = "|".join(case[1] for case in CASES.values())
        form = {"action": "save", "words-narrative": typed, "decimals": "2"}
        assert post(f"report/{only}/redact", form) == 303
        assert post("forward", {"report": only, "folder": str(tmp_path)}) == 303
    finally:
        workspace.close()
    (batch,) = tmp_path.glob("batch-*.jsonl")
    (record,) = [json.loads(line) for line in batch.read_text().splitlines() if "narrative" in line]
    assert record["narrative"] == "\n".join(case[2] for case in CASES.values())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_typed_word_reaching_past_an_accepted_finding_is_kept(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The detector finds "Ahmed Bello"; the reviewer accepts it and adds "Bello al-Musa",
    # which starts inside it: both must go, not the typed one dropped as an overlap.
    text = "Capt. Ahmed Bello al-Musa was beaten."
    (only,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(report_document(text), [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    answers = iter(["y", "Bello al-Musa"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert run("redact", only, *ws) == 0
    capsys.readouterr()
    assert run("show", only, "--json", *ws) == 0
    narrative = json.loads(capsys.readouterr().out)["redaction"]["fields"]["narrative"]
    assert "Musa" not in narrative
    assert narrative.startswith("Capt. [redacted: ")
    assert narrative.endswith("] was beaten.")


# --- files written where the reviewer says ------------------------------------------------


@pytest.fixture
def imported(ws: list[str], recipient: bytes, tmp_path: Path) -> list[str]:
    """A workspace that has imported a bundle: there is an acknowledgement to export."""
    write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(report_document("Boarded."), [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    return ws


def test_a_link_planted_at_the_temporary_name_is_left_alone(
    imported: list[str], tmp_path: Path
) -> None:
    victim = tmp_path / "home" / ".bashrc"
    victim.parent.mkdir()
    victim.write_text("alias ls='ls --color'\n")
    usb = tmp_path / "usb"
    usb.mkdir()
    os.symlink(victim, usb / ".replies.bundle.partial")
    assert run("export-replies", "--out", usb / "replies.bundle", *imported) == 0
    assert victim.read_text() == "alias ls='ls --color'\n"
    assert not (usb / "replies.bundle").is_symlink()
    assert (usb / "replies.bundle").read_bytes().startswith(b"cso-bundle/v1\n")
    assert (usb / ".replies.bundle.partial").is_symlink()  # not ours: left as it was
    assert sorted(p.name for p in usb.iterdir()) == [".replies.bundle.partial", "replies.bundle"]


def test_a_replies_bundle_is_never_written_through_a_link(
    imported: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "elsewhere"
    victim.write_text("keep me\n")
    out = tmp_path / "replies.bundle"
    os.symlink(victim, out)
    assert run("export-replies", "--out", out, "--force", *imported) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me\n"
    assert os.readlink(out) == str(victim)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".replies")] == []


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def with_attachment(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """A confirmed, redacted report with one photo chosen to be forwarded."""
    photo = _photo()
    document = report_document("Skiff alongside.", {}, [("a.jpg", "image/jpeg", photo)])
    write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [photo])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    (only,) = workspace.item_ids()
    workspace.close()
    assert run("triage", only, "--status", "confirmed", "--grade", "B2", *ws) == 0
    answers = iter(["", "y"])  # no extra words; forward the photo
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert run("redact", only, *ws) == 0
    return ws


def test_attachments_are_not_written_into_a_linked_folder(
    with_attachment: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "files")
    batch = tmp_path / "batch.jsonl"
    assert run("forward", "--out", batch, "--attachments-dir", tmp_path / "files",
               *with_attachment) == 1  # fmt: skip
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    assert not batch.exists()


def test_a_link_planted_at_the_batch_name_writes_nothing(
    with_attachment: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.jsonl"
    os.symlink(tmp_path / "nowhere", batch)  # dangling: exists() says no
    files = tmp_path / "files"
    assert run("forward", "--out", batch, "--attachments-dir", files, *with_attachment) == 1
    assert "exists" in capsys.readouterr().err
    assert not files.exists() or list(files.iterdir()) == []  # no attachment without its batch
    assert not (tmp_path / "nowhere").exists()


def test_a_link_planted_at_an_attachment_name_is_refused(
    with_attachment: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = tmp_path / "files"
    assert run("forward", "--out", tmp_path / "first.jsonl", "--attachments-dir", files,
               *with_attachment) == 0  # fmt: skip
    (written,) = files.iterdir()
    copy = tmp_path / "copy"
    copy.write_bytes(written.read_bytes())
    written.unlink()
    os.symlink(copy, written)  # the same content, behind a link
    assert run("forward", "--all", "--out", tmp_path / "second.jsonl", "--attachments-dir",
               files, *with_attachment) == 1  # fmt: skip
    assert "not a plain file" in capsys.readouterr().err
    assert not (tmp_path / "second.jsonl").exists()
