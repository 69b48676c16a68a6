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

from portal.cli.main import main as portal_main
from portal.deploy.configs import UNITS, HostLayout, render
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


def onion_locations(site: str) -> dict[tuple[bool, str], str]:
    """The onion server's locations: (exact?, path) → the text inside its braces."""
    server = site.split("server {")[1]  # the first server is the onion service's
    return {
        (exact == "= ", path): body
        for exact, path, body in re.findall(r"location (= )?(\S+) \{(.*?)\}", server, re.S)
    }


def location_for(locations: dict[tuple[bool, str], str], path: str) -> str:
    """The location nginx picks for ``path``: an exact match, else the longest prefix."""
    if (True, path) in locations:
        return locations[True, path]
    prefixes = [p for exact, p in locations if not exact and path.startswith(p)]
    return locations[False, max(prefixes, key=len)]


def intake_rules(demo: DemoPortal, tmp_path: Path) -> list[tuple[str, set[str]]]:
    """Every route of the intake as a sample path, with the methods it takes."""
    from portal.config import load_config
    from portal.web.app import create_app

    settings = demo.environ(PORTAL_RUNTIME_DIR=str(tmp_path / "runtime"))
    app = create_app(load_config(settings, data_dir=demo.data_dir))
    try:
        return [
            (re.sub(r"<[^>]+>", "0" * 32, rule.rule), set(rule.methods or ()))
            for rule in app.url_map.iter_rules()
        ]
    finally:
        app.extensions["portal"]["engine"].dispose()
        app.extensions["portal"]["runtime"].dispose()


def test_nginx_compresses_text_but_never_an_answer_to_a_post(
    host: Host, demo_template: DemoPortal, tmp_path: Path
) -> None:
    """gzip for pages, CSS, JS and JSON; off wherever the application takes a body (BREACH)."""
    site = host.path("/etc/nginx/sites-enabled/cso-portal.conf").read_text()
    top = site.split("server {")[0]  # http-level: every server inherits it
    assert "gzip on;" in top
    types = re.search(r"gzip_types ([^;]+);", top)
    assert types is not None
    assert {"text/css", "text/javascript", "application/json"} <= set(types.group(1).split())
    assert "gzip_vary on;" in top
    locations = onion_locations(site)
    rules = intake_rules(demo_template, tmp_path)
    takes_body = [path for path, methods in rules if methods & {"POST", "PATCH", "PUT"}]
    # the routes of issue 13 and the no-JavaScript forms are among them
    assert {"/submit-plain", "/followup/send-plain", "/submit"} <= set(takes_body)
    for path in takes_body:
        assert "gzip off;" in location_for(locations, path), path
    assert "gzip off;" not in location_for(locations, "/")
    assert "gzip off;" not in location_for(locations, "/static/js/report-page.js")


def test_nginx_streams_resumable_uploads_within_a_thread_limit(host: Host) -> None:
    """tus PATCH bodies reach the application as they arrive, up to a whole envelope."""
    site = host.path("/etc/nginx/sites-enabled/cso-portal.conf").read_text()
    locations = onion_locations(site)
    patch = location_for(locations, "/uploads/" + "0" * 32)
    assert "proxy_request_buffering off;" in patch
    assert "client_max_body_size 201m;" in patch  # the upload limit (200 MiB) and some slack
    # a PATCH refused early is cut off, not read on (the browser's repeat after a reset)
    assert "lingering_close off;" in patch
    for name in ("/submit/begin", "/submit/finish", "/form-token", "/uploads"):
        assert (True, name) in locations, name
    # every unbuffered body counts against one of two limits (uploads, no-JavaScript
    # forms), each a third of the threads, which leaves threads for pages and HEAD
    unbuffered = {name: body for name, body in locations.items()
                  if "proxy_request_buffering off" in body}  # fmt: skip
    assert len(unbuffered) == 4
    limits = {name[1]: re.search(r"limit_conn (\S+) (\d+);", body).groups()  # type: ignore[union-attr]
              for name, body in unbuffered.items()}  # fmt: skip
    forms = ("cso_forms", "1")  # 1 worker x 4 threads in this rendering, a third
    assert limits == {"/uploads/": ("cso_uploads", "1"), "/submit-plain": forms,
                      "/followup": forms, "/followup/send-plain": forms}  # fmt: skip
    # the no-JavaScript form may carry files over its stated limits: the application,
    # not nginx, answers them, with the filled form
    plain = location_for(locations, "/submit-plain")
    assert "client_max_body_size 457m;" in plain  # 200 MiB stated, 256 MiB of headroom, 1 MiB
    counted = re.search(r"map \$request_method \$cso_streamed_body \{(.*?)\}", site, re.S)
    assert counted is not None
    assert set(re.findall(r"(\w+) \$server_name;", counted.group(1))) == {"POST", "PATCH"}


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


#: the languages the portal ships (issue 15), each with a /<code>/ entry point
#: and a browser catalog at /i18n/<code>.json
LANGUAGES = ("en", "tl", "zh-Hans", "id", "ru", "uk", "hi", "vi", "my", "ar", "fr", "es")


def test_nginx_routes_the_language_paths_to_the_intake(
    host: Host, demo_template: DemoPortal, tmp_path: Path
) -> None:
    """The entry points, the catalogs and ``?lang=`` reach the application as sent."""
    site = host.path("/etc/nginx/sites-enabled/cso-portal.conf").read_text()
    locations = onion_locations(site)
    for code in LANGUAGES:
        for path in (f"/{code}/", f"/i18n/{code}.json"):
            body = location_for(locations, path)
            assert "proxy_pass http://cso_portal_intake;" in body, path
            assert "gzip off;" not in body, path  # a GET answer: compressed like any page
    # proxy_pass without a URI passes the request's own path and query string
    # (?lang=tl, also on the form's POST to /submit-plain), and nothing rewrites them
    assert set(re.findall(r"proxy_pass (\S+);", site)) == {
        "http://cso_portal_intake", "http://cso_portal_sync"
    }  # fmt: skip
    assert not re.search(r"\b(rewrite|\$args|\$arg_lang|\$is_args)\b", site)
    # and the application does answer them: the catalog and the entry point, GET only
    rules = intake_rules(demo_template, tmp_path)
    sample = "0" * 32
    assert (f"/i18n/{sample}.json", {"GET", "HEAD", "OPTIONS"}) in rules
    assert (f"/{sample}/", {"GET", "HEAD", "OPTIONS"}) in rules
