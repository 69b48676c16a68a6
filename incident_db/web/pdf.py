"""The voyage brief as a PDF, made on the server with matplotlib's PDF backend.

One A4 page for the summary, then one per port of call, each drawn as a
matplotlib figure (text, and two small bar charts of the local days and
hours). The text uses the PDF core font Helvetica, so the file embeds no
font and its words stay searchable; that font covers plain Latin only, so
every line is first cleaned of control characters and anything the font
cannot show. Math text is off: a place name is never read as a formula.
A page that would run over its foot stops with a pointer to the web page,
so the page count is always one plus the number of calls.

Every incident listed carries its TLP 2.0 label in FIRST's colour on black.
TLP:RED never leaves the service: a RED incident is never listed in the
file, and each page says how many were left out (:func:`red_left_out`).
"""

from __future__ import annotations

import io
import logging
import textwrap
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from incident_db import tlp
from incident_db.brief.figures import WEEKDAYS
from incident_db.brief.text import clean

if TYPE_CHECKING:
    from incident_db.web.voyage import VoyageBrief

A4 = (8.27, 11.69)  # inches
MARGIN = 0.75
FOOT = A4[1] - 0.9  # where text must stop, inches from the top
INK = "#14212e"
MUTED = "#4a5a6a"
SETTINGS = {
    "pdf.use14corefonts": True,  # Helvetica: nothing embedded, text searchable
    "font.family": "sans-serif",
    "font.sans-serif": ["Helvetica"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 8,
    "font.weight": "medium",  # the core font's regular weight is named so
    "axes.titleweight": "medium",
    "axes.labelweight": "medium",
    "axes.unicode_minus": False,
}
# the core font names its regular weight "medium" and the tick formatter probes the
# math font: font_manager reports both substitutions, which are intended, on every page
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
#: what the core font cannot show, said in characters it can
PLAIN = str.maketrans({"→": "->", "–": "-", "—": "-", "×": "x", "·": "|", "“": '"', "”": '"',
                       "\u2018": "'", "\u2019": "'", "…": "...", "≥": ">=",
                       "≤": "<="})  # fmt: skip


def plain(text: object) -> str:
    """``text`` in printable ASCII: controls gone, accents dropped, the rest as "?"."""
    decomposed = unicodedata.normalize("NFKD", clean(text).replace(" · ", "; ").translate(PLAIN))
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" else "?" for c in kept)


class Sheet:
    """One A4 page, written from the top down like a typewriter."""

    def __init__(self, footer: str) -> None:
        self.figure = Figure(figsize=A4)
        self.y = MARGIN  # inches from the top
        self.full = False
        self.text(footer, size=8, color=MUTED, at=A4[1] - 0.5)

    def _fits(self, height: float) -> bool:
        if self.y + height > FOOT:
            self.full = True
        return not self.full

    def text(self, words: object, *, size: float = 11, bold: bool = False, color: str = INK,
             indent: float = 0.0, at: float | None = None, gap: float = 0.04) -> None:  # fmt: skip
        """Wrapped lines of ``words``; nothing once the page is full."""
        width = A4[0] - 2 * MARGIN - indent
        chars = max(20, int(width * 72 / (size * 0.5)))
        lines = textwrap.wrap(plain(words), chars) or [""]
        line_height = size * 1.3 / 72
        if at is None and not self._fits(len(lines) * line_height):
            return
        top = self.y if at is None else at
        for number, line in enumerate(lines):
            self.figure.text((MARGIN + indent) / A4[0], 1 - (top + number * line_height) / A4[1],
                             line, fontsize=size, fontweight="bold" if bold else "medium",
                             color=color, va="top", ha="left", parse_math=False)  # fmt: skip
        if at is None:
            self.y = top + len(lines) * line_height + gap

    def heading(self, words: str) -> None:
        """A section heading, set off from what comes before it."""
        self.y += 0.1
        self.text(words, size=12, bold=True)

    def bullets(self, lines: Sequence[str], size: float = 10.5) -> None:
        """A short list, each line wrapped under its dash."""
        for line in lines:
            self.text(f"- {line}", size=size, indent=0.1)

    def row(self, cells: Sequence[str], columns: Sequence[float], *, size: float = 10,
            bold: bool = False) -> None:  # fmt: skip
        """One table row: ``cells`` at the ``columns`` (inches from the margin)."""
        height = size * 1.35 / 72
        if not self._fits(height):
            return
        for cell, x in zip(cells, columns, strict=True):
            self.figure.text((MARGIN + x) / A4[0], 1 - self.y / A4[1], plain(cell)[:40],
                             fontsize=size, fontweight="bold" if bold else "medium", color=INK,
                             va="top", ha="left", parse_math=False)  # fmt: skip
        self.y += height

    def label(self, level: str, x: float, *, size: float = 9) -> None:
        """A TLP label at ``x`` (inches from the margin) on the row about to be written."""
        if not self._fits(size * 1.35 / 72):
            return
        self.figure.text((MARGIN + x) / A4[0], 1 - self.y / A4[1], tlp.LABELS[level],
                         fontsize=size, fontweight="bold", color=tlp.COLOURS[level], va="top",
                         ha="left", parse_math=False,
                         bbox={"facecolor": tlp.BACKGROUND, "edgecolor": tlp.BACKGROUND,
                               "pad": 1.5})  # fmt: skip

    def bars(self, charts: Sequence[tuple[str, Sequence[str], Sequence[int]]]) -> None:
        """Small bar charts side by side: (title, labels, counts) each."""
        height = 1.45
        if not self._fits(height + 0.1):
            return
        width = (A4[0] - 2 * MARGIN) / len(charts)
        for index, (title, labels, counts) in enumerate(charts):
            left = (MARGIN + index * width + 0.35) / A4[0]
            bottom = 1 - (self.y + height - 0.3) / A4[1]
            axes = self.figure.add_axes((left, bottom, (width - 0.55) / A4[0], 1.0 / A4[1]))
            axes.bar(range(len(counts)), counts, color="#1f3b57")
            axes.set_xticks(range(len(labels)), [plain(label) for label in labels])
            axes.tick_params(labelsize=7)
            axes.set_title(plain(title), fontsize=8.5, loc="left")
            axes.set_ylim(0, max(1, *counts))  # an empty chart still has a sensible scale
            axes.yaxis.get_major_locator().set_params(integer=True)
        self.y += height + 0.1


def red_left_out(incidents: Sequence[dict[str, Any]]) -> int:
    """How many of a call's listed incidents are TLP:RED, which the file never carries."""
    return sum(1 for incident in incidents if incident["tlp"] == "red")


def _shown(incidents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incidents the file may list: every one the export clearance allows (never RED)."""
    return [i for i in incidents if tlp.allows(tlp.EXPORT_MAX, i["tlp"])]


def _summary(document: VoyageBrief, score_words: str, footer: str) -> Figure:
    sheet = Sheet(footer)
    calls = document.calls
    sheet.text(f"Voyage brief: {len(calls)} port{'s' if len(calls) != 1 else ''} of call",
               size=18, bold=True, gap=0.1)  # fmt: skip
    sheet.text(f"Made {document.day.isoformat()} (UTC) from the CSO incident database.",
               size=10, color=MUTED)  # fmt: skip
    sheet.text("In voyage order: " + " -> ".join(p.name for p in calls), size=11, gap=0.2)
    first = document.ranked[0]
    sheet.text(f"By recent risk, highest first ({first.since.isoformat()} to "
               f"{first.until.isoformat()}):", size=11, bold=True)  # fmt: skip
    columns = (0.0, 0.5, 3.7, 4.3, 4.95, 5.7)
    sheet.row(("Rank", "Port", "Score", "Actual", "Attempted", "Last incident"), columns, bold=True)
    for risk in document.ranked:
        last = risk.last_incident.isoformat() if risk.last_incident else "none"
        sheet.row((str(risk.rank), risk.place.name, str(risk.score),
                   str(risk.by_kind["actual-attack"]), str(risk.by_kind["attempted-attack"]),
                   last), columns)  # fmt: skip
    sheet.y += 0.2
    sheet.text(score_words, size=10.5)
    sheet.text("Each following page is one port of call: what happened there in the last 24 "
               "months, against the 24 months before. Days are written YYYY-MM-DD; times are "
               "local where it happened, HH:MM. Every figure counts incidents; an unknown date "
               "or time is counted as unknown, never guessed.", size=10.5)  # fmt: skip
    listed = [i for item in document.briefs for i in _shown(item["brief"]["incidents"])]
    left_out = sum(red_left_out(item["brief"]["incidents"]) for item in document.briefs)
    words = ("Sharing: every incident listed carries its TLP 2.0 label (FIRST); share this "
             "file no wider than the strictest label in it")  # fmt: skip
    if listed:
        words += f", here {tlp.LABELS[tlp.strictest(*(i['tlp'] for i in listed))]}"
    words += (f". TLP:RED incidents are never in this file: {left_out} left out of the lists "
              "(the figures still count them).")  # fmt: skip
    sheet.text(words, size=10.5)
    return sheet.figure


def _call(item: dict[str, Any], number: int, total: int, footer: str) -> Figure:
    sheet = Sheet(footer)
    place, brief, risk = item["place"], item["brief"], item["risk"]
    figures = brief["figures"]
    sheet.text(f"Call {number}: {place.name}", size=16, bold=True, gap=0.06)
    sheet.text(f"Risk rank {risk.rank} of {total}, score {risk.score} in the last 12 months",
               size=10.5, color=MUTED)  # fmt: skip
    sheet.text(brief["subtitle"], size=10, color=MUTED, gap=0.12)
    sections: list[tuple[str, list[str]]] = [
        ("Trend", brief["trend_lines"]),
        ("When", [brief["clock_line"], brief["days_line"]]),
    ]
    for title, lines in sections:
        sheet.heading(title)
        sheet.bullets(lines)
    days = figures["by_weekday"]
    hours = figures["by_hour"]
    sheet.bars((
        ("Incidents by local weekday", [d[:2].title() for d in WEEKDAYS],
         [days[d] for d in WEEKDAYS]),
        ("Incidents by local hour", [f"{h:02d}" if h % 6 == 0 else "" for h in range(24)],
         [hours[f"{h:02d}"] for h in range(24)]),
    ))  # fmt: skip
    if brief["how_lines"]:
        sheet.heading("How")
        sheet.bullets(brief["how_lines"])
    if brief["helped_line"]:
        sheet.heading("What helped")
        sheet.bullets([brief["helped_line"]])
    sheet.heading("Sources")
    sheet.bullets([brief["sources_line"]])
    if brief["incidents"]:
        sheet.heading("The most recent incidents")
        for incident in _shown(brief["incidents"]):
            source = "confirmed" if incident["confirmed"] else "unverified"
            sheet.label(incident["tlp"], 5.75, size=8.5)
            sheet.row((incident["day"], incident["time"], incident["kind"], source),
                      (0.1, 1.3, 2.5, 4.9))  # fmt: skip
        left_out = red_left_out(brief["incidents"])
        if left_out:
            plural = "s" if left_out != 1 else ""
            sheet.text(f"{left_out} TLP:RED incident{plural} left out: TLP:RED never leaves "
                       "the members' service.", size=9.5, color=MUTED)  # fmt: skip
    if sheet.full:
        sheet.text(f"More on the members' site: /places/{place.key}", size=9, color=MUTED,
                   at=FOOT + 0.05)  # fmt: skip
    return sheet.figure


def voyage_pdf(document: VoyageBrief, score_words: str) -> bytes:
    """The PDF: the summary page, then one page per call, in voyage order."""
    buffer = io.BytesIO()
    total = len(document.calls) + 1
    made = document.day.isoformat()
    with matplotlib.rc_context(SETTINGS):
        metadata = {"Title": "Voyage brief", "Creator": "incident-db", "CreationDate": None}
        with PdfPages(buffer, metadata=metadata) as pages:
            pages.savefig(
                _summary(document, score_words, f"Voyage brief, made {made} - page 1 of {total}")
            )
            for number, item in enumerate(document.briefs, start=1):
                footer = f"Voyage brief, made {made} - page {number + 1} of {total}"
                pages.savefig(_call(item, number, len(document.calls), footer))
    return buffer.getvalue()
