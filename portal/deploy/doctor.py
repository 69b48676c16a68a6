"""``portal doctor``: inspect a running deployment, from outside and inside.

Each check returns :class:`~portal.deploy.findings.Finding` objects: ``ok``,
``warn`` (worth a look) or ``FAIL`` (the deployment does not give reporters
what SECURITY.md says), each with its fix. From outside, over the portal's
URL: the response headers and the TLS set-up (this module). From inside, on
the host: tor's configuration, the logs, permissions, the key directory, the
clock, disk and swap, and whether blobs and database rows agree
(:mod:`portal.deploy.host_checks`).
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from crypto.keys import PublicKeyToken
from portal.config import Config
from portal.deploy import host_checks
from portal.deploy.findings import CheckFailedError, Fetched, Finding, fail, fetch, ok, warn
from portal.web import security


@dataclass(frozen=True)
class DoctorOptions:
    """What to inspect."""

    data_dir: Path
    url: str | None = None
    ca_file: Path | None = None
    torrc: Path = Path("/etc/tor/torrc")
    log_paths: tuple[Path, ...] = host_checks.DEFAULT_LOGS
    journal: bool = True
    onion_address: str | None = None
    organisation_key: PublicKeyToken | None = None
    #: the portal's DATABASE_URL; None for the SQLite file in the data directory
    database_url: str | None = None


def run(options: DoctorOptions) -> list[Finding]:
    """Every check, outside first."""
    findings: list[Finding] = []
    if options.url:
        findings += check_headers(options.url, options.ca_file)
        if options.url.startswith("https://"):
            findings += check_tls(options.url, options.ca_file)
    findings += host_checks.check_onion(options.torrc, options.onion_address)
    findings += host_checks.check_logs(options.log_paths, options.journal)
    findings += host_checks.check_permissions(options.data_dir)
    findings += host_checks.check_directory(options.data_dir, options.organisation_key)
    findings += host_checks.check_clock(options.data_dir)
    findings += host_checks.check_disk(options.data_dir)
    findings += host_checks.check_storage(options.data_dir, options.database_url)
    findings += host_checks.check_swap()
    return findings


@dataclass(frozen=True)
class _HeaderSettings:
    https: bool
    onion_address: str | None


def expected_headers(https: bool) -> dict[str, str]:
    """The headers the application sets on every response (portal/web/security.py)."""
    settings = cast(Config, _HeaderSettings(https=https, onion_address=None))
    return security.security_headers(settings)


def check_headers(url: str, ca_file: Path | None) -> list[Finding]:
    """The protective headers reach the browser unchanged, on a page and a static file."""
    https = url.startswith("https://")
    findings = []
    for path in ("/", "/static/css/portal.css"):
        try:
            response = fetch(url.rstrip("/") + path, ca_file)
        except OSError as error:
            return [fail("headers", f"{url}{path} did not answer: {error}", _START_FIX)]
        findings += _header_findings(path, response, https)
    return findings or [ok("headers", "no response to inspect")]


_START_FIX = "start the services (systemctl status cso-portal-intake nginx) and check --url"
_HEADER_FIX = (
    "nginx must pass the application's headers through: remove any proxy_hide_header or "
    "add_header for it from the site, and make sure the portal itself answers"
)


def _header_findings(path: str, response: Fetched, https: bool) -> list[Finding]:
    check = f"headers {path}"
    if response.status != 200:
        return [fail(check, f"answered {response.status}, not 200", _START_FIX)]
    findings = []
    expected = expected_headers(https)
    if path.startswith("/static/"):  # a module or stylesheet goes without what only a page reads
        skipped = (*security.DOCUMENT_ONLY, *security.CACHE_ONLY)
        expected = {k: v for k, v in expected.items() if k not in skipped}
    for name, value in expected.items():
        got = response.headers.get(name)
        if got is None:
            findings.append(fail(check, f"the response has no {name} header", _HEADER_FIX))
        elif name == "Strict-Transport-Security":
            if not re.search(r"max-age=(\d{8,})", got):
                findings.append(fail(check, "HSTS max-age is under a year", _HEADER_FIX))
        elif got != value:
            findings.append(fail(check, f"{name} differs from the portal's own", _HEADER_FIX))
    server = response.headers.get("Server", "")
    if re.search(r"\d", server):
        findings.append(fail(check, "the Server header shows a version", "server_tokens off;"))
    for cookie in response.headers.get_all("Set-Cookie") or []:
        flags = cookie.lower()
        if "httponly" not in flags or "samesite=strict" not in flags:
            findings.append(fail(check, "a cookie lacks HttpOnly or SameSite=Strict", _HEADER_FIX))
        if https and "secure" not in flags.replace("samesite", ""):
            findings.append(
                fail(check, "a cookie over HTTPS lacks Secure", "proxy_cookie_flags ~ secure;")
            )
    return findings or [ok(check, "all protective headers present and unchanged")]


def check_tls(url: str, ca_file: Path | None) -> list[Finding]:
    """TLS 1.2 or 1.3 only, and a certificate that does not expire soon."""
    host, port = _host_port(url)
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        with _tls_connection(host, port, context) as connection:
            version = connection.version()
            certificate = connection.getpeercert() or {}
    except (OSError, ssl.SSLError) as error:
        return [fail("tls", f"no verified TLS connection to {host}:{port}: {error}", _TLS_FIX)]
    findings = []
    if version not in ("TLSv1.2", "TLSv1.3"):
        findings.append(fail("tls", f"negotiated {version}", "ssl_protocols TLSv1.2 TLSv1.3;"))
    findings.append(_expiry(certificate))
    findings.append(_old_protocols(host, port))
    return findings


_TLS_FIX = "check ssl_certificate in the nginx site and that the name matches the certificate"


def _host_port(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"https://(\[[^\]]+\]|[^/:]+)(?::(\d+))?/?.*", url)
    if match is None:
        raise CheckFailedError(f"cannot read a host from {url!r}")
    return match.group(1).strip("[]"), int(match.group(2) or 443)


def _tls_connection(host: str, port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=15)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def _expiry(certificate: dict[str, Any]) -> Finding:
    not_after = certificate.get("notAfter")
    if not not_after:
        return fail("tls", "the certificate has no expiry date", _TLS_FIX)
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(not_after)), UTC)
    left = expires - datetime.now(UTC)
    renew = "renew it (certbot renew, or install the new one) and reload nginx"
    if left < timedelta(days=7):
        return fail("tls", f"the certificate expires in {left.days} day(s)", renew)
    if left < timedelta(days=21):
        return warn("tls", f"the certificate expires in {left.days} days", renew)
    return ok("tls", f"TLS verified; certificate valid for {left.days} more days")


def _old_protocols(host: str, port: int) -> Finding:
    """Offer only TLS 1.0 and 1.1: the server must refuse."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return warn("tls", "cannot offer TLS 1.1 from here to test", "test from elsewhere")
    try:
        with _tls_connection(host, port, context):
            pass
    except (OSError, ssl.SSLError):
        return ok("tls", "TLS 1.0 and 1.1 are refused")
    return fail("tls", "the server accepts TLS 1.1 or older", "ssl_protocols TLSv1.2 TLSv1.3;")
