"""Room for the few requests that take seconds: exports, the voyage brief, its PDF.

A member is trusted to read, not to tie up the service: one STIX bundle of
the whole archive takes about ten seconds of a worker's time, and gunicorn's
threads share one interpreter lock. So each worker lets each member run one
heavy request at a time, and runs at most :data:`SLOTS` at once in all,
leaving its other threads to ordinary pages. A request that finds no room is
answered 429 with ``Retry-After`` at once, before any work; it is never
queued, since a queue would only hold the thread it was meant to free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app
from werkzeug.exceptions import TooManyRequests

from incident_db.web import sessions

#: heavy requests a worker runs at once (of its 8 threads by default)
SLOTS = 2
RETRY_AFTER_SECONDS = 10

View = TypeVar("View", bound=Callable[..., Any])

_setup = threading.Lock()


class _Running:
    """One application's heavy requests in this worker: member id -> running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: set[int] = set()


def _running() -> _Running:
    extensions = current_app.extensions["incident_db"]
    with _setup:
        return extensions.setdefault("heavy", _Running())  # type: ignore[no-any-return]


class Busy(TooManyRequests):
    """No room for another heavy request now; says when to try again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=RETRY_AFTER_SECONDS)


def take() -> Callable[[], None]:
    """Take a heavy slot for the signed-in member; return the function that gives it back.

    Calling it more than once is harmless; a streamed answer calls it when its
    last piece has gone and again when it is closed (one that never started is
    only closed).
    """
    member_id = sessions.member().id
    running = _running()
    with running.lock:
        if member_id in running.members:
            raise Busy(
                "You already have an export or a brief being made. "
                "Wait for it to finish, then try again."
            )
        if len(running.members) >= SLOTS:
            raise Busy("The service is making other exports and briefs. Try again in a moment.")
        running.members.add(member_id)
    released = threading.Event()

    def release() -> None:
        if released.is_set():
            return
        released.set()
        with running.lock:
            running.members.discard(member_id)

    return release


def heavy(view: View) -> View:
    """Run ``view`` in a heavy slot (for views that build their whole answer before returning)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        release = take()
        try:
            return view(*args, **kwargs)
        finally:
            release()

    return limited  # type: ignore[return-value]
