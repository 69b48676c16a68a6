"""One-time form keys, and the receipt kept under them, for the no-JavaScript path.

A report sent without JavaScript answers ``303 See Other`` to ``/received``
(POST-redirect-GET), so that reloading the receipt page cannot post the
report again. On a link that drops, the 303 itself may be lost, so the
reporter presses Send again; that resend must store nothing more and must
still lead to the receipt. Three things make this work:

* **A one-time key in the form** (field ``once``): ``f1.<expiry day>.<nonce>.<MAC>``,
  made like the proof-of-work puzzles (``pow.py``): a random 128-bit nonce
  and an HMAC under a key derived from the portal's secret and the runtime
  store's epoch, so nothing is stored when a form is drawn. Keys from before
  the store was lost no longer verify (as puzzles); such a form is drawn
  again, filled, with a fresh key.
* **Its row in the runtime store** (``spent_form_key``), keyed by the key's
  SHA-256, never the key. Sending a report *spends* the key: the row says
  "storing" while the report is encrypted and committed, then "stored" with
  the receipt page's values sealed (AES-256-GCM) under a key derived (HKDF)
  from the one-time key itself. The server keeps only the key's hash, so it
  cannot open that row alone; whoever holds the form can. A report that is
  not stored after all gives its key back (the row goes). While "storing",
  the row holds the second it began, so that a worker killed half way
  (which never gives its key back) leaves a row that a later send may take
  over once :data:`STALE_SECONDS` have passed; "stored" rows hold no time.
* **The one-time key in the session cookie**, sealed (AES-256-GCM under a
  key derived from the portal's secret) with the last second it may be used:
  :data:`COOKIE_SECONDS` after the send, the least that still lets a slow
  link finish the redirect. ``/received`` opens the row with it, shows the
  receipt, clears the sealed receipt from the row and empties the session,
  so the receipt page is reached once: a reload, a replayed cookie or a
  later resend finds nothing to show and says the report was already
  received. A resend of a form whose receipt has not been shown yet gets
  the cookie again and goes to the receipt.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Boolean, Engine, Integer, LargeBinary, String, delete, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.schema import CreateIndex, CreateTable

from portal.storage.runtime import RuntimeBase, epoch

#: a key is good until the end of this many days after the day it was drawn:
#: a reporter may take a day over a report on board, with the form left open
KEY_DAYS = 2
#: how long the session may carry a sent form's key to ``/received``: the
#: redirect follows at once, but a satellite link may drop for minutes first
#: (and a resend of the form gets a fresh one)
COOKIE_SECONDS = 10 * 60
#: a row "storing" for longer than this was left by a worker that died:
#: storing a report takes seconds, and gunicorn kills a stuck worker long before
STALE_SECONDS = 10 * 60
SESSION_FIELD = "sent"
_KEY = re.compile(r"f1\.([0-9]{8})\.([0-9a-f]{32})\.([0-9a-f]{32})")
_NONCE_BYTES = 12


class FormKeyError(ValueError):
    """A one-time key is missing, malformed, forged, out of date, or its row is gone."""


class LostKeyError(FormKeyError):
    """A request's claim on a key no longer holds: another request stores with it."""


class SpentFormKey(RuntimeBase):
    """A one-time form key spent on a report; kept until its expiry day."""

    __tablename__ = "spent_form_key"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the key
    expires_on: Mapped[int] = mapped_column(Integer, index=True)  # proleptic ordinal of the day
    #: False while the report is being stored, True once it is
    stored: Mapped[bool] = mapped_column(Boolean, default=False)
    #: while storing only: the second it began (seconds since the epoch); then NULL
    storing_since: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: once stored and until shown: the receipt page's values, sealed under the key
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class KeyState(enum.Enum):
    """What the runtime store knows of a one-time key."""

    FREE = "free"  # never spent, given back, or left storing by a worker that died
    STORING = "storing"  # a report is being stored with it now
    STORED = "stored"  # its report is stored and its receipt not shown yet
    SHOWN = "shown"  # its report is stored and its receipt was shown


#: runtime stores whose table is known to exist (runtime.py makes the tables it knows
#: of when the store opens; this module may be imported after that)
_READY: weakref.WeakSet[Engine] = weakref.WeakSet()
_READY_LOCK = threading.Lock()


def _ready(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """``sessions``, once the runtime store has this module's table (made if missing)."""
    engine = sessions.kw["bind"]
    with _READY_LOCK:
        if engine not in _READY:
            table = RuntimeBase.metadata.tables[SpentFormKey.__tablename__]
            with engine.begin() as connection:  # safe to repeat, from any worker
                connection.execute(CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    connection.execute(CreateIndex(index, if_not_exists=True))
            _READY.add(engine)
    return sessions


def _today() -> date:
    return datetime.now(UTC).date()


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _mac(secret: bytes, store_epoch: bytes, body: str) -> str:
    key = hmac.new(secret, b"cso-portal one-time form key v1\x00" + store_epoch, hashlib.sha256)
    return hmac.new(key.digest(), body.encode("ascii"), hashlib.sha256).digest()[:16].hex()


def issue(sessions: sessionmaker[Session], secret: bytes, today: date | None = None) -> str:
    """A fresh one-time key for a form drawn now."""
    expires = (today or _today()) + timedelta(days=KEY_DAYS)
    body = f"f1.{expires:%Y%m%d}.{secrets.token_hex(16)}"
    with sessions() as session:
        store_epoch = epoch(session)
    return f"{body}.{_mac(secret, store_epoch, body)}"


@dataclass(frozen=True)
class FormKey:
    """A one-time key that verified: the key itself, its digest (what is stored), its expiry."""

    text: str = field(repr=False)  # a secret: it opens the receipt sealed in its row
    digest: str
    expires_on: date


def check(
    sessions: sessionmaker[Session], secret: bytes, key: str, today: date | None = None
) -> FormKey:
    """The verified key ``key``, or :class:`FormKeyError`; spent or not is not asked here."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise FormKeyError("malformed form key")
    with sessions() as session:
        store_epoch = epoch(session)
    body = key.rsplit(".", 1)[0]
    if not hmac.compare_digest(_mac(secret, store_epoch, body), match.group(3)):
        raise FormKeyError("forged form key, or one from before the runtime store was lost")
    try:
        expires = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        raise FormKeyError("malformed form key") from None
    if expires < (today or _today()):
        raise FormKeyError("expired form key")
    return FormKey(key, hashlib.sha256(key.encode("ascii")).hexdigest(), expires)


def spend(
    sessions: sessionmaker[Session],
    key: FormKey,
    today: date | None = None,
    now: float | None = None,
) -> int | None:
    """Mark ``key`` as storing a report now; None if it is spent already.

    Returns the request's claim (the second it began), which
    :func:`mark_stored` and :func:`give_back` must name: a row left
    "storing" for longer than :data:`STALE_SECONDS` was left by a worker
    that died or stalled, and is taken over so that the report is not lost;
    should the first request still finish, its claim no longer holds, and it
    undoes what it stored (:class:`LostKeyError`).
    """
    sessions = _ready(sessions)
    started = _now(now)
    try:
        with sessions.begin() as session:
            today_number = (today or _today()).toordinal()
            session.execute(delete(SpentFormKey).where(SpentFormKey.expires_on < today_number))
            session.add(
                SpentFormKey(
                    digest=key.digest,
                    expires_on=key.expires_on.toordinal(),
                    stored=False,
                    storing_since=started,
                )
            )
    except IntegrityError:
        with sessions.begin() as session:
            taken = session.execute(
                update(SpentFormKey)
                .where(
                    SpentFormKey.digest == key.digest,
                    SpentFormKey.stored.is_(False),
                    SpentFormKey.storing_since < started - STALE_SECONDS,
                )
                .values(storing_since=started)
            )
        return started if taken.rowcount == 1 else None  # type: ignore[attr-defined]
    return started


def state(sessions: sessionmaker[Session], key: FormKey, now: float | None = None) -> KeyState:
    """What is known of ``key`` now (see :class:`KeyState`)."""
    with _ready(sessions)() as session:
        row = session.get(SpentFormKey, key.digest)
        if row is None:
            return KeyState.FREE
        if row.stored:
            return KeyState.STORED if row.receipt is not None else KeyState.SHOWN
        if (row.storing_since or 0) < _now(now) - STALE_SECONDS:
            return KeyState.FREE
        return KeyState.STORING


def give_back(sessions: sessionmaker[Session], key: FormKey, claim: int | None = None) -> None:
    """Unspend ``key``: the report it was spent for was not stored after all.

    With ``claim`` (from :func:`spend`), only while that claim still holds.
    """
    with _ready(sessions).begin() as session:
        mine = SpentFormKey.storing_since == claim if claim is not None else true()
        session.execute(
            delete(SpentFormKey).where(
                SpentFormKey.digest == key.digest, SpentFormKey.stored.is_(False), mine
            )
        )


def mark_stored(
    sessions: sessionmaker[Session], key: FormKey, shown: dict[str, Any], claim: int | None = None
) -> None:
    """Record that ``key``'s report is stored, with the receipt page's values ``shown``.

    They are sealed under the key: only a request carrying it can open them.
    :class:`FormKeyError` if the key's row is gone (the runtime store was lost);
    :class:`LostKeyError` if ``claim`` no longer holds (another request took the
    key over, or stored with it).
    """
    sealed = _seal(_row_cipher(key), _row_context(key), json.dumps(shown).encode("utf-8"))
    with _ready(sessions).begin() as session:
        result = session.execute(
            update(SpentFormKey)
            .where(
                SpentFormKey.digest == key.digest,
                SpentFormKey.stored.is_(False),
                SpentFormKey.storing_since == claim if claim is not None else true(),
            )
            .values(stored=True, storing_since=None, receipt=sealed)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            if session.get(SpentFormKey, key.digest) is not None:
                raise LostKeyError("another request holds the form key now")
            raise FormKeyError("the form key's record is gone")


def take_receipt(sessions: sessionmaker[Session], key: FormKey) -> dict[str, Any] | None:
    """The receipt page's values stored under ``key``, once: they are cleared as they are taken.

    None if there are none (not stored, already shown) or they do not open
    with ``key`` (then they stay). Two requests at once cannot both have
    them: only the one whose update clears the row's sealed value gets them.
    """
    sessions = _ready(sessions)
    with sessions() as session:  # read, then clear only that value: no write lock held meanwhile
        row = session.get(SpentFormKey, key.digest)
        sealed = row.receipt if row is not None and row.stored else None
    if sealed is None:
        return None
    plaintext = _open(_row_cipher(key), _row_context(key), sealed)
    if plaintext is None:
        return None
    with sessions.begin() as session:
        cleared = session.execute(
            update(SpentFormKey)
            .where(SpentFormKey.digest == key.digest, SpentFormKey.receipt == sealed)
            .values(receipt=None)
        )
    if cleared.rowcount != 1:  # type: ignore[attr-defined]
        return None  # another request took them first
    shown: dict[str, Any] = json.loads(plaintext)
    return shown


def _row_cipher(key: FormKey) -> AESGCM:
    """AES-256-GCM under a key derived from the one-time key (never stored)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"cso-portal receipt sealed under its form key v1",
    )
    return AESGCM(hkdf.derive(key.text.encode("ascii")))


def _row_context(key: FormKey) -> bytes:
    return b"spent_form_key\x00" + bytes.fromhex(key.digest)


def _seal(cipher: AESGCM, context: bytes, plaintext: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plaintext, context)


def _open(cipher: AESGCM, context: bytes, sealed: bytes) -> bytes | None:
    try:
        return cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        return None


# --- the sent form's key in the session ------------------------------------------------


def _session_cipher(secret: bytes) -> AESGCM:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"cso-portal sent form in session v2"
    )
    return AESGCM(hkdf.derive(secret))


def seal_for_session(secret: bytes, key: FormKey, now: float | None = None) -> str:
    """``key``, encrypted for the session cookie, good for :data:`COOKIE_SECONDS`."""
    plaintext = json.dumps({"key": key.text, "until": _now(now) + COOKIE_SECONDS})
    sealed = _seal(_session_cipher(secret), SESSION_FIELD.encode(), plaintext.encode("utf-8"))
    return base64.urlsafe_b64encode(sealed).decode("ascii")


def open_from_session(secret: bytes, sealed: Any, now: float | None = None) -> str | None:
    """The key :func:`seal_for_session` sealed, or None if damaged, forged or too old."""
    try:
        raw = base64.urlsafe_b64decode(str(sealed).encode("ascii"))
        plaintext = _open(_session_cipher(secret), SESSION_FIELD.encode(), raw)
        if plaintext is None:
            return None
        content = json.loads(plaintext)
        key, until = content["key"], content["until"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(key, str) or not isinstance(until, int) or until < _now(now):
        return None
    return key
