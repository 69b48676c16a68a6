"""Team updates carried between workstations in bundles (crypto/SPEC.md §17).

Each workstation here is a real workspace. What the portal does in between
(take the team items out of a replies bundle, put them into the next inbox
bundle with the key directory and the team cursor) is done by ``Relay``
byte for byte, so that these tests pin what the workstations do with
whatever arrives, hostile items included. The last test runs the same
exchange through the portal's own relay (portal/storage/inbox.py).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from crypto import _base64url as base64url
from crypto.bundle import BundleWriter, open_bundle
from crypto.directory import sign_directory
from crypto.envelope import seal_bytes
from crypto.keyfile import KeyBundle
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from portal.storage.inbox import directory_text, export_inbox, import_replies, load_signing_key
from portal.storage.models import InboxEntry, Part, PartKind, ReviewerAccount, Submission
from reviewer_tool import importer
from reviewer_tool.cli import main as reviewer
from reviewer_tool.errors import ReviewerError
from reviewer_tool.importer import ImportResult
from reviewer_tool.team import directories, exchange, log, wire
from reviewer_tool.workspace import FORMAT, Workspace
from tests.conftest import DemoPortal
from tests.integration.reviewer_helpers import PORTAL, report_document

ORGANISATION = SigningKeyPair.generate()
NOW = datetime.now(UTC).replace(microsecond=0)
Item = tuple[dict[str, Any], bytes]


class Station:
    """One reviewer's workstation: a workspace that trusts the test portal and organisation."""

    def __init__(
        self, root: Path, label: str, keys: KeyBundle | None = None, *, pin: bool = True
    ) -> None:
        self.label = label
        self.keys = keys or KeyBundle.new_reviewer()
        root.mkdir(mode=0o700, exist_ok=True)
        self.ws = Workspace(root, self.keys)
        if self.ws.meta("format") is None:
            self.ws.set_meta("format", FORMAT)
            self.ws.set_meta("portal_key", str(PORTAL.token))
        if pin and directories.organisation_key(self.ws) is None:
            directories.pin_organisation(self.ws, str(ORGANISATION.token))

    @property
    def public(self) -> bytes:
        assert self.keys.encryption is not None
        return self.keys.encryption.public

    @property
    def identity(self) -> EncryptionKeyPair:
        assert self.keys.encryption is not None
        return self.keys.encryption

    def entry(self) -> tuple[str, Any, Any]:
        assert self.keys.encryption is not None
        return (self.label, self.keys.encryption.token, self.keys.signing.token)

    def signed(self, report: str, serial: int, **value: Any) -> bytes:
        """A triage update by this station, made by hand (not recorded here)."""
        triage = {"status": "confirmed", "grade": "B2", "duplicate_of": None, **value}
        return wire.make_signed(self.keys.signing, report=report, field="triage", value=triage,
                                clock=5, directory_serial=serial)  # fmt: skip

    def replies(self, folder: Path) -> Path:
        """A replies bundle of this station's updates not yet sent, as export-replies writes."""
        path = folder / f"replies-{secrets.token_hex(4)}.bundle"
        fields = {"acknowledges": [], **exchange.acknowledgement(self.ws)}
        with path.open("wb") as out:
            writer = BundleWriter(out, self.keys.signing, "replies", fields)
            ids = exchange.add_team_updates(self.ws, writer)
            bundle_id = writer.finish()
        exchange.mark_team_exported(self.ws, ids, bundle_id)
        return path

    def outgoing(self, folder: Path) -> list[Item]:
        """The team items of the replies bundle this station would write now."""
        bundle = open_bundle(self.replies(folder), {self.keys.signing.token})
        return [(dict(item.meta), bundle.read_item(item)) for item in bundle.items]

    def take(self, path: Path) -> ImportResult:
        return importer.import_bundle(self.ws, importer.verify(self.ws, path))

    def team(self, report: str) -> dict[str, Any]:
        item = self.ws.report(report)
        assert item is not None
        return dict(item.record["team"])


def directory(serial: int, *stations: Station, organisation: SigningKeyPair = ORGANISATION) -> str:
    document = sign_directory(
        organisation, [s.entry() for s in stations], serial=serial,
        issued_at=NOW - timedelta(days=1), valid_for=timedelta(days=60),
    )  # fmt: skip
    return document.decode()


class Relay:
    """Inbox bundles as the portal writes them: reports, then team items, then the manifest."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def inbox(
        self,
        *,
        reports: list[tuple[str, list[bytes]]] = (),  # type: ignore[assignment]
        team: list[Item] = (),  # type: ignore[assignment]
        directory: str | None = None,
        team_cursor: tuple[int, int] | None = None,
    ) -> Path:
        self.count += 1
        path = self.folder / f"inbox-{self.count}.bundle"
        fields: dict[str, Any] = {"cursor": {"from": 0, "to": len(reports)}}
        if team_cursor is not None:
            fields["team_cursor"] = {"from": team_cursor[0], "to": team_cursor[1]}
        if directory is not None:
            fields["directory"] = directory
        with path.open("wb") as out:
            writer = BundleWriter(out, PORTAL, "inbox", fields)
            for report_id, recipients in reports:
                document = json.dumps(report_document("Boarded at anchor.")).encode()
                meta = {"type": "part", "submission": report_id, "received_on": "2026-11-20",
                        "position": 0, "kind": "report"}  # fmt: skip
                writer.add(meta, seal_bytes(document, recipients))
            for meta, data in team:
                writer.add(meta, data)
            writer.finish()
        return path


def team_item(signed: bytes, recipients: list[bytes], update_id: str | None = None) -> Item:
    """One team item as a workstation writes it (the id read from the update unless given)."""
    inner = wire.check_signed(signed).id if update_id is None else update_id
    return {"type": "team-update", "update_id": inner}, wire.seal_update(signed, recipients)


def states(station: Station) -> dict[str, str]:
    """Every held update's state, by id."""
    log.ensure_tables(station.ws)
    return dict(station.ws.db.execute("SELECT id, state FROM team_event"))


@pytest.fixture
def relay(tmp_path: Path) -> Relay:
    return Relay(tmp_path)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Station, Station]:
    return Station(tmp_path / "a", "reviewer-1"), Station(tmp_path / "b", "reviewer-2")


# --- convergence (§17.9, §17.10) -------------------------------------------------------------


def test_two_workstations_converge_whatever_the_order(
    pair: tuple[Station, Station], relay: Relay, tmp_path: Path
) -> None:
    a, b = pair
    report, other = secrets.token_hex(16), secrets.token_hex(16)
    start = relay.inbox(
        reports=[(report, [a.public, b.public]), (other, [a.public, b.public])],
        directory=directory(1, a, b),
    )
    for station in pair:
        result = station.take(start)
        assert result.imported == 2
        assert result.team is not None
        assert result.team.directory == "new"
        assert result.team.directory_serial == 1
    # conflicting edits to one report, and edits only one of them makes
    log.record(a.ws, report, "triage", {"status": "confirmed", "grade": "B2", "duplicate_of": None})
    log.record(a.ws, report, "label", {"name": "piracy", "present": True})
    log.record(a.ws, report, "note", {"note_id": secrets.token_hex(16), "text": "AIS gap 02:10."})
    log.record(b.ws, report, "triage", {"status": "rejected", "grade": "C3", "duplicate_of": None})
    log.record(b.ws, report, "label", {"name": "piracy", "present": False})
    log.record(b.ws, report, "assignee", {"label": "reviewer-1"})
    log.record(b.ws, report, "link", {"other": other, "present": True})
    from_a, from_b = a.outgoing(tmp_path), b.outgoing(tmp_path)
    assert len(from_a) == 3
    assert len(from_b) == 4
    assert a.outgoing(tmp_path) == []  # marked exported
    # B receives A's in reverse order; A receives B's as written, in two bundles
    into_b = b.take(relay.inbox(team=from_a[::-1], team_cursor=(0, 3)))
    into_a = a.take(relay.inbox(team=from_b[:2], team_cursor=(3, 5)))
    a.take(relay.inbox(team=from_b[2:], team_cursor=(5, 7)))
    assert into_b.team is not None
    assert (into_b.team.accepted, into_b.team.pending, into_b.team.refused) == (3, 0, 0)
    assert into_a.team is not None
    assert into_a.team.accepted == 2
    assert a.team(report) == b.team(report)
    for field in ("status", "grade", "labels", "assignee"):
        assert a.ws.report(report).summary[field] == b.ws.report(report).summary[field]  # type: ignore[union-attr]
    # the greater (clock, author, id) won the triage
    winner = max(
        (u for u in log.accepted(a.ws, report) if u.field == "triage"),
        key=lambda u: (u.clock, u.author, u.id),
    )
    assert a.team(report)["triage"]["status"] == winner.value["status"]
    assert a.team(report)["links"] == [other]
    assert a.team(report)["assignee"] == "reviewer-1"
    assert [n["text"] for n in a.team(report)["notes"]] == ["AIS gap 02:10."]
    # a later edit sees both and wins, by its Lamport clock
    before = log.clock(b.ws)
    assert before >= 3
    latest = log.record(b.ws, report, "triage", {"status": "unconfirmed", "grade": "D4",
                                                 "duplicate_of": None})  # fmt: skip
    assert latest.clock == before + 1
    a.take(relay.inbox(team=b.outgoing(tmp_path), team_cursor=(7, 8)))
    assert a.team(report) == b.team(report)
    assert a.team(report)["triage"]["status"] == "unconfirmed"


def test_importing_twice_changes_nothing(
    pair: tuple[Station, Station], relay: Relay, tmp_path: Path
) -> None:
    a, b = pair
    report = secrets.token_hex(16)
    start = relay.inbox(reports=[(report, [a.public, b.public])], directory=directory(1, a, b))
    a.take(start)
    b.take(start)
    log.record(b.ws, report, "label", {"name": "armed", "present": True})
    bundle = relay.inbox(team=b.outgoing(tmp_path), team_cursor=(0, 1))
    first = a.take(bundle)
    state = a.team(report)
    again = a.take(bundle)
    assert first.team is not None
    assert again.team is not None
    assert (first.team.accepted, again.team.accepted, again.team.already) == (1, 0, 1)
    assert a.team(report) == state
    assert len(states(a)) == 1


def test_an_update_that_arrives_before_its_report_applies_when_the_report_does(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    report = secrets.token_hex(16)
    early = relay.inbox(
        team=[team_item(b.signed(report, 1, status="rejected", grade="E5"), [a.public])],
        directory=directory(1, a, b),
    )
    result = a.take(early)
    assert result.team is not None
    assert result.team.accepted == 1
    assert a.ws.report(report) is None
    a.take(relay.inbox(reports=[(report, [a.public])]))
    item = a.ws.report(report)
    assert item is not None
    assert (item.summary["status"], item.summary["grade"]) == ("rejected", "E5")


# --- what is refused, and what waits (§17.4-§17.9) ---------------------------------------------


def test_bad_items_refuse_only_themselves(
    pair: tuple[Station, Station], relay: Relay, tmp_path: Path
) -> None:
    """§17.7: a mislabelled or malformed team item refuses only itself."""
    a, b = pair
    outsider = Station(tmp_path / "c", "outsider")
    report = secrets.token_hex(16)
    good = team_item(b.signed(report, 1), [a.public])
    meta, envelope = team_item(b.signed(report, 1), [a.public])
    tampered = (meta, envelope[:-5] + bytes(5))
    mislabelled = team_item(b.signed(report, 1), [a.public], update_id=secrets.token_hex(16))
    elsewhere = team_item(b.signed(report, 1), [EncryptionKeyPair.generate().public])
    unlisted = team_item(outsider.signed(report, 1), [a.public])
    malformed = ({**good[0], "extra": 1}, good[1])
    bad_id = ({**good[0], "update_id": good[0]["update_id"].upper()}, good[1])
    bundle = relay.inbox(
        reports=[(report, [a.public])],
        team=[tampered, mislabelled, elsewhere, unlisted, malformed, bad_id, good],
        directory=directory(1, a, b),
    )
    result = a.take(bundle)
    assert result.imported == 1  # team items do not make the importer refuse the bundle
    team = result.team
    assert team is not None
    assert (team.accepted, team.pending, team.refused, team.not_for_you) == (1, 0, 5, 1)
    assert team.problems == [
        (tampered[0]["update_id"], "a team update could not be opened"),
        (mislabelled[0]["update_id"], "its bundle entry names another update id"),
        ("entry 6", "its bundle entry is malformed"),
        ("entry 7", "its bundle entry is malformed"),
    ]
    held = states(a)
    # §17.4: what does not open or verify is not stored; an unlisted author is, as refused
    assert held == {good[0]["update_id"]: "accepted", unlisted[0]["update_id"]: "refused"}
    assert a.ws.report(report).summary["status"] == "confirmed"  # type: ignore[union-attr]


def test_a_tampered_signature_is_refused_and_not_stored(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    document = json.loads(b.signed(secrets.token_hex(16), 1))
    signature = bytearray(base64url.decode(document["signature"]) or b"")
    signature[10] ^= 0x40
    document["signature"] = base64url.encode(bytes(signature))
    forged = json.dumps(document).encode()
    update_id = json.loads(base64url.decode(document["payload"]) or b"")["id"]
    result = a.take(
        relay.inbox(team=[team_item(forged, [a.public], update_id)], directory=directory(1, a, b))
    )
    assert result.team is not None
    assert result.team.refused == 1
    assert result.team.problems == [(update_id, "a team update's signature does not verify")]
    assert states(a) == {}


def test_a_forged_entry_does_not_hide_the_real_update(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    real = team_item(b.signed(secrets.token_hex(16), 1), [a.public])
    decoy = (real[0], wire.seal_update(b"not a team update", [a.public]))
    result = a.take(relay.inbox(team=[decoy, real], directory=directory(1, a, b)))
    assert result.team is not None
    assert (result.team.refused, result.team.accepted) == (1, 1)


def test_a_directory_signed_by_another_key_is_refused_and_updates_wait(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    report = secrets.token_hex(16)
    forged = directory(1, a, b, organisation=SigningKeyPair.generate())
    result = a.take(
        relay.inbox(
            reports=[(report, [a.public])],
            team=[team_item(b.signed(report, 1), [a.public])],
            directory=forged,
        )
    )
    assert result.team is not None
    assert result.team.directory == "refused"
    assert (
        result.team.directory_problem
        == "key directory refused: directory is signed by an untrusted key"
    )
    assert result.team.pending == 1
    assert directories.held(a.ws) == []
    assert a.ws.report(report).summary["status"] == "new"  # type: ignore[union-attr]
    # the genuine directory arrives: the waiting update is admitted and applied
    later = a.take(relay.inbox(directory=directory(1, a, b)))
    assert later.team is not None
    assert later.team.directory == "new"
    assert list(states(a).values()) == ["accepted"]
    assert a.ws.report(report).summary["status"] == "confirmed"  # type: ignore[union-attr]


def test_without_a_pinned_organisation_key_the_directory_is_not_used(
    tmp_path: Path, relay: Relay
) -> None:
    unpinned = Station(tmp_path / "unpinned", "reviewer-1", pin=False)
    b = Station(tmp_path / "b", "reviewer-2")
    bundle = relay.inbox(
        team=[team_item(b.signed(secrets.token_hex(16), 1), [unpinned.public])],
        directory=directory(1, unpinned, b),
    )
    result = unpinned.take(bundle)
    assert result.team is not None
    assert result.team.directory == "unchecked"
    assert result.team.pending == 1
    summary = result.team.summary()
    assert summary is not None
    assert "key directory not accepted: no organisation key is pinned" in summary


def test_a_removed_reviewer_is_refused_unless_naming_a_directory_that_listed_them(
    pair: tuple[Station, Station], relay: Relay, tmp_path: Path
) -> None:
    a, b = pair
    leaver = Station(tmp_path / "c", "reviewer-3")
    report = secrets.token_hex(16)
    a.take(relay.inbox(directory=directory(1, a, b, leaver)))
    after = team_item(leaver.signed(report, 2), [a.public])
    before = team_item(leaver.signed(report, 1, grade="A1"), [a.public])
    result = a.take(relay.inbox(team=[after, before], directory=directory(2, a, b)))
    assert result.team is not None
    assert (result.team.accepted, result.team.refused) == (1, 1)
    assert states(a) == {after[0]["update_id"]: "refused", before[0]["update_id"]: "accepted"}


def test_an_update_naming_a_newer_directory_waits_for_it(
    pair: tuple[Station, Station], relay: Relay, tmp_path: Path
) -> None:
    a, b = pair
    newcomer = Station(tmp_path / "c", "reviewer-3")
    report = secrets.token_hex(16)
    a.take(relay.inbox(reports=[(report, [a.public])], directory=directory(1, a, b)))
    waiting = team_item(newcomer.signed(report, 2, grade="C2"), [a.public])
    result = a.take(relay.inbox(team=[waiting]))
    assert result.team is not None
    assert result.team.pending == 1
    assert a.ws.report(report).summary["status"] == "new"  # type: ignore[union-attr]
    later = a.take(relay.inbox(directory=directory(2, a, b, newcomer)))
    assert later.team is not None
    summary = later.team.summary()
    assert summary is not None
    assert summary.endswith("key directory 2 accepted")
    assert states(a) == {waiting[0]["update_id"]: "accepted"}
    assert a.ws.report(report).summary["grade"] == "C2"  # type: ignore[union-attr]


def test_replacing_the_organisation_key_puts_updates_back_to_wait(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    item = team_item(b.signed(secrets.token_hex(16), 1), [a.public])
    a.take(relay.inbox(team=[item], directory=directory(1, a, b)))
    assert list(states(a).values()) == ["accepted"]
    directories.pin_organisation(a.ws, str(SigningKeyPair.generate().token), replace=True)
    a.take(relay.inbox())  # the next import notices the directories are gone
    assert list(states(a).values()) == ["pending"]


# --- the team cursor (§17.11) ----------------------------------------------------------------


def test_the_team_mark_moves_only_along_contiguous_ranges(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, _ = pair
    assert exchange.acknowledgement(a.ws) == {}
    for cursor, mark in (((0, 2), 2), ((4, 6), 2), ((2, 4), 4), ((1, 3), 4), ((4, 4), 4)):
        a.take(relay.inbox(team_cursor=cursor))
        assert exchange.team_mark(a.ws) == mark
    assert exchange.acknowledgement(a.ws) == {"team_acknowledges": 4}
    a.take(relay.inbox(team_cursor=(4, 6)))
    assert exchange.acknowledgement(a.ws) == {"team_acknowledges": 6}


def test_an_interrupted_team_import_does_not_move_the_mark(
    pair: tuple[Station, Station], relay: Relay
) -> None:
    a, b = pair
    item = team_item(b.signed(secrets.token_hex(16), 1), [a.public])
    path = relay.inbox(team=[item], directory=directory(1, a, b), team_cursor=(0, 1))
    bundle = importer.verify(a.ws, path)
    original = path.read_bytes()
    offset = bundle.items[0].offset
    # the file changes under the reader, after it was verified (§15.2)
    path.write_bytes(original[:offset] + bytes(8) + original[offset + 8 :])
    with pytest.raises(ReviewerError, match="changed while it was being read"):
        importer.import_bundle(a.ws, bundle)
    assert exchange.team_mark(a.ws) == 0
    assert a.ws.imported_ranges() == []  # and the inbox range is not complete either
    path.write_bytes(original)
    result = a.take(path)
    assert result.team is not None
    assert result.team.accepted == 1
    assert exchange.team_mark(a.ws) == 1


# --- sending (§17.5) ------------------------------------------------------------------------


def test_updates_wait_and_say_why_when_they_cannot_be_sent(
    pair: tuple[Station, Station], tmp_path: Path
) -> None:
    a, b = pair
    report = secrets.token_hex(16)
    log.record(a.ws, report, "label", {"name": "urgent", "present": True})
    assert a.outgoing(tmp_path) == []
    assert exchange.held_back(a.ws) == (
        "1 team update(s) waiting: no key directory is held yet (pin the organisation key"
        " with `reviewer trust-org`, then import an inbox bundle)"
    )
    former = Station(tmp_path / "former", "reviewer-9")
    expired = sign_directory(
        ORGANISATION, [a.entry(), b.entry(), former.entry()], serial=1,
        issued_at=NOW - timedelta(days=100), valid_for=timedelta(days=90),
    )  # fmt: skip
    directories.store_directory(a.ws, expired)
    assert a.outgoing(tmp_path) == []
    assert "key directory 1 expired on" in (exchange.held_back(a.ws) or "")
    directories.store_directory(a.ws, directory(2, b).encode())
    assert a.outgoing(tmp_path) == []
    assert "signing key is not in key directory 2" in (exchange.held_back(a.ws) or "")
    directories.store_directory(a.ws, directory(3, a, b).encode())
    assert exchange.held_back(a.ws) is None
    sent = a.outgoing(tmp_path)
    assert len(sent) == 1
    assert sent[0][0]["type"] == "team-update"
    # sealed to exactly the newest directory's keys: both open it, a former reviewer cannot
    for station in (a, b):
        assert wire.check_signed(wire.open_update(sent[0][1], station.identity)).report == report
    with pytest.raises(wire.NotForYouError):
        wire.open_update(sent[0][1], former.identity)


def test_the_cli_imports_and_exports_team_updates(
    ws: list[str], tmp_path: Path, relay: Relay, capsys: pytest.CaptureFixture[str],
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:  # fmt: skip
    me = Station(Path(ws[1]), "reviewer-1", reviewer_key_files[0][1])
    mate = Station(tmp_path / "mate", "reviewer-2")
    report = secrets.token_hex(16)
    bundle = relay.inbox(
        reports=[(report, [me.public])],
        team=[team_item(mate.signed(report, 1), [me.public])],
        directory=directory(1, me, mate),
        team_cursor=(0, 1),
    )
    capsys.readouterr()
    assert reviewer(["import", str(bundle), *ws]) == 0
    out = capsys.readouterr().out
    assert "1 new report(s)" in out
    assert "team updates: 1 new accepted, 0 pending, 0 refused; key directory 1 accepted" in out
    log.record(me.ws, report, "note", {"note_id": secrets.token_hex(16), "text": "Agreed."})
    replies = tmp_path / "replies.bundle"
    assert reviewer(["export-replies", "--out", str(replies), *ws]) == 0
    out = capsys.readouterr().out
    assert "0 reply(ies), 1 team update(s), acknowledging inbox cursors 0-1" in out
    sent = open_bundle(replies, {me.keys.signing.token})
    assert sent.fields["team_acknowledges"] == 1
    assert [item.meta["type"] for item in sent.items] == ["team-update"]
    assert wire.check_signed(wire.open_update(sent.read_item(sent.items[0]), mate.identity))


def test_a_replies_bundle_may_hold_team_updates_alone(
    ws: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:  # fmt: skip
    me = Station(Path(ws[1]), "reviewer-1", reviewer_key_files[0][1])
    log.record(me.ws, secrets.token_hex(16), "label", {"name": "urgent", "present": True})
    replies = tmp_path / "replies.bundle"
    capsys.readouterr()
    assert reviewer(["export-replies", "--out", str(replies), *ws]) == 1
    err = capsys.readouterr().err
    assert "nothing to export" in err
    assert "1 team update(s) waiting: no key directory is held yet" in err
    directories.store_directory(me.ws, directory(1, me).encode())
    assert reviewer(["export-replies", "--out", str(replies), *ws]) == 0
    assert "0 reply(ies), 1 team update(s)" in capsys.readouterr().out
    sent = open_bundle(replies, {me.keys.signing.token})
    assert sent.fields == {"acknowledges": []}  # no team range imported: nothing acknowledged
    assert len(sent.items) == 1


# --- through the portal's own relay ---------------------------------------------------------


def test_two_workstations_converge_through_the_portal(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    """The demo reviewers, with the demo key directory, relayed by portal.storage.inbox."""
    portal = sync_app.extensions["portal"]
    signer = load_signing_key(demo.data_dir)
    with portal["sessions"].begin() as session:
        for index, keys in enumerate(demo.reviewers):
            session.add(ReviewerAccount(label=f"reviewer-{index + 1}",
                                        sync_key=str(SigningKeyPair.generate().token),
                                        signing_key=str(keys.signing.token)))  # fmt: skip
    organisation = (demo.data_dir / "organisation.pub").read_text().strip()
    stations = []
    for index, keys in enumerate(demo.reviewers):
        station = Station(tmp_path / f"ws-{index}", f"reviewer-{index + 1}", keys, pin=False)
        station.ws.set_meta("portal_key", str(signer.token))
        directories.pin_organisation(station.ws, organisation)
        stations.append(station)
    a, b = stations
    report = _stored_report(portal, [a.public, b.public])

    def pull(station: Station) -> ImportResult:
        path = tmp_path / f"inbox-{secrets.token_hex(4)}.bundle"
        with path.open("wb") as out:
            export_inbox(
                portal["sessions"], portal["blobs"], signer, out, 0,
                team_since=exchange.team_mark(station.ws),
                directory=directory_text(demo.data_dir / "key-directory.json"),
            )  # fmt: skip
        return station.take(path)

    for station in stations:
        first = pull(station)
        assert first.team is not None
        assert first.team.directory == "new"
    log.record(a.ws, report, "triage", {"status": "confirmed", "grade": "A2", "duplicate_of": None})
    log.record(a.ws, report, "label", {"name": "boarding", "present": True})
    log.record(b.ws, report, "triage", {"status": "rejected", "grade": "F6", "duplicate_of": None})
    log.record(b.ws, report, "note", {"note_id": secrets.token_hex(16), "text": "Duplicate?"})
    for station in stations:
        relayed = import_replies(portal["sessions"], portal["blobs"], station.replies(tmp_path))
        assert relayed.team_imported == 2
    results = [pull(station) for station in stations]
    # each gets all four back: its own two are already held
    assert [(r.team.accepted, r.team.already) for r in results if r.team] == [(2, 2), (2, 2)]
    assert a.team(report) == b.team(report)
    assert a.team(report)["labels"] == ["boarding"]
    assert len(a.team(report)["notes"]) == 1
    # the portal held ciphertext only
    assert not any(b"Duplicate?" in p.read_bytes() for p in portal["blobs"].root.iterdir())


def _stored_report(portal: dict[str, Any], recipients: list[bytes]) -> str:
    """A report as the portal stores one: its envelope as a blob, in the inbox."""
    envelope = seal_bytes(json.dumps(report_document("Approached by skiff.")).encode(), recipients)
    with portal["blobs"].writer() as pending:
        pending.write(envelope)
    sid = secrets.token_hex(16)
    with portal["sessions"].begin() as session:
        session.add(
            Submission(
                id=sid, received_on=datetime.now(UTC).date(), receipt_locator="0000",
                receipt_hash="x", inbox=InboxEntry(),
                parts=[Part(position=0, kind=PartKind.REPORT, blob=pending.name,
                            size=len(envelope), sha256=pending.sha256)],
            )
        )  # fmt: skip
    return sid
