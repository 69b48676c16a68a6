"""Hostile use of resumable sending (``portal/web/resumable.py``, ``tus.py``, ``pending.py``).

Anyone may call these routes. Whatever they send, the portal must refuse
junk at its first bytes and keep none of it, hold no more than its caps,
store a submission whole or not at all and only once, forget expired work,
and date nothing more finely than a day. Driven through the app factory;
the runtime store is SQLite whatever the main database, so SQLite alone here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from crypto.envelope import open_bytes, seal_bytes, sealed_size
from crypto.header import MAGIC
from crypto.keys import EncryptionKeyPair
from portal.storage import pending, pending_locks
from portal.storage.models import Part, PartKind, Submission
from portal.storage.runtime import FILE_NAME
from portal.web.tus_patch import PIECE
from tests.conftest import DemoPortal
from tests.integration.test_intake import proof

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
RECEIPT = {"receipt_locator": "0042", "receipt_token": "ab" * 32}
DAY_NS = 86_400 * 10**9
CANARY = "CANARY-5e1d-FILENAME"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is under test is the runtime store and the files beside the blobs."""
    return f"sqlite:///{tmp_path / 'portal.sqlite3'}"


def _envelope(demo: DemoPortal, size: int = 5000, recipients: list[bytes] | None = None) -> bytes:
    keys = recipients or [demo.identity(0).public, demo.identity(1).public]
    return seal_bytes(os.urandom(size), keys)


def _token(client: FlaskClient) -> str:
    token: str = client.get("/form-token").get_json()["csrf_token"]
    return token


def _begin(client: FlaskClient, parts: int = 1, total: int = 10**6, **form: str) -> TestResponse:
    data = {"csrf_token": _token(client), "proof": proof(client), "parts": str(parts)}
    return client.post("/submit/begin", data={**data, "total": str(total), **form})


def _draft(client: FlaskClient, parts: int = 1, total: int = 10**6) -> str:
    answer = _begin(client, parts, total)
    assert answer.status_code == 201, answer.data
    draft: str = answer.get_json()["draft"]
    return draft


def _metadata(draft: str) -> str:
    return "draft " + base64.b64encode(draft.encode()).decode()


def _create(client: FlaskClient, draft: str, length: int, **headers: str) -> TestResponse:
    fields = {"Upload-Length": str(length), "Upload-Metadata": _metadata(draft), **headers}
    return client.post("/uploads", headers={**TUS, **fields})


def _upload(client: FlaskClient, draft: str, length: int) -> str:
    answer = _create(client, draft, length)
    assert answer.status_code == 201, answer.data
    location: str = answer.headers["Location"]
    assert location.startswith("/uploads/")
    return location.removeprefix("/uploads/")


def _patch(
    client: FlaskClient, upload: str, data: bytes, offset: int = 0, **headers: Any
) -> TestResponse:
    fields = {"Upload-Offset": str(offset), "Content-Type": OCTETS, **headers}
    return client.patch(f"/uploads/{upload}", data=data, headers={**TUS, **fields})


def _offset(client: FlaskClient, upload: str) -> int | None:
    answer = client.head(f"/uploads/{upload}", headers=TUS)
    return int(answer.headers["Upload-Offset"]) if answer.status_code == 200 else None


def _finish(
    client: FlaskClient, draft: str, report: str, *attachments: str, **receipt: str
) -> TestResponse:
    data: dict[str, Any] = {"csrf_token": _token(client), "draft": draft, "report": report}
    data |= {"attachment": list(attachments), **(receipt or RECEIPT)}
    return client.post("/submit/finish", data=data)


def _runtime(app: Flask) -> Path:
    directory: Path = app.extensions["portal"]["runtime"].directory
    return directory / FILE_NAME


def _rows(app: Flask, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(_runtime(app)) as connection:
        return list(connection.execute(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names


def _column(app: Flask, table: str, column: str) -> list[Any]:
    with sqlite3.connect(_runtime(app)) as connection:
        query = f"SELECT {column} FROM {table}"  # noqa: S608 - fixed names
        return [value for (value,) in connection.execute(query)]


def _submissions(app: Flask) -> int:
    with app.extensions["portal"]["sessions"]() as session:
        return session.scalar(select(func.count()).select_from(Submission)) or 0


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def _nothing_pending(app: Flask, demo: DemoPortal) -> None:
    """No partial file and no upload record are left."""
    assert _files(demo.data_dir / ".blobs-partial") == []
    assert _rows(app, "pending_upload") == []


def _expire(app: Flask, draft: str) -> None:
    """Move a draft and its uploads to their expiry day: what waiting a day or two does."""
    today = datetime.now(UTC).date().isoformat()
    key = pending.key_of(draft)
    with sqlite3.connect(_runtime(app)) as connection:
        connection.execute("UPDATE draft SET expires_on = ? WHERE key = ?", (today, key))
        connection.execute("UPDATE pending_upload SET expires_on = ? WHERE draft = ?", (today, key))


class _Body(io.RawIOBase):
    """A request body that says it is ``size`` bytes long and counts what is read of it.

    It delivers ``data`` and then ends, as a dropped connection does; without
    ``data``, junk all the way.
    """

    def __init__(self, size: int, data: bytes | None = None) -> None:
        self.size = size
        self.data = data
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: 0, 1: self.position, 2: self.size}[whence] + offset
        return self.position

    def readinto(self, buffer: Any) -> int:
        end = self.size if self.data is None else len(self.data)
        count = max(0, min(len(buffer), end - self.position))
        if self.data is None:
            buffer[:count] = b"GIF89a-\0" * (count // 8) + b"\0" * (count % 8)
        else:
            buffer[:count] = self.data[self.position : self.position + count]
        self.position += count
        return count


def _streamed(client: FlaskClient, upload: str, body: _Body, **headers: str) -> TestResponse:
    """A PATCH whose body comes from ``body`` (declared length: ``body.size``)."""
    fields = {"Upload-Offset": "0", "Content-Type": OCTETS, **headers}
    return client.patch(f"/uploads/{upload}", input_stream=body, headers={**TUS, **fields})


class _Gate(_Body):
    """A body of ``data`` that stops after ``first`` bytes until :meth:`open` is called.

    A PATCH reading it holds its thread and its locks meanwhile, as one from
    a slow link does.
    """

    def __init__(self, data: bytes, first: int) -> None:
        super().__init__(len(data), data)
        self.first = first
        self.opened = threading.Event()
        self.waiting = threading.Event()

    def open(self) -> None:
        self.opened.set()

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.first and not self.opened.is_set():
            self.waiting.set()
            self.opened.wait(30)
        limit = self.size if self.opened.is_set() else self.first
        view = memoryview(buffer)[: max(0, limit - self.position)]
        return super().readinto(view)


class _Sending(threading.Thread):
    """A PATCH of ``body`` to ``upload`` in a thread of its own; ``answer`` once it ends."""

    def __init__(self, app: Flask, upload: str, body: _Body) -> None:
        super().__init__()
        self.client, self.upload, self.body = app.test_client(), upload, body
        self.answer: TestResponse | None = None

    def run(self) -> None:
        self.answer = _streamed(self.client, self.upload, self.body)


def _sending(app: Flask, upload: str, envelope: bytes, first: int) -> _Sending:
    """Start a PATCH that sends ``first`` bytes of ``envelope`` and then waits."""
    gate = _Gate(envelope, first)
    sending = _Sending(app, upload, gate)
    sending.start()
    assert gate.waiting.wait(10)
    return sending


def _let_finish(sending: _Sending) -> TestResponse:
    assert isinstance(sending.body, _Gate)
    sending.body.open()
    sending.join(30)
    assert sending.answer is not None
    return sending.answer


# --- junk and wrong envelopes ---------------------------------------------------------


def test_junk_first_bytes_are_refused_at_once_and_end_the_upload(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    length = sealed_size(4 * 1024 * 1024, 2)
    upload = _upload(client, _draft(client, total=length), length)
    spares = len(_files(demo.data_dir / ".blobs-spares"))
    junk = _Body(length)
    answer = _streamed(client, upload, junk)
    assert answer.status_code == 400
    assert "format marker" in answer.get_json()["error"]
    assert junk.position <= 2 * PIECE, "the whole body was read before the refusal"
    assert _offset(client, upload) is None
    _nothing_pending(app, demo)
    assert len(_files(demo.data_dir / ".blobs-spares")) == spares + 1  # given back, emptied


def _stranger(demo: DemoPortal) -> bytes:
    return _envelope(demo, recipients=[EncryptionKeyPair.generate().public for _ in range(2)])


def _bad_count(demo: DemoPortal) -> bytes:
    good = _envelope(demo)
    return good[: len(MAGIC) + 32] + b"\0\0" + good[len(MAGIC) + 34 :]


@pytest.mark.parametrize(
    ("make", "cut", "reason"),
    [
        pytest.param(lambda d: MAGIC[:7] + bytes(len(_envelope(d)) - 7), 7, "format marker",
                     id="magic"),
        pytest.param(_bad_count, 40, "malformed", id="recipient-count"),
        pytest.param(_stranger, 300, "current reviewers", id="other-reviewers"),
    ],
)  # fmt: skip
def test_a_header_checked_across_patches_still_refuses_what_is_wrong(
    app: Flask, demo: DemoPortal, make: Callable[[DemoPortal], bytes], cut: int, reason: str
) -> None:
    client = app.test_client()
    wrong = make(demo)
    upload = _upload(client, _draft(client), len(wrong))
    assert _patch(client, upload, wrong[:cut]).status_code == 204  # nothing wrong so far
    assert _offset(client, upload) == cut
    answer = _patch(client, upload, wrong[cut:], offset=cut)
    assert answer.status_code == 400
    assert reason in answer.get_json()["error"]
    assert _offset(client, upload) is None  # the upload has ended
    _nothing_pending(app, demo)


def test_a_length_no_envelope_for_these_reviewers_can_have_is_refused_at_creation(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    draft = _draft(client)
    one_reviewer = _envelope(demo, recipients=[demo.identity(0).public])
    for length in (len(one_reviewer), 10, len(_envelope(demo)) + 1):
        answer = _create(client, draft, length)
        assert answer.status_code == 400, length
        assert "reload the page" in answer.get_json()["error"]
    _nothing_pending(app, demo)


def test_bytes_beyond_the_declared_length_are_refused_and_nothing_of_them_kept(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    envelope = _envelope(demo)
    upload = _upload(client, _draft(client), len(envelope))
    assert _patch(client, upload, envelope[:100]).status_code == 204
    answer = _patch(client, upload, envelope[100:] + b"\0", offset=100)
    assert answer.status_code == 413
    assert _offset(client, upload) == 100
    assert _patch(client, upload, envelope[100:], offset=100).status_code == 204
    assert _offset(client, upload) == len(envelope)


# --- the tus protocol, abused ---------------------------------------------------------


def test_tus_requests_that_break_the_protocol_get_the_protocols_answers(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    envelope = _envelope(demo)
    draft = _draft(client)
    upload = _upload(client, draft, len(envelope))
    path = f"/uploads/{upload}"
    no_version = client.head(path)
    assert no_version.status_code == 412
    assert no_version.headers["Tus-Version"] == "1.0.0"
    assert _create(client, draft, 0, **{"Upload-Defer-Length": "1"}).status_code == 400
    wrong_type = _patch(client, upload, envelope, **{"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    assert _patch(client, upload, envelope, offset=5).status_code == 409
    assert _patch(client, upload, envelope, **{"Upload-Offset": "-1"}).status_code == 400
    assert _patch(client, upload, envelope, **{"Upload-Checksum": "md5 AAAA"}).status_code == 400
    assert _patch(client, upload, envelope, **{"Upload-Checksum": "sha1 !!"}).status_code == 400
    wrong_sum = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    answer = _patch(client, upload, envelope, **{"Upload-Checksum": f"sha256 {wrong_sum}"})
    assert answer.status_code == 460
    assert _offset(client, upload) == 0  # nothing of that PATCH was kept
    assert _column(app, "pending_upload", "checksum_from") == [None]  # no PATCH left open
    assert client.get(path, headers=TUS).status_code == 405
    assert client.head("/uploads/" + "0" * 32, headers=TUS).status_code == 404
    assert client.head("/uploads/..%2Fblobs", headers=TUS).status_code == 404
    assert client.delete(path, headers=TUS).status_code == 204
    assert _offset(client, upload) is None
    _nothing_pending(app, demo)


def test_a_body_cut_short_keeps_what_came_unless_a_checksum_asked_for_all_or_nothing(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    envelope = _envelope(demo, 60_000)
    draft = _draft(client)
    plain, summed = (_upload(client, draft, len(envelope)) for _ in range(2))
    digest = base64.b64encode(hashlib.sha1(envelope).digest()).decode()  # noqa: S324 - tus
    for upload, extra in ((plain, {}), (summed, {"Upload-Checksum": f"sha1 {digest}"})):
        cut = _Body(len(envelope), envelope[:30_000])  # the link drops here
        answer = _streamed(client, upload, cut, **extra)
        assert answer.status_code == 204  # what was stored, for a sender still there
        assert answer.headers["Upload-Offset"] == str(_offset(client, upload))
    assert _offset(client, plain) == 30_000
    assert _offset(client, summed) == 0


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param("draft " + "QUFB" * 1200, id="huge"),
        pytest.param("draft ***not-base64***", id="not-base64"),
        pytest.param("filename eA==", id="no-draft"),
        pytest.param("", id="empty"),
        pytest.param("draft {b64},draft {b64}", id="twice"),
        pytest.param("dr,aft {b64}", id="bad-key"),
        pytest.param("draft {b64} extra", id="three-fields"),
        pytest.param("draft " + base64.b64encode(b"../../etc/passwd").decode(), id="not-an-id"),
        pytest.param("draft " + base64.b64encode(b"\xff" * 32).decode(), id="not-ascii"),
    ],
)
def test_hostile_upload_metadata_is_refused_and_makes_nothing(
    app: Flask, demo: DemoPortal, metadata: str
) -> None:
    client = app.test_client()
    draft = _draft(client)
    b64 = base64.b64encode(draft.encode()).decode()
    length = len(_envelope(demo))
    answer = _create(client, draft, length, **{"Upload-Metadata": metadata.format(b64=b64)})
    assert answer.status_code == 400
    assert "Upload-Metadata" in answer.get_json()["error"]
    _nothing_pending(app, demo)


def test_other_metadata_is_ignored_and_never_kept(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    draft = _draft(client)
    name = base64.b64encode(CANARY.encode()).decode()
    answer = _create(
        client,
        draft,
        len(_envelope(demo)),
        **{"Upload-Metadata": f"{_metadata(draft)},name {name}"},
    )
    assert answer.status_code == 201
    runtime = _runtime(app).parent
    kept = [*runtime.rglob("*"), *(demo.data_dir / ".blobs-partial").iterdir()]
    for path in (path for path in kept if path.is_file()):
        assert CANARY.encode() not in path.read_bytes()
        assert name.encode() not in path.read_bytes()
        assert CANARY not in path.name


# --- limits ---------------------------------------------------------------------------


def test_a_draft_takes_no_more_parts_or_bytes_than_a_report_may_have(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_MAX_ATTACHMENTS="1", PORTAL_MAX_UPLOAD_MIB="1")
    client = app.test_client()
    assert "at most 1 attachment." in _begin(client, parts=3).get_json()["error"]
    assert _begin(client, total=1024 * 1024 + 1).status_code == 400
    assert _begin(client, parts=0).status_code == 400
    assert _begin(client, total=-5).status_code == 400
    small, large = sealed_size(1000, 2), sealed_size(700_000, 2)
    draft = _draft(client, parts=2, total=large)  # checked here, and never reserved
    assert _create(client, draft, sealed_size(1024 * 1024, 2)).status_code == 413
    for _ in range(2 + pending.SPARE_UPLOADS):  # two parts, two made again, all sent to
        _complete(client, draft, _envelope(demo, 1000))
    assert "at most 2 parts" in _create(client, draft, small).get_json()["error"]
    assert len(_rows(app, "pending_upload")) == 4


def test_the_number_of_unfinished_drafts_is_capped_and_a_refusal_spends_no_proof(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_PENDING_DRAFTS="1")
    client = app.test_client()
    first = _draft(client)
    kept = proof(client)
    form = {"csrf_token": _token(client), "proof": kept, "parts": "1", "total": "5000"}
    full = client.post("/submit/begin", data=form)
    assert full.status_code == 429
    assert "try again" in full.get_json()["error"]
    assert full.headers["Retry-After"] == "60"
    _expire(app, first)
    again = client.post("/submit/begin", data={**form, "csrf_token": _token(client)})
    assert again.status_code == 201, again.data  # the proof was not spent by the 429


def test_declared_totals_reserve_nothing_so_empty_drafts_lock_nobody_out(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_MAX_UPLOAD_MIB="1", PORTAL_PENDING_MIB="1")
    client = app.test_client()
    for _ in range(10):  # the whole pending space, declared ten times over, nothing sent
        _draft(client, total=1024 * 1024)
    envelope = _envelope(demo)
    draft = _draft(client, total=len(envelope))  # a reporter after them
    assert _finish(client, draft, _complete(client, draft, envelope)).status_code == 200


def test_stored_bytes_are_capped_and_a_patch_past_them_keeps_what_fit_and_gets_429(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_MAX_UPLOAD_MIB="1", PORTAL_PENDING_MIB="1")
    client = app.test_client()
    first, second = _envelope(demo, 700_000), _envelope(demo, 500_000)
    theirs, mine = _draft(client, total=len(first)), _draft(client, total=len(second))
    stored = _complete(client, theirs, first)
    upload = _upload(client, mine, len(second))
    full = _patch(client, upload, second)
    assert full.status_code == 429
    assert "What has arrived is kept" in full.get_json()["error"]
    assert full.headers["Retry-After"] == "60"
    kept = _offset(client, upload)
    assert kept is not None
    assert 1024 * 1024 - len(first) - PIECE < kept <= 1024 * 1024 - len(first)  # what fitted
    assert sorted(_column(app, "pending_upload", "held")) == [kept, len(first)]
    assert _patch(client, upload, second[kept:], offset=kept).status_code == 429
    assert _finish(client, theirs, stored).status_code == 200  # a blob now: room again
    assert _patch(client, upload, second[kept:], offset=kept).status_code == 204
    assert _finish(client, mine, upload).status_code == 200
    _nothing_pending(app, demo)


def test_a_draft_nothing_is_sent_to_lapses_and_frees_its_place(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_PENDING_DRAFTS="2")
    client = app.test_client()
    envelope = _envelope(demo)
    idle, busy = _draft(client), _draft(client)
    _complete(client, busy, envelope)
    assert _begin(client).status_code == 429
    with sqlite3.connect(_runtime(app)) as connection:
        query = "SELECT lapses_at FROM draft WHERE key = ?"
        assert connection.execute(query, (pending.key_of(busy),)).fetchone() == (None,)
    with sqlite3.connect(_runtime(app)) as connection:  # half an hour later
        connection.execute("UPDATE draft SET lapses_at = lapses_at - 1800")
    lapsed = _create(client, idle, len(envelope))
    assert lapsed.status_code in (404, 410)  # lapsed, or removed as such already
    assert _begin(client).status_code == 201  # its place is free
    assert len(_rows(app, "draft")) == 2


def test_begins_draw_on_a_global_budget_and_a_refused_proof_costs_none(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_BEGINS_PER_HOUR="4")  # one at once
    client = app.test_client()
    assert _begin(client, proof="forged").status_code == 400  # gives its token back
    assert _begin(client).status_code == 201
    busy = _begin(client, proof="forged")  # the budget is asked before the proof
    assert busy.status_code == 429
    assert "wait" in busy.get_json()["error"]
    assert len(_rows(app, "draft")) == 1


# --- finishing ------------------------------------------------------------------------


def _complete(client: FlaskClient, draft: str, envelope: bytes) -> str:
    upload = _upload(client, draft, len(envelope))
    assert _patch(client, upload, envelope).status_code == 204
    return upload


def test_a_finish_may_name_only_its_own_drafts_uploads(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    envelope = _envelope(demo)
    mine, theirs = _draft(client), _draft(client)
    report = _complete(client, mine, envelope)
    foreign = _complete(client, theirs, envelope)
    for named in ([foreign], [report, foreign], [report, report]):
        answer = _finish(client, mine, *named)
        assert answer.status_code == 400, named
    assert _finish(client, mine, "not-an-id").status_code == 400
    assert _submissions(app) == 0
    assert _files(demo.data_dir / "blobs") == []
    assert _offset(client, foreign) == len(envelope)


def test_a_finish_asked_again_stores_nothing_more(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    keys = [demo.identity(0).public, demo.identity(1).public]
    texts = [b'{"schema": "cso-report/v1"}', os.urandom(40_000)]
    report, attachment = (seal_bytes(text, keys) for text in texts)
    draft = _draft(client, parts=2)
    uploads = [_complete(client, draft, report), _complete(client, draft, attachment)]
    first = _finish(client, draft, *uploads)
    assert (first.status_code, first.get_json()) == (200, {"stored": True, "parts": 2})
    again = _finish(client, draft, *uploads)
    assert (again.status_code, again.get_json()) == (200, {"stored": True, "parts": 2})
    other = _finish(client, draft, *uploads, receipt_locator="0043", receipt_token="cd" * 32)
    assert other.status_code == 409
    assert _submissions(app) == 1
    assert len(_files(demo.data_dir / "blobs")) == 2
    with app.extensions["portal"]["sessions"]() as session:
        parts = session.scalars(select(Part).order_by(Part.position)).all()
        stored = [(part.kind, part.blob, part.size, part.sha256) for part in parts]
    for (_, blob, size, digest), text, sent in zip(
        stored, texts, (report, attachment), strict=True
    ):
        data = (demo.data_dir / "blobs" / blob).read_bytes()
        assert (size, digest) == (len(sent), hashlib.sha256(sent).hexdigest())
        assert open_bytes(data, demo.identity(1)) == text
    assert [kind for kind, *_ in stored] == [PartKind.REPORT, PartKind.ATTACHMENT]
    _nothing_pending(app, demo)
    assert all(_offset(client, upload) is None for upload in uploads)


def test_a_finish_before_every_part_is_whole_stores_nothing_and_loses_nothing(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    report, attachment = _envelope(demo), _envelope(demo, 20_000)
    draft = _draft(client, parts=2)
    whole = _complete(client, draft, report)
    partial = _upload(client, draft, len(attachment))
    assert _patch(client, partial, attachment[:9000]).status_code == 204
    answer = _finish(client, draft, whole, partial)
    assert answer.status_code == 409
    assert "9000 of" in answer.get_json()["error"]
    assert _submissions(app) == 0
    assert _files(demo.data_dir / "blobs") == []
    assert (_offset(client, whole), _offset(client, partial)) == (len(report), 9000)
    assert _patch(client, partial, attachment[9000:], offset=9000).status_code == 204
    assert _finish(client, draft, whole, partial).status_code == 200
    assert _submissions(app) == 1


def test_concurrent_finishes_of_one_draft_store_it_once(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    envelopes = [_envelope(demo, 1_500_000) for _ in range(3)]
    draft = _draft(client, parts=3, total=sum(map(len, envelopes)))
    uploads = [_complete(client, draft, envelope) for envelope in envelopes]
    clients = [app.test_client() for _ in uploads]
    tokens = [_token(c) for c in clients]
    start = threading.Barrier(len(uploads))
    answers: list[TestResponse] = []

    def finish(number: int) -> None:  # each names another upload, with its own receipt
        form = {"csrf_token": tokens[number], "draft": draft, "report": uploads[number]}
        form |= {"receipt_locator": f"00{number:02d}", "receipt_token": f"{number:02d}" * 32}
        start.wait()
        answers.append(clients[number].post("/submit/finish", data=form))

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = sorted(answer.status_code for answer in answers)
    assert codes[0] == 200
    assert set(codes[1:]) <= {409, 423}, codes  # stored already, or busy storing it
    assert _submissions(app) == 1  # one proof of work, one draft: one submission
    assert len(_files(demo.data_dir / "blobs")) == 1
    _nothing_pending(app, demo)  # the unnamed uploads went with the draft


def test_a_finish_waits_for_every_upload_of_its_draft_even_one_it_does_not_name(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    report, attachment = _envelope(demo), _envelope(demo, 200_000)
    draft = _draft(client, parts=2, total=len(report) + len(attachment))
    named = _complete(client, draft, report)
    unnamed = _upload(client, draft, len(attachment))
    sending = _sending(app, unnamed, attachment, 3 * PIECE)
    busy = _finish(client, draft, named)
    assert busy.status_code == 423  # it would forget a file a PATCH still writes to
    assert "still arriving" in busy.get_json()["error"]
    assert _submissions(app) == 0
    assert _let_finish(sending).status_code == 204
    assert _offset(client, unnamed) == len(attachment)
    assert _finish(client, draft, named).status_code == 200  # the report alone, as asked
    assert _offset(client, unnamed) is None  # never named: thrown away
    _nothing_pending(app, demo)


def test_a_patch_whose_upload_was_forgotten_stops_writing_and_leaves_no_file(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    envelope = _envelope(demo, 300_000)
    upload = _upload(client, _draft(client), len(envelope))
    sending = _sending(app, upload, envelope, 3 * PIECE)
    with sqlite3.connect(_runtime(app)) as connection:  # forgotten while it writes
        connection.execute("DELETE FROM pending_upload")
    time.sleep(1.2)  # past the next fsync, where the PATCH looks for its record
    answer = _let_finish(sending)
    assert answer.status_code == 404
    assert sending.body.position < len(envelope)  # it stopped reading
    _nothing_pending(app, demo)


def test_at_most_two_patches_send_to_one_draft_at_once(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    envelopes = [_envelope(demo, 100_000) for _ in range(3)]
    draft = _draft(client, parts=3, total=sum(map(len, envelopes)))
    uploads = [_upload(client, draft, len(envelope)) for envelope in envelopes]
    sendings = [
        _sending(app, upload, envelope, 2 * PIECE)
        for upload, envelope in zip(uploads[:2], envelopes[:2], strict=True)
    ]
    other = _envelope(demo)
    elsewhere = _upload(client, _draft(client), len(other))
    assert _patch(client, elsewhere, other).status_code == 204  # other drafts go on
    third = _patch(client, uploads[2], envelopes[2])
    assert third.status_code == 423
    assert _offset(client, uploads[2]) == 0
    assert [_let_finish(sending).status_code for sending in sendings] == [204, 204]
    assert _patch(client, uploads[2], envelopes[2]).status_code == 204


def test_no_upload_is_made_while_a_finish_holds_its_draft(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    draft = _draft(client)
    locks = app.extensions["portal"]["runtime"].locks
    with pending_locks.draft_lock(locks, pending.key_of(draft), wait=0):  # a finish under way
        answer = _create(client, draft, len(_envelope(demo)))
    assert answer.status_code == 423
    assert _rows(app, "pending_upload") == []
    assert _create(client, draft, len(_envelope(demo))).status_code == 201


def test_uploads_made_again_after_a_lost_answer_do_not_block_the_draft(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_MAX_ATTACHMENTS="1")
    client = app.test_client()
    report, attachment = _envelope(demo), _envelope(demo, 100_000)
    draft = _draft(client, parts=2, total=len(report) + len(attachment))
    lost = [_upload(client, draft, len(report)) for _ in range(3)]  # the answers never came
    uploads = [_complete(client, draft, report), _complete(client, draft, attachment)]
    answer = _finish(client, draft, *uploads)
    assert (answer.status_code, answer.get_json()) == (200, {"stored": True, "parts": 2})
    assert all(_offset(client, upload) is None for upload in lost)
    _nothing_pending(app, demo)


def test_answers_without_a_body_say_no_type_and_uploads_take_no_options(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    envelope = _envelope(demo)
    draft = _draft(client)
    created = _create(client, draft, len(envelope))
    path = created.headers["Location"]
    upload = path.removeprefix("/uploads/")
    empty = [
        client.options("/uploads"),
        created,
        _patch(client, upload, envelope[:100]),
        client.head(path, headers=TUS),
        client.delete(path, headers=TUS),
    ]
    assert [answer.status_code for answer in empty] == [204, 201, 204, 200, 204]
    for answer in empty:
        assert "Content-Type" not in answer.headers, answer.status_code
        assert answer.data == b""
    options = client.options(path, headers=TUS)
    assert options.status_code == 405
    assert options.get_json()["error"]


def test_an_expired_draft_is_gone_with_its_uploads(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    envelope = _envelope(demo)
    draft = _draft(client)
    upload = _complete(client, draft, envelope)
    _expire(app, draft)
    assert client.head(f"/uploads/{upload}", headers=TUS).status_code == 410
    assert _patch(client, upload, b"", offset=len(envelope)).status_code in (404, 410)
    # once expired, gone: whether it is still known as expired depends on the clean-up
    assert _create(client, draft, len(envelope)).status_code in (404, 410)
    assert _finish(client, draft, upload).status_code in (404, 410)
    assert _submissions(app) == 0
    _nothing_pending(app, demo)


def test_script_forms_answer_an_expired_token_in_json_and_a_fresh_one_works(
    app: Flask, demo: DemoPortal
) -> None:
    client = app.test_client()
    for path in ("/submit/begin", "/submit/finish", "/submit"):
        answer = client.post(path, data={"csrf_token": "forged"})
        assert answer.status_code == 400
        assert answer.get_json()["renew_token"] is True
        assert "expired" in answer.get_json()["error"]
    no_proof = client.post(
        "/submit/begin", data={"csrf_token": _token(client), "parts": "1", "total": "9"}
    )
    assert no_proof.status_code == 400
    assert "send again" in no_proof.get_json()["error"]
    assert _begin(client).status_code == 201


def test_nothing_pending_is_dated_finer_than_a_day(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    envelope = _envelope(demo, 50_000)
    draft = _draft(client, parts=2)
    done = _complete(client, draft, envelope)
    going = _upload(client, draft, len(envelope))
    digest = base64.b64encode(hashlib.sha256(envelope[:20_000]).digest()).decode()
    checksum = {"Upload-Checksum": f"sha256 {digest}"}
    assert _patch(client, going, envelope[:20_000], **checksum).status_code == 204
    app.extensions["portal"]["blobs"].flush()
    partial = demo.data_dir / ".blobs-partial"
    stamps = {partial.name: partial.stat()}  # before listing it reads it
    stamps |= {path.name: path.stat() for path in partial.iterdir()}
    assert len(stamps) == 3  # the folder and two uploads
    for name, info in stamps.items():
        assert info.st_mtime_ns % DAY_NS == 0, f"{name}: modification time is not a day"
        assert info.st_atime_ns % DAY_NS == 0, f"{name}: access time is not a day"
    for table in ("draft", "pending_upload"):
        for row in _rows(app, table):
            for value in row:
                assert not (isinstance(value, str) and ":" in value), (table, value)
                assert not (isinstance(value, int) and value > 10**9), (table, value)
    assert _finish(client, draft, done).status_code == 200
    for name in _files(demo.data_dir / "blobs"):
        info = (demo.data_dir / "blobs" / name).stat()
        assert (info.st_mtime_ns % DAY_NS, info.st_atime_ns % DAY_NS) == (0, 0)


# --- clean-up -------------------------------------------------------------------------


def test_a_restart_that_lost_the_runtime_store_removes_every_partial_upload(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app()
    client = app.test_client()
    envelope = _envelope(demo)
    upload = _upload(client, _draft(client), len(envelope))
    assert _patch(client, upload, envelope[:1000]).status_code == 204
    assert len(_files(demo.data_dir / ".blobs-partial")) == 1
    runtime = app.extensions["portal"]["runtime"]
    runtime.dispose()
    shutil.rmtree(runtime.directory)  # a reboot empties tmpfs
    runtime.directory.mkdir(mode=0o700)
    again = make_app().test_client()
    assert _files(demo.data_dir / ".blobs-partial") == []
    assert again.head(f"/uploads/{upload}", headers=TUS).status_code == 404


def test_the_daily_purge_removes_expired_partial_uploads_without_the_runtime_store(
    app: Flask,
    demo: DemoPortal,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from portal.cli.main import main as portal_main

    client = app.test_client()
    envelope = _envelope(demo)
    draft = _draft(client)
    stale, live = (_upload(client, draft, len(envelope)) for _ in range(2))
    files = {row[0]: row[2] for row in _rows(app, "pending_upload")}
    partial = demo.data_dir / ".blobs-partial"
    old_name = "20200101-" + files[pending.key_of(stale)].split("-", 1)[1]
    (partial / files[pending.key_of(stale)]).rename(partial / old_name)  # its day has come
    monkeypatch.setenv("DATABASE_URL", demo.database_url)
    monkeypatch.setenv("PORTAL_RUNTIME_DIR", str(tmp_path / "elsewhere"))  # not the intake's
    capsys.readouterr()
    assert portal_main(["--data-dir", str(demo.data_dir), "purge"]) == 0
    assert "1 expired resumable upload(s) removed" in capsys.readouterr().out
    assert _files(partial) == [files[pending.key_of(live)]]
    assert not (tmp_path / "elsewhere").exists()
