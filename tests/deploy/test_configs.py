"""Every rendered configuration file, checked by its own tool.

``nginx -t``, ``tor --verify-config``, ``systemd-analyze verify`` and
``security --offline=true`` (an exposure of 2.0 or less), ``nft -c``, and
gunicorn starting from the unit's own command line with the rendered config.
The files are rendered under a staging root so the tools can run them in
place; a first test holds that rendering to the production one, path prefix
aside.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from portal.cli import main as portal_main
from portal.deploy_configs import UNITS, HostLayout, render
from tests.conftest import DemoPortal
from tests.deploy.stack import NGINX, Host, render_host, start_gunicorn, stop

MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Host:
    """A rendered host tree, not running."""
    return render_host(tmp_path_factory.mktemp("host"))


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker; its output is part of any failure message."""
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_staging_root_changes_paths_and_nothing_else(tmp_path: Path) -> None:
    production = {f.path: f.text for f in render(HostLayout(domain="report.example.org"))}
    staged = {
        f.path: f.text.replace(str(tmp_path), "")
        for f in render(HostLayout(domain="report.example.org", root=tmp_path))  # type: ignore[arg-type]
    }
    assert staged == production
    site = production[Path("/etc/nginx/sites-enabled/cso-portal.conf")]  # type: ignore[index]
    assert "ssl_certificate /etc/cso-portal/tls/fullchain.pem;" in site


def test_cli_writes_every_file_at_its_host_path(tmp_path: Path) -> None:
    assert portal_main(["deploy-configs", "--out", str(tmp_path)]) == 0
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    expected = {f"etc/systemd/system/{unit}" for unit in UNITS} | {
        "etc/nginx/nginx.conf",
        "etc/nginx/sites-enabled/cso-portal.conf",
        "etc/tor/torrc",
        "etc/cso-portal/gunicorn.conf.py",
        "etc/nftables.conf",
    }
    assert expected <= written
    site = (tmp_path / "etc/nginx/sites-enabled/cso-portal.conf").read_text()
    assert "listen 443" not in site  # no --domain: the onion service only
    env = (tmp_path / "etc/cso-portal/portal.env").stat().st_mode & 0o777
    assert env == 0o640


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--domain", "Not A Name"], "--domain 'Not A Name' is not a DNS name"),
        (["--onion-listen", "0.0.0.0:8081"], "onion_listen must be a loopback address"),
        (["--https-listen", "four-four-three"], "https_listen must be PORT or ADDRESS:PORT"),
        (["--user", "Root!"], "is not a valid system user name"),
    ],
)
def test_bad_host_settings_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert portal_main(["deploy-configs", "--out", str(tmp_path), *argv]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_nginx_accepts_the_configuration(host: Host) -> None:
    result = run(NGINX, "-t", "-c", host.path("/etc/nginx/nginx.conf"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_configuration_keeps_bodies_and_addresses_off_disk(host: Host) -> None:
    conf = host.path("/etc/nginx/nginx.conf").read_text()
    site = host.path("/etc/nginx/sites-enabled/cso-portal.conf").read_text()
    assert "access_log off;" in conf
    assert "server_tokens off;" in conf
    assert re.search(r"error_log \S+ emerg;", conf)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert "proxy_max_temp_file_size 0;" in site
    assert "proxy_hide_header" not in site  # the application's headers pass unchanged
    for path in ("/submit-plain", "/followup", "/followup/send-plain"):
        block = re.search(r"location = " + re.escape(path) + r" \{(.*?)\}", site, re.S)
        assert block is not None, path
        assert "proxy_request_buffering off;" in block.group(1)
        assert "/run/" in block.group(1)  # should nginx ever spool, it is on tmpfs


def test_tor_accepts_the_torrc(host: Host) -> None:
    torrc = host.path("/etc/tor/torrc")
    result = run("/usr/sbin/tor", "--verify-config", "-f", torrc, "--DataDirectory",
                 host.path("/var/lib/tor"))  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "Configuration was valid" in result.stdout
    text = torrc.read_text()
    for option in ("SafeLogging 1", "SocksPort 0", "HiddenServicePoWDefensesEnabled 1"):
        assert option in text
    assert text.count("HiddenServiceDir") == 2
    assert text.count("HiddenServiceVersion 3") == 2


def test_systemd_accepts_the_units(host: Host) -> None:
    units = host.path("/etc/systemd/system")
    result = run("systemd-analyze", "verify", *UNITS, cwd=units)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def exposure(unit: Path) -> float:
    """The overall exposure ``systemd-analyze security --offline=true`` gives ``unit``."""
    result = run("systemd-analyze", "security", "--offline=true", unit.name, cwd=unit.parent)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    return float(match.group(1))


@pytest.mark.parametrize("unit", [u for u in UNITS if u.endswith(".service")])
def test_every_service_is_sandboxed(host: Host, unit: str) -> None:
    score = exposure(host.path(f"/etc/systemd/system/{unit}"))
    assert score <= MAX_EXPOSURE, f"{unit}: exposure {score}"


def test_the_exposure_score_can_fail(host: Host, tmp_path: Path) -> None:
    """The same service without its sandbox scores far worse: the measure measures."""
    source = host.path("/etc/systemd/system/cso-portal-intake.service").read_text()
    bare = "\n".join(
        line for line in source.splitlines() if not re.match(r"(Protect|Private|Restrict|"
        r"SystemCall|Capability|NoNew|Memory|IPAddress|Lock|UMask|Device|Keyring|RemoveIPC|"
        r"ProcSubset)", line)
    )  # fmt: skip
    (tmp_path / "bare.service").write_text(bare)
    assert exposure(tmp_path / "bare.service") > 5.0


def test_firewall_rules_parse(host: Host) -> None:
    result = run("nft", "-c", "-f", host.path("/etc/nftables.conf"))
    assert result.returncode == 0, result.stderr
    rules = host.path("/etc/nftables.conf").read_text()
    assert "policy drop;" in rules
    assert f"tcp dport {{ {host.ports['http']}, {host.ports['https']} }} accept" in rules


def test_gunicorn_starts_with_the_config_and_retires_a_large_worker(
    host: Host, demo_template: DemoPortal
) -> None:
    """The unit's command line on a socket-activated socket; a 1 MiB limit retires each worker."""
    shutil.copytree(demo_template.data_dir, host.data_dir, dirs_exist_ok=True)
    log = host.path("/var/log/cso-portal/gunicorn-test.log")
    process = start_gunicorn(host, "intake", log, PORTAL_WORKER_MAX_MEMORY_MIB="1")
    try:
        for _ in range(2):
            assert unix_get(host.path("/run/cso-portal/intake.sock"), "/favicon.ico") == 204
    finally:
        stop(process)
    text = log.read_text()
    assert "uses more than 1 MiB; replacing it" in text
    assert "127.0.0.1" not in text


def unix_get(sock: Path, path: str) -> int:
    """GET over a Unix socket, as nginx does; return the status."""

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(str(sock))

    connection = UnixConnection("localhost")
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()
