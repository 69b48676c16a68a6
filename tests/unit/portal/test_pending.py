"""The books behind resumable sending (``portal/storage/pending.py``): bounds, expiry, files, locks.

Driven directly over a real runtime store (SQLite in a private folder) and a
real blob store, with a fixed ``day`` (and, for a draft's lapse, a fixed
``now``): the day is what the module is given, not a clock it reads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.storage import pending, pending_cleanup, pending_drafts, pending_locks, pending_uploads
from portal.storage.blobs import BlobStore
from portal.storage.runtime import FILE_NAME, RuntimeStore

DAY = date(2026, 11, 20)
DAY_NS = 86_400 * 10**9
LIMITS = pending.Limits(max_parts=3, max_total=1000, pending_bytes=2500, pending_drafts=4)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeStore]:
    store = RuntimeStore(tmp_path / "runtime", prepare=True)
    yield store
    store.dispose()


@pytest.fixture
def sessions(runtime: RuntimeStore) -> sessionmaker[Session]:
    return runtime.sessions


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    store = BlobStore(tmp_path / "data" / "blobs")
    store.refill_spares(8)
    return store


def _rows(runtime: RuntimeStore, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(runtime.directory / FILE_NAME) as connection:
        return list(connection.execute(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names


def test_a_draft_is_known_by_a_hash_of_its_id_and_expires_two_days_on(
    runtime: RuntimeStore, sessions: sessionmaker[Session]
) -> None:
    draft_id, expires = pending_drafts.open_draft(sessions, LIMITS, DAY)
    assert pending.is_id(draft_id)
    assert expires == DAY + timedelta(days=2)
    ((key, expires_on, lapses_at, receipt, parts),) = _rows(runtime, "draft")
    assert draft_id not in repr(_rows(runtime, "draft"))  # a copy of the store opens nothing
    assert (key, expires_on, receipt, parts) == (
        pending.key_of(draft_id), "2026-11-22", None, None)  # fmt: skip
    assert abs(lapses_at - (time.time() + pending.FIRST_BYTE_SECONDS)) < 60
    assert pending_drafts.find_draft(sessions, draft_id, DAY + timedelta(days=1)).key == key
    with pytest.raises(pending.ExpiredError):
        pending_drafts.find_draft(sessions, draft_id, DAY + timedelta(days=2))
    with pytest.raises(pending.UnknownError):
        pending_drafts.find_draft(sessions, "0" * 32, DAY)
    with pytest.raises(pending.UnknownError):
        pending_drafts.find_draft(sessions, "not an id", DAY)


def _holding(
    sessions: sessionmaker[Session], blobs: BlobStore, draft: str, size: int
) -> pending.UploadState:
    """An upload of ``draft`` whose file holds ``size`` bytes, counted as a PATCH would."""
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, size, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    assert pending_uploads.grant(sessions, LIMITS, state, 0, need=1) == size
    state.path.write_bytes(b"x" * size)
    pending_uploads.settle(sessions, state, size)
    return state


def test_declaring_a_total_reserves_nothing_only_stored_bytes_count(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    for _ in range(3):  # three drafts, with full-size uploads: more than 2500 bytes
        draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 1000, DAY)
    assert pending_drafts.has_room(sessions, LIMITS, DAY)
    pending_drafts.open_draft(sessions, LIMITS, DAY)  # never refused for the above


def test_the_bytes_stored_in_partial_files_are_capped(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    first, second, third = (pending_drafts.open_draft(sessions, LIMITS, DAY)[0] for _ in "abc")
    _holding(sessions, blobs, first, 1000)
    _holding(sessions, blobs, second, 1000)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, third, 1000, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    assert pending_uploads.grant(sessions, LIMITS, state, 0, need=1) == 500  # what is left
    state.path.write_bytes(b"x" * 500)
    with pytest.raises(pending.FullError, match="What has arrived is kept"):
        pending_uploads.grant(sessions, LIMITS, state, 500, need=1)
    assert not pending_drafts.has_room(sessions, LIMITS, DAY)
    with pytest.raises(pending.FullError):
        pending_drafts.open_draft(sessions, LIMITS, DAY)
    # a stored draft holds nothing any more: its uploads are blobs or gone
    pending_drafts.mark_stored(
        sessions, blobs, pending_drafts.find_draft(sessions, first, DAY), "r", 1
    )
    assert pending_uploads.grant(sessions, LIMITS, state, 500, need=1) == 1000
    assert pending_drafts.has_room(sessions, LIMITS, DAY)


def test_a_patch_is_granted_room_a_little_ahead_of_what_it_has_stored(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    room = 2 * pending.GRANT
    limits = replace(LIMITS, max_total=10 * room, pending_bytes=room)
    states = []
    for _ in "ab":
        draft, _ = pending_drafts.open_draft(sessions, limits, DAY)
        upload, _ = pending_uploads.add_upload(sessions, blobs, limits, draft, 10 * room, DAY)
        states.append(pending_uploads.find_upload(sessions, blobs, upload, DAY))
    mine, theirs = states
    assert pending_uploads.grant(sessions, limits, mine, 0, need=1) == pending.GRANT
    assert pending_uploads.grant(sessions, limits, mine, 5000, need=0) == 5000 + pending.GRANT
    # while it is granted, others have that much less room
    assert pending_uploads.grant(sessions, limits, theirs, 0, need=1) == pending.GRANT - 5000
    pending_uploads.settle(sessions, mine, 5000)  # the PATCH ended: only its bytes count now
    assert pending_uploads.grant(sessions, limits, theirs, 0, need=1) == pending.GRANT


def test_a_drafts_uploads_hold_no_more_than_a_report_may(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    _holding(sessions, blobs, draft, 700)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 600, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    assert pending_uploads.grant(sessions, LIMITS, state, 0, need=1) == 300
    state.path.write_bytes(b"x" * 300)
    with pytest.raises(pending.OverLimitError, match="larger than this portal accepts"):
        pending_uploads.grant(sessions, LIMITS, state, 300, need=1)


def test_the_number_of_open_drafts_is_capped(sessions: sessionmaker[Session]) -> None:
    for _ in range(LIMITS.pending_drafts):
        pending_drafts.open_draft(sessions, LIMITS, DAY)
    with pytest.raises(pending.FullError):
        pending_drafts.open_draft(sessions, LIMITS, DAY)


def test_a_draft_nothing_arrives_for_lapses_and_frees_its_place(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    began = int(time.time())
    later = began + pending.FIRST_BYTE_SECONDS
    idle = [pending_drafts.open_draft(sessions, LIMITS, DAY, now=began)[0] for _ in range(3)]
    used, _ = pending_drafts.open_draft(sessions, LIMITS, DAY, now=began)
    assert not pending_drafts.has_room(sessions, LIMITS, DAY, now=began)  # four of four
    empty, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, idle[0], 100, DAY, now=began)
    path = pending_uploads.find_upload(sessions, blobs, empty, DAY, now=began).path
    _holding(sessions, blobs, used, 100)  # its first bytes: it no longer lapses
    with pytest.raises(pending.ExpiredError, match="within 30 minutes"):
        pending_drafts.find_draft(sessions, idle[1], DAY, now=later)
    with pytest.raises(pending.ExpiredError, match="within 30 minutes"):
        pending_uploads.add_upload(sessions, blobs, LIMITS, idle[2], 100, DAY, now=later)
    assert pending_drafts.find_draft(sessions, used, DAY, now=later).receipt is None
    assert pending_drafts.has_room(sessions, LIMITS, DAY, now=later)
    assert pending_cleanup.expire(sessions, blobs, DAY, now=later) == 1  # the empty upload
    assert not path.exists()
    assert [row[0] for row in _rows(runtime, "draft")] == [pending.key_of(used)]


def test_a_draft_takes_uploads_up_to_its_own_limits_and_two_spare_ones(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    with pytest.raises(pending.OverLimitError, match="larger"):
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 1001, DAY)
    made = [
        pending_uploads.find_upload(
            sessions,
            blobs,
            pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 200, DAY)[0],
            DAY,
        )
        for _ in range(LIMITS.max_parts + pending.SPARE_UPLOADS)
    ]
    for state in made:
        state.path.write_bytes(b"x")  # each holds a byte: none is thrown away
    with pytest.raises(pending.OverLimitError, match="at most 3 parts"):
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 1, DAY)


def test_a_full_draft_throws_away_uploads_made_again_after_a_lost_answer(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    made = [
        pending_uploads.find_upload(
            sessions,
            blobs,
            pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 200, DAY)[0],
            DAY,
        )
        for _ in range(LIMITS.max_parts + pending.SPARE_UPLOADS)
    ]
    made[0].path.write_bytes(b"x")  # a part being sent
    with pending_locks.locked(made[1].path, wait=0):  # a PATCH just starting on another
        upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 200, DAY)
    kept = pending_uploads.uploads_of(
        sessions, blobs, pending_drafts.find_draft(sessions, draft, DAY)
    )
    assert set(kept) == {made[0].key, made[1].key, pending.key_of(upload)}
    assert all(not state.path.exists() for state in made[2:])


def test_uploads_are_refused_for_drafts_that_cannot_take_them(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    with pytest.raises(pending.UnknownError):
        pending_uploads.add_upload(sessions, blobs, LIMITS, "f" * 32, 10, DAY)
    with pytest.raises(pending.ExpiredError):
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 10, DAY + timedelta(days=2))
    pending_drafts.mark_stored(
        sessions, blobs, pending_drafts.find_draft(sessions, draft, DAY), "r", 1
    )
    with pytest.raises(pending.FinishedError):
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 10, DAY)
    assert pending_cleanup.purge_files(blobs, DAY + timedelta(days=30)) == 0  # nothing was made


def test_a_partial_file_is_a_spare_named_for_its_expiry_day_and_dated_to_the_day(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    spares = set(os.listdir(blobs.spares))
    inodes = {os.stat(blobs.spares / name).st_ino for name in spares}
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, expires = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    assert state.path.parent == blobs.partial
    assert state.path.name.startswith(f"{expires:%Y%m%d}-")
    assert upload not in state.path.name
    info = state.path.stat()
    assert info.st_ino in inodes  # born before the upload was made
    assert state.spare
    assert (info.st_size, info.st_mtime_ns % DAY_NS, info.st_atime_ns % DAY_NS) == (0, 0, 0)
    assert state.offset() == 0
    assert len(os.listdir(blobs.spares)) == len(spares) - 1


def test_with_no_spares_left_a_fresh_file_is_made_and_never_given_back(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "empty" / "blobs")
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, store, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, store, upload, DAY)
    assert not state.spare
    state.path.write_bytes(b"ciphertext")
    pending_uploads.drop(sessions, store, state)
    assert not state.path.exists()
    assert store.spare_count() == 0  # its birth time is the upload's: not for a later blob


def test_dropping_gives_a_spare_back_empty_but_never_empties_a_stored_blob(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    first, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    second, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    given, kept = (pending_uploads.find_upload(sessions, blobs, i, DAY) for i in (first, second))
    for state in (given, kept):
        state.path.write_bytes(b"ciphertext")
    spares = blobs.spare_count()
    pending_uploads.drop(sessions, blobs, given)
    assert blobs.spare_count() == spares + 1
    assert all((blobs.spares / n).stat().st_size == 0 for n in os.listdir(blobs.spares))
    name = blobs.adopt(kept.path)
    pending_uploads.drop(sessions, blobs, kept)
    assert not kept.path.exists()
    assert blobs.read(name) == b"ciphertext"
    assert blobs.spare_count() == spares + 1
    with pytest.raises(pending.UnknownError):
        pending_uploads.find_upload(sessions, blobs, second, DAY)


def test_an_unproven_checksummed_patch_does_not_count_as_stored(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    state.path.write_bytes(b"x" * 40)
    pending_uploads.set_checksum_from(sessions, state, 25)
    assert pending_uploads.find_upload(sessions, blobs, upload, DAY).offset() == 25
    pending_uploads.set_checksum_from(sessions, state, None)
    assert pending_uploads.find_upload(sessions, blobs, upload, DAY).offset() == 40
    state.path.unlink()
    with pytest.raises(pending.UnknownError):
        state.offset()


def test_an_expired_upload_is_removed_when_asked_for(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    draft, expires = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, expires - timedelta(days=1))
    with pytest.raises(pending.ExpiredError):
        pending_uploads.find_upload(sessions, blobs, upload, expires)
    assert not state.path.exists()
    assert _rows(runtime, "pending_upload") == []
    assert pending_cleanup.expire(sessions, blobs, expires) == 0
    assert _rows(runtime, "draft") == []  # nothing left to come for it


def test_one_request_at_a_time_holds_an_upload(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    state.path.write_bytes(b"ciphertext")
    released = threading.Event()

    def hold() -> None:
        with pending_locks.locked(state.path, wait=0):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(pending.LockedError):
        with pending_locks.locked(state.path, wait=0.3):
            pass
    assert time.monotonic() - started >= 0.3  # it waited for the older one first
    assert not pending_uploads.drop_if_free(sessions, blobs, state)  # in use: nothing is removed
    assert state.path.exists()
    threading.Timer(0.2, released.set).start()
    with pending_locks.locked(state.path, wait=3) as fd:  # the older one let go meanwhile
        pending_uploads.drop(sessions, blobs, state)
        assert os.fstat(fd).st_size == 0  # given back to the pool, emptied
    assert not state.path.exists()
    holder.join()
    with pytest.raises(pending.UnknownError):
        with pending_locks.locked(state.path, wait=0):
            pass


def test_a_waiting_request_notices_that_the_file_was_removed_meanwhile(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    state = pending_uploads.find_upload(sessions, blobs, upload, DAY)
    outcome: list[BaseException] = []

    def wait_then_try() -> None:
        try:
            with pending_locks.locked(state.path, wait=3):
                pass
        except pending.PendingError as error:
            outcome.append(error)

    with pending_locks.locked(state.path, wait=0):
        waiter = threading.Thread(target=wait_then_try)
        waiter.start()
        time.sleep(0.2)
        pending_uploads.drop(sessions, blobs, state)  # back to the pool, under another name
    waiter.join()
    assert [type(e) for e in outcome] == [pending.UnknownError]


def test_start_up_tidy_removes_orphans_and_expired_uploads_but_not_live_or_busy_ones(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    live_draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    live, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, live_draft, 100, DAY)
    old_draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY - timedelta(days=2))
    old, _ = pending_uploads.add_upload(
        sessions, blobs, LIMITS, old_draft, 100, DAY - timedelta(days=2)
    )
    old_path = pending_uploads.find_upload(sessions, blobs, old, DAY - timedelta(days=1)).path
    orphans = [blobs.partial / f"20261121-{i:032x}" for i in range(2)]
    for orphan in orphans:  # what a lost runtime store leaves
        orphan.write_bytes(b"ciphertext")
    with pending_locks.locked(orphans[1], wait=0):  # a request still using it
        assert pending_cleanup.tidy(sessions, blobs, DAY) == 2
    assert not old_path.exists()
    assert not orphans[0].exists()
    assert orphans[1].exists()
    assert pending_uploads.find_upload(sessions, blobs, live, DAY).offset() == 0
    assert len(_rows(runtime, "pending_upload")) == 1
    assert len(_rows(runtime, "draft")) == 1


def test_the_daily_purge_goes_by_the_expiry_day_in_the_name_alone(
    sessions: sessionmaker[Session], blobs: BlobStore, tmp_path: Path
) -> None:
    draft, expires = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)
    path = pending_uploads.find_upload(sessions, blobs, upload, DAY).path
    junk = blobs.partial / "not-ours"
    junk.write_bytes(b"x")
    (blobs.partial / "a-folder").mkdir()
    # the purge runs in another process, which has no runtime store at all
    store = BlobStore(blobs.root)
    assert pending_cleanup.purge_files(store, expires - timedelta(days=1)) == 1
    assert path.exists()
    assert not junk.exists()
    with pending_locks.locked(path, wait=0):
        assert pending_cleanup.purge_files(store, expires) == 0  # in use: the next run takes it
    assert pending_cleanup.purge_files(store, expires) == 1
    assert not path.exists()


def test_stored_drafts_forget_their_uploads_and_keep_only_a_receipt_hash(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    draft_id, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    uploads = [
        pending_uploads.add_upload(sessions, blobs, LIMITS, draft_id, 100, DAY)[0] for _ in "ab"
    ]
    draft = pending_drafts.find_draft(sessions, draft_id, DAY)
    assert set(pending_uploads.uploads_of(sessions, blobs, draft)) == {
        pending.key_of(u) for u in uploads
    }
    left = pending_drafts.mark_stored(sessions, blobs, draft, "ab" * 32, 2)
    assert {state.key for state in left} == {pending.key_of(u) for u in uploads}
    assert _rows(runtime, "pending_upload") == []
    stored = pending_drafts.find_draft(sessions, draft_id, DAY)
    assert (stored.receipt, stored.stored_parts) == ("ab" * 32, 2)
    assert replace(stored, receipt=None, stored_parts=None) == draft


def test_a_draft_is_marked_stored_once_and_a_second_mark_changes_nothing(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    draft_id, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    draft = pending_drafts.find_draft(sessions, draft_id, DAY)
    pending_uploads.add_upload(sessions, blobs, LIMITS, draft_id, 100, DAY)
    assert len(pending_drafts.mark_stored(sessions, blobs, draft, "ab" * 32, 1)) == 1
    with pytest.raises(pending.FinishedError):
        pending_drafts.mark_stored(sessions, blobs, draft, "cd" * 32, 3)  # a finish that lost
    stored = pending_drafts.find_draft(sessions, draft_id, DAY)
    assert (stored.receipt, stored.stored_parts) == ("ab" * 32, 1)


def test_runtime_rows_hold_days_never_times(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, pending.today())
    for _ in range(2):
        upload, _ = pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 200, pending.today())
        state = pending_uploads.find_upload(sessions, blobs, upload, pending.today())
        pending_uploads.set_checksum_from(sessions, state, 0)
    state.path.write_bytes(b"x" * 10)
    pending_uploads.settle(sessions, state, 10)  # its first bytes: the lapse time goes
    now = time.time()
    for table in ("draft", "pending_upload"):
        for row in _rows(runtime, table):
            for value in row:
                if isinstance(value, int):
                    assert not abs(value - now) < 3 * 86_400, f"{table}: {value} is a moment"
                    assert not abs(value / 1000 - now) < 3 * 86_400, f"{table}: {value} in ms"
                if isinstance(value, str) and ":" in value:
                    raise AssertionError(f"{table}: {value!r} looks like a time of day")


# --- locks of drafts ------------------------------------------------------------------


def _try_in_thread(target: object) -> list[BaseException]:
    """Run ``target`` in another thread (flock is per open file, not per thread); its errors."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()  # type: ignore[operator]
        except pending.PendingError as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return errors


def test_one_request_at_a_time_holds_a_draft(tmp_path: Path) -> None:
    folder = tmp_path / "draft-locks"
    key = pending.key_of("a" * 32)

    def other() -> None:
        with pending_locks.draft_lock(folder, key, wait=0.2):
            pass

    with pending_locks.draft_lock(folder, key, wait=0):
        errors = _try_in_thread(other)
    assert [type(e) for e in errors] == [pending.LockedError]
    assert _try_in_thread(other) == []  # let go: free again
    assert oct((folder / key).stat().st_mode & 0o777) == "0o600"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_at_most_two_patches_send_to_one_draft_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "draft-locks"
    mine, theirs = pending.key_of("a" * 32), pending.key_of("b" * 32)

    def third() -> None:
        with pending_locks.patch_slot(folder, mine, wait=0.2):
            pass

    def elsewhere() -> None:
        with pending_locks.patch_slot(folder, theirs, wait=0):
            pass

    with ExitStack() as stack:
        for _ in range(pending.PATCHES_PER_DRAFT):
            stack.enter_context(pending_locks.patch_slot(folder, mine, wait=0))
        assert [type(e) for e in _try_in_thread(third)] == [pending.LockedError]
        assert _try_in_thread(elsewhere) == []  # another draft is not held up
    assert _try_in_thread(third) == []


def test_lock_files_of_drafts_that_are_gone_are_removed_unless_held(
    sessions: sessionmaker[Session], blobs: BlobStore, runtime: RuntimeStore
) -> None:
    live, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    gone, expires = pending_drafts.open_draft(sessions, LIMITS, DAY - timedelta(days=2))
    held = pending.key_of(gone)
    for draft in (live, gone):
        with pending_locks.draft_lock(runtime.locks, pending.key_of(draft), wait=0):
            pass
        with pending_locks.patch_slot(runtime.locks, pending.key_of(draft), wait=0):
            pass
    (runtime.locks / "not-ours").write_bytes(b"")
    with pending_locks.draft_lock(runtime.locks, held, wait=0):  # a request still has it
        pending_cleanup.expire(sessions, blobs, DAY, runtime.locks)
        assert sorted(os.listdir(runtime.locks)) == sorted(
            [pending.key_of(live), f"{pending.key_of(live)}.0", held]
        )
    pending_cleanup.expire(sessions, blobs, DAY, runtime.locks)
    assert sorted(os.listdir(runtime.locks)) == [
        pending.key_of(live), f"{pending.key_of(live)}.0"]  # fmt: skip
    assert expires <= DAY


def test_all_of_a_drafts_uploads_are_locked_or_none(
    sessions: sessionmaker[Session], blobs: BlobStore
) -> None:
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    states = [
        pending_uploads.find_upload(
            sessions,
            blobs,
            pending_uploads.add_upload(sessions, blobs, LIMITS, draft, 100, DAY)[0],
            DAY,
        )
        for _ in range(3)
    ]
    states[2].path.unlink()  # removed meanwhile: left out, not an error
    with ExitStack() as stack:
        assert pending_locks.lock_all(stack, states, wait=0) == sorted(
            states[:2], key=lambda s: s.path.name
        )
        assert not pending_uploads.drop_if_free(sessions, blobs, states[0])  # held
    with pending_locks.locked(states[1].path, wait=0), ExitStack() as stack:
        started = time.monotonic()
        with pytest.raises(pending.LockedError):
            pending_locks.lock_all(stack, states, wait=0.3)  # a PATCH still writes to one
        assert time.monotonic() - started < 1


# --- the partial files' times -----------------------------------------------------------


def test_a_new_partial_file_asks_for_a_restamp_so_its_change_time_dates_nothing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "data" / "blobs", restamp_after=3600)
    store.refill_spares(4)
    draft, _ = pending_drafts.open_draft(sessions, LIMITS, DAY)
    upload, _ = pending_uploads.add_upload(sessions, store, LIMITS, draft, 100, DAY)
    path = pending_uploads.find_upload(sessions, store, upload, DAY).path
    claimed = path.stat().st_ctime_ns  # the moment the upload was made
    time.sleep(0.05)
    store.flush()  # the restamp that was asked for runs now (the timer, in an hour)
    assert path.stat().st_ctime_ns > claimed
    assert (path.stat().st_mtime_ns % DAY_NS, path.stat().st_atime_ns % DAY_NS) == (0, 0)
