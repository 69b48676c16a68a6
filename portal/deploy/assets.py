"""What a browser runs, checked against published hashes (``portal verify-assets``).

The portal's JavaScript encrypts each report in the browser, and it comes from
the server at the moment of submission. Anyone can check that a live portal
serves exactly the published code:

* ``portal asset-manifest`` prints ``SHA-256  static/PATH`` for every file
  under ``portal/web/static`` (the format of ``sha256sum``); a release publishes
  that list beside its source.
* ``portal verify-assets --url URL [--manifest FILE]`` fetches every listed
  file from the live portal and compares; it also reads the pages that load
  them, so that a script or stylesheet missing from the list, any inline
  script, or a Content-Security-Policy that would let other code run, fails.
* With ``--organisation-key csosig1…`` or ``--organisation-fingerprint``
  (the organisation's published key or its 30 digits), each page must also
  pin that key: the published code is only as good as the key the page hands
  it, and a portal that pins another key seals every report to whoever holds it.

Without ``--manifest`` the list is computed from this copy of the code, which
is what a reader of a published release checkout wants.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from crypto.errors import CryptoError
from crypto.keys import KeyKind, parse_public_key
from portal.deploy.findings import Finding, fail, fetch, ok

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
#: pages that load scripts; each must only load listed ones
PAGES = ("/", "/followup")
_LINE = re.compile(r"([0-9a-f]{64})  (static/[A-Za-z0-9._/-]+)")
#: CSP directives whose values are not sources (upgrade-insecure-requests has none)
_NOT_SOURCES = frozenset({"sandbox", "report-uri", "report-to", "upgrade-insecure-requests",
                          "require-trusted-types-for", "trusted-types"})  # fmt: skip
#: link relations that make a browser fetch (and for stylesheets, apply) a resource
_LOADING = frozenset({"stylesheet", "modulepreload", "preload", "prefetch", "import"})
_META = re.compile(r"<meta\b([^>]*)>", re.IGNORECASE)
_META_ATTRIBUTE = re.compile(r"""\b(name|content)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
#: the page hands the browser's code its organisation key in this meta tag
PIN_NAME = "cso-organisation-key"


class AssetError(Exception):
    """A manifest cannot be read, or a portal cannot be reached."""


class _PageParts(HTMLParser):
    """What a page loads or applies, read as a browser's parser reads markup.

    (Regular expressions were fooled by a ``>`` inside a quoted attribute and
    by unquoted values; a parser is not.) ``<noscript>`` content is read as
    markup, as a browser with scripts off reads it.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.styles: list[str] = []
        self.style_attributes = 0
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value for name, value in attrs}
        if "style" in attributes:
            self.style_attributes += 1
        if tag == "script":
            self.scripts.append(attributes)
        elif tag == "link":
            self.links.append(attributes)
        elif tag == "style":
            self.styles.append("")
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles[-1] += data


def manifest_entries(static_dir: Path = STATIC_DIR) -> dict[str, str]:
    """``static/PATH`` → SHA-256 hex for every file under ``static_dir``."""
    return {
        f"static/{path.relative_to(static_dir).as_posix()}": hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(static_dir.rglob("*"))
        if path.is_file()
    }


def asset_manifest_text(static_dir: Path = STATIC_DIR) -> str:
    """The manifest in ``sha256sum`` format."""
    return "".join(f"{digest}  {name}\n" for name, digest in manifest_entries(static_dir).items())


def read_asset_manifest(path: Path | None) -> dict[str, str]:
    """A published manifest, or this copy's if ``path`` is None."""
    if path is None:
        return manifest_entries()
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        raise AssetError(f"cannot read the manifest {path}") from None
    entries = {}
    for number, line in enumerate(lines, start=1):
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise AssetError(f"{path} line {number} is not 'SHA256  static/PATH'")
        entries[match.group(2)] = match.group(1)
    if not entries:
        raise AssetError(f"{path} lists no asset")
    return entries


def expected_fingerprint(key: str | None, fingerprint: str | None) -> str | None:
    """The organisation fingerprint to check pages against (digits only), if one was given."""
    if key is not None:
        try:
            fingerprint = parse_public_key(key, KeyKind.SIGNING).fingerprint
        except CryptoError as error:
            raise AssetError(f"--organisation-key: {error.diagnostics()}") from None
    if fingerprint is None:
        return None
    digits = "".join(fingerprint.split())
    if len(digits) != 30 or not digits.isascii() or not digits.isdigit():
        raise AssetError("--organisation-fingerprint is 30 digits (six groups of five)")
    return digits


def verify_assets(
    url: str, manifest: dict[str, str], ca_file: Path | None, organisation: str | None = None
) -> list[Finding]:
    """Compare every listed asset, and every page's references, with ``manifest``.

    With ``organisation`` (a fingerprint from :func:`expected_fingerprint`),
    every page must pin exactly that organisation key.
    """
    base = url.rstrip("/")
    findings = [_compare(base, name, digest, ca_file) for name, digest in manifest.items()]
    for page in PAGES:
        findings += _page_findings(base, page, manifest, ca_file, organisation)
    return findings


def _compare(base: str, name: str, digest: str, ca_file: Path | None) -> Finding:
    try:
        response = fetch(f"{base}/{name}", ca_file)
    except OSError as error:
        raise AssetError(f"{base} did not answer: {error}") from None
    if response.status != 200:
        return fail("asset", f"/{name} answered {response.status}", _ASSET_FIX)
    if hashlib.sha256(response.body).hexdigest() != digest:
        return fail("asset", f"/{name} differs from the published code", _ASSET_FIX)
    return ok("asset", f"/{name} matches")


_ASSET_FIX = (
    "do not use this portal; tell the operator and the organisation (SECURITY.md): "
    "the browser would run code that is not the published release"
)


def _page_findings(
    base: str, page: str, manifest: dict[str, str], ca_file: Path | None, organisation: str | None
) -> list[Finding]:
    try:
        response = fetch(base + page, ca_file)
    except OSError as error:
        raise AssetError(f"{base} did not answer: {error}") from None
    if response.status == 404 and page != "/":
        return []
    check = f"page {page}"
    if response.status != 200:
        return [fail(check, f"answered {response.status}", _ASSET_FIX)]
    policy = response.headers.get("Content-Security-Policy", "")
    findings = [_csp_finding(check, policy, manifest)]
    html = response.body.decode("utf-8", errors="replace")
    if response.headers.get("Link"):  # Firefox (Tor Browser) loads stylesheets named there
        findings.append(fail(check, "names resources in a Link header", _ASSET_FIX))
    parts = _PageParts()
    parts.feed(html)
    parts.close()
    for attributes in parts.scripts:
        source = attributes.get("src")
        if source is None and (attributes.get("type") or "").strip().lower() == "application/json":
            # a data block (the form's rules): browsers never run one as code
            findings.append(ok(check, "carries a JSON data block (never run)"))
        elif source is None:
            findings.append(fail(check, "has an inline script", _ASSET_FIX))
        else:
            findings.append(_reference(check, source, manifest))
    for attributes in parts.links:
        relations = set((attributes.get("rel") or "").lower().split())
        if relations & _LOADING:
            findings.append(_reference(check, attributes.get("href") or "", manifest))
    findings += [_style_finding(check, block, manifest) for block in parts.styles]
    if parts.style_attributes:
        findings.append(fail(check, "has style attributes, which no release carries", _ASSET_FIX))
    if organisation is not None:
        findings.append(_pin_finding(check, html, organisation))
    return findings


def _style_finding(check: str, block: str, manifest: dict[str, str]) -> Finding:
    """An inline stylesheet must be a published one, byte for byte (portal/web/styles.py)."""
    digest = hashlib.sha256(block.encode("utf-8")).hexdigest()
    for name, published in manifest.items():
        if name.endswith(".css") and published == digest:
            return ok(check, f"carries /{name} inline (listed)")
    return fail(check, "carries a stylesheet that is not in the manifest", _ASSET_FIX)


def _pin_finding(check: str, html: str, organisation: str) -> Finding:
    """Every organisation-key tag on the page names the expected key, and there is one."""
    pinned = []
    for tag in _META.findall(html):
        attributes = dict((k.lower(), v) for k, v in _META_ATTRIBUTE.findall(tag))
        if attributes.get("name", "").lower() == PIN_NAME:
            pinned.append(attributes.get("content", ""))
    if not pinned:
        return fail(check, "pins no organisation key", _PIN_FIX)
    for token in pinned:
        try:
            digits = "".join(parse_public_key(token, KeyKind.SIGNING).fingerprint.split())
        except CryptoError:
            return fail(check, "pins a malformed organisation key", _PIN_FIX)
        if digits != organisation:
            return fail(check, f"pins another organisation key ({token})", _PIN_FIX)
    return ok(check, "pins the expected organisation key")


_PIN_FIX = (
    "do not use this portal; tell the organisation (SECURITY.md): reports sent through "
    "it would be sealed to a key the organisation did not publish"
)


def _reference(check: str, source: str, manifest: dict[str, str]) -> Finding:
    path = source.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/static/") or path[1:] not in manifest:
        return fail(check, f"loads {source!r}, which is not in the manifest", _ASSET_FIX)
    return ok(check, f"loads {path} (listed)")


def _csp_finding(check: str, policy: str, manifest: dict[str, str]) -> Finding:
    """Only the portal's own code and published styles may apply, so the manifest covers all.

    Every source of every directive must be this origin or none; besides,
    ``style-src`` may name the hashes of the published stylesheets (which the
    page carries inline, ``portal/web/styles.py``) and ``img-src`` ``blob:`` (the
    page's own previews). Anything wider would let a portal run or apply
    what no release holds, or send what a page shows elsewhere.
    """
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    scripts = directives.get("script-src", directives.get("default-src"))
    if scripts is None or any(source != "'self'" and source != "'none'" for source in scripts):
        return fail(check, "the CSP lets scripts come from elsewhere than /static", _ASSET_FIX)
    published = {
        "'sha256-" + base64.b64encode(bytes.fromhex(digest)).decode() + "'"
        for name, digest in manifest.items()
        if name.endswith(".css")
    }
    for name, sources in directives.items():
        allowed = {"'self'", "'none'"}
        allowed |= published if name == "style-src" else set()
        allowed |= {"blob:"} if name == "img-src" else set()
        if name in _NOT_SOURCES:
            continue
        wider = [source for source in sources if source not in allowed]
        if wider:
            return fail(check, f"the CSP's {name} allows {' '.join(wider)}", _ASSET_FIX)
    return ok(check, "CSP: scripts from this origin only")
