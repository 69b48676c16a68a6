"""Drawing the report page: step 1 (the category), step 2 (its questions), and step 2 refilled.

Without JavaScript the reporter picks the kind of incident first
(``GET /``), presses Next (``GET /?category=…``) and sees only the questions
for it; with JavaScript the same first page carries step 2 in a
``<template id="details">`` and the script shows it in place.

After a refusal the reporter can put right, step 2 is drawn again with
everything typed (:func:`refilled_form`): every message beside its field and
all of them in a summary at the top. Files cannot be refilled (browsers
allow no page to set a file input), and the page says so. Typed values are
hostile input: Jinja escapes every one, and such a page is marked never to
be compressed (BREACH: it holds a form token next to text a stranger may
have chosen).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from flask import Response, render_template
from flask_babel import get_locale, gettext
from markupsafe import Markup

from portal.web import form_keys
from portal.web.attachment_limits import browser_attachment_limits, plain_attachment_limits
from portal.web.field_rules import MESSAGES, form_rules
from portal.web.fields import BY_NAME, FIELDS, SECTIONS, Words
from portal.web.i18n import script_json
from portal.web.report import InvalidReportError, filled

#: how a sentence may end, in the scripts of the shipped languages
_SENTENCE_ENDS = tuple(".!?…。\uff01\uff1f\uff0e।॥။؟")  # fullwidth ! ? . written as escapes

#: a response carrying this header is never compressed (portal/web/compression.py)
NO_COMPRESS = ("X-Portal-No-Compress", "1")
#: form fields that are not part of the report
KEYS = frozenset({"csrf_token", "once"})
CATEGORIES = frozenset(value for value, _ in BY_NAME["category"].choices)


@cache
def _rules(
    max_upload: int, max_attachments: int, max_plain_upload: int, locale: str
) -> tuple[dict[str, Any], Markup]:
    """The rules and their JSON for the page, made once per set of limits and language.

    ``locale`` is the request's (Flask-Babel's): the labels and messages are
    read in it, so it keys the cache though the body never names it.
    """
    count, per_file, total = browser_attachment_limits(max_upload, max_attachments)
    plain_file, plain_total, plain_form = plain_attachment_limits(max_upload, max_plain_upload)
    rules = form_rules(
        count,
        per_file,
        total,
        plain_max_file_bytes=plain_file,
        plain_max_total_bytes=plain_total,
        plain_max_request_bytes=plain_form,
    )
    return rules, script_json(rules)


def hidden_names(category: str, values: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The fields step 2 hides: those not for ``category`` that hold nothing.

    With no known category, nothing is hidden: the reporter sees every question.
    """
    if category not in CATEGORIES:
        return frozenset()
    return frozenset(
        f.name
        for f in FIELDS
        if category not in f.categories and not filled(values.get(f.name, ()))
    )


def report_page(
    extensions: Mapping[str, Any],
    *,
    step: str,
    category: str = "",
    values: Mapping[str, Sequence[str]] | None = None,
    problems: Sequence[InvalidReportError] = (),
    lead: Words = "",
    notice: Words = "",
    once: str = "",
    status: int = 200,
) -> Response:
    """The report page at ``step`` ("category" or "details"), as a response.

    ``lead`` heads the list of problems (the form was refused); ``notice`` is
    a word that is not a refusal (the questions were updated).
    """
    values = values or {}
    config, cache = extensions["config"], extensions["directory"]
    rules, rules_json = _rules(
        config.max_upload_bytes,
        config.max_attachments,
        config.max_plain_upload_bytes,
        str(get_locale()),
    )
    errors: dict[str, str] = {}
    listed: list[tuple[str | None, str]] = []
    for problem in problems:
        text = str(problem)
        if problem.field is not None:
            errors[problem.field] = _joined(errors.get(problem.field, ""), text)
            listed.append((f"f-{problem.field}", text))
        elif problem.key == "content":
            errors.setdefault("content", text)
            listed.append(("content-rule", text))
        else:
            listed.append((None, text))
    page = render_template(
        "report.html",
        step=step,
        category=category,
        values=values,
        errors=errors,
        problems=listed,
        lead=str(lead),
        notice=str(notice),
        fields=FIELDS,
        sections=SECTIONS,
        category_field=BY_NAME["category"],
        hidden_names=hidden_names(category, values),
        rules=rules,
        rules_json=rules_json,
        limits=rules["attachments"],
        organisation_key=str(cache.organisation) if cache is not None else "",
        once=once or form_keys.issue(extensions["runtime"].sessions, config.secret_key),
    )
    response = Response(page, status)
    if values:
        response.headers[NO_COMPRESS[0]] = NO_COMPRESS[1]
    return response


def _joined(before: str, text: str) -> str:
    """Two messages about one field, as sentences one after the other, in the page's language.

    Field messages have no full stop of their own; how a sentence ends and
    whether a space follows are the translator's to say (Chinese: "。", none).
    """
    if not before:
        return text
    if before.endswith(_SENTENCE_ENDS):
        # Translators: two messages about one form field, one after the other;
        # the first already ends its sentence. Chinese, for one, puts no space between.
        return gettext("%(first)s %(second)s", first=before, second=text)
    # Translators: two messages about one form field, one after the other; the first
    # has no full stop of its own: end it as your language does (Chinese "。", Hindi "।").
    return gettext("%(first)s. %(second)s", first=before, second=text)


def typed_values(form: Any) -> dict[str, list[str]]:
    """What the reporter typed into the report's fields (the form keys left out)."""
    return {name: form.getlist(name) for name in form if name in BY_NAME and name not in KEYS}


def refilled_form(
    extensions: Mapping[str, Any],
    values: Mapping[str, Sequence[str]],
    problems: Sequence[InvalidReportError],
    *,
    lead: Words,
    once: str,
    files_sent: int,
    status: int,
    notice: Words = "",
) -> Response:
    """Step 2 again, filled with ``values``, every problem marked; ``status`` 4xx or 5xx.

    Also, with status 200, a ``notice`` and no ``lead``: the same form with
    the questions for another category (``POST /submit-plain`` with
    ``action=update``, stored nowhere).
    """
    problems = list(problems)
    if files_sent:
        problems.append(InvalidReportError(MESSAGES["files_again"], "attachments", "files_again"))
    category = (values.get("category") or [""])[0]
    response = report_page(
        extensions,
        step="details",
        category=category,
        values=values,
        problems=problems,
        lead=lead,
        notice=notice,
        once=once,
        status=status,
    )
    response.headers[NO_COMPRESS[0]] = NO_COMPRESS[1]
    return response
