"""Proof-of-work for browser submissions and follow-up messages, identifying no one.

A flood of scripted reports would bury the real ones and the reviewers'
time. The portal cannot tell senders apart, and must not try, so it asks
every browser for a little work instead:

* ``GET /pow?for=submit`` (or ``followup``) returns a puzzle: a text naming
  its purpose, its expiry, the difficulty in bits and a random nonce,
  followed by an HMAC under a key derived from the portal's secret and the
  runtime store's epoch (``runtime.py``: puzzles from before the store was
  lost no longer verify). Nothing is stored when a puzzle is issued.
* The browser finds a counter such that SHA-256(puzzle ":" counter) starts
  with that many zero bits (WebCrypto's SHA-256; 2^bits tries on average)
  and sends ``puzzle:counter`` with the upload, in the form field ``proof``.
* The portal checks the MAC, the purpose, the expiry and the work. Before
  it stores anything the proof pays for, it *holds* the puzzle: an atomic
  insert of the puzzle's SHA-256 into the runtime store, which fails if
  another send holds or spent it, so that of many sends racing with one
  proof only one writes a blob or a row. Once stored, the hold becomes a
  spent puzzle, kept until the puzzle would have expired: a second use is
  refused. A send that fails gives its hold back, so that the browser's
  retry of a request that failed is not refused as a reuse. A hold left by
  a process that died (a worker killed mid-store) is taken over at once,
  and any hold lapses after :data:`HOLD` in any case. Spent puzzles carry
  their expiry and nothing else, holds their process and lapse time, in the
  volatile runtime store: these times date a submission, which is why they
  are kept only there.
* The work is checked against the difficulty of *now*, not only the one the
  puzzle names: puzzles cost nothing to fetch, so puzzles fetched while the
  portal was quiet and solved at leisure would otherwise buy a flood at the
  quiet price. A proof may fall ``SPEND_MARGIN_BITS`` (one) short of the
  current difficulty, so a browser whose puzzle was issued just before the
  load rose by a doubling is not refused; the stockpiler's gain is bounded
  by that one bit (half the work). A browser refused for want of work is
  told to send again, and then fetches a fresh puzzle.

Difficulty rises with load, not with who asks: when more than ``pow_burst``
puzzles were spent in the last hour, each doubling beyond that adds a bit
(at most six). At the default 16 bits a browser needs about two seconds
(``python -m bench.pow_browser``: 36,000 WebCrypto tries a second in
headless Chromium here); at the worst of a flood, about two minutes. Native
code is faster (six times, single-threaded), which is why the no-JavaScript
path and receipt lookups also have global budgets (``budget.py``), and the
onion service Tor's own defence.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Config
from portal.storage.runtime import ProofHold, SpentPuzzle, epoch

LIFETIME = timedelta(hours=1)  # a slow satellite upload must still arrive in time
MAX_EXTRA_BITS = 6  # at the default 16 bits, about two minutes in a browser at worst
PURPOSES = ("submit", "followup")
#: how far short of the current difficulty a proof's work may fall (see above)
SPEND_MARGIN_BITS = 1
#: how long a send may hold a proof while it stores (its blobs, fsync'd, then its row)
HOLD = timedelta(minutes=3)
_VERSION = "p1"
_MAC_BYTES = 16
_PUZZLE = re.compile(
    r"p1\.(submit|followup)\.([0-9]{10})\.([0-9]{1,2})\.([0-9a-f]{32})\.([0-9a-f]{32})"
)
_COUNTER = re.compile(r"[0-9]{1,16}")


class ProofError(ValueError):
    """A proof of work is missing, malformed, forged, expired, spent or too weak."""


class SpentError(ProofError):
    """The proof's puzzle was spent already, by this very request's earlier send or another."""


class HeldError(ProofError):
    """Another send is using the proof's puzzle right now (:func:`hold`)."""


def _key(secret: bytes, store_epoch: bytes) -> bytes:
    label = b"cso-portal proof-of-work v1\x00" + store_epoch
    return hmac.new(secret, label, hashlib.sha256).digest()


def _mac(secret: bytes, store_epoch: bytes, body: str) -> str:
    mac = hmac.new(_key(secret, store_epoch), body.encode("ascii"), hashlib.sha256)
    return mac.digest()[:_MAC_BYTES].hex()


def leading_zero_bits(digest: bytes) -> int:
    """How many leading bits of ``digest`` are zero."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def current_bits(session: Session, config: Config, now: datetime | None = None) -> int:
    """The difficulty to ask for now: the base, plus a bit per doubling of the load.

    ``session`` is the runtime store's, as for :func:`issue`.
    """
    now = now or _now()
    spent = (
        session.scalar(
            select(func.count())
            .select_from(SpentPuzzle)
            .where(SpentPuzzle.expires_at > _seconds(now))
        )
        or 0
    )
    if spent < config.pow_burst:
        return config.pow_bits
    extra = min(MAX_EXTRA_BITS, int(math.log2(spent / config.pow_burst)) + 1)
    return min(config.pow_bits + extra, 32)


def issue(session: Session, config: Config, purpose: str, now: datetime | None = None) -> str:
    """A fresh puzzle for ``purpose`` at the current difficulty."""
    if purpose not in PURPOSES:
        raise ProofError("unknown purpose")
    now = now or _now()
    bits = current_bits(session, config, now)
    expires = _seconds(now + LIFETIME)
    body = f"{_VERSION}.{purpose}.{expires:010d}.{bits}.{secrets.token_hex(16)}"
    return f"{body}.{_mac(config.secret_key, epoch(session), body)}"


def solve(puzzle: str, bits: int) -> str:
    """Find a proof for ``puzzle`` (what the browser does; used by tests and tools)."""
    for counter in range(2**40):
        proof = f"{puzzle}:{counter}"
        if leading_zero_bits(hashlib.sha256(proof.encode("ascii")).digest()) >= bits:
            return proof
    raise ProofError("no solution found")  # pragma: no cover - 2^40 tries


def puzzle_bits(puzzle: str) -> int:
    """The difficulty a well-formed puzzle asks for."""
    match = _PUZZLE.fullmatch(puzzle)
    if match is None:
        raise ProofError("malformed puzzle")
    return int(match.group(3))


@dataclass(frozen=True)
class Ticket:
    """A proof that passed :func:`check`: the puzzle's digest and expiry, to be held."""

    digest: str
    expires: int


def check(
    sessions: sessionmaker[Session],
    config: Config,
    purpose: str,
    proof: str,
    now: datetime | None = None,
) -> Ticket:
    """Check ``proof`` for ``purpose`` without spending it; ProofError if refused.

    ``sessions`` are the runtime store's. The work must reach the difficulty
    the puzzle names and the current one less :data:`SPEND_MARGIN_BITS`, and
    the puzzle must not be spent yet. Nothing is written: the proof is spent
    by :func:`hold` and :func:`settle` around what it pays for, so that a
    request that fails, or a worker that dies, leaves the proof good for the retry.
    """
    now = now or _now()
    puzzle, _, counter = proof.rpartition(":")
    match = _PUZZLE.fullmatch(puzzle)
    if match is None or not _COUNTER.fullmatch(counter):
        raise ProofError("malformed proof")
    body = puzzle.rsplit(".", 1)[0]
    with sessions() as session:
        store_epoch = epoch(session)
    if not hmac.compare_digest(_mac(config.secret_key, store_epoch, body), match.group(5)):
        raise ProofError("forged puzzle")
    if match.group(1) != purpose:
        raise ProofError("puzzle issued for something else")
    expires = int(match.group(2))
    if expires <= _seconds(now):
        raise ProofError("expired puzzle")
    work = leading_zero_bits(hashlib.sha256(proof.encode("ascii")).digest())
    if work < int(match.group(3)):
        raise ProofError("not enough work")
    ticket = Ticket(hashlib.sha256(puzzle.encode("ascii")).hexdigest(), expires)
    with sessions() as session:
        if session.get(SpentPuzzle, ticket.digest) is not None:
            raise SpentError("puzzle already used")
        if work < current_bits(session, config, now) - SPEND_MARGIN_BITS:
            raise ProofError("not enough work for the current load")
    return ticket


@dataclass(frozen=True)
class Hold:
    """A checked proof this request holds (:func:`hold`): to be spent, or given back."""

    ticket: Ticket
    holder: str  # random: whose hold it is, so that nobody else's is spent or freed


def _holder_alive(pid: int) -> bool:
    """Whether the process that took a hold still runs (the store is one host's alone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - alive, but another user's
        return True
    return True


def hold(sessions: sessionmaker[Session], ticket: Ticket, now: datetime | None = None) -> Hold:
    """Reserve a checked puzzle for this request, before anything it pays for is stored.

    SpentError if it was spent meanwhile, HeldError if another send holds it.
    One transaction that starts with its write, so that SQLite's write lock
    orders racing sends: the first inserts the hold, the others find it. A
    hold whose lapse time has passed, or whose process is gone, is
    replaced. :func:`settle` spends it, :func:`release` gives it back.
    """
    now = now or _now()
    taken = Hold(ticket, secrets.token_hex(16))
    with sessions.begin() as session:
        session.execute(delete(ProofHold).where(ProofHold.until <= _seconds(now)))
        current = session.get(ProofHold, ticket.digest)
        if current is not None and _holder_alive(current.pid):
            raise HeldError("puzzle in use by another send")
        if current is not None:
            session.delete(current)
            session.flush()
        if session.get(SpentPuzzle, ticket.digest) is not None:
            raise SpentError("puzzle already used")
        session.add(
            ProofHold(
                digest=ticket.digest,
                holder=taken.holder,
                pid=os.getpid(),
                until=_seconds(now + HOLD),
            )
        )
        try:
            session.flush()
        except IntegrityError:  # pragma: no cover - the write lock orders holds
            raise HeldError("puzzle in use by another send") from None
    return taken


def settle(sessions: sessionmaker[Session], held: Hold, now: datetime | None = None) -> None:
    """Turn a hold into a spent puzzle, once what it paid for is stored.

    SpentError if another send spent the puzzle meanwhile (only possible
    if this hold lapsed or was taken over): the caller keeps one copy.
    """
    now = now or _now()
    ticket = held.ticket
    with sessions.begin() as session:
        session.execute(
            delete(ProofHold).where(
                ProofHold.digest == ticket.digest, ProofHold.holder == held.holder
            )
        )
        session.execute(delete(SpentPuzzle).where(SpentPuzzle.expires_at <= _seconds(now)))
        spent = session.get(SpentPuzzle, ticket.digest) is not None
        if not spent:
            session.add(SpentPuzzle(digest=ticket.digest, expires_at=ticket.expires))
    if spent:
        raise SpentError("puzzle already used")


def release(sessions: sessionmaker[Session], held: Hold) -> None:
    """Give a hold back: what it was to pay for was not stored, so the proof stays good."""
    with sessions.begin() as session:
        session.execute(
            delete(ProofHold).where(
                ProofHold.digest == held.ticket.digest, ProofHold.holder == held.holder
            )
        )


def spend(
    sessions: sessionmaker[Session],
    config: Config,
    purpose: str,
    proof: str,
    now: datetime | None = None,
) -> None:
    """Check, hold and settle at once: for tests and tools with nothing to store in between."""
    settle(sessions, hold(sessions, check(sessions, config, purpose, proof, now), now), now)
