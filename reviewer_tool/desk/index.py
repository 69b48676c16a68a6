"""The desk's index of the queue: decrypted once at start, kept in memory only.

Filtering, sorting and searching 10,000 sealed reports cannot decrypt them
on every page, and the plaintext must never reach disk, so the desk builds
one SQLite database in memory when it opens (``:memory:``, with
``temp_store = MEMORY`` so that no sort or index spills to a temporary
file): a ``row`` table of what the queue shows and filters on, a ``label``
table, and an FTS5 table over each report's text, its identity section, its
conversation (the reporter's follow-ups and the replies) and the team's
labels, assignee and notes. The database goes when the process does.

After a change the desk calls :meth:`DeskIndex.refresh` with the reports it
touched; each is read from the workspace again and its rows replaced.

What the CSV export carries (:meth:`DeskIndex.csv_rows`) is chosen here:
structural and triage columns only, nothing a reporter wrote in their own
words (no place, no narrative, no identity value: a reporter may write a
ship's name anywhere), a category only if it is one of the form's, and
every cell that a spreadsheet would read as a formula made plain text first.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from incident_db.taxonomy import VOCABULARIES
from reviewer_tool.desk.search import STATUSES, UNASSIGNED, QueueFilters, fts_query
from reviewer_tool.vocabulary import IDENTITY_FIELDS
from reviewer_tool.workspace import Workspace

PER_PAGE = 50
#: how much of the narrative the queue shows
EXCERPT = 140
#: first characters that make a spreadsheet read a cell as a formula (or hide it);
#: the full-width forms too, which some spreadsheets fold to the ASCII ones
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_SCHEMA = """
CREATE TABLE row (
    n INTEGER PRIMARY KEY,          -- also the rowid of the report's text in `text`
    id TEXT NOT NULL UNIQUE,
    received_on TEXT NOT NULL,
    status TEXT NOT NULL,
    grade TEXT,
    category TEXT,
    place TEXT,
    language TEXT,
    attachments INTEGER NOT NULL,
    assignee TEXT,
    labels TEXT NOT NULL,           -- JSON list, for showing
    followups INTEGER NOT NULL,
    unread INTEGER NOT NULL,
    excerpt TEXT NOT NULL,
    replies INTEGER NOT NULL        -- counted with the follow-ups as messages
);
CREATE INDEX row_received ON row (received_on);
CREATE INDEX row_status ON row (status, received_on);
CREATE INDEX row_category ON row (category, received_on);
CREATE INDEX row_assignee ON row (assignee, received_on);
CREATE TABLE label (name TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (name, n)) WITHOUT ROWID;
CREATE VIRTUAL TABLE text USING fts5(
    report, identity, conversation, team, tokenize = 'unicode61 remove_diacritics 2'
);
"""
_COLUMNS = ("id, received_on, status, grade, category, place, language, attachments, assignee, "
            "labels, followups, unread, excerpt")  # fmt: skip
_INSERT_ROW = f"INSERT INTO row (n, {_COLUMNS}, replies) VALUES ({', '.join('?' * 15)})"  # noqa: S608
_CSV_COLUMNS = "id, received_on, status, grade, category, labels, assignee, followups, unread"
#: the CSV export's columns: the queue's, less the place, the narrative and the identity
CSV_HEADER = tuple(_CSV_COLUMNS.split(", "))
_ORPHANS = "SELECT count(*) FROM followup WHERE thread_id NOT IN (SELECT id FROM item)"
_ORDER = "ORDER BY received_on DESC, n DESC"
#: the categories the report form offers: any other is exported as UNLISTED
_CATEGORIES = frozenset(VOCABULARIES["category"])
UNLISTED = "unlisted"


@dataclass(frozen=True)
class QueueRow:
    """One report as the queue lists it."""

    id: str
    received_on: str
    status: str
    grade: str | None
    category: str | None
    place: str | None
    language: str | None
    attachments: int
    assignee: str | None
    labels: tuple[str, ...]
    followups: int
    unread: int
    excerpt: str


@dataclass(frozen=True)
class QueryPage:
    """One page of the filtered queue, newest first."""

    rows: list[QueueRow]
    total: int  # reports matching the filters, on every page
    page: int  # 1-based, after clamping to the last page
    pages: int
    per_page: int


@dataclass
class _Thread:
    """A report's follow-ups as the index needs them."""

    count: int = 0
    unread: int = 0
    text: list[str] = field(default_factory=list)


def neutralise(value: object) -> object:
    """A CSV cell that no spreadsheet reads as a formula: text starting with one gets a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _strings(value: object) -> Iterator[str]:
    """The text in a report field's value (a string, or a list of choices)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def _team(summary: dict[str, Any], record: dict[str, Any]) -> tuple[list[str], str | None, str]:
    """Labels, assignee and the team's text, from the summary the team merge keeps."""
    team = record.get("team") or {}
    labels = summary.get("labels", team.get("labels")) or []
    labels = sorted({label for label in labels if isinstance(label, str)})
    assignee = summary.get("assignee", team.get("assignee"))
    assignee = assignee if isinstance(assignee, str) and assignee else None
    notes = [n.get("text") for n in team.get("notes") or () if isinstance(n, dict)]
    words = [*labels, *([assignee] if assignee else []), *(n for n in notes if isinstance(n, str))]
    return labels, assignee, "\n".join(words)


#: a report's row (without its n), its labels, and its four searchable texts
Indexed = tuple[tuple[Any, ...], list[str], tuple[str, str, str, str]]


def _texts(
    item_id: str, summary: dict[str, Any], record: dict[str, Any], thread: _Thread
) -> Indexed:
    """The row (without its n), labels and the four searchable texts of one report."""
    document = record.get("report") or {}
    fields = document.get("report") or {}
    report_text = [t for name, value in fields.items() for t in _strings(value)
                   if name not in IDENTITY_FIELDS]  # fmt: skip
    report_text += [a.get("name", "") for a in document.get("attachments") or ()
                    if isinstance(a, dict) and isinstance(a.get("name"), str)]  # fmt: skip
    identity = [t for value in (document.get("identity") or {}).values() for t in _strings(value)]
    replies = record.get("replies") or ()
    conversation = [*thread.text, *(t for r in replies if isinstance(r, dict)
                                    for t in _strings(r.get("message")))]  # fmt: skip
    labels, assignee, team_text = _team(summary, record)
    narrative = fields.get("narrative")
    excerpt = " ".join(narrative.split()) if isinstance(narrative, str) else ""
    if len(excerpt) > EXCERPT:  # cut mid-word: say so, or "wit" reads as a word
        excerpt = excerpt[:EXCERPT].rstrip() + "…"
    row = (
        item_id, summary.get("received_on") or record.get("received_on") or "",
        summary.get("status") or "new", summary.get("grade"), summary.get("category"),
        summary.get("place"), summary.get("language"), int(summary.get("attachments") or 0),
        assignee, json.dumps(labels, ensure_ascii=False), thread.count, thread.unread, excerpt,
        len(replies),
    )  # fmt: skip
    texts = ("\n".join(report_text), "\n".join(identity), "\n".join(conversation), team_text)
    return row, labels, texts


def _add_followup(threads: dict[str, _Thread], thread_id: str, summary: Any, record: Any) -> None:
    thread = threads.setdefault(thread_id, _Thread())
    thread.count += 1
    thread.unread += not summary.get("read")
    document = record.get("followup") or {}
    thread.text += _strings(document.get("message"))
    thread.text += (a["name"] for a in document.get("attachments") or ()
                    if isinstance(a, dict) and isinstance(a.get("name"), str))  # fmt: skip


class DeskIndex:
    """Every report of a workspace, decrypted into an in-memory SQLite with FTS5."""

    def __init__(self, ws: Workspace) -> None:
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute("PRAGMA temp_store = MEMORY")
        self.db.executescript(_SCHEMA)
        #: follow-ups whose report is not in the workspace (not shown in the queue)
        self.orphans = 0
        self._build(ws)

    @property
    def reports(self) -> int:
        """How many reports the index holds."""
        return int(self.db.execute("SELECT count(*) FROM row").fetchone()[0])

    @property
    def messages(self) -> int:
        """How many conversation messages (follow-ups and replies) their threads hold."""
        found = self.db.execute("SELECT coalesce(sum(followups + replies), 0) FROM row")
        return int(found.fetchone()[0])

    # --- building -------------------------------------------------------------------

    def _build(self, ws: Workspace) -> None:
        """Decrypt everything once and insert it in a few large statements."""
        threads: dict[str, _Thread] = {}
        # straight from the workspace's tables: one pass each, in import order
        for _, thread_id, summary, record in ws.db.execute(
            "SELECT id, thread_id, summary, record FROM followup ORDER BY rowid"
        ):
            _add_followup(threads, thread_id, ws.unseal_json(summary), ws.unseal_json(record))
        rows, labels, texts = [], [], []
        for n, (item_id, summary, record) in enumerate(
            ws.db.execute("SELECT id, summary, record FROM item ORDER BY rowid"), start=1
        ):
            row, names, text = _texts(
                item_id,
                ws.unseal_json(summary),
                ws.unseal_json(record),
                threads.get(item_id, _Thread()),
            )
            rows.append((n, *row))
            labels += [(name, n) for name in names]
            texts.append((n, *text))
        with self._transaction():
            self.db.executemany(_INSERT_ROW, rows)
            self.db.executemany("INSERT INTO label (name, n) VALUES (?, ?)", labels)
            self.db.executemany(
                "INSERT INTO text (rowid, report, identity, conversation, team) "
                "VALUES (?, ?, ?, ?, ?)",
                texts,
            )
        self.orphans = int(ws.db.execute(_ORPHANS).fetchone()[0])

    def refresh(self, ws: Workspace, item_ids: Iterable[str]) -> None:
        """Read these reports (or the reports of these follow-ups) from ``ws`` again."""
        reports = set()
        for some_id in item_ids:
            found = ws.db.execute("SELECT thread_id FROM followup WHERE id = ?", (some_id,))
            row = found.fetchone()
            reports.add(row[0] if row else some_id)
        with self._transaction():
            for item_id in sorted(reports):
                self._replace(ws, item_id)
        self.orphans = int(ws.db.execute(_ORPHANS).fetchone()[0])

    def _replace(self, ws: Workspace, item_id: str) -> None:
        old = self.db.execute("SELECT n FROM row WHERE id = ?", (item_id,)).fetchone()
        if old is not None:
            n = old[0]
            self.db.execute("DELETE FROM label WHERE n = ?", (n,))
            self.db.execute("DELETE FROM text WHERE rowid = ?", (n,))
            self.db.execute("DELETE FROM row WHERE n = ?", (n,))
        else:  # a new report keeps its place after every other in import order
            n = (self.db.execute("SELECT max(n) FROM row").fetchone()[0] or 0) + 1
        item = ws.report(item_id)
        if item is None:
            return
        threads: dict[str, _Thread] = {}
        for followup in ws.followups(item_id):
            _add_followup(threads, item_id, followup.summary, followup.record)
        row, names, text = _texts(
            item.id, item.summary, item.record, threads.get(item_id, _Thread())
        )
        self.db.execute(_INSERT_ROW, (n, *row))
        self.db.executemany("INSERT INTO label (name, n) VALUES (?, ?)", [(x, n) for x in names])
        self.db.execute(
            "INSERT INTO text (rowid, report, identity, conversation, team) VALUES (?, ?, ?, ?, ?)",
            (n, *text),
        )

    # --- asking ---------------------------------------------------------------------

    def query(self, filters: QueueFilters, page: int = 1, per_page: int = PER_PAGE) -> QueryPage:
        """One page of the reports that match ``filters``, newest first, and how many match."""
        where, params = _where(filters)
        if where is None:
            return QueryPage([], 0, 1, 1, per_page)
        total = self.db.execute(f"SELECT count(*) FROM row {where}", params).fetchone()[0]  # noqa: S608 - built from fixed clauses
        pages = max(1, -(-total // per_page))
        page = min(max(page, 1), pages)
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM row {where} {_ORDER} LIMIT ? OFFSET ?",  # noqa: S608 - fixed clauses
            (*params, per_page, (page - 1) * per_page),
        )
        return QueryPage([_queue_row(row) for row in found], total, page, pages, per_page)

    def options(self) -> dict[str, list[str]]:
        """The values the queue's category, label and assignee filters offer."""
        return {
            "categories": self._distinct("SELECT DISTINCT category FROM row"),
            "labels": self._distinct("SELECT DISTINCT name FROM label"),
            "assignees": self._distinct("SELECT DISTINCT assignee FROM row"),
        }

    def _distinct(self, sql: str) -> list[str]:
        return sorted(value for (value,) in self.db.execute(sql) if value)

    def stats(self) -> dict[str, Any]:
        """Counts of reports by status, category and month received (YYYY-MM), newest first."""
        by_status = dict.fromkeys(STATUSES, 0)
        for status, count in self.db.execute("SELECT status, count(*) FROM row GROUP BY status"):
            by_status[status] = by_status.get(status, 0) + count
        categories = self.db.execute(
            "SELECT coalesce(category, ''), count(*) AS c FROM row GROUP BY 1 ORDER BY c DESC, 1"
        ).fetchall()
        months = self.db.execute(
            "SELECT substr(received_on, 1, 7) AS m, count(*) FROM row GROUP BY m ORDER BY m DESC"
        ).fetchall()
        unread = self.db.execute("SELECT count(*), coalesce(sum(unread), 0) FROM row "
                                 "WHERE unread > 0").fetchone()  # fmt: skip
        return {
            "reports": self.reports,
            "messages": self.messages,
            "orphans": self.orphans,
            "by_status": list(by_status.items()),
            "by_category": [(name or None, count) for name, count in categories],
            "by_month": [tuple(month) for month in months],
            "with_unread": unread[0],
            "unread": unread[1],
        }

    def csv_rows(self, filters: QueueFilters | None = None) -> Iterator[tuple[object, ...]]:
        """The header and one row per matching report: no identity value, no narrative."""
        where, params = _where(filters or QueueFilters())
        yield CSV_HEADER
        if where is None:
            return
        for row in self.db.execute(
            f"SELECT {_CSV_COLUMNS} FROM row {where} {_ORDER}",  # noqa: S608 - fixed clauses
            params,
        ):
            cells = list(row)
            if cells[4] is not None and cells[4] not in _CATEGORIES:
                cells[4] = UNLISTED  # the report is encrypted in the reporter's browser: the
                # portal cannot hold its category to the form's list, so this column does
            cells[5] = "; ".join(json.loads(cells[5]))
            yield tuple(neutralise(cell) for cell in cells)

    def close(self) -> None:
        """Drop the index (the memory goes back when the process ends in any case)."""
        self.db.close()

    def _transaction(self) -> Any:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN … COMMIT (or ROLLBACK on any exception) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN")
        return self.db

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _queue_row(row: Sequence[Any]) -> QueueRow:
    values = list(row)
    values[9] = tuple(json.loads(values[9]))
    return QueueRow(*values)


def _where(filters: QueueFilters) -> tuple[str | None, list[Any]]:
    """The WHERE clause of ``filters`` and its parameters; None when nothing can match.

    Only fixed clauses are joined; every value the reviewer chose is a parameter.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if filters.status:
        clauses.append("status = ?")
        params.append(filters.status)
    if filters.category:
        clauses.append("category = ?")
        params.append(filters.category)
    if filters.received_from:
        clauses.append("received_on >= ?")
        params.append(filters.received_from)
    if filters.received_to:
        clauses.append("received_on <= ?")
        params.append(filters.received_to)
    if filters.unread:
        clauses.append("unread > 0")
    if filters.label:
        clauses.append("n IN (SELECT n FROM label WHERE name = ?)")
        params.append(filters.label)
    if filters.assignee == UNASSIGNED:
        clauses.append("assignee IS NULL")
    elif filters.assignee:
        clauses.append("assignee = ?")
        params.append(filters.assignee)
    if filters.q:
        match = fts_query(filters.q)
        if match is None:  # only punctuation: no word to find
            return None, []
        clauses.append("n IN (SELECT rowid FROM text WHERE text MATCH ?)")
        params.append(match)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
