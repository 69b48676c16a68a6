"""Faults of the host, not of the request: a full disk, a database that is down.

Each gets its own clear answer rather than a generic 500, and the reporter
is told the truth about what was kept (``app.py`` installs the answers):

* a full disk (the blob directory's, or the database's) is ``507
  Insufficient Storage``: nothing was stored, try later. Requests that
  would store a body are refused before it is read when the blob
  directory cannot hold it (``intake.require_room``);
* a database that cannot be reached is ``503`` with ``Retry-After``: the
  portal keeps running, and SQLAlchemy's ``pool_pre_ping`` (``db.py``)
  brings it back without a restart once the database is.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

#: room kept free beyond a request's body: the database's own writes need some
ROOM_MARGIN = 2 * 1024 * 1024
#: seconds a browser is asked to wait while the database cannot be reached
RETRY_AFTER = 30
DISK_FULL = _l(
    "Nothing was stored: the portal has no storage space left. Please try again later;"
    " your browser still holds what you wrote if you go back."
)
DATABASE_DOWN = _l(
    "The portal cannot reach its database right now, so it cannot take reports. Please try"
    " again in a few minutes: a report sent again is not stored twice."
)
#: SQLite's SQLITE_FULL, and PostgreSQL's SQLSTATE class 53100 disk_full
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


class StorageFullError(HTTPException):
    """A 507: the disk (or the portal user's quota) is full; nothing was stored."""

    code = 507
    portal_message = True
    description = DISK_FULL


class DatabaseDownError(ServiceUnavailable):
    """A 503 while the database cannot be reached; ``app.py`` adds ``Retry-After``."""

    portal_message = True
    description = DATABASE_DOWN


#: SQLite's primary result codes that pass: busy, locked, I/O error, cannot open, lock protocol
_SQLITE_TRANSIENT = frozenset({5, 6, 10, 14, 15})


def database_disk_full(error: DBAPIError) -> bool:
    """Whether the database refused a write for want of disk space."""
    original = error.orig
    if getattr(original, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(original, "sqlstate", None) == _PG_DISK_FULL


def database_unreachable(error: DBAPIError) -> bool:
    """Whether ``error`` says the database is down or the connection to it was lost.

    SQLite's errors of a locked, busy or unreadable file count too: like a
    server that is down, they pass, and the answer is to send again. Its other
    operational errors (a table missing, say) do not pass: they are faults.
    """
    code = getattr(error.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_TRANSIENT
    return isinstance(error, (OperationalError, InterfaceError)) or bool(
        error.connection_invalidated
    )
