"""Findings of ``portal doctor`` and ``portal verify-assets``, and their one HTTP probe.

A :class:`Finding` says what was checked, what was found and, when something
is wrong, how to fix it. Nothing in a finding repeats a secret or an address.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from enum import Enum
from pathlib import Path

_LIMIT = 16 * 1024 * 1024


class CheckFailedError(Exception):
    """At least one check failed, or a check could not be run at all."""


class Status(Enum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One result: what was checked, what was found, and how to fix it."""

    status: Status
    check: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """One line for the terminal."""
        text = f"{self.status.value:4} {self.check}: {self.message}"
        if self.fix and self.status is not Status.OK:
            text += f" (fix: {self.fix})"
        return text


def ok(check: str, message: str) -> Finding:
    """A passed check."""
    return Finding(Status.OK, check, message)


def warn(check: str, message: str, fix: str) -> Finding:
    """Something to look at."""
    return Finding(Status.WARN, check, message, fix)


def fail(check: str, message: str, fix: str) -> Finding:
    """A failed check."""
    return Finding(Status.FAIL, check, message, fix)


def failed(findings: list[Finding]) -> list[Finding]:
    """The findings that failed."""
    return [f for f in findings if f.status is Status.FAIL]


@dataclass(frozen=True)
class Fetched:
    """One HTTP response: status, headers, body."""

    status: int
    headers: Message
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """Report a redirect as it is instead of following it."""
        return None


def fetch(url: str, ca_file: Path | None = None) -> Fetched:
    """GET ``url`` without following redirects; raise OSError if nothing answers."""
    if not url.startswith(("http://", "https://")):
        raise CheckFailedError(f"not an http(s) URL: {url!r}")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        # what any browser might send: a portal must not tell its checker from a reporter
        url,
        headers={"User-Agent": "Mozilla/5.0"},
    )
    try:
        with opener.open(request, timeout=30) as response:
            return Fetched(response.status, response.headers, response.read(_LIMIT))
    except urllib.error.HTTPError as error:
        with error:
            return Fetched(error.code, error.headers, error.read(_LIMIT))
