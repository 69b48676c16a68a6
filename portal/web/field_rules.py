"""The rules both paths check: the messages, the pairs, and the rules JSON.

The server (``portal/web/report.py``, ``portal/web/intake.py``) words every
refusal with these templates, and the page embeds them, with the field table
(``fields.py``), as the rules JSON (:func:`form_rules`) that the browser checks
with: one source, no second list. A ``{name}`` in a template is filled from
the field's own entry in the rules (``label``, ``min``, ``max``,
``max_length``, ``example``; in the browser, ``label`` is the field's label on
the page unless the entry names it), from the other field of a pair (``other``), or
from the attachment limits (``max_count``; ``limit``, a figure in whole MiB
like "25 MiB"; ``index``, a file's number from 1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from portal.web.attachment_limits import size_text
from portal.web.fields import FIELDS, Field, Kind, Words

CONTENT_RULE = _l("Describe what happened, or fill in at least one detail besides the category.")


class Templates(Mapping[str, str]):
    """Message templates that are read in the request's language as they are looked up.

    Each lookup gives a plain ``str``: in the page's language during a
    request, in English outside one (a test, ``scripts/fields_doc.py``).
    """

    def __init__(self, texts: Mapping[str, Words]) -> None:
        self._texts = dict(texts)

    def __getitem__(self, key: str) -> str:
        return str(self._texts[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


#: a ``{name}`` is left as it is (the translator keeps it), for the browser fills
#: these templates from the rules JSON too
MESSAGES = Templates(
    {
        "required": _l("{label}: please choose one"),
        "choice": _l("{label}: not one of the listed choices"),
        "one_value": _l("{label}: give one value only"),
        "count": _l("{label}: a whole number from 0 to 9999"),
        "coordinate": _l(
            "{label}: write it like {example}, or in decimal degrees from {min} to {max}; "
            "never more than {max}°"
        ),
        "local_time": _l("{label}: a date and time like 2026-11-21T02:10"),
        "one_line": _l("{label}: one line only"),
        "too_long": _l("{label}: at most {max_length} characters"),
        "bad_chars": _l(
            "{label}: contains characters that cannot be part of a text "
            "(control characters or damaged encoding)"
        ),
        "order": _l("{label}: cannot be less than “{other}”"),
        "content": _l(
            "Nothing to send yet. "
            "Describe what happened, or fill in at least one detail besides the category."
        ),
        "too_many_files": _l("Attachments: at most {max_count} files"),
        "file_too_large": _l("Attachments: file {index} is larger than {limit}, the most allowed"),
        "total_too_large": _l(
            "Attachments: together they are larger than {limit}, the most allowed"
        ),
        "damaged_image": _l("Attachments: file {index} looks like a damaged image"),
        "files_again": _l(
            "Files cannot be kept after an error: "
            "please choose your attachments again before sending."
        ),
        "form_expired": _l(
            "This form had expired or was opened in another browser session. Nothing was stored. "
            "Everything you typed is still below: choose any files again and send it again."
        ),
        "busy": _l(
            "Too many reports are arriving without JavaScript right now. Nothing was stored. "
            "Everything you typed is still below: please send it again in a few minutes."
        ),
        "unavailable": _l(
            "The portal cannot accept reports right now. Nothing was stored. "
            "Everything you typed is still below: please send it again later."
        ),
        "failed": _l(
            "Something went wrong on our side. Nothing was stored. "
            "Everything you typed is still below: please send it again later."
        ),
        "not_stored": _l("Nothing was stored. Please correct what is marked and send it again."),
        "still_storing": _l(
            "Your report is still being stored. Please wait a moment, then send it again: it will "
            "not be stored twice. Everything you typed is still below."
        ),
        "updated": _l(
            "The questions below are now those for the kind of incident you chose. "
            "Nothing has been sent yet."
        ),
    }
)
#: (lower, upper): the first may not be above the second
PAIRS: tuple[tuple[str, str], ...] = (("perpetrators_min", "perpetrators_max"),)


def form_rules(
    max_attachments: int,
    max_file_bytes: int,
    max_total_bytes: int,
    *,
    plain_max_file_bytes: int,
    plain_max_total_bytes: int,
    plain_max_request_bytes: int | None = None,
) -> dict[str, Any]:
    """The rules JSON the report page embeds (``<script id="form-rules">``).

    ``max_*`` are the browser's limits on plaintext files
    (:func:`browser_attachment_limits`), ``plain_*`` the no-JavaScript
    path's (:func:`plain_attachment_limits`: per file, all files, and the
    whole form, when given). Each limit comes with its ``*_text``, the
    figure a message's ``{limit}`` names. Every word is read in the
    request's language (in English outside a request), so the rules are
    plain JSON, made per language.
    """
    limits = {
        "max_file_bytes": max_file_bytes,
        "max_total_bytes": max_total_bytes,
        "plain_max_file_bytes": plain_max_file_bytes,
        "plain_max_total_bytes": plain_max_total_bytes,
    }
    if plain_max_request_bytes is not None:
        limits["plain_max_request_bytes"] = plain_max_request_bytes
    return {
        "fields": [_field_rule(f) for f in FIELDS],
        "messages": dict(MESSAGES),
        "pairs": [list(pair) for pair in PAIRS],
        "content_rule": str(CONTENT_RULE),
        "attachments": {
            "max_count": max_attachments,
            **limits,
            **{key.replace("_bytes", "_text"): size_text(value) for key, value in limits.items()},
        },
    }


def _field_rule(f: Field) -> dict[str, Any]:
    """The rule of field ``f``: what the browser cannot read from the form, and no default.

    What the page shows already, rules.js reads there (``wholeRules``): the
    field's name in messages, from its ``<label>`` (or ``<legend>``), and its
    choices, from its options or boxes. Only a field that messages call
    otherwise (``short``) carries a ``label``. Left out as defaults:
    ``categories`` when the field serves every category, ``required`` when
    false, ``min``, ``max`` and ``example`` when the field has none. Every
    byte here is paid for on every page, in every language (issue 15).
    """
    low, high = field_range(f)
    rule: dict[str, Any] = {"name": f.name, "kind": f.kind.value, "section": f.section,
                            "max_length": f.max_length}  # fmt: skip
    optional = {
        "label": _words(f.short or None),
        "categories": None if f.for_every_category else list(f.categories),
        "required": f.required or None,
        "min": low,
        "max": high,
        "example": _words(f.extra.get("example")),
    }
    rule.update((key, value) for key, value in optional.items() if value is not None)
    return rule


def _words(text: Words | None) -> str | None:
    """A lazy translation read now, in the request's language."""
    return None if text is None else str(text)


def field_range(f: Field) -> tuple[int | None, int | None]:
    """The lowest and highest number ``f`` takes, if it takes a number."""
    if f.kind is Kind.COUNT:
        return 0, 9999
    if f.kind is Kind.COORDINATE:
        return int(f.extra["min"]), int(f.extra["max"])
    return None, None


def message(key: str, f: Field | None = None, **values: Any) -> str:
    """The text of message ``key``, about field ``f`` if any (see :data:`MESSAGES`).

    In the request's language: the template and the field's words are both
    read now. A word among ``values`` may be a lazy translation too.
    """
    if f is not None:
        low, high = field_range(f)
        values = {"label": f.name_in_messages, "max_length": f.max_length, "min": low,
                  "max": high, "example": f.extra.get("example"), **values}  # fmt: skip
    words = {name: str(value) if isinstance(value, LazyString) else value
             for name, value in values.items()}  # fmt: skip
    return MESSAGES[key].format(**words)
