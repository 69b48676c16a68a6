"""What the reviewer asks of the queue: its filters, and search text made safe for FTS5.

Every filter arrives in a URL the reviewer can edit, so each is checked here
and a bad one is a :class:`DeskQueryError` with a one-line message, never an
SQL error. Search text never reaches ``MATCH`` as FTS5 syntax: each word is
quoted as a phrase (so ``OR``, ``NEAR(``, ``col:``, ``*`` and ``^`` are only
words), the words must all occur, and the last one matches as a prefix, so
results narrow while the reviewer is still typing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date

from reviewer_tool.errors import ReviewerError

#: the queue's statuses: "new" until a reviewer triages the report
STATUSES = ("new", "confirmed", "unconfirmed", "rejected")
#: the assignee filter's value for "nobody": a directory label is never empty, so
#: this word is taken to mean nobody (see doubts in the desk's notes)
UNASSIGNED = "unassigned"
#: a search uses at most this many words, each cut to this many characters
MAX_TERMS = 12
MAX_TERM = 64
#: no filter value the desk offers is longer (labels: 40; categories: 200 at import)
MAX_VALUE = 200
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]{1,9}")


class DeskQueryError(ReviewerError):
    """A filter or page in the address that the queue cannot use."""


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters; None (or False, or "") means "any"."""

    status: str | None = None
    category: str | None = None
    received_from: str | None = None  # YYYY-MM-DD, inclusive
    received_to: str | None = None  # YYYY-MM-DD, inclusive
    unread: bool = False  # only reports with follow-ups not shown yet
    label: str | None = None
    assignee: str | None = None  # a reviewer's label, or UNASSIGNED
    q: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilters:
        """The filters of a query string; raises :class:`DeskQueryError` for a bad one."""
        status = _value(args, "status")
        if status is not None and status not in STATUSES:
            raise DeskQueryError("status must be one of: " + ", ".join(STATUSES))
        received_from = _day(args, "from", "received from")
        received_to = _day(args, "to", "received to")
        if received_from and received_to and received_from > received_to:
            raise DeskQueryError("'received from' is after 'received to'")
        q = args.get("q", "")
        if len(q) > 1000:
            raise DeskQueryError("the search text is too long (at most 1,000 characters)")
        return cls(
            status=status,
            category=_value(args, "category"),
            received_from=received_from,
            received_to=received_to,
            unread=args.get("unread", "") not in ("", "0"),
            label=_value(args, "label"),
            assignee=_value(args, "assignee"),
            q=q.strip(),
        )

    def as_args(self) -> dict[str, str]:
        """The query-string arguments that give these filters back (empty ones left out)."""
        names = {"received_from": "from", "received_to": "to"}
        found: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is True:
                found[names.get(name, name)] = "1"
            elif value:
                found[names.get(name, name)] = str(value)
        return found

    def any(self) -> bool:
        """Whether any filter or search narrows the queue."""
        return bool(self.as_args())


def _value(args: Mapping[str, str], name: str) -> str | None:
    value = args.get(name, "")
    if len(value) > MAX_VALUE:
        raise DeskQueryError(f"the {name} filter is too long")
    return value or None


def _day(args: Mapping[str, str], name: str, what: str) -> str | None:
    value = args.get(name, "")
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise DeskQueryError(f"{what}: not a date (YYYY-MM-DD)") from None


def whole_number(value: str) -> int | None:
    """``value`` as a number if it is one to nine ASCII digits, else None.

    ``str.isdigit`` is not the test: it takes "²" and other Unicode digits,
    which ``int`` then refuses (and ``int`` refuses more than 4,300 digits).
    """
    return int(value) if _NUMBER.fullmatch(value) else None


def fts_query(text: str) -> str | None:
    """An FTS5 query that finds every word of ``text``, the last as a prefix; None if no word.

    A word is a run of characters between spaces that holds at least one
    letter or digit; FTS5's own tokenizer splits it further inside its
    quotes (``"bow-thruster"`` is the phrase "bow thruster"). A double quote
    is doubled, which is how FTS5 escapes it inside a string: nothing the
    reviewer types can leave the quotes.
    """
    words = [word for word in text.split() if any(char.isalnum() for char in word)]
    if not words:
        return None
    phrases = ['"' + word[:MAX_TERM].replace('"', '""') + '"' for word in words[:MAX_TERMS]]
    phrases[-1] += "*"
    return " ".join(phrases)
