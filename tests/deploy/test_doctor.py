"""``portal doctor`` against the loopback stack, a deliberately broken one, and bad hosts.

It passes against the stack as rendered, and fails with the right message
when nginx hides one of the application's headers, when a key is readable by
others, when a log holds an address, when tor may log addresses, and when the
key directory has expired.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from crypto.directory import sign_directory
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from portal.cli.main import main as portal_main
from portal.deploy import host_checks
from portal.deploy.findings import Status
from tests.conftest import DemoPortal
from tests.deploy.stack import NGINX, Stack, stop, wake
from tests.integration.portal_server import free_port


def doctor(stack: Stack, capsys: pytest.CaptureFixture[str], url: str) -> tuple[int, str]:
    """Run ``portal doctor`` as an operator would on the stack's host; return code and output."""
    host = stack.host
    code = portal_main([
        "--data-dir", str(host.data_dir), "doctor", "--url", url,
        "--ca-file", str(host.ca_file), "--torrc", str(host.path("/etc/tor/torrc")),
        "--log", str(host.path("/var/log")), "--no-journal",
        "--env-file", str(host.path("/etc/cso-portal/portal.env")),
    ])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_doctor_passes_against_the_stack(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = doctor(stack, capsys, stack.host.https_url)
    assert code == 0, output
    for line in (
        "ok   headers /: all protective headers present and unchanged",
        "ok   headers /static/css/portal.css:",
        "ok   tls: TLS verified; certificate valid for",
        "ok   tls: TLS 1.0 and 1.1 are refused",
        "ok   logs: no address in",
        "ok   key directory: serial 1, 2 reviewer(s), signature valid",
        "ok   swap:",
    ):
        assert line in output
    assert "FAIL" not in output
    assert "no check failed" in output


@pytest.fixture
def header_hiding_nginx(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """The rendered nginx, changed as an operator might by mistake: it hides one header."""
    host = stack.host
    site = host.path("/etc/nginx/sites-enabled/cso-portal.conf").read_text()
    moved = {name: free_port() for name in host.ports}
    for name, port in host.ports.items():
        site = re.sub(rf"127\.0\.0\.1:{port}(?!\d)", f"127.0.0.1:{moved[name]}", site)
    hidden = "    server_name _;\n    proxy_hide_header Referrer-Policy;\n"
    site = site.replace("    server_name _;\n", hidden, 1)  # in the onion server
    (tmp_path / "site.conf").write_text(site)
    conf = host.path("/etc/nginx/nginx.conf").read_text()
    rendered_site = str(host.path("/etc/nginx/sites-enabled/cso-portal.conf"))
    conf = conf.replace(rendered_site, str(tmp_path / "site.conf"))
    conf = re.sub(r"pid \S+;", f"pid {tmp_path / 'nginx.pid'};", conf)
    (tmp_path / "nginx.conf").write_text(conf)
    tmp_path.chmod(0o755)
    process = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    try:
        url = f"http://127.0.0.1:{moved['onion']}"
        wake(url + "/favicon.ico")
        yield url
    finally:
        stop(process)


def test_doctor_fails_when_nginx_hides_a_header(
    stack: Stack, header_hiding_nginx: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = doctor(stack, capsys, header_hiding_nginx)
    assert code == 2
    assert (
        "FAIL headers /: the response has no Referrer-Policy header (fix: nginx must pass" in output
    )
    assert "portal: error: 2 check(s) failed" in output  # the page and the stylesheet


def test_doctor_fails_on_a_world_readable_key(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    key = stack.host.data_dir / "portal-signing.key"
    key.chmod(0o644)
    try:
        code, output = doctor(stack, capsys, stack.host.onion_url)
    finally:
        key.chmod(0o600)
    assert code == 2
    expected = f"FAIL permissions: {key} is readable or writable by others (fix: chmod 600 {key})"
    assert [line for line in output.splitlines() if line.startswith("FAIL")] == [expected]


# --- the host checks one by one ------------------------------------------------------


def test_addresses_in_logs_are_found_and_not_repeated(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    log.write_text(
        "2026/11/21 11:42:16 [notice] Tor 0.4.9.11 running on Linux with OpenSSL 3.0.19\n"
        "gunicorn: Listening at: http://127.0.0.1:8000\n"
        "upstream timed out, client: 203.0.113.9, server: _\n"
        "connection from 2001:db8::7 refused\n"
        "mac 00:1a:2b:3c:4d:5e at 12:34:56\n"
    )
    assert list(host_checks.find_addresses(log.read_text())) == [3, 4]
    [finding] = host_checks.check_logs([tmp_path], journal=False)
    assert finding.status is Status.FAIL
    assert "line(s) 3, 4" in finding.message
    assert "203.0.113.9" not in finding.line()


def test_tor_naming_its_own_listener_or_a_relay_is_not_a_client_address() -> None:
    relay = "0123456789ABCDEF0123456789ABCDEF01234567"
    journal = (
        "Opened Socks listener connection (ready) on 127.0.0.1:9050\n"
        f"Problem bootstrapping. Stuck at 5%: (conn) host {relay} at 204.13.164.118:443\n"
        "GET / from 203.0.113.9\n"
        f"host {relay.lower()} at 198.51.100.4:443 is not tor's spelling\n"
    )
    assert list(host_checks.find_addresses(journal)) == [3, 4]


def test_unencrypted_swap_fails(tmp_path: Path) -> None:
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n/dev/sda2 partition 1048572 0 -2\n")
    [finding] = host_checks.check_swap(swaps)
    assert finding.status is Status.FAIL
    assert "swapoff -a" in finding.fix
    swaps.write_text("Filename Type Size Used Priority\n/dev/zram0 partition 1048572 0 100\n")
    assert host_checks.check_swap(swaps)[0].status is Status.OK


def test_torrc_without_safe_logging_fails(stack: Stack, tmp_path: Path) -> None:
    torrc = tmp_path / "torrc"
    rendered = stack.host.path("/etc/tor/torrc").read_text()
    torrc.write_text(rendered.replace("SafeLogging 1", "SafeLogging 0"))
    messages = [f.line() for f in host_checks.check_onion(torrc, None)]
    assert "FAIL onion: tor may log addresses (fix: SafeLogging 1)" in messages
    torrc.write_text(rendered.replace("HiddenServicePoWDefensesEnabled 1\n", "", 1))
    messages = [f.line() for f in host_checks.check_onion(torrc, None)]
    assert any("no proof-of-work defence" in m and m.startswith("FAIL") for m in messages)


def test_onion_directories_and_client_authorisation(stack: Stack, tmp_path: Path) -> None:
    torrc = stack.host.path("/etc/tor/torrc")
    intake = stack.host.path("/var/lib/tor/cso-portal-intake")
    sync = stack.host.path("/var/lib/tor/cso-portal-sync")
    address = "a" * 56 + ".onion"
    for folder in (intake, sync / "authorized_clients"):
        folder.mkdir(parents=True, exist_ok=True)
    for folder in (intake, sync):
        folder.chmod(0o700)
    (intake / "hostname").write_text(address + "\n")
    lines = [f.line() for f in host_checks.check_onion(torrc, address)]
    assert any(
        line.startswith("warn onion cso-portal-sync: no authorised client") for line in lines
    )
    assert (
        portal_main(["onion-auth", "transfer-1", "--onion", "b" * 56, "--out", str(tmp_path)]) == 0
    )
    os.replace(tmp_path / "transfer-1.auth", sync / "authorized_clients" / "transfer-1.auth")
    lines = [f.line() for f in host_checks.check_onion(torrc, address)]
    assert f"ok   onion cso-portal-intake: {address} configured as expected" in lines
    assert not any(line.startswith(("warn", "FAIL")) for line in lines)
    lines = [f.line() for f in host_checks.check_onion(torrc, "c" * 56 + ".onion")]
    assert any("PORTAL_ONION_ADDRESS is not this service's address" in line for line in lines)


def test_expired_or_foreign_key_directory_fails(tmp_path: Path) -> None:
    organisation = SigningKeyPair.generate()
    (tmp_path / "organisation.pub").write_text(str(organisation.token) + "\n")
    reviewer = EncryptionKeyPair.generate().token
    expired = sign_directory(
        organisation, [("r1", reviewer)], serial=3,
        issued_at=datetime.now(UTC) - timedelta(days=40), valid_for=timedelta(days=30),
    )  # fmt: skip
    (tmp_path / "key-directory.json").write_bytes(expired)
    [finding] = host_checks.check_directory(tmp_path)
    assert finding.status is Status.FAIL
    assert "expired" in finding.message
    assert "re-sign" in finding.fix
    soon = sign_directory(
        organisation, [("r1", reviewer)], serial=4,
        issued_at=datetime.now(UTC), valid_for=timedelta(days=5),
    )  # fmt: skip
    (tmp_path / "key-directory.json").write_bytes(soon)
    assert host_checks.check_directory(tmp_path)[0].status is Status.WARN
    (tmp_path / "organisation.pub").write_text(str(SigningKeyPair.generate().token) + "\n")
    [finding] = host_checks.check_directory(tmp_path)
    assert finding.status is Status.FAIL
    assert "untrusted key" in finding.message


def test_onion_auth_keys_are_in_tors_format(tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    onion = "b" * 56
    assert (
        portal_main(["onion-auth", "alice", "--onion", onion + ".onion", "--out", str(tmp_path)])
        == 0
    )
    server = (tmp_path / "alice.auth").read_text().strip()
    client = (tmp_path / "alice.auth_private").read_text().strip()
    assert re.fullmatch(r"descriptor:x25519:[A-Z2-7]{52}", server)
    assert re.fullmatch(onion + r":descriptor:x25519:[A-Z2-7]{52}", client)
    secret = base64.b32decode(client.rsplit(":", 1)[1] + "====")
    public = X25519PrivateKey.from_private_bytes(secret).public_key()
    assert base64.b32decode(server.rsplit(":", 1)[1] + "====") == public.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    assert (tmp_path / "alice.auth_private").stat().st_mode & 0o777 == 0o600
    assert portal_main(["onion-auth", "alice", "--onion", onion, "--out", str(tmp_path)]) == 2
    assert (
        portal_main(["onion-auth", "bob", "--onion", "not-an-onion", "--out", str(tmp_path)]) == 2
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_doctor_compares_the_blobs_with_the_configured_database(
    demo: DemoPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The storage check reads the DATABASE_URL of the environment file, not a SQLite file.

    The data directory holds no SQLite database here, so a doctor that looked
    only there would find "nothing to compare" and miss a lost blob.
    """
    from sqlalchemy import create_engine

    from portal.storage.blobs import BlobStore
    from portal.storage.models import InboxEntry, Part, PartKind, Submission

    assert not (demo.data_dir / "portal.sqlite3").exists()
    store = BlobStore(demo.data_dir / "blobs")
    with store.writer() as orphan:  # a blob no row names, as a crash would leave it
        orphan.write(b"ciphertext")
    engine = create_engine(demo.database_url)
    with Session(engine) as session, session.begin():
        session.add(
            Submission(
                id="a" * 32, received_on=datetime.now(UTC).date(), receipt_locator="0000",
                receipt_hash="", inbox=InboxEntry(),
                parts=[Part(position=0, kind=PartKind.REPORT, blob="b" * 32, size=10)],
            )
        )  # fmt: skip
    engine.dispose()
    env_file = tmp_path / "portal.env"
    env_file.write_text(f"DATABASE_URL={demo.database_url}\n")
    portal_main([
        "--data-dir", str(demo.data_dir), "doctor", "--torrc", str(tmp_path / "torrc"),
        "--log", str(tmp_path), "--no-journal", "--env-file", str(env_file),
    ])  # fmt: skip
    output = capsys.readouterr().out
    storage = [line for line in output.splitlines() if "storage" in line]
    assert any("1 stored part(s) have no blob file" in line for line in storage), output
    assert any("1 orphan blob(s)" in line for line in storage), output
