"""The reviewer workflow end to end, with every component real.

The demo portal runs under gunicorn, intake and sync API on separate
listeners. Reports arrive over HTTP; a transfer machine pulls an inbox
bundle through the sync API with its sync key; the offline workstation
imports it, triages, redacts and forwards a signed batch, and answers the
reporter; the replies bundle goes back through the sync API and
acknowledges the inbox.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from crypto.batch import read_batch
from crypto.envelope import open_bytes
from crypto.keys import KeyKind, SigningKeyPair, parse_public_key
from crypto.receipt import Receipt, derive
from portal.storage.models import InboxEntry, Reply, ReviewerAccount, Submission
from reviewer_tool.cli import main as reviewer
from tests.conftest import DemoPortal
from tests.integration.portal_server import serve_portal, submit_plain

VESSEL = "MV Cosmic Canary"
COMPANY = "Blue Anchor Shipping Ltd"
IMO = "9074729"
CONTACT = "+870 773 123 456"


def photo() -> bytes:
    image = Image.new("RGB", (32, 24), (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0), 3: "E", 4: (3.0, 22.0, 10.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def report_fields(narrative: str) -> dict[str, str | list[str]]:
    return {
        "category": "piracy-or-armed-robbery",
        "incident_type": "boarded",
        "incident_local_time": "2026-11-20T02:10",
        "incident_utc_offset": "+01:00",
        "place_name": "Lagos anchorage",
        "latitude": "6.43219",
        "longitude": "3.38765",
        "vessel_type": "product-tanker",
        "vessel_status": "anchored",
        "perpetrators_min": "3",
        "perpetrators_max": "6",
        "weapons": ["knives-or-machetes"],
        "boarding_point": ["forecastle-or-forecastle-store"],
        "stolen": ["ship-s-stores"],
        "crew_tied_up": "1",
        "outcome": "successful-items-stolen-or-control-taken",
        "narrative": narrative,
        "identity_company": COMPANY,
        "identity_vessel": VESSEL,
        "identity_imo": IMO,
        "identity_contact": CONTACT,
    }


def run(*args: str | Path) -> None:
    assert reviewer([str(a) for a in args]) == 0


def test_report_to_signed_batch_and_back(
    demo: DemoPortal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo.database_url)  # for the operator's `portal` command
    key_dir, passphrase = demo.data_dir / "demo", demo.data_dir / "demo" / "passphrase"
    portal_key = (demo.data_dir / "portal-signing.pub").read_text().strip()
    ws = ("--workspace", tmp_path / "ws", "--passphrase-file", passphrase)
    narrative = (
        f"At 0210 robbers boarded the {VESSEL.upper()} (IMO {IMO}) at anchor. "
        f"The duty AB was tied up. Call the master on {CONTACT} or write to ops@blueanchor.example."
    )
    with (
        serve_portal(demo, tmp_path, "intake") as intake,
        serve_portal(demo, tmp_path, "sync") as sync,
    ):
        page = submit_plain(
            intake["url"], report_fields(narrative), [("skiff.jpg", photo(), "image/jpeg")]
        )
        receipt = Receipt.parse(_receipt_from(page))
        submit_plain(intake["url"], report_fields("Second report: thieves took paint."))
        # the intake listener does not serve the sync API, and the reverse
        assert _status(intake["url"] + "/reviewer-sync/v1/login/challenge") == 404
        assert _status(sync["url"] + "/") == 404

        # enrolment: the transfer machine's sync key and the workstation's signing key
        run("init", "--key", key_dir / "reviewer-1.key", "--portal-key", portal_key, *ws)
        run("sync", "keygen", "--out", tmp_path / "sync.key", "--passphrase-file", passphrase)
        capsys.readouterr()
        run("pubkey", *ws)
        _, signing = capsys.readouterr().out.split()
        sync_key = json.loads((tmp_path / "sync.key").read_text())["public"]["signing"]
        from portal.cli.main import main as portal

        assert portal(["--data-dir", str(demo.data_dir), "accounts", "add", "alice",
                       "--sync-key", sync_key, "--signing-key", signing]) == 0  # fmt: skip

        transfer = ("--portal", sync["url"], "--account", "alice", "--sync-key",
                    tmp_path / "sync.key", "--passphrase-file", passphrase)  # fmt: skip
        run("sync", "pull", *transfer, "--out", tmp_path / "inbox.bundle")

        # offline: import, list, show, triage, redact, forward
        run("import", tmp_path / "inbox.bundle", *ws)
        run("import", tmp_path / "inbox.bundle", *ws)  # a second import changes nothing
        capsys.readouterr()
        run("list", "--json", *ws)
        queue = json.loads(capsys.readouterr().out)
        assert len(queue) == 2
        assert {row["status"] for row in queue} == {"new"}
        first = next(row["id"] for row in queue if row["attachments"] == 1)
        run("show", first, "--json", *ws)
        shown = json.loads(capsys.readouterr().out)
        assert shown["report"]["identity"]["identity_vessel"] == VESSEL
        assert shown["report"]["report"]["narrative"] == narrative

        run("triage", first, "--status", "confirmed", "--grade", "B2", *ws)
        run("redact", first, "--accept-suggestions", "--coarsen", "1", *ws)
        run("forward", "--out", tmp_path / "batch.jsonl", *ws)
        batch_bytes = (tmp_path / "batch.jsonl").read_bytes()
        batch = read_batch(batch_bytes, {parse_public_key(signing, KeyKind.SIGNING)})
        assert len(batch.records) == 1
        record = batch.records[0][1]
        assert record["verification"] == {"status": "confirmed", "grade": "B2"}
        assert record["position"] == {"lat": 6.4, "lon": 3.4, "decimals": 1}
        lowered = batch_bytes.decode().lower()
        for value in (VESSEL, "cosmic canary", COMPANY, IMO, "773 123 456", "blueanchor"):
            assert value.lower() not in lowered
        assert "robbers boarded" in record["narrative"]

        # answer the reporter and acknowledge the inbox
        run(
            "reply", first, "--message", "Which berth were you at?", "--status", "under-review", *ws
        )
        run("export-replies", "--out", tmp_path / "replies.bundle", *ws)
        run("sync", "push", *transfer, tmp_path / "replies.bundle")
        run("sync", "push", *transfer, tmp_path / "replies.bundle")  # idempotent

    engine = create_engine(demo.database_url)
    try:
        with Session(engine) as session:
            replies = session.scalars(select(Reply)).all()
            assert len(replies) == 1
            assert replies[0].status == "under-review"
            submission = session.get(Submission, replies[0].submission_id)
            assert submission is not None
            assert submission.status == "under-review"
            assert submission.receipt_locator == receipt.locator
            account = session.scalars(select(ReviewerAccount)).one()
            assert account.acknowledged_cursor == 2
            assert all(e.acknowledged_on for e in session.scalars(select(InboxEntry)))
            blob = (demo.data_dir / "blobs" / str(replies[0].blob)).read_bytes()
    finally:
        engine.dispose()
    # only the reporter's receipt opens the reply
    message = json.loads(open_bytes(blob, derive(receipt).reporter))
    assert message["message"] == "Which berth were you at?"


def _receipt_from(page: str) -> str:
    import re

    match = re.search(r"(\d{4}[ -]?){5}\d{4}", page)
    assert match is not None
    return match.group(0)


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}")) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_fully_offline_transfer_with_the_operator_commands(
    demo: DemoPortal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_app: Any,
) -> None:
    """`portal export` → removable media → `reviewer import` … → `portal import-replies`."""
    monkeypatch.setenv("DATABASE_URL", demo.database_url)
    from portal.cli.main import main as portal
    from tests.integration.portal_server import send_plain

    client = make_app().test_client()
    assert send_plain(client, report_fields("Paint stolen at berth 4.")).status_code == 200
    data_dir = ["--data-dir", str(demo.data_dir)]
    assert portal([*data_dir, "export", "--out", str(tmp_path / "inbox.bundle")]) == 0
    assert "1 submission(s), cursor 0 to 1" in capsys.readouterr().out

    passphrase = demo.data_dir / "demo" / "passphrase"
    ws = ("--workspace", tmp_path / "ws", "--passphrase-file", passphrase)
    portal_key = (demo.data_dir / "portal-signing.pub").read_text().strip()
    run("init", "--key", demo.data_dir / "demo" / "reviewer-2.key", "--portal-key", portal_key, *ws)
    run("import", tmp_path / "inbox.bundle", *ws)
    capsys.readouterr()
    run("list", "--json", *ws)
    (only,) = [row["id"] for row in json.loads(capsys.readouterr().out)]
    run("reply", only, "--status", "closed", "--message", "Thank you; confirmed.", *ws)
    run("export-replies", "--out", tmp_path / "replies.bundle", *ws)
    run("pubkey", *ws)
    signing = capsys.readouterr().out.split()[-1]

    replies = ["import-replies", str(tmp_path / "replies.bundle")]
    assert portal([*data_dir, *replies]) == 2  # nobody enrolled with that signing key yet
    assert "do not trust" in capsys.readouterr().err
    sync_key = str(SigningKeyPair.generate().token)
    assert portal([*data_dir, "accounts", "add", "bob", "--sync-key", sync_key,
                   "--signing-key", signing]) == 0  # fmt: skip
    tampered = bytearray((tmp_path / "replies.bundle").read_bytes())
    tampered[20] ^= 1
    (tmp_path / "tampered.bundle").write_bytes(bytes(tampered))
    assert portal([*data_dir, "import-replies", str(tmp_path / "tampered.bundle")]) == 2
    assert portal([*data_dir, *replies]) == 0
    assert portal([*data_dir, *replies]) == 0
    out = capsys.readouterr().out
    assert "1 reply(ies) imported" in out
    assert "0 reply(ies) imported, 1 already present" in out
    engine = create_engine(demo.database_url)
    try:
        with Session(engine) as session:
            assert session.scalars(select(Submission.status)).all() == ["closed"]
            assert len(session.scalars(select(Reply)).all()) == 1
    finally:
        engine.dispose()
