"""Faults around replies and follow-up messages: nothing half-stored, nothing lost.

* A reply import holds the blob directory's guard from its first blob until
  its rows are committed: a worker starting meanwhile (its reconcile) must
  not take those blobs for the orphans of a crash.
* A reply whose status is a list or an object is refused (400), not a 500.
* A follow-up message's proof of work is spent only once the message is
  stored: a send the portal failed to store can be sent again with the same
  proof, and the proof of a stored message is refused after that.

The database failure is real: a trigger makes the database refuse the row.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from crypto.bundle import BundleWriter
from crypto.envelope import seal_bytes
from crypto.keys import EncryptionKeyPair
from portal.storage.inbox import SyncError, _check_reply_entry, import_replies
from portal.storage.models import InboxEntry, Part, PartKind, Reply, Submission
from portal.storage.reconcile import Reconciled, reconcile
from portal.web.app import INTERNAL_ERROR
from tests.conftest import SIGNING_KEY, DemoPortal
from tests.integration.test_followup import browser_fields, send_report
from tests.integration.test_intake import proof, stored_state
from tests.integration.test_sync_api import bearer

# --- replies and the reconcile ----------------------------------------------------------


def _stored_submission(app: Flask) -> str:
    """A submission with one part, as the intake stores it; its id."""
    portal = app.extensions["portal"]
    with portal["blobs"].writer() as pending:
        pending.write(os.urandom(64))
    submission_id = os.urandom(16).hex()
    with portal["sessions"].begin() as session:
        session.add(
            Submission(
                id=submission_id, received_on=datetime.now(UTC).date(), receipt_locator="0000",
                receipt_hash="x", inbox=InboxEntry(),
                parts=[Part(position=0, kind=PartKind.REPORT, blob=pending.name, size=64,
                            sha256=pending.sha256)],
            )
        )  # fmt: skip
    return submission_id


def _replies(path: Path, entries: list[tuple[dict[str, Any], bytes]]) -> Path:
    """A replies bundle signed by alice's key, holding ``entries`` (meta, data)."""
    with path.open("wb") as out:
        writer = BundleWriter(out, SIGNING_KEY, "replies", {"acknowledges": []})
        for meta, data in entries:
            writer.add({"type": "reply", **meta}, data)
        writer.finish()
    return path


def _envelope() -> bytes:
    """A reply message: one envelope, sealed to a reporter's key the portal never sees."""
    return seal_bytes(b'{"message": "which berth?"}', [EncryptionKeyPair.generate().public])


def _reply_blobs(app: Flask) -> set[str]:
    with app.extensions["portal"]["sessions"]() as session:
        return {name for name in session.scalars(select(Reply.blob)) if name is not None}


def test_a_worker_starting_during_a_reply_import_leaves_its_blobs_alone(
    sync_app: Flask, tmp_path: Path
) -> None:
    portal = sync_app.extensions["portal"]
    submission = _stored_submission(sync_app)
    bundle = _replies(
        tmp_path / "replies",
        [({"reply_id": "1" * 32, "submission": submission, "status": "under-review"},
          _envelope())],
    )  # fmt: skip
    seen: list[tuple[Reconciled, set[str]]] = []

    def worker_starts(session: Session) -> None:
        # the reply's blob is on disk and its row not yet committed: a new
        # worker's reconcile runs now, from another connection
        if not seen:
            on_disk = portal["blobs"].blob_names()
            seen.append((reconcile(portal["sessions"], portal["blobs"], wait=0.3), on_disk))

    event.listen(portal["sessions"], "before_commit", worker_starts)
    try:
        result = import_replies(portal["sessions"], portal["blobs"], bundle)
    finally:
        event.remove(portal["sessions"], "before_commit", worker_starts)
    assert result.imported == 1
    [(during, on_disk)] = seen
    [blob] = _reply_blobs(sync_app)
    assert blob in on_disk  # the hook did run between the blob and the row
    assert not during.checked_orphans  # it waited for the import instead of guessing
    assert during.orphan_blobs == 0
    assert portal["blobs"].path(blob).exists()
    after = reconcile(portal["sessions"], portal["blobs"], wait=2.0)
    assert (after.checked_orphans, after.orphan_blobs, after.missing_blobs) == (True, 0, 0)


def test_a_refused_reply_import_removes_its_blobs_and_lets_the_reconcile_run(
    sync_app: Flask, tmp_path: Path
) -> None:
    portal = sync_app.extensions["portal"]
    submission = _stored_submission(sync_app)
    before = portal["blobs"].blob_names()
    bundle = _replies(
        tmp_path / "replies",
        [({"reply_id": "1" * 32, "submission": submission, "status": None}, _envelope()),
         ({"reply_id": "2" * 32, "submission": submission, "status": None}, b"")],
    )  # fmt: skip
    with pytest.raises(SyncError, match="neither a message nor a status"):
        import_replies(portal["sessions"], portal["blobs"], bundle)
    assert portal["blobs"].blob_names() == before  # the first reply's blob went again
    assert _reply_blobs(sync_app) == set()
    after = reconcile(portal["sessions"], portal["blobs"], wait=0.5)  # the guard is let go
    assert (after.checked_orphans, after.orphan_blobs, after.missing_blobs) == (True, 0, 0)


# --- statuses of the wrong type ------------------------------------------------------------


@pytest.mark.parametrize("status", [[], {}, ["closed"], {"closed": 1}, 1, True, "open"])
def test_a_reply_status_of_the_wrong_type_is_refused(status: Any) -> None:
    meta = {"type": "reply", "reply_id": "1" * 32, "submission": "0" * 32, "status": status}
    with pytest.raises(SyncError, match="status is not one of"):
        _check_reply_entry(meta)


@pytest.mark.parametrize("status", [[], {}])
def test_the_sync_api_refuses_a_signed_reply_whose_status_is_not_text(
    sync_app: Flask, tmp_path: Path, status: Any
) -> None:
    """Once a TypeError, so a 500, for a correctly signed bundle from an enrolled reviewer."""
    bundle = _replies(
        tmp_path / "replies",
        [({"reply_id": "1" * 32, "submission": "0" * 32, "status": status}, _envelope())],
    )
    client = sync_app.test_client()
    response = client.post(
        "/reviewer-sync/v1/replies", data=bundle.read_bytes(), headers=bearer(client)
    )
    assert response.status_code == 400, response.get_json()
    assert "nothing was imported" in response.get_json()["error"]
    assert "status" in response.get_json()["error"]


# --- follow-up messages and their proof of work -----------------------------------------


def _refuse_messages(app: Flask) -> None:
    """Make the database itself refuse every follow-up message's row."""
    engine = app.extensions["portal"]["engine"]
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON submission "
                    "WHEN NEW.thread_id IS NOT NULL BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_messages() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_messages BEFORE INSERT ON submission FOR EACH ROW "
                    "WHEN (NEW.thread_id IS NOT NULL) EXECUTE FUNCTION refuse_messages()"
                )
            )


def _accept_messages(app: Flask) -> None:
    engine = app.extensions["portal"]["engine"]
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER refuse_messages"))
        else:
            connection.execute(text("DROP TRIGGER refuse_messages ON submission"))
            connection.execute(text("DROP FUNCTION refuse_messages()"))


def test_a_message_that_was_not_stored_can_be_sent_again_with_its_proof(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    receipt = send_report(client)
    sealed = seal_bytes(b"{}", [demo.identity(0).public, demo.identity(1).public])
    solved = proof(client, "followup")

    def send() -> Any:
        data = {**browser_fields(client, receipt), "proof": solved,
                "message": (io.BytesIO(sealed), "message")}  # fmt: skip
        return client.post("/followup/send", data=data, content_type="multipart/form-data")

    before = stored_state(app, demo)
    _refuse_messages(app)
    try:
        failed = send()
        assert failed.status_code == 500, failed.data
        assert stored_state(app, demo) == before  # nothing half-stored
    finally:
        _accept_messages(app)
    again = send()  # the same request, the same proof: the portal failed, not the sender
    assert again.status_code == 200, again.data
    assert again.get_json() == {"stored": True, "parts": 1}
    replay = send()
    assert replay.status_code == 400, replay.data
    assert "anti-spam check" in replay.data.decode()
    submissions, parts, blobs = stored_state(app, demo)
    assert (submissions, parts, len(blobs)) == (before[0] + 1, before[1] + 1, len(before[2]) + 1)


def test_the_error_page_after_a_failure_to_store_promises_nothing_false(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    receipt = send_report(client)
    before = stored_state(app, demo)
    _refuse_messages(app)
    try:
        page = client.post(
            "/followup/send-plain",
            data={**browser_fields(client, receipt), "message": "the berth was 7"},
            content_type="multipart/form-data",
        )
    finally:
        _accept_messages(app)
    assert page.status_code == 500
    assert "may or may not have been kept" in page.data.decode()
    assert INTERNAL_ERROR.split(",")[0] in page.data.decode()
    assert "Nothing you sent was kept" not in page.data.decode()
    assert stored_state(app, demo) == before
