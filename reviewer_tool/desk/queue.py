"""The queue, its statistics and its CSV export (blueprint ``queue``).

Every page reads the in-memory index (index.py), never the workspace: a
page of 50 rows and its count are two queries, whatever the queue's size.

The filter form is posted, never sent as a query string: a browser writes
the addresses it visits to its profile on disk (history, session, favicon
and metrics files), and the words a reviewer searches for are often a
report's own (a ship's name), as are the categories. The filters are kept
in memory under a random key (the last :data:`KEPT_VIEWS` sets), and the
page they lead to, its page links, its CSV link and the statistics page's
links carry only that key (``?view=KEY``, and ``&page=N``), which dies with
the desk like its token. An address with filters of its own, or with a key
no longer kept, shows the whole queue and says so.
"""

from __future__ import annotations

import calendar
import csv
import io
import secrets
from collections import OrderedDict
from collections.abc import Mapping

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from reviewer_tool.desk.search import (
    STATUSES,
    UNASSIGNED,
    DeskQueryError,
    QueueFilters,
    whole_number,
)
from reviewer_tool.desk.state import current

queue = Blueprint("queue", __name__)

#: how the desk names each status (the CLI's words, capitalised)
STATUS_NAMES = {status: status.capitalize() for status in STATUSES}
#: the highest page number an address may ask for (far beyond any real queue)
MAX_PAGE = 100_000
#: how many filter sets are kept in memory (the least recently used is forgotten first)
KEPT_VIEWS = 200
#: what the queue says when an address names no kept filters
FORGOTTEN = "That search is no longer kept (the desk keeps the last 200): here is the whole queue."
IGNORED = (
    "The queue takes its filters from its form, never from the address: here is the whole queue."
)


def _page_number(args: Mapping[str, str]) -> int:
    number = whole_number(args.get("page", "1") or "1")
    if number is None or not 1 <= number <= MAX_PAGE:
        raise DeskQueryError("page must be a whole number from 1")
    return number


def _views() -> OrderedDict[str, dict[str, str]]:
    views: OrderedDict[str, dict[str, str]] = current_app.extensions.setdefault(
        "desk_views", OrderedDict()
    )
    return views


def keep_view(filters: QueueFilters) -> str | None:
    """The random key under which ``filters`` are kept in memory (None: no filter at all).

    The same filters keep the same key, so that the statistics page, which
    makes one for each of its links, does not push out the reviewer's searches.
    """
    args = filters.as_args()
    if not args:
        return None
    views = _views()
    key = next((key for key, kept in views.items() if kept == args), None)
    if key is None:
        key = secrets.token_urlsafe(12)
        views[key] = args
    views.move_to_end(key)
    while len(views) > KEPT_VIEWS:
        views.popitem(last=False)
    return key


def _kept_filters() -> tuple[QueueFilters, str | None, str | None]:
    """The filters this address names by its ``view`` key, the key, and a notice if it
    names none that are kept (or carries filters of its own, which are never used)."""
    key = request.args.get("view")
    if key is None:
        ignored = set(request.args) - {"page"}
        return QueueFilters(), None, IGNORED if ignored else None
    kept = _views().get(key)
    if kept is None:
        return QueueFilters(), None, FORGOTTEN
    _views().move_to_end(key)
    return QueueFilters.from_args(kept), key, None


@queue.post("/")
def search() -> Response:
    """The filter form: keep what it asks for and show it at ``?view=KEY`` (Post/Redirect/Get)."""
    view = keep_view(QueueFilters.from_args(request.form))
    target = url_for("queue.page", view=view) if view else url_for("queue.page")
    return redirect(target, 303)  # type: ignore[return-value]


@queue.get("/")
def page() -> str:
    """The queue: filters, search, and one page of reports, newest first."""
    state = current()
    filters, key, notice = _kept_filters()
    number = _page_number(request.args)
    with state.lock:
        result = state.index.query(filters, number)
        options = state.index.options()
    return render_template(
        "queue.html",
        filters=filters,
        args={"view": key} if key else {},
        notice=notice,
        result=result,
        options=options,
        statuses=STATUS_NAMES,
        unassigned=UNASSIGNED,
    )


@queue.get("/stats")
def stats() -> str:
    """Counts by status, category and month received, each linked to the queue it counts.

    Each link names filters kept in memory (:func:`keep_view`), as a search
    does: a category is the reporter's text, so it is never put in an address.
    """
    state = current()
    with state.lock:
        counts = state.index.stats()
    statuses = [(status, count, keep_view(QueueFilters(status=status)) if count else None)
                for status, count in counts["by_status"]]  # fmt: skip
    categories = [(name, count, keep_view(QueueFilters(category=name)) if name else None)
                  for name, count in counts["by_category"]]  # fmt: skip
    months = [(month, count, _month_view(month)) for month, count in counts["by_month"]]
    return render_template(
        "stats.html", stats=counts, by_status=statuses, by_category=categories, months=months,
        statuses=STATUS_NAMES,
    )  # fmt: skip


def _month_view(month: str) -> str | None:
    """The view of the reports received in ``month`` (YYYY-MM)."""
    try:
        year, number = int(month[:4]), int(month[5:7])
        last = calendar.monthrange(year, number)[1]
    except ValueError:
        return None  # a malformed day in an old workspace: no link
    return keep_view(QueueFilters(received_from=f"{month}-01", received_to=f"{month}-{last:02d}"))


@queue.get("/queue.csv")
def export_csv() -> Response:
    """The filtered queue as CSV: nothing the reporter wrote in their words, no formula."""
    state = current()
    filters, _, notice = _kept_filters()
    if notice == FORGOTTEN:  # never the whole queue in place of the one the reviewer chose
        raise DeskQueryError("that search is no longer kept: search again, then download")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    with state.lock:
        writer.writerows(state.index.csv_rows(filters))
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="desk-queue.csv"'},
    )
