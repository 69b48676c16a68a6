"""The anonymous intake: the report form and the two ways to send it.

* ``POST /submit``: the browser has encrypted the report and every attachment
  (crypto/SPEC.md §11); the server checks and stores ciphertext only.
* ``POST /submit-plain``: JavaScript is off. The server builds the same report
  JSON in memory, strips photo metadata in memory, encrypts every part to the
  reviewers at once and keeps only ciphertext. It answers ``303`` to
  ``/received``, which shows the receipt once (``form_keys.py``); anything
  the reporter can put right draws the form again, filled (``form_page.py``).
  Its routes are in ``plain_intake.py``, which builds on this module (never
  the other way round) and adds them to this blueprint; ``app.py`` imports
  it before the blueprint is registered.

Either way a submission is stored whole or not at all, under a random 128-bit
id, with only the day of arrival. Nothing about the sender is read or kept.

The routes here are the form, the key directory, the puzzle and ``POST
/submit``; what a request must pass first is in ``intake_checks.py``, how a
submission is stored in ``intake_store.py``, and the no-JavaScript form's
files in ``plain_attachments.py``.
"""

from __future__ import annotations

import shutil

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext as _

from crypto.manifest import MAX_ATTACHMENTS
from portal.storage.models import PartKind
from portal.storage.receipts import BadReceiptError, parse_browser_receipt, receipt_index
from portal.web import pow
from portal.web.faults import ROOM_MARGIN, StorageFullError
from portal.web.fields import BY_NAME
from portal.web.form_page import report_page
from portal.web.intake_checks import (
    PROOF_REFUSED,
    RefusedError,
    check_proof,
    current_directory,
    portal_extensions,
    proof_held,
    require_database,
    settle_proof,
    spend_unused,
)
from portal.web.intake_store import (
    check_all,
    envelope_part,
    finish_all,
    store_submission,
    stored_before,
    undo_submission,
)
from portal.web.report import InvalidReportError, check_value
from portal.web.request import ENCRYPTED_PATHS, PLAIN_PATHS

intake = Blueprint("intake", __name__)
#: requests whose body goes to the blob directory (checked for room before it is read)
_STORING_PATHS = ENCRYPTED_PATHS | PLAIN_PATHS


@intake.before_app_request
def require_room() -> None:
    """507 before the body is read when the blob directory cannot hold it.

    Only for requests that store what they carry (one-shot reports and
    follow-ups, and resumable pieces): a reviewer's export must still work
    on a full disk, since purging what reviewers hold is how room is made.
    A body sent without a length is caught as it is written instead.
    """
    if request.method not in ("POST", "PATCH"):
        return
    if request.path not in _STORING_PATHS and not request.path.startswith("/uploads"):
        return
    extensions = current_app.extensions.get("portal")
    if extensions is None or "blobs" not in extensions:
        return
    free = shutil.disk_usage(extensions["blobs"].root).free
    if free < (request.content_length or 0) + ROOM_MARGIN:
        raise StorageFullError()


@intake.get("/")
def form() -> Response:
    """The report form: step 1 picks the category, step 2 (``?category=…``) asks about it.

    Works with and without JavaScript; see ``portal/web/form_page.py``.
    """
    category = request.args.get("category")
    if category is None:
        return report_page(portal_extensions(), step="category")
    try:
        check_value(BY_NAME["category"], [category])
    except InvalidReportError as problem:  # unknown or missing: step 1 again, saying why
        lead = _("Please choose the kind of incident from the list.")
        return report_page(
            portal_extensions(), step="category", problems=[problem], lead=lead, status=400
        )
    return report_page(portal_extensions(), step="details", category=category)


@intake.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for one on every visit; an empty answer costs no bandwidth."""
    return Response(status=204)


@intake.get("/keys/directory.json")
def key_directory() -> Response:
    """The signed key directory, exactly as the organisation signed it."""
    raw = current_directory().raw
    return Response(raw, mimetype="application/json")


@intake.get("/pow")
def proof_of_work() -> Response:
    """A fresh anti-spam puzzle for a submission or a follow-up message.

    While the database cannot be reached, 503 instead: a browser must not
    do the work for a report that cannot be stored.
    """
    purpose = request.args.get("for", "")
    if purpose not in pow.PURPOSES:
        raise RefusedError(_("Ask for a puzzle for 'submit' or 'followup'."))
    require_database()
    with portal_extensions()["runtime"].sessions() as session:
        puzzle = pow.issue(session, portal_extensions()["config"], purpose)
    return jsonify({"puzzle": puzzle, "bits": pow.puzzle_bits(puzzle)})


@intake.post("/submit")
def submit_encrypted() -> Response:
    """Store a submission the browser encrypted: the report and its attachments.

    The proof of work is checked first, held from before the first blob is
    written and spent once the report is stored (``pow.py``): of sends
    racing with one proof only one stores anything, and a send that failed,
    or whose worker died, can be sent again as it was. A send of a report
    already stored (its answer was lost) is answered as the first was and
    stores nothing more, even once its proof is spent; any other reuse of a
    proof is refused.
    """
    current_directory()
    try:
        ticket: pow.Ticket | None = check_proof("submit")
    except pow.SpentError:
        ticket = None
    except pow.ProofError:
        raise RefusedError(PROOF_REFUSED) from None
    try:
        locator, token = parse_browser_receipt(
            request.form.get("receipt_locator", ""), request.form.get("receipt_token", "")
        )
    except BadReceiptError:
        raise RefusedError(_("Nothing was stored: the receipt fields are missing.")) from None
    reports = request.files.getlist("report")
    attachments = request.files.getlist("attachment")
    if len(reports) != 1:
        raise RefusedError(_("Nothing was stored: a submission has exactly one encrypted report."))
    if len(attachments) > min(portal_extensions()["config"].max_attachments, MAX_ATTACHMENTS):
        raise RefusedError(_("Nothing was stored: too many attachments."))
    uploads = [(PartKind.REPORT, envelope_part(reports[0]))]
    uploads += [(PartKind.ATTACHMENT, envelope_part(a)) for a in attachments]
    check_all(uploads)
    index = receipt_index(locator, token)
    count = stored_before(index, [upload.sha256 for _, upload in uploads])
    if count is not None:  # sent before and stored: the same answer, nothing more stored
        for _kind, upload in uploads:
            upload.discard()
        if ticket is not None:  # its first send stored it but died before spending it
            spend_unused(ticket)
        return jsonify({"stored": True, "parts": count})
    if ticket is None:
        raise RefusedError(PROOF_REFUSED)
    with proof_held(ticket) as held:  # losers of a race with this proof stop here
        submission = store_submission(finish_all(uploads), locator=locator, index=index)
    try:
        settle_proof(held)
    except pow.SpentError:  # held too long: another send took the proof over and spent it
        undo_submission(submission)
        raise RefusedError(PROOF_REFUSED) from None
    return jsonify({"stored": True, "parts": len(submission.parts)})
