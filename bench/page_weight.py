"""What a first visit to the report form really costs: requests, round trips, bytes on the wire.

    python -m bench.page_weight [--smoke] [--lang CODE ...]

Starts `portal serve` (gunicorn, as an operator runs it) over a demo data
directory, then visits the form as Chromium does with JavaScript on: the
page, each stylesheet it links (not the one inside ``<noscript>``), anything
it preloads, every module it announces (``modulepreload``
and the module script: today one bundle, scripts/bundle.py) and every module
those import, transitively, then what the page fetches once its scripts run
(the key directory and a puzzle) and the favicon browsers ask for. Nothing is assumed: each response is fetched from the server twice,
offering gzip (as browsers do) and offering nothing (the baseline, same
run), and the bytes of each response as they cross the connection are
counted by a byte meter in front of the server (tests/integration/shaper.py
at unlimited rate): status line, headers and body. (What a browser sends is
not counted: its requests are small, and travel the other way.)

The visit is made once per shipped language (``/?lang=<code>``), since a
language adds its own text to the page, often three bytes a letter in UTF-8,
and its catalog of the bundle's messages (a JSON data block inside the page,
portal/web/i18n.py; an English page needs none: its messages are the msgids).

Prints each request of the English visit, then one line per language: its
requests, uncompressed and gzip bytes, and the ratio to the 40 KB budget;
then the ratio of compressed to uncompressed bytes and the round trips a
browser needs before the form can encrypt. Fails (exit 1) on any error answer, on a
compressible response sent uncompressed to a client that offered gzip, or
on a module the page did not announce. The visit is small: ``--smoke`` (for
`make bench-smoke`) is the same run as the full one.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._demo import demo_portal
from bench._serve import portal_serve
from portal.web.i18n import BY_CODE, SHIPPED
from tests.integration.shaper import Shaper

BUDGET = 40 * 1024  # the intake page in any language, every asset included
#: a response this large of these types must come compressed when gzip is offered
COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/json")  # fmt: skip
MIN_COMPRESSED = 256
#: connections a browser opens to one host over HTTP/1.1
PER_HOST = 6
#: what the page fetches once its modules run (contract E: keys, then a puzzle)
AT_START = ("/keys/directory.json", "/pow?for=submit")
IMPORT = re.compile(r"""(?:^|[;}\s])(?:import|export)\s*(?:[\w*${},\s]+?\s*from\s*)?"""
                    r"""(['"])(\.{1,2}/[^'"\n]+)\1""", re.M)  # fmt: skip
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


class Failure(SystemExit):
    """The measurement could not be made honestly: exit 1 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"page_weight: FAILED: {reason}")


@dataclass
class Fetched:
    """One request as it crossed the connection."""

    path: str
    round_trip: int  # which round trip of the visit asks for it: 1 is the HTML
    gzip_bytes: int = 0
    plain_bytes: int = 0
    body: bytes = b""


class Meter:
    """Sequential requests over one keep-alive connection through a byte meter."""

    def __init__(self, shaper: Shaper) -> None:
        self.shaper = shaper
        self.connection = http.client.HTTPConnection("127.0.0.1", shaper.port, timeout=60)
        self.cookie = ""  # the form's cookie, sent back as a browser would

    def get(self, path: str, encoding: str) -> tuple[int, bytes, int]:
        """GET ``path`` offering ``encoding``; (status, decoded body, response bytes on the wire)."""
        before = self.shaper.bytes_down
        headers = {"Accept-Encoding": encoding, "Cookie": self.cookie}
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        if cookie := response.getheader("Set-Cookie"):
            self.cookie = cookie.split(";", 1)[0]
        wire = self.shaper.bytes_down - before
        sent = response.getheader("Content-Encoding", "")
        kind = response.getheader("Content-Type", "").split(";")[0]
        if response.status not in (200, 204):
            raise Failure(f"GET {path} answered {response.status}: {raw[:200]!r}")
        if encoding == "gzip" and kind in COMPRESSIBLE and len(raw) >= MIN_COMPRESSED:
            if sent != "gzip":
                raise Failure(f"GET {path} ({kind}, {len(raw)} B) came uncompressed")
        if encoding == "identity" and sent:
            raise Failure(f"GET {path} came {sent}-encoded to a client that offered none")
        return response.status, gzip.decompress(raw) if sent == "gzip" else raw, wire


def linked(page: str) -> tuple[list[str], list[str]]:
    """The page's stylesheets (outside noscript), preloaded catalog and announced modules."""
    visible = re.sub(r"<noscript>.*?</noscript>", "", page, flags=re.S)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', visible)
    styles += re.findall(r'<link rel="preload" href="([^"]+)" as="fetch"', visible)
    modules = re.findall(r'<link rel="modulepreload" href="([^"]+)"', visible)
    modules += re.findall(r'<script type="module" src="([^"]+)"', visible)
    return styles, list(dict.fromkeys(modules))


def imports(path: str, source: str) -> list[str]:
    """The URL paths of a module's static imports."""
    folder = PurePosixPath(path).parent
    found = []
    for _, specifier in IMPORT.findall(COMMENT.sub(" ", source)):
        parts: list[str] = []
        for part in (folder / specifier).parts:
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        found.append(str(PurePosixPath(*parts)))
    return found


def visit(meter: Meter, code: str = "en") -> list[Fetched]:
    """Every request of a first visit in language ``code`` with JavaScript on, offering gzip.

    English is the plain address, as a browser that asks for English gets it;
    another language is asked for in the address, as the picker does.
    """
    first = "/" if code == "en" else f"/?lang={code}"
    _, page_bytes, wire = meter.get(first, "gzip")
    page = page_bytes.decode()
    if f'lang="{code}"' not in page.split(">", 2)[1]:
        raise Failure(f"{first} is not a page in {code}")
    visit = [Fetched(first, 1, wire, body=page_bytes)]
    styles, announced = linked(page)
    if code != "en" and 'id="cso-messages"' not in page:
        raise Failure(f"{first} carries no catalog: its scripts would fetch one, or show English")
    if not announced:
        raise Failure("the page announces no module script")
    queue = [(path, 2) for path in [*styles, *announced]]
    seen: set[str] = set()
    while queue:
        path, trip = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        _, body, wire = meter.get(path, "gzip")
        visit.append(Fetched(path, trip, wire, body=body))
        if path.endswith(".js"):
            for child in imports(path, body.decode()):
                queue.append((child, 2 if child in announced else trip + 1))
    late = [f.path for f in visit if f.path.endswith(".js") and f.path not in announced]
    if late:
        raise Failure(f"modules the page does not announce (one round trip each): {late}")
    trip = max(f.round_trip for f in visit) + 1  # the scripts run once every module is in
    for path in AT_START:  # one after the other: the puzzle is asked for once keys are checked
        _, body, wire = meter.get(path, "gzip")
        visit.append(Fetched(path, trip, wire, body=body))
        trip += 1
    _, body, wire = meter.get("/favicon.ico", "gzip")
    visit.append(Fetched("/favicon.ico", 2, wire, body=body))
    return visit


def main() -> None:
    """Measure, print, and fail loudly if the measurement is not honest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the same run: it is small already")
    parser.add_argument(
        "--lang", nargs="*", help="only these languages (default: every one shipped)"
    )
    args = parser.parse_args()
    codes = args.lang or [language.code for language in SHIPPED]
    if unknown := [code for code in codes if code not in BY_CODE]:
        raise Failure(f"not shipped: {unknown}")
    visits: dict[str, list[Fetched]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, _ = demo_portal(tmp)
        with portal_serve(data_dir, Path(tmp) / "serve.log") as url:
            host, port = url.removeprefix("http://").split(":")
            with Shaper((host, int(port)), rate=10**10, delay=0) as meter_link:
                for code in codes:
                    meter = Meter(meter_link)
                    fetched = visits[code] = visit(meter, code)
                    for item in fetched:  # the baseline: the same requests, nothing offered
                        _, body, item.plain_bytes = meter.get(item.path, "identity")
                        varies = item.path == "/" or item.path.startswith(("/?", "/pow"))
                        if not varies and body != item.body:
                            raise Failure(f"{item.path}: the gzip and plain bodies differ")
                    meter.connection.close()
    fetched = visits[codes[0]]
    print(f"{'request':42s} {'trip':>4s} {'plain':>8s} {'gzip':>8s}  (bytes on the wire)")
    for item in fetched:
        print(f"{item.path:42s} {item.round_trip:4d} {item.plain_bytes:8d} {item.gzip_bytes:8d}")
    plain = sum(f.plain_bytes for f in fetched)
    packed = sum(f.gzip_bytes for f in fetched)
    ready = next(f.round_trip for f in fetched if f.path == AT_START[0])
    modules = sum(1 for f in fetched if f.path.endswith(".js"))
    print(
        f"total: {len(fetched)} requests ({modules} modules), {plain} B uncompressed,"
        f" {packed} B with gzip; ratio {packed / plain:.2f} (gzip / uncompressed, this run)"
    )
    print(f"\n{'language':10s} {'requests':>8s} {'plain':>8s} {'gzip':>8s}  ratio to {BUDGET} B")
    for code, items in visits.items():
        weight = sum(f.gzip_bytes for f in items)
        print(
            f"{code:10s} {len(items):8d} {sum(f.plain_bytes for f in items):8d} {weight:8d}"
            f"  {weight / BUDGET:.2f}"
        )
    heaviest = max(visits, key=lambda code: sum(f.gzip_bytes for f in visits[code]))
    worst = sum(f.gzip_bytes for f in visits[heaviest])
    print(
        f"budget {BUDGET} B; heaviest {heaviest}: ratio {worst / BUDGET:.2f} (at most 1.0 meets it)"
    )
    # Over HTTP/1.1 (plain HTTP, onion services) a browser opens at most six connections
    # to a host, so what the page announces at once still goes out six at a time.
    at_once = sum(1 for f in fetched if f.round_trip == 2 and f.path != "/favicon.ico")
    waves = -(-at_once // PER_HOST)
    print(f"round trips until the form can encrypt: {ready} (HTML, modules, key directory),"
          f" plus the TCP handshake; over HTTP/1.1 the {at_once} requests after the HTML go"
          f" {PER_HOST} at a time: {ready - 1 + waves} round trips")  # fmt: skip


if __name__ == "__main__":
    main()
