"""What every desk page works on: the workspace, the in-memory index, the start's token.

The application keeps one :class:`DeskState` in ``app.extensions["desk"]``;
blueprints reach it with :func:`current`. A page that changes a report calls
:meth:`DeskState.changed` with what it touched, so that the queue and the
search show the change on the next page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import current_app

from reviewer_tool.desk.index import DeskIndex
from reviewer_tool.workspace import Workspace


@dataclass
class DeskState:
    """The open workspace, its index, and the token every address starts with."""

    ws: Workspace
    index: DeskIndex
    token: str
    #: the server answers one request at a time; the lock keeps that true for any
    #: other thread that might touch the workspace or the index
    lock: threading.Lock = field(default_factory=threading.Lock)

    def changed(self, item_ids: Iterable[str]) -> None:
        """Re-read these reports (or the reports of these follow-up ids) into the index."""
        with self.lock:
            self.index.refresh(self.ws, list(item_ids))

    def rebuild(self) -> None:
        """Index the whole workspace again (after an import brought many reports)."""
        with self.lock:
            fresh = DeskIndex(self.ws)
            self.index.close()
            self.index = fresh


def current() -> DeskState:
    """The desk's state, from inside a request."""
    state: DeskState = current_app.extensions["desk"]
    return state
