"""The no-JavaScript report: step 2 posted, checked, encrypted in memory, and the receipt once.

``POST /submit-plain`` takes the form a browser without JavaScript sends.
The server builds the report JSON in memory (``report.py``), strips photo
metadata in memory, encrypts every part to the reviewers at once and keeps
only ciphertext, then answers ``303 See Other`` to ``/received``, which
shows the receipt once. Whatever the reporter can put right draws the form
again, filled (``form_page.py``), and stores nothing; so does the button
that redraws the questions for another category (``action=update``).

Each form carries a one-time key (``form_keys.py``), so a report is stored
once however often its form is sent. A resend whose first send is stored
goes to the receipt if it has not been shown yet (the 303 may have been
lost on the link), else to "already received"; a resend whose first send
is still being stored waits a few seconds for it to end; one whose first
send failed is sent as new.

The routes are added to the ``intake`` blueprint: this module builds on
``intake.py`` (which never imports it), and ``app.py`` imports it before the
blueprint is registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Response, current_app, render_template, request, url_for
from flask import session as cookie_session
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import ServiceUnavailable

from crypto.manifest import AttachmentEntry
from crypto.receipt import Receipt, derive
from portal.storage.disk import is_disk_full
from portal.storage.models import PartKind
from portal.storage.receipts import receipt_index
from portal.web import budget, form_keys
from portal.web.faults import (
    DATABASE_DOWN,
    DISK_FULL,
    RETRY_AFTER,
    StorageFullError,
    database_disk_full,
    database_unreachable,
)
from portal.web.field_rules import MESSAGES
from portal.web.fields import Words
from portal.web.form_page import NO_COMPRESS, refilled_form, typed_values
from portal.web.intake import intake
from portal.web.intake_checks import BusyError, current_directory, portal_extensions, require_budget
from portal.web.intake_store import seal_and_store, undo_submission
from portal.web.plain_attachments import plain_files, scrub_files
from portal.web.report import InvalidReportError, build_report, encode_report

#: how long a resend waits for the first send of the same form, still storing, to end:
#: storing takes a second or two (the receipt's key derivations, the encryption)
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.25
#: the ``action`` of the no-JavaScript button that redraws the questions for a new category
UPDATE = "update"
#: a draw of the filled form: problems, the lead line, the status
Draw = Callable[[Sequence[InvalidReportError], Words, int], Response]


@intake.post("/submit-plain")
def submit_plain() -> Response:
    """Encrypt a form sent without JavaScript, in memory; store only ciphertext; 303 to the receipt.

    Whatever the reporter can put right (a value, a damaged photo, too many
    or too large files, an expired form, a spent budget, the portal unable
    to take reports) draws the form again, filled, with every problem
    marked, and stores nothing. A form whose one-time key was spent stores
    nothing either (see :func:`_sent_before`).
    """
    values = typed_values(request.form)
    with plain_files() as (files, file_problems):
        once = request.form.get("once", "")
        key = _form_key(once)
        draw = _refill(values, len(files), once if key is not None else "")
        if request.form.get("action") == UPDATE:
            return _updated(values, len(files), once if key is not None else "")
        if key is not None and (sent := _sent_before(key, draw)) is not None:
            return sent
        try:
            directory = current_directory()
        except ServiceUnavailable:
            return draw([], MESSAGES["unavailable"], 503)
        entries: list[AttachmentEntry] = []
        cleaned: list[bytes] = []
        problems = list(file_problems)
        if not problems:  # (files over a limit are not even looked at)
            entries, cleaned, problems = scrub_files(files)
        try:
            document = build_report(values, entries, encrypted_by="server")
        except InvalidReportError as error:
            problems = [*error.problems, *problems]
        if key is None:  # the lead line says so; the form comes back with a fresh key
            return draw(problems, MESSAGES["form_expired"], 400)
        if problems:
            return draw(problems, MESSAGES["not_stored"], 400)
        parts = [(PartKind.ATTACHMENT, data) for data in cleaned]
        return _store(key, document, entries, parts, directory.verified.recipient_keys, draw)


def _store(
    key: form_keys.FormKey,
    document: dict[str, Any],
    entries: Sequence[AttachmentEntry],
    attachments: Sequence[tuple[PartKind, bytes]],
    recipients: Sequence[bytes],
    draw: Draw,
) -> Response:
    """Spend ``key`` and store the report with its attachments; 303 to the receipt.

    Everything that can refuse the form has passed. The budget is drawn
    first, so that a form refused for it never holds its key; then the key
    is spent. Should another send of the same form spend it first, the
    budget is given back and that send's outcome decides.
    """
    extensions = portal_extensions()
    runtime, config = extensions["runtime"].sessions, extensions["config"]
    for _ in range(2):
        try:
            require_budget(budget.PLAIN, config.plain_per_hour, MESSAGES["busy"])
        except BusyError:
            return draw([], MESSAGES["busy"], 429)
        if (claim := form_keys.spend(runtime, key)) is not None:
            break
        budget.give_back(runtime, budget.PLAIN, config.plain_per_hour)
        if (sent := _sent_before(key, draw)) is not None:
            return sent
    else:  # spent and given back twice while this one waited: let the reporter try again
        return draw([], MESSAGES["still_storing"], 409)
    try:
        # The server makes the receipt here; the reporter sees it once, and the
        # server keeps it only sealed under the one-time key until then.
        receipt = Receipt.generate()
        keys = derive(receipt)
        document["reporter_key"] = str(keys.reporter.token)
        stored = seal_and_store(
            [(PartKind.REPORT, encode_report(document)), *attachments],
            recipients,
            locator=receipt.locator,
            index=receipt_index(receipt.locator, keys.lookup_token),
        )
    except BaseException as failure:
        _give_back(key, claim)
        if not isinstance(failure, Exception):
            raise
        current_app.logger.error("a report could not be stored: %s", type(failure).__name__)
        return _fault_draw(failure, draw)
    shown = {
        "receipt": str(receipt),
        "parts": len(stored.parts),
        "files": len(entries),
        "photos": sum(1 for entry in entries if entry.scrubbed),
    }
    try:
        form_keys.mark_stored(runtime, key, shown, claim)
    except form_keys.LostKeyError:
        # this store took so long that a resend took the key over and stored the report:
        # one copy is enough, and the other request's outcome is the reporter's
        undo_submission(stored)
        return _sent_before(key, draw) or _to_receipt()
    except Exception as failure:  # the runtime store failed after the report was stored
        current_app.logger.error("a receipt could not be kept: %s", type(failure).__name__)
        return _receipt_page(shown)  # nothing else could show it: here it is, this once
    cookie_session[form_keys.SESSION_FIELD] = form_keys.seal_for_session(config.secret_key, key)
    return _to_receipt()


def _fault_draw(failure: Exception, draw: Draw) -> Response:
    """The filled form after a failed store: 507 on a full disk, 503 if the database is down.

    Nothing was kept in either case (``intake_store.store_submission`` removes the
    blobs unless the row is there), so the form says so and can be sent again.
    """
    if isinstance(failure, StorageFullError) or is_disk_full(failure):
        return draw([], DISK_FULL, 507)
    if isinstance(failure, DBAPIError) and database_disk_full(failure):
        return draw([], DISK_FULL, 507)
    if isinstance(failure, DBAPIError) and database_unreachable(failure):
        answer = draw([], DATABASE_DOWN, 503)
        answer.headers["Retry-After"] = str(RETRY_AFTER)
        return answer
    return draw([], MESSAGES["failed"], 500)


def _sent_before(key: form_keys.FormKey, draw: Draw) -> Response | None:
    """The answer to a form whose one-time key was spent already; None if it may be sent.

    * Stored, receipt not shown yet (the first answer was lost): the session
      gets the key again and the reporter goes to the receipt.
    * Stored, receipt shown: to "already received".
    * Still being stored by another request: wait up to :data:`WAIT_SECONDS`
      for it to end and decide then; if it has not, the form comes back
      filled (409), saying to wait a moment and send again.
    * Given back (that request failed), or never spent: None, send it.
    """
    extensions = portal_extensions()
    runtime = extensions["runtime"].sessions
    deadline = time.monotonic() + WAIT_SECONDS
    while (found := form_keys.state(runtime, key)) is form_keys.KeyState.STORING:
        if time.monotonic() >= deadline:
            return draw([], MESSAGES["still_storing"], 409)
        time.sleep(POLL_SECONDS)
    if found is form_keys.KeyState.FREE:
        return None
    if found is form_keys.KeyState.STORED:
        secret = extensions["config"].secret_key
        cookie_session[form_keys.SESSION_FIELD] = form_keys.seal_for_session(secret, key)
    return _to_receipt()


def _give_back(key: form_keys.FormKey, claim: int) -> None:
    """Give ``key`` back after a failure; if even that fails, its row goes stale in time."""
    try:
        form_keys.give_back(portal_extensions()["runtime"].sessions, key, claim)
    except Exception as failure:
        current_app.logger.error("a form key could not be given back: %s", type(failure).__name__)


@intake.get("/received")
def received() -> Response:
    """The receipt of a report sent without JavaScript, once; then "already received".

    The session holds the sent form's one-time key, which opens the receipt
    sealed in the key's row; the row's copy is cleared as it is shown, and
    the session is emptied, so no cookie is left behind.
    """
    sealed = cookie_session.pop(form_keys.SESSION_FIELD, None)
    shown = None
    if sealed is not None:
        cookie_session.clear()
        secret = portal_extensions()["config"].secret_key
        text = form_keys.open_from_session(secret, sealed)
        key = _form_key(text) if text is not None else None
        if key is not None:
            shown = form_keys.take_receipt(portal_extensions()["runtime"].sessions, key)
    return _receipt_page(shown)


def plain_form_after_error(text: Words) -> Response:
    """The filled form again after a refusal made before the view ran (the form token).

    ``portal/web/app.py`` calls this for a CSRF failure on ``/submit-plain``. The
    form's values are checked too, so that every problem shows at once; a
    form whose one-time key was already spent is answered as the view would
    (:func:`_sent_before`), and a press of the update button redraws the form.
    """
    try:
        values = typed_values(request.form)
        once = request.form.get("once", "")
        action = request.form.get("action")
        with plain_files() as (files, file_problems):
            files_sent = len(files)
    except Exception:  # a body too damaged to read: the form comes back empty
        values, once, action, files_sent, file_problems = {}, "", None, 0, []
    key = _form_key(once)
    draw = _refill(values, files_sent, once if key is not None else "")
    if action == UPDATE:
        return _updated(values, files_sent, once if key is not None else "")
    if key is not None and (sent := _sent_before(key, draw)) is not None:
        return sent
    try:
        build_report(values, [], encrypted_by="server")
        problems: list[InvalidReportError] = []
    except InvalidReportError as error:
        problems = error.problems
    return draw([*problems, *file_problems], text, 400)


def _form_key(text: str) -> form_keys.FormKey | None:
    """The form's one-time key if it verifies and is in date, else None."""
    runtime, config = portal_extensions()["runtime"], portal_extensions()["config"]
    try:
        return form_keys.check(runtime.sessions, config.secret_key, text)
    except form_keys.FormKeyError:
        return None


def _refill(values: Mapping[str, Sequence[str]], files_sent: int, once: str) -> Draw:
    """A function drawing the filled form with some problems, a lead line and a status.

    ``once`` is the form's one-time key if it is good: the form keeps it, so
    that the report is stored once however often it is sent. Without one the
    form gets a fresh key.
    """

    def draw(problems: Sequence[InvalidReportError], lead: Words, status: int) -> Response:
        return refilled_form(
            portal_extensions(),
            values,
            problems,
            lead=lead,
            once=once,
            files_sent=files_sent,
            status=status,
        )

    return draw


def _updated(values: Mapping[str, Sequence[str]], files_sent: int, once: str) -> Response:
    """The filled form with the questions for the category now chosen: nothing stored or spent."""
    notice = MESSAGES["updated"]
    if files_sent:
        notice = f"{notice} {MESSAGES['files_again']}"
    return refilled_form(
        portal_extensions(),
        values,
        [],
        lead="",
        notice=notice,
        once=once,
        files_sent=0,
        status=200,
    )


def _receipt_page(shown: Mapping[str, Any] | None) -> Response:
    # A receipt is shown once: no language picker beside it, whose every link would
    # leave this page for good (the page is in the language the form was sent in)
    picker = {"language_links": []} if shown else {}
    page = render_template("received.html", encrypted_by="server", **(shown or {}), **picker)
    return Response(page, headers=[NO_COMPRESS])


def _to_receipt() -> Response:
    """303 See Other to the receipt page: a reload there cannot post the form again."""
    # url_for, not a literal: it carries on a language chosen in the address
    return Response(status=303, headers={"Location": url_for("intake.received")})
