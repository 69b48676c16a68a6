"""What a request must pass before the intake stores anything, and the errors it draws.

The intake's routes (``intake.py``, ``plain_intake.py``, ``followup.py``,
``resumable.py``, ``tus.py``) share these: the key directory in force
(503 without one), a database that answers (503 with ``Retry-After``), the
proof of work (400 if missing, spent or in use by another send) and the global budgets of the paths
that skip it (429). Each refusal's wording is written for the reporter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import BadRequest, HTTPException, ServiceUnavailable, TooManyRequests

from portal.web import budget, pow
from portal.web.faults import DatabaseDownError, database_unreachable
from portal.web.reviewers import CurrentDirectory, NoDirectoryError


class RefusedError(BadRequest):
    """A 400 whose description is written for the reporter."""

    portal_message = True


class BusyError(TooManyRequests):
    """A 429: a global budget is spent; the description is written for the reporter."""

    portal_message = True


def portal_extensions() -> dict[str, Any]:
    """What create_app set up: config, sessions, blob store, key directory cache."""
    extensions: dict[str, Any] = current_app.extensions["portal"]
    return extensions


def current_directory() -> CurrentDirectory:
    """The verified key directory now in force, or 503 (logged) when there is none."""
    cache = portal_extensions()["directory"]
    try:
        if cache is None:
            raise NoDirectoryError("no organisation key is configured")
        return cache.current()  # type: ignore[no-any-return]
    except NoDirectoryError as error:
        current_app.logger.error("cannot accept reports: %s", error)
        raise ServiceUnavailable() from None


PROOF_REFUSED = _l(
    "Nothing was stored: the anti-spam check was missing, expired, already used, "
    "or too easy for the traffic the portal has now. Please send again."
)
PROOF_IN_USE = _l(
    "Nothing was stored: this anti-spam check is being used by another send right now. "
    "Please send again."
)


def require_database() -> None:
    """503 with ``Retry-After`` unless the database answers (a pooled connection, pinged)."""
    try:
        with portal_extensions()["engine"].connect():
            pass
    except DBAPIError as error:
        if database_unreachable(error):
            raise DatabaseDownError() from None
        raise


def check_proof(purpose: str) -> pow.Ticket:
    """The request's proof of work for ``purpose``, checked but not held; ProofError if bad."""
    runtime = portal_extensions()["runtime"].sessions
    return pow.check(runtime, portal_extensions()["config"], purpose, request.form.get("proof", ""))


def checked_proof(purpose: str) -> pow.Ticket:
    """:func:`check_proof`, or 400 if the proof is bad or spent."""
    try:
        return check_proof(purpose)
    except pow.ProofError:
        raise RefusedError(PROOF_REFUSED) from None


@contextmanager
def proof_held(ticket: pow.Ticket) -> Iterator[pow.Hold]:
    """Hold a checked proof for the block, which stores what it pays for; 400 if taken.

    The hold is made before anything is written, so that of the sends
    racing with one proof only one stores anything; the others are refused
    here. If the block fails (any 4xx, 5xx or a lost connection) the hold is
    given back, so that the browser's retry is not refused as a reuse. Once
    the block is done the caller spends it with :func:`settle_proof`.
    """
    runtime = portal_extensions()["runtime"].sessions
    try:
        held = pow.hold(runtime, ticket)
    except pow.HeldError:
        raise RefusedError(PROOF_IN_USE) from None
    except pow.ProofError:
        raise RefusedError(PROOF_REFUSED) from None
    try:
        yield held
    except BaseException:
        try:
            pow.release(runtime, held)
        except Exception as failure:  # the hold lapses on its own (pow.HOLD)
            current_app.logger.error("a proof could not be given back: %s", type(failure).__name__)
        raise


def settle_proof(held: pow.Hold) -> None:
    """Spend a held proof once what it paid for is stored; SpentError if taken meanwhile.

    Any other failure of the runtime store is logged and passed over: what
    was sent is stored, and the sender must hear so. The hold then lapses
    after ``pow.HOLD``, while its process lives.
    """
    try:
        pow.settle(portal_extensions()["runtime"].sessions, held)
    except pow.SpentError:
        raise
    except Exception as failure:
        current_app.logger.error("a proof could not be spent: %s", type(failure).__name__)


def spend_unused(ticket: pow.Ticket) -> None:
    """Spend a checked proof at once, unless another send holds or spent it.

    For a send answered without storing anything because its first send
    stored it already, and died before spending the proof: the proof is
    spent now. Failures of the runtime store are logged and passed over.
    """
    runtime = portal_extensions()["runtime"].sessions
    try:
        pow.settle(runtime, pow.hold(runtime, ticket))
    except pow.ProofError:
        pass  # spent or in use: either way it buys nothing more
    except Exception as failure:
        current_app.logger.error("a proof could not be spent: %s", type(failure).__name__)


def require_budget(name: str, per_hour: int, message: str) -> None:
    """Draw on the global budget ``name``, or answer 429 with ``message``."""
    if not budget.take(portal_extensions()["runtime"].sessions, name, per_hour):
        raise BusyError(message)


@contextmanager
def budget_unless_refused(name: str, per_hour: int, message: str) -> Iterator[None]:
    """Draw on budget ``name`` for the block, and give the token back if it refuses.

    For a check that can only be made after drawing (is a follow-up's
    receipt right?): a request refused there (4xx) stores nothing, so it
    spends nothing. A server fault keeps the token; the work was done.
    """
    require_budget(name, per_hour, message)
    try:
        yield
    except HTTPException as error:
        if error.code is not None and error.code < 500:
            budget.give_back(portal_extensions()["runtime"].sessions, name, per_hour)
        raise
