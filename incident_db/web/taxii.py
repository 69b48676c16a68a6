"""A read-only TAXII 2.1 server for partners, inside the members' service (incident_db/TAXII.md).

Partners (``incident_db/partners.py``) sign in with HTTP basic (name and
credential) or ``Authorization: Bearer``; no cookie, no CSRF token, no
members' sign-in (every view here is :func:`sessions.public`, and the
credential is checked on every request, so a removed or rotated one fails
at once). One API root (``/taxii2/api/``) holds one collection, the live
incidents cut to the partner's clearance: an object comes out only if
``tlp.allows(clearance, level)`` holds for every marking it carries, on
every endpoint and under every filter.

Order and paging (TAXII 2.1 §3.4): each object sits at (date_added,
incident id, object id), where date_added is its incident's ``version_at``
(a fixed moment for the marking definitions, the producer and the
extension definition). ``next`` is that position of a page's last
object, so a page starts right after it: no object is skipped or repeated,
and an incident changed meanwhile comes again later, as its new version.
Every request of a partner, refused ones too, is one line in the audit log
(``taxii.pull``), with its status and its filters as parsed.

This module holds the routes, the partner's sign-in and the audit; the
protocol (media types, errors, filters, the cursor) is in
``taxii_protocol.py``, and walking the incidents into objects in
``taxii_objects.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request

from incident_db import partners, tlp
from incident_db.members import store
from incident_db.web.sessions import database, public
from incident_db.web.taxii_objects import SCAN_STOP, find_object, walk_objects
from incident_db.web.taxii_protocol import (
    AUDIT_FIRST,
    STIX,
    TAXII,
    Filters,
    Item,
    TaxiiError,
    accepts,
    answer,
    cursor_of,
    object_version,
    show_time,
    unknown_parameters,
)
from incident_db.web.taxii_protocol import request_filters as parse_filters

taxii = Blueprint("taxii", __name__, url_prefix="/taxii2")

API_ROOT = "/taxii2/api/"
#: the one collection's id (a fixed UUIDv4: partners keep it in their settings)
COLLECTION_ID = "4f8b0c52-6a1e-4d3b-9c7e-2b5d8e1f0a63"


# -- errors and credentials ----------------------------------------------------------


@taxii.errorhandler(TaxiiError)
def _refused(error: TaxiiError) -> Response:
    if error.status != 401 and "partner" in g:
        try:
            _audit(0, status=error.status)
        except Exception as failed:  # the refusal goes out even if the log cannot be written
            current_app.logger.error("TAXII audit failed: %s", type(failed).__name__)
    body = {"title": error.title, "http_status": str(error.status)}
    if error.description:
        body["description"] = error.description
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="TAXII", charset="UTF-8", Bearer realm="TAXII"'
    if error.status == 405:
        headers["Allow"] = "GET, HEAD"
    return answer(body, headers=headers, status=error.status)


@taxii.errorhandler(Exception)
def _failed(error: Exception) -> Response:
    current_app.logger.error("TAXII request failed: %s", type(error).__name__)
    database().rollback()  # the audit line goes in a transaction of its own
    return _refused(TaxiiError(500, "Something went wrong on our side; please try again later"))


@taxii.before_request
def _authenticate() -> None:
    """Find the partner of this request, or refuse it with 401."""
    credential = request.authorization
    partner = None
    if credential is not None and credential.type == "basic":
        name, token = credential.username or "", credential.password or ""
        partner = partners.verify(database(), (name, token)) if name and token else None
    elif credential is not None and credential.type == "bearer" and credential.token:
        partner = partners.verify(database(), credential.token)
    if partner is None:
        raise TaxiiError(401, "A partner's credential is needed",
                         "Use HTTP basic (name, credential) or Authorization: Bearer.")  # fmt: skip
    g.partner = partner
    g.clearance = partner.clearance


def request_filters() -> Filters:
    """The request's filters (400 if malformed), kept for its audit line."""
    g.filters = parse_filters()
    return g.filters


def _audit(count: int, status: int = 200) -> None:
    """One audit line for this pull, refused ones too, committed at once (a single INSERT).

    The detail holds the status, the number of objects sent and the filters
    as parsed (a few values of each and their count), not the raw query: a
    padded query string can neither hide a filter nor flood the log. A
    request refused before its filters were parsed records the names of
    its query parameters.
    """
    db = database()
    detail: dict[str, Any] = {"status": status, "count": count}
    filters = g.get("filters")
    if filters is not None:
        detail["filters"] = filters.audited()
    elif request.args:
        names = sorted(name[:40] for name in request.args)
        detail["parameters"] = {"count": len(names), "first": names[:AUDIT_FIRST]}
        if unknown_parameters():
            detail["parameters"]["unknown"] = list(unknown_parameters())
    store.audit(db, partners.actor_of(g.partner), "taxii.pull", request.path, detail)
    db.commit()


# -- the endpoints (§4, §5) ---------------------------------------------------------


def _origin() -> str:
    return str(current_app.extensions["incident_db"]["config"].origin)


def _collection() -> dict[str, Any]:
    label = tlp.LABELS[g.clearance]
    return {
        "id": COLLECTION_ID,
        "title": "Verified maritime incidents",
        "description": f"Live incidents of the shared incident database up to {label}, this "
        "partner's clearance, each marked with its TLP 2.0 level.",
        "can_read": True,
        "can_write": False,
        "media_types": [STIX],
    }


def _page(items: Iterator[Item], limit: int
          ) -> tuple[list[Item], dict[str, Any]]:  # fmt: skip
    """The first ``limit`` items, and the envelope's ``more`` and ``next``.

    A walk that read as many incidents as one request may ends early
    (``SCAN_STOP``): the page then holds fewer than ``limit`` objects, maybe
    none, with ``more`` true and ``next`` just after the last incident read
    (TAXII 2.1 §3.4.1 lets a server send fewer objects than ``limit``).
    """
    page: list[Item] = []
    for position, obj in items:
        if len(page) == limit:
            return page, {"more": True, "next": cursor_of(page[-1][0])}
        if obj is SCAN_STOP:
            return page, {"more": True, "next": cursor_of(position)}
        page.append((position, obj))
    return page, {"more": False}


def _dated(page: list[Item]) -> dict[str, str]:
    if not page:
        return {}
    return {"X-TAXII-Date-Added-First": show_time(page[0][0].added),
            "X-TAXII-Date-Added-Last": show_time(page[-1][0].added)}  # fmt: skip


def _checked_collection(collection_id: str) -> None:
    if collection_id != COLLECTION_ID:
        raise TaxiiError(404, "No such collection")


@taxii.get("/")
@public
def discovery() -> Response:
    """Server discovery (§4.1): the one API root."""
    media = accepts()
    root = _origin() + API_ROOT
    body = {"title": "cso-portal shared incident database",
            "description": "Verified maritime security incidents for partners, by TLP clearance.",
            "default": root, "api_roots": [root]}  # fmt: skip
    _audit(0)
    return answer(body, media)


@taxii.get("/api/")
@public
def api_root() -> Response:
    """API root information (§4.2)."""
    media = accepts()
    body = {"title": "Maritime incidents", "versions": [TAXII],
            "max_content_length": current_app.config["MAX_CONTENT_LENGTH"]}  # fmt: skip
    _audit(0)
    return answer(body, media)


@taxii.get("/api/collections/")
@public
def collections() -> Response:
    """The collections (§5.1): one, cut to the partner's clearance."""
    media = accepts()
    _audit(1)
    return answer({"collections": [_collection()]}, media)


@taxii.get("/api/collections/<collection_id>/")
@public
def collection(collection_id: str) -> Response:
    """A collection (§5.2)."""
    media = accepts()
    _checked_collection(collection_id)
    _audit(1)
    return answer(_collection(), media)


@taxii.get("/api/collections/<collection_id>/objects/")
@public
def objects(collection_id: str) -> Response:
    """Get objects (§5.4): a page in the collection's order, after ``next`` if given."""
    media = accepts(stix_too=True)
    _checked_collection(collection_id)
    filters = request_filters()
    connection = database().connection()
    walk = walk_objects(connection, g.clearance, filters, filters.limit // 2 + 1)
    page, paging = _page(walk, filters.limit)
    _audit(len(page))
    return _objects_answer(page, paging, media)


def _objects_answer(page: list[Item], paging: dict[str, Any],
                    media: str) -> Response:  # fmt: skip
    headers = _dated(page)
    if media == STIX:  # a STIX bundle; the next page, if any, in a Link header (RFC 8288)
        if paging["more"]:
            args = {**request.args.to_dict(), "next": paging["next"]}
            headers["Link"] = f'<{_origin()}{request.path}?{urlencode(args)}>; rel="next"'
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                  "objects": [obj for _, obj in page]}  # fmt: skip
        return answer(bundle, STIX, headers)
    if not page and not paging["more"]:
        return answer({}, media, headers)
    return answer({**paging, "objects": [obj for _, obj in page]}, media, headers)


def _one(collection_id: str, object_id: str) -> tuple[Filters, list[Item]]:
    """The one object ``object_id`` if the filters admit it; 404 if the partner may not see it."""
    _checked_collection(collection_id)
    filters = request_filters()
    found = find_object(database().connection(), g.clearance, object_id)
    if found is None:
        raise TaxiiError(404, "No such object in this collection")
    admitted = (filters.after is None or found[0] > filters.after) and filters.admits(*found)
    return filters, [found] if admitted else []


@taxii.get("/api/collections/<collection_id>/objects/<object_id>/")
@public
def one_object(collection_id: str, object_id: str) -> Response:
    """Get an object (§5.6): its versions (here always one) the filters admit."""
    media = accepts(stix_too=True)
    filters, found = _one(collection_id, object_id)
    page, paging = _page(iter(found), filters.limit)
    _audit(len(page))
    return _objects_answer(page, paging, media)


@taxii.get("/api/collections/<collection_id>/objects/<object_id>/versions/")
@public
def versions(collection_id: str, object_id: str) -> Response:
    """Get object versions (§5.8)."""
    media = accepts()
    found = _one(collection_id, object_id)[1]
    _audit(len(found))
    if not found:
        return answer({}, media)
    return answer({"more": False, "versions": [object_version(found[0][1])]}, media, _dated(found))


@taxii.get("/api/collections/<collection_id>/manifest/")
@public
def manifest(collection_id: str) -> Response:
    """Get object manifests (§5.3): what get objects would give, without the objects."""
    media = accepts()
    _checked_collection(collection_id)
    filters = request_filters()
    walk = walk_objects(database().connection(), g.clearance, filters, filters.limit // 2 + 1)
    page, paging = _page(walk, filters.limit)
    _audit(len(page))
    if not page and not paging["more"]:
        return answer({}, media)
    records = [{"id": obj["id"], "date_added": show_time(position.added),
                "version": object_version(obj), "media_type": STIX}
               for position, obj in page]  # fmt: skip
    return answer({**paging, "objects": records}, media, _dated(page))


@taxii.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
@public
def elsewhere(rest: str) -> Response:
    """Anything else under /taxii2/: 405 where only reading is allowed, else 404."""
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(request.path, method="GET")
    except Exception:
        endpoint = None
    if request.method not in ("GET", "HEAD") and endpoint not in (None, "taxii.elsewhere"):
        raise TaxiiError(405, "This TAXII server is read-only")
    raise TaxiiError(404, "Nothing here", f"The API root is {API_ROOT}.")
