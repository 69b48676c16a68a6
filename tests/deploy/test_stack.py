"""The real stack on loopback: nginx (rendered config) in front of gunicorn (rendered units).

A report sent without JavaScript goes through nginx; afterwards no file under
the host tree holds its plaintext, nginx wrote no temporary file for it, and
no log (nginx's, gunicorn's, the app's) holds the client's address, even
after requests that make nginx log errors. The TLS listener speaks TLS 1.2
and 1.3 only, adds HSTS and the cookie's Secure flag, and refuses unknown
names; the sync listener reaches the sync application and nothing else.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from crypto.envelope import open_bytes
from tests.conftest import DemoPortal
from tests.deploy.stack import DOMAIN, Stack
from tests.integration.portal_server import submit_plain

CANARY = "CANARY-5d1e-DEPLOY"
FIELDS: dict[str, str | list[str]] = {
    "category": "piracy-or-armed-robbery",
    "incident_local_time": "2026-11-20T02:10",
    "incident_utc_offset": "+01:00",
    "place_name": "Lagos anchorage",
    "perpetrators_min": "3",
    "perpetrators_max": "6",
    "weapons": ["knives-or-machetes"],
    "identity_company": "Example Shipping",
}
#: larger than nginx's in-memory body buffer (128k): buffering would spool it
ATTACHMENT = (CANARY + " deck log\n").encode() * 30_000


class _Created(FileSystemEventHandler):
    def __init__(self) -> None:
        self.paths: set[str] = set()

    def on_created(self, event: FileSystemEvent) -> None:
        self.paths.add(str(event.src_path))


@contextmanager
def watching(*folders: Path) -> Iterator[set[str]]:
    """Every file created under ``folders`` while the block runs (even if unlinked at once)."""
    recorder = _Created()
    observer = Observer()
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        observer.schedule(recorder, str(folder), recursive=True)
    observer.start()
    try:
        yield recorder.paths
    finally:
        time.sleep(0.3)  # let inotify deliver the last events
        observer.stop()
        observer.join()


def nginx_temp_dirs(stack: Stack) -> list[Path]:
    """Where nginx would spool request bodies: its own and the tmpfs one for plaintext."""
    return [stack.host.path("/var/lib/nginx"), stack.host.path("/run/cso-portal-nginx-body")]


def files_holding(needle: bytes, root: Path) -> list[Path]:
    """Files under ``root`` (symbolic links not followed) that contain ``needle``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            found.append(path)
    return found


def test_plain_submission_through_nginx_leaves_no_plaintext(
    stack: Stack, demo_template: DemoPortal
) -> None:
    host = stack.host
    blobs_before = set((host.data_dir / "blobs").iterdir())
    with watching(*nginx_temp_dirs(stack), host.path("/tmp")) as created:
        page = submit_plain(
            host.onion_url,
            {**FIELDS, "narrative": f"{CANARY} four robbers came up the anchor chain"},
            [("deck-log.txt", ATTACHMENT, "text/plain")],
        )
    assert "Your report was received" in page
    assert created == set(), "nginx or gunicorn wrote a temporary file for plaintext"
    assert files_holding(CANARY.encode(), host.root) == []
    new = set((host.data_dir / "blobs").iterdir()) - blobs_before
    opened = [open_bytes(blob.read_bytes(), demo_template.identity(0)) for blob in new]
    assert any(CANARY.encode() in plain for plain in opened)  # it did arrive, sealed


def test_encrypted_uploads_are_buffered_by_nginx_and_the_watch_would_see_it(
    stack: Stack,
) -> None:
    """The control for the test above: a large body to /submit does spool, and is seen."""
    with watching(*nginx_temp_dirs(stack)) as created:
        request = urllib.request.Request(
            stack.host.onion_url + "/submit", data=bytes(len(ATTACHMENT)), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        refused.value.close()
    assert any("/var/lib/nginx/body/" in path for path in created)


def test_plain_submission_over_tls_and_http2(stack: Stack, tmp_path: Path) -> None:
    """The same over the clearnet listener, with curl speaking HTTP/2."""
    host = stack.host
    attachment = tmp_path / "deck-log.txt"
    attachment.write_bytes(ATTACHMENT.replace(b"CANARY", b"CANARX"))
    jar = tmp_path / "cookies"
    resolve = f"{DOMAIN}:{host.ports['https']}:127.0.0.1"
    curl = ["curl", "--silent", "--show-error", "--http2", "--cacert", str(host.ca_file),
            "--resolve", resolve, "--cookie", str(jar), "--cookie-jar", str(jar)]  # fmt: skip
    step_two = f"{host.https_url}/?category={FIELDS['category']}"
    form = subprocess.run([*curl, step_two], capture_output=True, check=True)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', form.stdout)
    once = re.search(rb'name="once" value="([^"]+)"', form.stdout)
    assert token is not None
    assert once is not None
    fields = {**FIELDS, "narrative": "CANARX-5d1e-DEPLOY over TLS"}
    # --location follows the 303 to the receipt page, which the cookie jar unlocks
    argv = [*curl, "--location", "--write-out", "%{http_version}",
            "--form-string", f"csrf_token={token.group(1).decode()}",
            "--form-string", f"once={once.group(1).decode()}"]  # fmt: skip
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            argv += ["--form-string", f"{name}={one}"]
    argv += ["--form", f"attachments=@{attachment};type=text/plain"]
    with watching(*nginx_temp_dirs(stack)) as created:
        sent = subprocess.run([*argv, host.https_url + "/submit-plain"], capture_output=True)
    assert sent.returncode == 0, sent.stderr
    assert b"Your report was received" in sent.stdout
    assert sent.stdout.endswith(b"2")  # HTTP/2
    assert created == set()
    assert files_holding(b"CANARX-5d1e", host.root) == []


def _tls(stack: Stack, server_name: str, newest: ssl.TLSVersion | None = None) -> str:
    context = ssl.create_default_context(cafile=str(stack.host.ca_file))
    if server_name != DOMAIN:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if newest is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1, on purpose
            context.maximum_version = newest
    with (
        socket.create_connection(("127.0.0.1", stack.host.ports["https"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as connection,
    ):
        return str(connection.version())


def test_tls_listener_speaks_tls_12_and_13_only(stack: Stack) -> None:
    assert _tls(stack, DOMAIN) == "TLSv1.3"
    assert _tls(stack, DOMAIN, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        _tls(stack, DOMAIN, ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ssl.SSLError):
        _tls(stack, "someone-else.example")  # no certificate for names not ours


def _get(url: str, ca_file: Path | None = None) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_tls_adds_hsts_and_secure_cookie_the_onion_keeps_the_apps_own(stack: Stack) -> None:
    status, tls, _ = _get(stack.host.https_url + "/", stack.host.ca_file)
    assert status == 200
    assert tls["Strict-Transport-Security"].startswith("max-age=63072000")
    assert "; Secure" in tls["Set-Cookie"]
    status, onion, _ = _get(stack.host.onion_url + "/")
    assert status == 200
    assert "Strict-Transport-Security" not in onion
    assert "Secure" not in onion["Set-Cookie"]
    for name in ("Content-Security-Policy", "Cross-Origin-Embedder-Policy", "Cache-Control"):
        assert tls[name] == onion[name]
    assert tls["Server"] == onion["Server"] == "nginx"


def test_plain_http_redirects_to_tls(stack: Stack) -> None:
    connection = socket.create_connection(("127.0.0.1", stack.host.ports["http"]), timeout=10)
    with connection:
        connection.sendall(f"GET /x?y HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
        head = connection.recv(4096).decode()
    assert head.startswith("HTTP/1.1 301")
    assert f"Location: https://{DOMAIN}/x?y" in head


def test_sync_listener_reaches_the_sync_api_only(stack: Stack) -> None:
    request = urllib.request.Request(
        stack.host.sync_url + "/reviewer-sync/v1/login/challenge",
        data=json.dumps({"account": "nobody"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "challenge" in json.loads(response.read())
    assert _get(stack.host.sync_url + "/")[0] == 404
    assert _get(stack.host.onion_url + "/reviewer-sync/v1/login/challenge")[0] == 404


def test_no_log_holds_a_client_address(stack: Stack) -> None:
    """Requests nginx logs as errors, with the client address, at its usual level."""
    status = _get(stack.host.onion_url + "/" + "x" * 9000)[0]  # header too large for nginx
    assert status in (400, 414)
    too_large = urllib.request.Request(
        stack.host.onion_url + "/", data=bytes(100_000), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(too_large, timeout=30)
    refused.value.close()
    assert refused.value.code == 413
    with pytest.raises(ssl.SSLError):
        _tls(stack, "someone-else.example")
    logs = stack.logs
    assert any(p.name == "gunicorn.log" for p in logs)
    assert any(p.name == "cso-portal-error.log" for p in logs)
    for path in logs:
        assert b"127.0.0.1" not in path.read_bytes(), path


def test_language_paths_reach_the_application_through_nginx(stack: Stack) -> None:
    """Issue 15: /<code>/, /i18n/<code>.json and ?lang= pass nginx unchanged."""
    from tests.deploy.test_configs import LANGUAGES

    for code in LANGUAGES:
        status, headers, body = _get(f"{stack.host.onion_url}/{code}/")
        assert status == 200, code
        assert f'<html lang="{code}"' in body.decode(), code
        status, headers, body = _get(f"{stack.host.onion_url}/i18n/{code}.json")
        assert status == 200, code
        assert headers["Content-Type"].startswith("application/json")
        assert isinstance(json.loads(body), dict)
    status, _, body = _get(f"{stack.host.onion_url}/?lang=ar")
    assert status == 200
    assert '<html lang="ar" dir="rtl">' in body.decode()
    assert _get(f"{stack.host.onion_url}/i18n/xx.json")[0] == 404  # the application's answer
