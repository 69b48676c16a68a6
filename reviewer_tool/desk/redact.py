"""The redaction page: what will leave the workstation, seen before it is signed.

``GET /report/<id>/redact`` shows each free-text field of the report with
every identifier the detector finds highlighted where it stands, each with
a checkbox to accept (the default) or reject its removal; words to remove
by hand (typed, as the command line takes them, or selected in the text with
reviewer_tool/desk/static/redact.js, which sends the selection's offsets);
the position's precision; and the report's files by their cleaned previews,
each forwarded only if the reviewer ticks it.

``POST`` with ``action=preview`` answers with the same page and, below it,
the exact record reviewer_tool/forwarding.py would sign from those choices
and the hard identity check's verdict naming any field that still holds an
identity value: nothing is stored or signed. ``action=save`` stores the
redaction (reviewer_tool/redaction_flow.py, as ``reviewer redact`` does)
and returns to this page, which then shows the stored version's record and
the choices it was made with (kept beside it as ``choices``; forwarding reads
only the fields, the precision and the files).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from reviewer_tool import redaction_flow as flow
from reviewer_tool.desk import display, files
from reviewer_tool.desk.report import find_item
from reviewer_tool.desk.search import whole_number
from reviewer_tool.desk.state import current
from reviewer_tool.errors import ReviewerError
from reviewer_tool.forwarding import TEXT_FIELDS, identity_values
from reviewer_tool.redaction import Finding
from reviewer_tool.redaction.position import MAX_DECIMALS
from reviewer_tool.workspace import Item

bp = Blueprint("redact", __name__)

#: how far each number of decimals places a position, for the choice
PRECISION = {
    0: "whole degrees, about 110 km",
    1: "about 11 km",
    2: "about 1 km (the usual choice)",
    3: "about 110 m",
    4: "about 11 m",
    5: "about 1 m",
    6: "about 10 cm: as sent",
}
DONE = {"saved": "Redaction saved. The record below is what forwarding would sign now."}
#: a record member (forwarding.TEXT_FIELDS target) → the label of the field it comes from
MEMBER_LABELS = {member: display.field_label(name) for name, member in TEXT_FIELDS.items()}


def one_line(words: str) -> str:
    """Typed words as the page's one-line box holds them: a text input drops line
    breaks, so a value that arrives with one is taken as the box would show it."""
    return words.replace("\r", "").replace("\n", "")[:2000]


def _spans_of(entries: Any, *, with_kind: bool = False) -> list[tuple[Any, ...]]:
    """The ``[field, start, end(, kind)]`` entries of stored choices that have that
    shape (a field name, two whole numbers, a kind's name); the rest are skipped."""
    size = 4 if with_kind else 3
    out: list[tuple[Any, ...]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, list) or len(entry) != size:
            continue
        name, start, end = entry[:3]
        numbers = all(type(x) is int for x in (start, end))
        if isinstance(name, str) and numbers and all(isinstance(x, str) for x in entry[3:]):
            out.append(tuple(entry))
    return out


class Choices:
    """What the reviewer chose on the page: the findings accepted, their own
    redactions, words to remove, the position's precision and the files."""

    def __init__(self, item: Item, form: Any = None) -> None:
        self.texts = flow.text_fields(item)
        self.found = flow.suggestions(item)
        stored = item.record.get("redaction") or {}
        if form is None:  # the page as first shown: the stored choices, else every suggestion
            self._restore(stored.get("choices"))
            decimals = stored.get("position_decimals")
            self.decimals = flow.DEFAULT_DECIMALS if decimals is None else decimals
            self.attachments = list(stored.get("attachments", []))
            return
        self.accepted = set()
        for value in form.getlist("accept"):
            name, _, written = value.partition(":")
            number = whole_number(written)
            if number is None:
                raise ReviewerError("a finding the page sent is not one of this report's")
            if name in self.found and number < len(self.found[name]):
                self.accepted.add((name, number))
        self.manual = self._spans(form.getlist("manual"))
        self.words = {name: one_line(form.get(f"words-{name}", "")) for name in self.texts}
        self.decimals = flow.check_decimals(form.get("decimals", flow.DEFAULT_DECIMALS))
        positions = [whole_number(p) for p in form.getlist("attachment")]
        if None in positions:
            raise ReviewerError("a file the page sent is not one of this report's")
        self.attachments = flow.check_attachments(item, [p for p in positions if p is not None])

    def _restore(self, saved: Any) -> None:
        """The choices a stored redaction was made with (``choices``, written by this
        page's Save), so that saving the page as shown again changes nothing.

        A suggestion stays unticked only if the same field, span and kind was
        rejected then; any other suggestion is ticked. A span accepted then that
        the detector no longer suggests comes back as a selection, so the page
        never offers less removal than was saved. Selections and typed words come
        back too; entries of the wrong shape, or no longer inside their text, are
        dropped (the workspace is sealed, so only a damaged one holds them).
        """
        saved = saved if isinstance(saved, dict) else {}
        rejected = set(_spans_of(saved.get("rejected"), with_kind=True))
        self.accepted = {
            (name, number)
            for name, found in self.found.items()
            for number, finding in enumerate(found)
            if (name, finding.start, finding.end, finding.kind) not in rejected
        }
        suggested = {(n, f.start, f.end) for n, found in self.found.items() for f in found}
        self.manual: dict[str, list[Finding]] = {}
        earlier = [f"{n}:{a}:{b}" for n, a, b in _spans_of(saved.get("accepted"))
                   if (n, a, b) not in suggested]  # fmt: skip
        manual = saved.get("manual")
        for value in earlier + (manual if isinstance(manual, list) else []):
            try:
                spans = self._spans([str(value)])
            except ReviewerError:
                continue
            for name, found in spans.items():
                listed = self.manual.setdefault(name, [])
                listed.extend(f for f in found if f not in listed)
        words = saved.get("words")
        words = words if isinstance(words, dict) else {}
        self.words: dict[str, str] = {
            name: one_line(str(words[name]))
            for name in self.texts
            if isinstance(words.get(name), str) and words[name]
        }

    def saved(self) -> dict[str, Any]:
        """These choices as a stored redaction keeps them, for the page to show again."""
        chosen = [
            (name, number, finding)
            for name, found in self.found.items()
            for number, finding in enumerate(found)
        ]
        return {
            "rejected": [
                [n, f.start, f.end, f.kind] for n, i, f in chosen if (n, i) not in self.accepted
            ],
            "accepted": [[n, f.start, f.end] for n, i, f in chosen if (n, i) in self.accepted],
            "manual": [f"{name}:{m.start}:{m.end}" for name, ms in self.manual.items() for m in ms],
            "words": {name: words for name, words in self.words.items() if words},
        }

    def _spans(self, values: list[str]) -> dict[str, list[Finding]]:
        """The reviewer's selections (``field:start:end``), each checked against its text."""
        spans: dict[str, list[Finding]] = {}
        for value in values[:500]:
            name, _, rest = value.partition(":")
            written_start, _, written_end = rest.partition(":")
            start, end = whole_number(written_start), whole_number(written_end)
            if name not in self.texts or start is None or end is None:
                raise ReviewerError("a selection the page sent is not one of this report's fields")
            finding = flow.manual_span(self.texts[name], start, end)
            if finding not in spans.setdefault(name, []):
                spans[name].append(finding)
        return spans

    def chosen(self) -> dict[str, list[Finding]]:
        """Every span to remove, by field: accepted findings, selections and typed words."""
        out: dict[str, list[Finding]] = {}
        for name, text in self.texts.items():
            picked = [f for i, f in enumerate(self.found[name]) if (name, i) in self.accepted]
            picked += self.manual.get(name, [])
            picked += flow.words_in(text, flow.split_terms(self.words.get(name, "")))
            out[name] = picked
        return out

    def redaction(self, item: Item) -> dict[str, Any]:
        """The redaction these choices make, as an item stores it."""
        redacted = flow.redact_all(item, self.chosen())
        record = flow.redaction_record(redacted.fields, self.decimals, self.attachments)
        return {**record, "choices": self.saved()}

    def _findings(self, name: str) -> list[dict[str, Any]]:
        return [
            {
                "number": number,
                "kind": display.kind_label(finding.kind),
                "text": finding.text,
                "note": finding.note,
                "accepted": (name, number) in self.accepted,
            }
            for number, finding in enumerate(self.found[name])
        ]

    def fields(self) -> list[dict[str, Any]]:
        """Each text field as the page shows it."""
        return [
            {
                "name": name,
                "label": display.field_label(name),
                "text": text,
                "segments": display.segments(text, self.found[name]),
                "findings": self._findings(name),
                "manual": self.manual.get(name, []),
                "words": self.words.get(name, ""),
            }
            for name, text in self.texts.items()
        ]


def _verdict(item: Item, redaction: dict[str, Any] | None) -> dict[str, Any] | None:
    if redaction is None:
        return None
    result = flow.preview(current().ws, item, redaction)
    record = None
    if result.record is not None:
        record = json.dumps(result.record, indent=2, ensure_ascii=False, sort_keys=False)
    return {
        "record": record,
        "refusal": result.refusal,
        "leaks": [(MEMBER_LABELS.get(path, path), path) for path in result.leaks],
        "hidden": [(MEMBER_LABELS.get(path, path), path) for path in result.hidden],
    }


def _name_flags(name: str, values: list[str]) -> list[str]:
    """What a file name holds, in the page's words, each kind once (a template cannot map
    a Python function: Jinja's ``map`` takes a filter's name)."""
    return list(dict.fromkeys(display.kind_label(kind) for kind in flow.name_flags(name, values)))


def _render(
    item: Item, choices: Choices, verdict: dict[str, Any] | None, *,
    previewing: bool, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    ws = current().ws
    report = item.record["report"]
    entries = report.get("attachments", [])
    values = identity_values(item)
    context = {
        "item": item,
        "done": DONE.get(request.args.get("done", "")),
        "error": error,
        "fields": choices.fields(),
        "choices": choices,
        "has_position": "latitude" in report.get("report", {}),
        "precision": PRECISION,
        "max_decimals": MAX_DECIMALS,
        "files": files.file_views(ws, ("report", item.id), entries),
        "flags": [_name_flags(str(e.get("name", "")), values) for e in entries],
        "verdict": verdict,
        "previewing": previewing,
        "stored": item.record.get("redaction"),
        "followups": ws.followups(item.id),
        "visible": display.visible,
        "kind_label": display.kind_label,
    }
    return Response(render_template("redact.html", **context), status)


@bp.get("/report/<item_id>/redact")
def page(item_id: str) -> Response:
    """The redaction page as first shown, with the stored redaction's record if there is one."""
    item = find_item(current().ws, item_id)
    return _render(item, Choices(item), _verdict(item, item.record.get("redaction")),
                   previewing=False)  # fmt: skip


@bp.post("/report/<item_id>/redact")
def submit(item_id: str) -> Response:
    """Preview the record the choices make, or save them as the report's redaction."""
    state = current()
    item = find_item(state.ws, item_id)
    action = request.form.get("action")
    try:
        choices = Choices(item, request.form)
        redaction = choices.redaction(item)
    except ReviewerError as error:
        return _render(item, Choices(item), None, previewing=False, error=error.diagnostics(),
                       status=400)  # fmt: skip
    if action == "save":
        flow.store_redaction(state.ws, item, redaction)
        state.changed([item.id])
        target = url_for("redact.page", item_id=item.id, done="saved", _anchor="preview")
        return redirect(target, 303)  # type: ignore[return-value]
    if action != "preview":
        return _render(item, choices, None, previewing=False,
                       error="choose Preview or Save redaction", status=400)  # fmt: skip
    return _render(item, choices, _verdict(item, redaction), previewing=True)
