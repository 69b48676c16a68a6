"""The portal relays team updates it cannot read (crypto/SPEC.md §15, §17), and the
key directory carries the reviewers' signing keys (§10)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from crypto.bundle import Bundle, BundleWriter, open_bundle
from crypto.directory import read_directory
from crypto.envelope import seal_bytes
from crypto.keyfile import KeyBundle
from crypto.keys import EncryptionKeyPair, KeyKind, SigningKeyPair, parse_public_key
from portal.cli.main import main as portal_main
from portal.storage import team_relay
from portal.storage.inbox import SyncError, export_inbox, import_replies, load_signing_key
from portal.storage.models import (
    InboxEntry,
    Part,
    PartKind,
    Reply,
    ReviewerAccount,
    Submission,
    TeamUpdate,
)
from portal.storage.retention import purge
from tests.conftest import SIGNING_KEY, DemoPortal
from tests.integration.test_sync_api import bearer

#: what every team update here is sealed to: two reviewers' keys
TEAM = [EncryptionKeyPair.generate().public, EncryptionKeyPair.generate().public]


def envelope(
    text: bytes = b'{"schema": "cso-team-signed/v1"}', keys: Sequence[bytes] = TEAM
) -> bytes:
    """A team update as a workstation seals it (the portal never looks inside)."""
    return seal_bytes(text, list(keys))


def replies(
    path: Path,
    team: Sequence[tuple[dict[str, Any], bytes]] = (),
    *,
    signer: SigningKeyPair = SIGNING_KEY,
    reply_to: str | None = None,
    **fields: Any,
) -> Path:
    """A replies bundle with the given team items (meta, bytes) and, optionally, a reply."""
    with path.open("wb") as out:
        writer = BundleWriter(out, signer, "replies", {"acknowledges": [], **fields})
        if reply_to is not None:
            meta = {"type": "reply", "reply_id": secrets.token_hex(16), "submission": reply_to,
                    "status": None}  # fmt: skip
            writer.add(meta, seal_bytes(b'{"message": "thank you"}', [TEAM[0]]))
        for meta, data in team:
            writer.add(meta, data)
        writer.finish()
    return path


def item(update_id: str | None = None, data: bytes | None = None) -> tuple[dict[str, Any], bytes]:
    """One well-formed team-update item."""
    meta = {"type": "team-update", "update_id": update_id or secrets.token_hex(16)}
    return meta, envelope() if data is None else data


def run_import(app: Flask, path: Path) -> Any:
    portal = app.extensions["portal"]
    return import_replies(portal["sessions"], portal["blobs"], path)


def stored(app: Flask) -> list[str]:
    """The relayed update ids, in team-cursor order."""
    with app.extensions["portal"]["sessions"]() as session:
        return list(session.scalars(select(TeamUpdate.update_id).order_by(TeamUpdate.seq)))


def account(app: Flask) -> ReviewerAccount:
    with app.extensions["portal"]["sessions"]() as session:
        return session.scalars(select(ReviewerAccount)).one()


def export(
    app: Flask, demo: DemoPortal, path: Path, *, team_since: int | None, **options: Any
) -> tuple[Any, Bundle]:
    """An inbox bundle as the sync API writes it, opened again."""
    portal = app.extensions["portal"]
    directory = (demo.data_dir / "key-directory.json").read_text()
    with path.open("wb") as out:
        result = export_inbox(
            portal["sessions"], portal["blobs"], load_signing_key(demo.data_dir), out, 0,
            team_since=team_since, directory=directory, **options,
        )  # fmt: skip
    return result, open_bundle(path, {load_signing_key(demo.data_dir).token})


def submission(app: Flask) -> str:
    """A stored report (ciphertext blob only), for a reply to answer."""
    portal = app.extensions["portal"]
    with portal["blobs"].writer() as pending:
        pending.write(os.urandom(300))
    sid = secrets.token_hex(16)
    with portal["sessions"].begin() as session:
        session.add(
            Submission(
                id=sid, received_on=datetime.now(UTC).date(), receipt_locator="0000",
                receipt_hash="x", inbox=InboxEntry(),
                parts=[Part(position=0, kind=PartKind.REPORT, blob=pending.name, size=300,
                            sha256=pending.sha256)],
            )
        )  # fmt: skip
    return sid


# --- importing ---------------------------------------------------------------------------


def test_team_updates_are_stored_once_in_bundle_order(sync_app: Flask, tmp_path: Path) -> None:
    """§15.3, §15.5: by ``update_id``, once; a bundle of team updates alone is fine."""
    items = [item() for _ in range(3)]
    ids = [meta["update_id"] for meta, _ in items]
    first = run_import(sync_app, replies(tmp_path / "a", items))  # no replies at all: fine
    assert (first.imported, first.team_imported, first.team_already) == (0, 3, 0)
    assert stored(sync_app) == ids
    again = run_import(sync_app, replies(tmp_path / "b", [items[1], item()]))
    assert (again.team_imported, again.team_already) == (1, 1)
    assert stored(sync_app)[:3] == ids
    assert len(stored(sync_app)) == 4
    with sync_app.extensions["portal"]["sessions"]() as session:
        row = session.scalars(select(TeamUpdate).order_by(TeamUpdate.seq)).first()
    assert row is not None
    assert (row.data, row.size) == (items[0][1], len(items[0][1]))
    assert row.received_on == datetime.now(UTC).date()
    assert row.account_id == account(sync_app).id


def test_an_update_sealed_to_64_keys_is_relayed(sync_app: Flask, tmp_path: Path) -> None:
    keys = [EncryptionKeyPair.generate().public for _ in range(64)]
    assert run_import(sync_app, replies(tmp_path / "a", [item(data=envelope(keys=keys))]))
    assert len(stored(sync_app)) == 1


BAD_ITEMS: dict[str, tuple[dict[str, Any], bytes]] = {
    "not an envelope": item(data=b"plain text, not sealed"),
    "empty": item(data=b""),
    "two envelopes in one item": item(data=envelope() + envelope()),
    "truncated envelope": item(data=envelope()[:-1]),
    "oversized": item(data=envelope(os.urandom(team_relay.MAX_UPDATE_BYTES))),
    "id in upper case": item(update_id="A" * 32),
    "id too short": item(update_id="1" * 31),
    "id not text": ({"type": "team-update", "update_id": 7}, envelope()),
    "no id": ({"type": "team-update"}, envelope()),
    "another field": ({"type": "team-update", "update_id": "1" * 32, "author": "x"}, envelope()),
}


@pytest.mark.parametrize("bad", sorted(BAD_ITEMS))
def test_a_bad_team_update_refuses_the_whole_bundle(
    sync_app: Flask, tmp_path: Path, bad: str
) -> None:
    """§15.5: one bad team item, and neither the reply nor the good update is stored."""
    sid = submission(sync_app)
    blobs_before = set(sync_app.extensions["portal"]["blobs"].root.iterdir())
    path = replies(tmp_path / "r", [item(), BAD_ITEMS[bad]], reply_to=sid, team_acknowledges=0)
    with pytest.raises(SyncError):
        run_import(sync_app, path)
    assert stored(sync_app) == []
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(Reply)).all() == []
    assert set(sync_app.extensions["portal"]["blobs"].root.iterdir()) == blobs_before


@pytest.mark.parametrize("value", [-1, True, "3", 2.5, [1], None, 2**31])
def test_a_malformed_team_acknowledgement_refuses_the_bundle(
    sync_app: Flask, tmp_path: Path, value: Any
) -> None:
    """§15.5: ``team_acknowledges`` is a whole number or absent."""
    with pytest.raises(SyncError, match="team acknowledgement"):
        run_import(sync_app, replies(tmp_path / "r", [item()], team_acknowledges=value))
    assert stored(sync_app) == []


def test_a_replies_bundle_carries_at_most_10000_team_updates(
    sync_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(team_relay, "MAX_UPDATES_IN", 2)
    with pytest.raises(SyncError, match="at most 2 team updates"):
        run_import(sync_app, replies(tmp_path / "r", [item(), item(), item()]))
    assert stored(sync_app) == []
    run_import(sync_app, replies(tmp_path / "s", [item(), item()]))
    assert len(stored(sync_app)) == 2


def test_team_acknowledges_moves_the_cursor_forward_only(sync_app: Flask, tmp_path: Path) -> None:
    run_import(sync_app, replies(tmp_path / "a", [item() for _ in range(3)]))
    steps = [(2, 2), (1, 2), (None, 2), (0, 2), (99, 3)]  # never back, never past the newest
    for index, (value, expected) in enumerate(steps):
        fields = {} if value is None else {"team_acknowledges": value}
        result = run_import(sync_app, replies(tmp_path / f"ack{index}", **fields))
        assert result.team_cursor == expected
        assert account(sync_app).team_cursor == expected


# --- exporting ---------------------------------------------------------------------------


def test_export_carries_the_updates_after_team_since_and_the_directory(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    items = [item() for _ in range(3)]
    run_import(sync_app, replies(tmp_path / "r", items))
    submission(sync_app)
    result, bundle = export(sync_app, demo, tmp_path / "inbox", team_since=1)
    assert (result.team_from, result.team_to, result.team_updates) == (1, 3, 2)
    assert bundle.fields["team_cursor"] == {"from": 1, "to": 3}
    assert bundle.fields["directory"] == (demo.data_dir / "key-directory.json").read_text()
    kinds = [dict(i.meta).get("type") for i in bundle.items]
    assert kinds == ["part", "team-update", "team-update"]  # after the submissions
    team = [i for i in bundle.items if i.meta["type"] == "team-update"]
    assert [dict(i.meta) for i in team] == [dict(meta) for meta, _ in items[1:]]
    assert [bundle.read_item(i) for i in team] == [data for _, data in items[1:]]
    # nothing after the cursor: the range is empty and says so
    _, empty = export(sync_app, demo, tmp_path / "none", team_since=3)
    assert empty.fields["team_cursor"] == {"from": 3, "to": 3}
    assert [i.meta["type"] for i in empty.items] == ["part"]
    # not asked for: no team updates and no team cursor, the directory all the same
    _, plain = export(sync_app, demo, tmp_path / "plain", team_since=None)
    assert "team_cursor" not in plain.fields
    assert "directory" in plain.fields


def test_export_caps_team_updates_and_the_cursor_carries_on(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_import(sync_app, replies(tmp_path / "r", [item() for _ in range(5)]))
    monkeypatch.setattr(team_relay, "MAX_UPDATES_OUT", 2)
    seen, since = [], 0
    for n in range(4):
        result, bundle = export(sync_app, demo, tmp_path / f"i{n}", team_since=since)
        seen += [i.meta["update_id"] for i in bundle.items]
        since = result.team_to
    assert seen == stored(sync_app)
    # the byte cap: the submissions' bytes count, but an update's worth always goes
    submission(sync_app)
    _, small = export(sync_app, demo, tmp_path / "small", team_since=0, max_bytes=1)
    assert small.fields["team_cursor"]["to"] >= 1
    with sync_app.extensions["portal"]["sessions"]() as session:
        size = session.scalar(select(TeamUpdate.size).where(TeamUpdate.seq == 1))
        assert size is not None
        assert team_relay.select_updates(session, 0, max_bytes=size + 1).seqs == (1,)


# --- the sync API ------------------------------------------------------------------------


def _inbox(client: FlaskClient, headers: dict[str, str], query: str = "") -> Any:
    response = client.get(f"/reviewer-sync/v1/inbox{query}", headers=headers)
    response.get_data()  # read before the spool behind it is closed
    response.close()
    return response


def test_the_sync_api_relays_and_defaults_to_the_accounts_team_cursor(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    client = sync_app.test_client()
    headers = bearer(client)
    body = replies(tmp_path / "r", [item() for _ in range(3)]).read_bytes()
    answer = client.post("/reviewer-sync/v1/replies", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert (answer.get_json()["team_imported"], answer.get_json()["team_cursor"]) == (3, 0)
    first = _inbox(client, headers)
    assert (first.headers["X-Team-Cursor-From"], first.headers["X-Team-Cursor-To"]) == ("0", "3")
    (tmp_path / "inbox").write_bytes(first.data)
    bundle = open_bundle(tmp_path / "inbox", {load_signing_key(demo.data_dir).token})
    assert bundle.fields["team_cursor"] == {"from": 0, "to": 3}
    assert json.loads(bundle.fields["directory"])["schema"] == "cso-key-directory/v1"
    ack = replies(tmp_path / "ack", team_acknowledges=2).read_bytes()
    assert client.post("/reviewer-sync/v1/replies", data=ack, headers=headers).status_code == 200
    assert _inbox(client, headers).headers["X-Team-Cursor-From"] == "2"  # the account's cursor
    assert _inbox(client, headers, "?team_since=1").headers["X-Team-Cursor-From"] == "1"
    for bad in ("-1", "x", "2147483648", "1.0", "9" * 50, ""):
        assert _inbox(client, headers, f"?team_since={bad}").status_code == 400
    bad_bundle = replies(tmp_path / "bad", [item(data=b"not sealed")]).read_bytes()
    refused = client.post("/reviewer-sync/v1/replies", data=bad_bundle, headers=headers)
    assert refused.status_code == 400
    assert "nothing was imported" in refused.get_json()["error"]
    assert len(stored(sync_app)) == 3


# --- retention ---------------------------------------------------------------------------


def test_retention_deletes_old_team_updates_every_reviewer_holds(
    sync_app: Flask, tmp_path: Path
) -> None:
    run_import(sync_app, replies(tmp_path / "r", [item() for _ in range(4)]))
    portal = sync_app.extensions["portal"]
    today = date(2030, 1, 1)
    with portal["sessions"].begin() as session:
        for seq, age in ((1, 400), (2, 400), (3, 400), (4, 10)):
            session.execute(
                update(TeamUpdate)
                .where(TeamUpdate.seq == seq)
                .values(received_on=today - timedelta(days=age))
            )
        session.execute(update(ReviewerAccount).values(team_cursor=2))
    ids = stored(sync_app)
    dry = purge(portal["engine"], portal["sessions"], portal["blobs"], 180, dry_run=True,
                today=today)  # fmt: skip
    assert (dry.team_updates, dry.team_kept, dry.behind) == (2, 1, ("alice",))
    assert stored(sync_app) == ids
    done = purge(portal["engine"], portal["sessions"], portal["blobs"], 180, today=today)
    assert (done.team_updates, done.team_kept) == (2, 1)
    assert stored(sync_app) == ids[2:]  # the third waits for alice; the fourth is recent
    with portal["sessions"].begin() as session:
        session.execute(update(ReviewerAccount).values(team_cursor=4))
    purge(portal["engine"], portal["sessions"], portal["blobs"], 180, today=today)
    assert stored(sync_app) == ids[3:]
    # the sequence goes on: a cursor never meets a number twice
    run_import(sync_app, replies(tmp_path / "s", [item()]))
    with portal["sessions"]() as session:
        assert session.scalar(select(TeamUpdate.seq).order_by(TeamUpdate.seq.desc())) == 5


# --- the operator's offline path ---------------------------------------------------------


def _portal(demo: DemoPortal, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    for name, value in demo.environ().items():
        monkeypatch.setenv(name, value)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert portal_main(["--data-dir", str(demo.data_dir), *args]) == 0
    return printed.getvalue()


def test_portal_export_and_import_replies_carry_team_updates(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = replies(tmp_path / "r", [item(), item()], team_acknowledges=0)
    assert "2 team update(s) relayed" in _portal(demo, monkeypatch, "import-replies", str(path))
    out = tmp_path / "inbox.bundle"
    printed = _portal(demo, monkeypatch, "export", "--out", str(out), "--team-since", "1")
    assert "1 team update(s), team cursor 1 to 2" in printed
    bundle = open_bundle(out, {load_signing_key(demo.data_dir).token})
    assert bundle.fields["team_cursor"] == {"from": 1, "to": 2}
    assert bundle.fields["directory"] == (demo.data_dir / "key-directory.json").read_text()
    everything = tmp_path / "all.bundle"
    _portal(demo, monkeypatch, "export", "--out", str(everything))  # default: from 0
    assert open_bundle(everything, {bundle.signer}).fields["team_cursor"] == {"from": 0, "to": 2}


# --- the directory's signing keys --------------------------------------------------------


def _directory(data_dir: Path) -> Any:
    organisation = parse_public_key((data_dir / "organisation.pub").read_text(), KeyKind.SIGNING)
    return read_directory((data_dir / "key-directory.json").read_bytes(), organisation)


def test_the_demo_directory_lists_each_reviewers_signing_key(demo_template: DemoPortal) -> None:
    directory = _directory(demo_template.data_dir)
    assert [r.signing_key for r in directory.reviewers] == [
        b.signing.token for b in demo_template.reviewers
    ]


def test_reviewers_add_takes_a_signing_key_and_resigning_keeps_them(
    demo_template: DemoPortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "var"
    work.mkdir()
    for name in ("key-directory.json", "organisation.pub"):
        (work / name).write_bytes((demo_template.data_dir / name).read_bytes())
    demo = DemoPortal(work, demo_template.reviewers, demo_template.passphrase)
    org = ["--org-key", str(demo_template.data_dir / "demo" / "organisation.key"),
           "--passphrase-file", str(demo_template.data_dir / "demo" / "passphrase")]  # fmt: skip
    newcomer, plain = KeyBundle.new_reviewer(), KeyBundle.new_reviewer()
    assert newcomer.encryption is not None
    assert plain.encryption is not None
    _portal(demo, monkeypatch, "reviewers", "add", *org, "--label", "reviewer-3",
            "--key", str(newcomer.encryption.token),
            "--signing-key", str(newcomer.signing.token))  # fmt: skip
    _portal(demo, monkeypatch, "reviewers", "add", *org, "--label", "reviewer-4",
            str(plain.encryption.token))  # fmt: skip
    _portal(demo, monkeypatch, "reviewers", "remove", *org, "reviewer-1")
    directory = _directory(work)
    signing = {r.label: r.signing_key for r in directory.reviewers}
    assert signing == {
        "reviewer-2": demo_template.reviewers[1].signing.token,  # kept through two re-signs
        "reviewer-3": newcomer.signing.token,
        "reviewer-4": None,
    }
    listing = _portal(demo, monkeypatch, "reviewers", "list")
    assert str(newcomer.signing.token) in listing
    assert str(demo_template.reviewers[1].signing.token) in listing


@pytest.mark.parametrize(
    "case", ["signing key twice", "encryption key as signing key", "key twice"]
)
def test_reviewers_add_refuses_a_bad_signing_key_in_one_line(
    demo_template: DemoPortal, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "var"
    work.mkdir()
    for name in ("key-directory.json", "organisation.pub"):
        (work / name).write_bytes((demo_template.data_dir / name).read_bytes())
    before = (work / "key-directory.json").read_bytes()
    newcomer = KeyBundle.new_reviewer()
    assert newcomer.encryption is not None
    taken = str(demo_template.reviewers[0].signing.token)
    keys = {
        "signing key twice": ["--key", str(newcomer.encryption.token), "--signing-key", taken],
        "encryption key as signing key": [
            "--key", str(newcomer.encryption.token),
            "--signing-key", str(newcomer.encryption.token),
        ],
        "key twice": [str(newcomer.encryption.token), "--key", str(newcomer.encryption.token)],
    }[case]  # fmt: skip
    org = ["--org-key", str(demo_template.data_dir / "demo" / "organisation.key"),
           "--passphrase-file", str(demo_template.data_dir / "demo" / "passphrase")]  # fmt: skip
    capsys.readouterr()
    code = portal_main(["--data-dir", str(work), "reviewers", "add", *org, "--label", "r-5", *keys])
    assert code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("portal: error:")
    assert (work / "key-directory.json").read_bytes() == before
