"""Bring the blob directory and the database back into step after a crash.

A submission is stored in two steps: its blobs are committed to files, then
its row to the database (``portal/web/intake_store.py``). A process killed between
the two leaves *orphan* blobs, files no row names; one killed while an
upload streamed in leaves a temporary ``.incoming-*`` file. Neither can be
read by anyone, but both fill the disk and are ciphertext kept for no one.

:func:`reconcile` finds both and removes them, without ever touching work in
progress (``portal/storage/blob_locks.py`` explains the locks):

* orphans are looked for only while holding the blob directory's lock
  alone, which every store holds shared from its first blob until its row
  is committed; a blob without a row then is one no live request will name;
* a temporary file goes only if no process holds its lock and nothing has
  been written to it for ``temp_grace``.

It runs when each worker of the portal starts (``portal/web/app.py``), in the
daily ``portal purge``, and, counting only, in ``portal doctor``. It also
counts the opposite fault, rows whose blob file is missing, which it cannot
repair: a report lost that only a backup can bring back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.storage.blobs import BlobStore
from portal.storage.disk import sync_directory
from portal.storage.models import Part, Reply

#: how long :func:`reconcile` waits for stores in progress to let go of the blob directory
LOCK_WAIT = 10.0


@dataclass(frozen=True)
class Reconciled:
    """What a reconcile found (and, unless it was a dry run, removed)."""

    orphan_blobs: int
    stale_temps: int
    missing_blobs: int
    #: False when stores kept the blob directory's lock for longer than the wait:
    #: orphans were then not looked for (a later run will)
    checked_orphans: bool = True

    def line(self) -> str:
        """One line of counts of what is (or would be) removed, naming nothing."""
        text = f"{self.orphan_blobs} orphan blob(s), {self.stale_temps} unfinished upload(s)"
        if not self.checked_orphans:
            text += " (orphans not looked for: stores in progress held the lock)"
        return text


def referenced_blobs(session: Session) -> set[str]:
    """Every blob name a row of the database points at: report parts and replies."""
    names = set(session.scalars(select(Part.blob)))
    names.update(session.scalars(select(Reply.blob).where(Reply.blob.is_not(None))))
    return names


def reconcile(
    sessions: sessionmaker[Session],
    store: BlobStore,
    *,
    temp_grace: timedelta = timedelta(0),
    wait: float = LOCK_WAIT,
    dry_run: bool = False,
) -> Reconciled:
    """Remove orphan blobs and abandoned temporary files; return the counts.

    With ``dry_run`` nothing is removed and the counts say what would go.
    A database that cannot be reached raises (SQLAlchemy's errors) before
    anything is removed.
    """
    stale = store.clean_incomplete(temp_grace, dry_run=dry_run)
    with store.exclusive(wait) as alone:
        if not alone:
            with sessions() as session:
                missing = len(referenced_blobs(session) - store.blob_names())
            return Reconciled(0, stale, missing, checked_orphans=False)
        with sessions() as session:
            named = referenced_blobs(session)
        present = store.blob_names()
        orphans = sorted(present - named)
        if not dry_run:
            for name in orphans:
                store.path(name).unlink(missing_ok=True)
    if orphans and not dry_run:
        store.stamp_directories()
        sync_directory(store.root)
    return Reconciled(len(orphans), stale, len(named - present))
