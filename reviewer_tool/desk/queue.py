"""The queue, its statistics and its CSV export (blueprint ``queue``).

Every page reads the in-memory index (index.py), never the workspace: a
page of 50 rows and its count are two queries, whatever the queue's size.
The filters travel in the query string, so a filtered queue is an address
the reviewer can go back to, and the CSV link exports exactly what the page
lists.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Mapping

from flask import Blueprint, Response, render_template, request

from reviewer_tool.desk.search import STATUSES, UNASSIGNED, DeskQueryError, QueueFilters
from reviewer_tool.desk.state import current

queue = Blueprint("queue", __name__)

#: how the desk names each status (the CLI's words, capitalised)
STATUS_NAMES = {status: status.capitalize() for status in STATUSES}
#: the highest page number an address may ask for (far beyond any real queue)
MAX_PAGE = 100_000


def _page_number(args: Mapping[str, str]) -> int:
    value = args.get("page", "1") or "1"
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise DeskQueryError("page must be a whole number from 1")
    return int(value)


@queue.get("/")
def page() -> str:
    """The queue: filters, search, and one page of reports, newest first."""
    state = current()
    filters = QueueFilters.from_args(request.args)
    number = _page_number(request.args)
    with state.lock:
        result = state.index.query(filters, number)
        options = state.index.options()
    return render_template(
        "queue.html",
        filters=filters,
        args=filters.as_args(),
        result=result,
        options=options,
        statuses=STATUS_NAMES,
        unassigned=UNASSIGNED,
    )


@queue.get("/stats")
def stats() -> str:
    """Counts by status, category and month received."""
    state = current()
    with state.lock:
        counts = state.index.stats()
    months = [(month, count, *_month_range(month)) for month, count in counts["by_month"]]
    return render_template("stats.html", stats=counts, months=months, statuses=STATUS_NAMES)


def _month_range(month: str) -> tuple[str, str] | tuple[None, None]:
    """The first and last day of ``month`` (YYYY-MM), for the queue's date filters."""
    try:
        year, number = int(month[:4]), int(month[5:7])
        last = calendar.monthrange(year, number)[1]
    except ValueError:
        return None, None  # a malformed day in an old workspace: no link
    return f"{month}-01", f"{month}-{last:02d}"


@queue.get("/queue.csv")
def export_csv() -> Response:
    """The filtered queue as CSV: no identity value, no narrative, no formula."""
    state = current()
    filters = QueueFilters.from_args(request.args)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    with state.lock:
        writer.writerows(state.index.csv_rows(filters))
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="desk-queue.csv"'},
    )
