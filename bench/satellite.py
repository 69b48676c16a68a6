"""A reporter on a ship's satellite link: real Chromium, a shaped link, the real portal.

    python -m bench.satellite            # 64 kbit/s each way, 800 ms round trips, 300 KB photo
    python -m bench.satellite --smoke    # 2 Mbit/s, 400 ms round trips, a 150 KB photo

Starts `portal serve` over a demo data directory and puts the link shaper
of the tests (tests/integration/shaper.py: rate per direction, 400 ms each
way, small socket buffers) in front of it; plain HTTP on loopback, as an
onion service is. Headless Chromium (fresh profile, nothing cached) then
does what a reporter does: opens the form, waits for the browser's
encryption, chooses the category, describes what happened, attaches a
photo, presses send, and waits for the receipt.

Measured, with the page's own clock (tests/integration/satellite_visit.py):

* form painted: the later of the first contentful paint and the first frame
  showing ``#report``; target 3 s;
* encryption ready: ``<html data-encryption="ready">``; target 8 s;
* report sent: from pressing send to ``#receipt`` visible; target 50 s;
* bytes on the wire while sending (what the browser sent through the link)
  against the sealed payload (the envelopes the portal stored); target
  1.15 times.

Each is printed beside the physical floor of this link: the round trips
the step cannot do without plus its bytes at the link's rate (the page's
bytes are measured first, gzip as sent, by bench/page_weight.py's visit).
Exits 1 if a figure misses its target or anything fails; the reasons are
printed.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._demo import demo_portal
from bench._serve import portal_serve
from bench.page_weight import AT_START, PER_HOST, Failure, Fetched, Meter, visit
from portal.config import load_config
from tests.integration.chromium import chromium
from tests.integration.satellite_visit import (
    MARKS,
    fill_report,
    jpeg_photo,
    marks,
    stored_parts,
    wait_for_encryption,
)
from tests.integration.shaper import SATELLITE_DELAY, SATELLITE_RATE, Shaper

TARGETS = {"paint": 3.0, "ready": 8.0, "send": 50.0, "wire": 1.15}
PLAIN_POST = b"POST /submit-plain "


@dataclass(frozen=True)
class Settings:
    """The link and the photo of one run."""

    rate: int  # bits per second, each way
    delay: float  # seconds, one way
    photo: int  # bytes

    @property
    def rtt(self) -> float:
        """One round trip."""
        return 2 * self.delay

    def transfer(self, size: int) -> float:
        """Seconds for ``size`` bytes at the link's rate."""
        return size * 8 / self.rate


FULL = Settings(rate=SATELLITE_RATE, delay=SATELLITE_DELAY, photo=300 * 1024)
#: for `make test`: a faster link with half the delay, so that the run is short and its
#: figures are far from the targets on a busy machine; the photo large enough that the
#: requests around it do not dominate the bytes-on-the-wire ratio
SMOKE = Settings(rate=2_000_000, delay=SATELLITE_DELAY / 2, photo=150 * 1024)


@dataclass
class Figure:
    """One measured figure, its target and its floor."""

    name: str
    measured: float
    target: float
    floor: float
    unit: str
    why: str  # how the floor is made

    @property
    def met(self) -> bool:
        """Whether the figure meets its target."""
        return self.measured <= self.target


def page_bytes(url: str) -> list[Fetched]:
    """The first visit's requests and their gzip bytes, unshaped (for the floors)."""
    host, port = url.removeprefix("http://").split(":")
    with Shaper((host, int(port)), rate=10**10, delay=0) as meter_link:
        meter = Meter(meter_link)
        try:
            return visit(meter)
        finally:
            meter.connection.close()


def floors(
    settings: Settings, fetched: list[Fetched], payload: int
) -> dict[str, tuple[float, str]]:
    """The physical floor of each figure on this link, and how it is made."""
    size = {f.path: f.gzip_bytes for f in fetched}
    page = next(f for f in fetched if f.path == "/")
    # the form can show before the rest of the page has arrived: count the bytes up to it
    # (the response's headers, then the compressed HTML before <form id="report">)
    headers = page.gzip_bytes - len(gzip.compress(page.body))
    html = headers + len(gzip.compress(page.body[: page.body.index(b'<form id="report"')]))
    whole_html = size["/"]
    styles = sum(v for k, v in size.items() if k.endswith(".css"))
    modules = sum(v for k, v in size.items() if k.endswith(".js"))
    keys = size[AT_START[0]]
    rtt = settings.rtt
    return {
        # a linked stylesheet blocks the first paint for one more round trip; the
        # portal writes its stylesheet into the page (portal/web/styles.py)
        "paint": (
            (3 if styles else 2) * rtt + settings.transfer(html + styles),
            f"{'3 round trips (connect, page, stylesheet)' if styles else '2 round trips '}"
            f"{'' if styles else '(connect, page; the stylesheet is in the page)'} + "
            f"{html + styles} B",
        ),
        # the page names its one bundle in its head, so the browser asks for it while
        # the rest of the page is still arriving: that request costs no round trip of
        # its own, only its bytes; the keys are asked for once the bundle runs
        "ready": (
            3 * rtt + settings.transfer(whole_html + styles + modules + keys),
            f"3 round trips (connect, page, keys; the bundle is asked for from the page's "
            f"head while the page arrives) + {whole_html + styles + modules + keys} B",
        ),
        "send": (
            4 * rtt + settings.transfer(payload),
            f"4 round trips (begin, create, upload, finish) + {payload} B sealed",
        ),
        "wire": (1.0, "every sealed byte once"),
    }


def run(settings: Settings, workdir: Path, trace: bool = False) -> tuple[list[Figure], list[str]]:
    """One reporter's visit; the figures, and every problem seen on the way."""
    problems: list[str] = []
    data_dir, _ = demo_portal(str(workdir))
    database_url = load_config({}, data_dir=data_dir).database_url
    photo = jpeg_photo(workdir / "IMG_0042.jpg", settings.photo)
    with portal_serve(data_dir, workdir / "serve.log") as url:
        fetched = page_bytes(url)
        host, port = url.removeprefix("http://").split(":")
        with (
            Shaper((host, int(port)), rate=settings.rate, delay=settings.delay,
                   watch=[PLAIN_POST], trace=trace) as link,
            chromium(workdir / "profile") as context,
        ):  # fmt: skip
            context.add_init_script(MARKS)
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.goto(link.url + "/", wait_until="commit", timeout=60_000)
            state = wait_for_encryption(page, 120)
            if state != "ready":
                raise Failure(f"the page's encryption is {state!r}, not ready")
            seen = marks(page)
            link.note("encryption ready; filling in the form")
            fill_report(page, "Robbers boarded at anchor; crew unharmed.", photo)
            before = link.bytes_up
            started = time.monotonic()
            link.note("send pressed")
            page.click("#send")
            page.wait_for_selector("#receipt", state="visible", timeout=600_000)
            sent = time.monotonic() - started
            link.note("receipt shown")
            wire = link.bytes_up - before
            if link.seen(PLAIN_POST):
                problems.append("the browser posted to /submit-plain (the server-encryption path)")
    for second, line in link.trace or []:
        print(f"{second:8.2f} s  {line}")
    reports = stored_parts(data_dir, database_url)
    if len(reports) != 1:
        raise Failure(f"{len(reports)} reports stored, not exactly one")
    payload = sum(path.stat().st_size for path in reports[0])
    floor = floors(settings, fetched, payload)
    if "form" not in seen or "fcp" not in seen:
        raise Failure(f"the form was never painted (marks: {seen})")
    painted = max(seen["fcp"], seen["form"])
    measured = {"paint": painted, "ready": seen["ready"], "send": sent, "wire": wire / payload}
    units = {"paint": "s", "ready": "s", "send": "s", "wire": "x payload"}
    names = {"paint": "form painted", "ready": "encryption ready", "send": "report sent",
             "wire": "bytes on the wire"}  # fmt: skip
    figures = [
        Figure(names[k], measured[k], TARGETS[k], floor[k][0], units[k], floor[k][1])
        for k in TARGETS
    ]
    loaded = [f for f in fetched if f.round_trip == 2 and f.path != "/favicon.ico"]
    print(f"page: {len(loaded)} stylesheets and modules at once after the HTML; over HTTP/1.1's"
          f" {PER_HOST} connections per host that is at least {-(-len(loaded) // PER_HOST)}"
          " round trips")  # fmt: skip
    print(f"sealed payload {payload} B in {len(reports[0])} envelopes; sent through the link "
          f"while sending: {wire} B up; whole visit {link.bytes_up} B up, {link.bytes_down} B down")  # fmt: skip
    return figures, problems


def main(argv: list[str] | None = None) -> int:
    """Run once, print the figures against their targets and floors; 1 if any misses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a faster link and a small photo")
    parser.add_argument(
        "--trace", action="store_true", help="also print each request as it crossed the link"
    )
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    print(f"link: {settings.rate // 1000} kbit/s each way, {settings.rtt * 1000:.0f} ms round"
          f" trips; photo {settings.photo // 1024} KB")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        try:
            figures, problems = run(settings, Path(tmp), trace=args.trace)
        except Failure as failure:
            print(failure.code, file=sys.stderr)
            return 1
    print(f"{'figure':20s} {'measured':>10s} {'target':>8s} {'floor':>8s}  floor made of")
    for f in figures:
        print(f"{f.name:20s} {f.measured:10.2f} {f.target:8.2f} {f.floor:8.2f}  {f.unit}: {f.why}"
              f"{'' if f.met else '   MISSED'}")  # fmt: skip
    problems += [f"{f.name}: {f.measured:.2f} misses its target {f.target:.2f}"
                 for f in figures if not f.met]  # fmt: skip
    for problem in problems:
        print(f"satellite: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
