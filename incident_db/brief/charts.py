"""The brief's charts: small matplotlib bar charts as inline SVG.

Matplotlib runs headless (no pyplot, no GUI backend): a ``Figure`` is drawn
straight to SVG. Text is drawn as paths, so the SVG needs no font file, and
the hash salt and metadata are fixed, so the same figures give the same
bytes. Nothing is fetched from anywhere.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

matplotlib.rcParams.update(
    {
        "svg.fonttype": "path",  # glyphs as outlines: no font needed where it is shown
        "svg.hashsalt": "cso-incident-brief",  # stable element ids
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
INK = "#1f3b57"
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def _svg(figure: Figure, title: str) -> str:
    """The figure as one ``<svg>`` element, titled for screen readers."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    # no XML prologue inside HTML, and no RDF metadata block: nothing a page needs
    svg = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{title}" ', 1)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[int],
    title: str,
    *,
    width: float = 3.4,
    height: float = 1.6,
    rotate: bool = False,
    tick_every: int = 1,
) -> str:
    """A bar chart of counts as inline SVG."""
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    positions = list(range(len(values)))
    axes.bar(positions, values, color=INK, width=0.8)
    axes.set_xticks(positions[::tick_every], [labels[i] for i in positions[::tick_every]])
    if rotate:
        axes.tick_params(axis="x", labelrotation=90)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no half incidents
    axes.set_title(title, loc="left", fontsize=8)
    axes.margins(x=0.01)
    # fixed margins: tight_layout would cost as much as drawing the chart
    figure.subplots_adjust(left=0.1, right=0.99, bottom=0.4 if rotate else 0.16, top=0.86)
    return _svg(figure, title)


def weekday_chart(by_weekday: Mapping[str, int]) -> str:
    """Incidents by local day of the week."""
    days = [d for d in by_weekday if d != "unknown"]
    return bar_chart([d[:3].title() for d in days], [by_weekday[d] for d in days],
                     "Incidents by local day of week")  # fmt: skip


def hour_chart(by_hour: Mapping[str, int]) -> str:
    """Incidents by local hour."""
    hours = [h for h in by_hour if h != "unknown"]
    return bar_chart(hours, [by_hour[h] for h in hours], "Incidents by local hour",
                     tick_every=3)  # fmt: skip


def month_chart(by_month: Mapping[str, int]) -> str:
    """Incidents per month over the whole period, as one filled step line.

    Decades of months would be hundreds of bars; one path draws as fast as
    a handful and reads the same.
    """
    months = list(by_month)
    title = "Incidents per month"
    figure = Figure(figsize=(7.0, 1.25))
    axes = figure.add_subplot()
    axes.stairs([by_month[m] for m in months], range(len(months) + 1), fill=True, color=INK)
    if len(months) > 36:  # label years, at most about a dozen of them
        every = max(1, len(months) // 144)
        ticks = [i for i, m in enumerate(months) if m.endswith("-01") and int(m[:4]) % every == 0]
        labels = [months[t][:4] for t in ticks]
    else:
        ticks = list(range(0, len(months), max(1, len(months) // 12)))
        labels = [months[t] for t in ticks]
    axes.set_xticks(ticks, labels)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no half incidents
    axes.set_title(title, loc="left", fontsize=8)
    axes.set_xlim(0, len(months))
    figure.subplots_adjust(left=0.05, right=0.995, bottom=0.2, top=0.84)
    return _svg(figure, title)
