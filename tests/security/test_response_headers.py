"""What the real server (``portal serve``: gunicorn) says about itself, and where it sends people.

An attacker probing the portal learns the server software from a ``Server``
header, and one who can make a victim's request carry a forged ``Host``
header (a proxy, a cache, a DNS trick) can have the portal redirect that
victim to a host of the attacker's choosing if any redirect is built from it.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import DemoPortal
from tests.integration.portal_server import serve_portal

ATTACKER_HOST = "attacker.example"

#: paths that werkzeug's router would answer with a redirect: doubled slashes,
#: and a missing trailing slash on a rule that has one
REDIRECT_BAIT = {
    "intake": ["/static//css/portal.css", "//static/css/portal.css", "/static/css//portal.css",
               "//", "//followup", "/followup/", "/submit-plain//", "/reviewer-sync/v1"],
    "sync": ["/reviewer-sync/v1", "/reviewer-sync//v1/", "//reviewer-sync/v1/inbox",
             "/reviewer-sync/v1//inbox", "/reviewer-sync/v1/inbox/"],
}  # fmt: skip


@pytest.fixture(scope="module", params=["intake", "sync"])
def server(
    request: pytest.FixtureRequest,
    demo_template: DemoPortal,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """``portal serve`` for each role, on a loopback port."""
    role = request.param
    with serve_portal(demo_template, tmp_path_factory.mktemp(f"headers-{role}"), role=role) as run:
        yield {**run, "role": role}


def ask(url: str, method: str, path: str, host: str | None = None) -> http.client.HTTPResponse:
    """One raw request (no client-side path normalisation), its response read."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def test_no_response_names_the_server_software(server: dict[str, Any]) -> None:
    paths = ["/", "/followup", "/static/css/portal.css", "/no-such-page", "/pow",
             "/reviewer-sync/v1/", "/reviewer-sync/v1/inbox"]  # fmt: skip
    seen = 0
    for method in ("GET", "HEAD", "POST", "OPTIONS"):
        for path in paths:
            response = ask(server["url"], method, path)
            seen += 1
            server_header = response.getheader("Server", "")
            assert "gunicorn" not in server_header.lower(), (method, path, server_header)
            assert server_header == "", (method, path, server_header)
    assert seen == 28


def test_a_forged_host_header_never_reaches_a_location(server: dict[str, Any]) -> None:
    for path in REDIRECT_BAIT[server["role"]]:
        for host in (ATTACKER_HOST, f"{ATTACKER_HOST}:443"):
            for method in ("GET", "HEAD", "POST"):
                response = ask(server["url"], method, path, host=host)
                location = response.getheader("Location", "")
                assert ATTACKER_HOST not in location, (method, path, response.status, location)
                assert not location.startswith(("http:", "https:", "//")), (path, location)


def test_the_checks_above_see_real_responses(server: dict[str, Any]) -> None:
    """Guard the guards: the server answered the probes, so their silence means something."""
    response = ask(server["url"], "GET", REDIRECT_BAIT[server["role"]][0], host=ATTACKER_HOST)
    assert 200 <= response.status < 500
