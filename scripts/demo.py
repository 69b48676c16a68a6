"""``make demo``: a guided round trip through the envelope tool with demo keys.

Without arguments it makes (once) two demo reviewer keys under
``var/demo/``, encrypts a sample report to both with ``python -m crypto``,
decrypts it with each, and prints the commands so you can repeat them.
Demo keys are for trying things out only: their passphrase sits beside them.

For the demo portal (``make run``), two more uses stand in for a browser,
through the pages a browser without JavaScript would use:

* ``demo.py send URL`` sends a sample report and prints its receipt;
* ``demo.py followup URL RECEIPT`` prints the report's status and the
  reviewers' messages, as ``/followup`` shows them.
"""

from __future__ import annotations

import argparse
import html
import http.cookiejar
import json
import re
import secrets
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "var" / "demo"
SAMPLE = (
    '{"category": "armed robbery", "narrative": "Four robbers boarded via the anchor chain '
    "at 02:10 local time and stole ship's stores from the forecastle store.\"}\n"
)


def crypto(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m crypto`` and echo the command as a user would type it."""
    command = [sys.executable, "-m", "crypto", *map(str, args)]
    shown = ["python", "-m", "crypto", *(str(a) for a in args)]
    print("  $", " ".join(shlex.quote(p) for p in shown))
    done = subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr.decode().strip())
    return done


#: a sample report the demo portal accepts (category, then its questions)
SAMPLE_FORM = {
    "category": "piracy-or-armed-robbery",
    "incident_type": "boarded",
    "incident_local_time": "2026-11-20T02:10",
    "incident_utc_offset": "+01:00",
    "place_name": "Lagos anchorage",
    "latitude": "6.43219",
    "longitude": "3.38765",
    "vessel_type": "product-tanker",
    "vessel_status": "anchored",
    "weapons": "knives-or-machetes",
    "stolen": "ship-s-stores",
    "outcome": "successful-items-stolen-or-control-taken",
    "narrative": "Four robbers boarded via the anchor chain and took paint from the forecastle.",
}
RECEIPT = re.compile(r"\b\d{4}(?:[ -]?\d{4}){5}\b")
#: C0 controls but the newline, DEL and C1 controls: a terminal would act on them
CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _browser() -> urllib.request.OpenerDirector:
    """An HTTP client that keeps the portal's session cookie, as a browser does."""
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    if match is None:
        sys.exit(f"demo.py: the page has no {name} field: is this the CSO portal?")
    return html.unescape(match.group(1))


def _post(browser: urllib.request.OpenerDirector, url: str, fields: dict[str, str]) -> str:
    """POST a form; the page it leads to (after redirects), or the refusal page."""
    body = urllib.parse.urlencode(fields).encode()
    try:
        with browser.open(urllib.request.Request(url, data=body)) as answer:  # noqa: S310 - _base
            return str(answer.read().decode())
    except urllib.error.HTTPError as error:
        return str(error.read().decode())


def _clean(text: str) -> str:
    """``text`` without control characters (but newlines): what a server sends is not trusted."""
    return CONTROLS.sub("", text)


def _text(page: str) -> list[str]:
    """The visible lines of a page's main part, without control characters."""
    found = re.search(r"<main\b[^>]*>(.*?)(?:</main>|$)", page, flags=re.S)
    main = found.group(1) if found else page
    main = re.sub(r"<(script|style|form)\b.*?</\1>", "", main, flags=re.S)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", main))
    visible = _clean(re.sub(r"[\t\r\f]", " ", visible))  # HTML's white space stays a space
    return [" ".join(line.split()) for line in visible.split("\n") if line.strip()]


def _base(url: str) -> str:
    """The portal's URL without its trailing slash; only http and https."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        sys.exit(f"demo.py: {url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def send(url: str) -> None:
    """Send the sample report as a browser without JavaScript would; print the receipt."""
    base = _base(url)
    browser = _browser()
    query = urllib.parse.urlencode({"category": SAMPLE_FORM["category"]})
    with browser.open(f"{base}/?{query}") as answer:
        page = answer.read().decode()
    fields = {name: _hidden(page, name) for name in ("csrf_token", "once")}
    page = _post(browser, f"{base}/submit-plain", {**fields, **SAMPLE_FORM})
    found = RECEIPT.search(page)
    if found is None:
        sys.exit("demo.py: the portal did not take the report:\n" + "\n".join(_text(page)))
    print(f"report sent; receipt: {found.group(0)}")
    print(
        f"come back with it at {base}/followup, or: {_self()} followup {base}/ '{found.group(0)}'"
    )


def followup(url: str, receipt: str) -> None:
    """Open the conversation with ``receipt`` as ``/followup`` does; print what it shows."""
    base = _base(url)
    browser = _browser()
    with browser.open(f"{base}/followup") as answer:
        token = _hidden(answer.read().decode(), "csrf_token")
    page = _post(browser, f"{base}/followup", {"csrf_token": token, "receipt": receipt})
    lines = _text(page)
    if 'id="report-status"' not in page:
        sys.exit("demo.py: " + " ".join(lines))
    print("\n".join(lines))


def _self() -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))}"


def main() -> None:
    """Without arguments, the envelope walk-through; ``send`` and ``followup`` for the portal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb")
    sender = verbs.add_parser("send", help="send a sample report to a running demo portal")
    sender.add_argument("url", help="the portal, e.g. http://127.0.0.1:8000/")
    reader = verbs.add_parser("followup", help="read the reviewers' replies with a receipt")
    reader.add_argument("url")
    reader.add_argument("receipt", help="the 24 digits the portal showed")
    args = parser.parse_args()
    try:
        if args.verb == "send":
            send(args.url)
        elif args.verb == "followup":
            followup(args.url, args.receipt)
        else:
            walk_through()
    except urllib.error.URLError as error:
        reason = _clean(str(error.reason))  # an HTTP error's reason phrase is the server's text
        sys.exit(f"demo.py: cannot reach the portal: {reason} (is `make run` running?)")


def walk_through() -> None:
    """Make demo keys if needed, then show a round trip."""
    DEMO.mkdir(parents=True, exist_ok=True, mode=0o700)
    passphrase = DEMO / "passphrase"
    if not passphrase.exists():
        passphrase.write_text(secrets.token_urlsafe(18) + "\n")
        passphrase.chmod(0o600)
    tokens = []
    print("1. Demo reviewer keys (argon2id-protected files, mode 0600):")
    for name in ("reviewer-1", "reviewer-2"):
        key = DEMO / f"{name}.key"
        if key.exists():
            print(f"  (reusing {key.relative_to(ROOT)})")
            tokens.append(json.loads(key.read_text())["public"]["encryption"])
        else:
            done = crypto(
                "keygen",
                "-o",
                key.relative_to(ROOT),
                "--passphrase-file",
                passphrase.relative_to(ROOT),
            )
            tokens.append(done.stdout.decode().splitlines()[-1])
    for token in tokens:
        fingerprint = crypto("fingerprint", token).stdout.decode().strip()
        print(f"     {token}\n     fingerprint {fingerprint}")

    report = DEMO / "report.json"
    report.write_text(SAMPLE)
    sealed = DEMO / "report.json.cso"
    print("\n2. Encrypt a sample report to both reviewers:")
    args = [a for t in tokens for a in ("-r", t)]
    crypto("encrypt", *args, "-o", sealed.relative_to(ROOT), report.relative_to(ROOT))
    print("\n3. What anyone can see without a key:")
    print(
        "    ", crypto("inspect", sealed.relative_to(ROOT)).stdout.decode().replace("\n", "\n     ")
    )
    print("4. Each reviewer decrypts:")
    for name in ("reviewer-1", "reviewer-2"):
        out = crypto(
            "decrypt",
            "-i",
            (DEMO / f"{name}.key").relative_to(ROOT),
            "--passphrase-file",
            passphrase.relative_to(ROOT),
            sealed.relative_to(ROOT),
        ).stdout
        if out.decode() != SAMPLE:
            sys.exit(f"{name} decrypted something else: this is a bug, please report it")
        print(f"     {name}: {out.decode().strip()[:70]}…")
    print(
        "\nNext: read README.md (key formats, fingerprints) and crypto/SPEC.md.\n"
        "Run every test with: make test"
    )


if __name__ == "__main__":
    main()
