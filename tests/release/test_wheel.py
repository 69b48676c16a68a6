"""A release installs whole: the wheel alone is enough to run every command.

The checkout's files (as the next commit has them: tracked, plus new files not
ignored) are copied to a temporary directory and built there
(tests/release/build.py), so nothing stale in the checkout's build/ can slip
into the wheel. The sdist, and the wheel built from it, must carry the same
files as a wheel built straight from the source. The wheel then goes into a new
venv outside the checkout, the way a portal host gets it: pip, setuptools and
wheel from requirements/build.txt, then the runtime lock, hashes required,
wheels only, no build isolation; and the commands run from a directory outside
the checkout with PYTHONPATH unset: whatever the wheel forgot to carry fails
here, not on a server. ``make dist`` itself is run on a clone of the checkout
with untracked secrets dropped into the package folders: none may ship.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tests.release.build import CHECKOUT, build, copy_sources, run

#: the import packages the wheel carries, and nothing else
PACKAGES = ("crypto", "incident_db", "portal", "reviewer_tool", "web_hardening")
#: MANIFEST.in's global-exclude and prune, as file name suffixes, names and folders
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pyd", ".so", "~", ".swp", ".orig", ".rej", ".key",
                     ".pem", ".bak")  # fmt: skip
EXCLUDED_NAMES = (".DS_Store", ".env")
EXCLUDED_FOLDERS = ("__pycache__", "var")
FEED = CHECKOUT.parent / "shared" / "data" / "crime-at-sea" / "pirate_attacks.csv"
RUNTIME_LOCK = CHECKOUT / "requirements" / "runtime.txt"
BUILD_LOCK = CHECKOUT / "requirements" / "build.txt"
#: files the code opens at run time; the whole-tree comparison covers the rest
RUNTIME_FILES = (
    "crypto/SPEC.md",
    "crypto/py.typed",
    "incident_db/mappings/crime-at-sea.toml",
    "incident_db/migrations/env.py",
    "incident_db/migrations/script.py.mako",
    "incident_db/templates/brief.html",
    "portal/deploy/gunicorn_conf.py",
    "portal/deploy/templates/nginx-site.conf.j2",
    "portal/deploy/templates/systemd/cso-portal-intake.service.j2",
    "portal/storage/migrations/env.py",
    "portal/storage/migrations/script.py.mako",
    "portal/web/sync-openapi.json",
    "portal/web/static/css/portal.css",
    "portal/web/static/js/envelope.js",
    "portal/web/templates/base.html",
    "portal/web/templates/report.html",
)


def shipped(name: str) -> bool:
    """Whether a checkout file belongs in the wheel (MANIFEST.in and the package list)."""
    path = PurePosixPath(name)
    return (
        path.parts[0] in PACKAGES
        and not set(path.parts[1:-1]) & set(EXCLUDED_FOLDERS)
        and not path.name.endswith(EXCLUDED_SUFFIXES)
        and path.name not in EXCLUDED_NAMES
    )


def wheel_names(wheel: Path) -> set[str]:
    """The files of a wheel, without its .dist-info metadata."""
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if ".dist-info/" not in name}


@dataclass(frozen=True)
class Release:
    """What the build produced."""

    sources: list[str]
    sdist: Path
    wheel: Path  # built from the sdist
    direct_wheel: Path  # built straight from the source tree


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """Build a wheel from a copy of the checkout, then the sdist and a wheel from it."""
    root = tmp_path_factory.mktemp("release")
    source = root / "source"
    sources = copy_sources(source)
    build(source, root / "direct", wheel_only=True)
    build(source, root / "dist")
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (wheel,) = (root / "dist").glob("*.whl")
    (direct_wheel,) = (root / "direct").glob("*.whl")
    return Release(sources, sdist, wheel, direct_wheel)


def test_wheel_carries_every_package_file_and_nothing_else(release: Release) -> None:
    """Each file under the packages is in the wheel; tests, bench and scripts are not."""
    names = wheel_names(release.wheel)
    expected = {name for name in release.sources if shipped(name)}
    # the message catalogs ship compiled beside their sources (setup.py's build step)
    catalogs = {name[: -len(".po")] + ".mo" for name in expected if name.endswith(".po")}
    assert len(catalogs) >= 22, "expected two compiled catalogs for each translated language"
    expected |= catalogs
    assert sorted(expected - names) == [], "files the wheel forgot"
    assert sorted(names - expected) == [], "files in the wheel that are not in the packages"
    assert set(RUNTIME_FILES) <= names
    assert {PurePosixPath(name).parts[0] for name in names} == set(PACKAGES)


def test_wheel_from_sdist_matches_wheel_from_source(release: Release) -> None:
    """The sdist is complete: the wheel built from it has the same files."""
    assert wheel_names(release.wheel) == wheel_names(release.direct_wheel)
    with tarfile.open(release.sdist) as archive:
        top = f"{release.sdist.name.removesuffix('.tar.gz')}/"
        in_sdist = {member.name.removeprefix(top) for member in archive.getmembers()}
    assert {"pyproject.toml", "MANIFEST.in", "README.md", "requirements/runtime.txt"} <= in_sdist
    assert not {name.split("/")[0] for name in in_sdist} & {"tests", "bench", "scripts"}


@dataclass(frozen=True)
class Installed:
    """A venv holding the wheel, and a clean place and environment to run it in."""

    bin: Path
    purelib: Path
    workdir: Path
    env: dict[str, str]

    def run(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's commands from the work directory."""
        return run([self.bin / str(argv[0]), *argv[1:]], cwd=self.workdir, env=self.env)


@pytest.fixture(scope="module")
def installed(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Install the build lock, then the runtime lock, then the wheel alone, into a new
    venv, as the installer does on a portal host: hashes required, wheels only."""
    root = tmp_path_factory.mktemp("installed")
    assert not root.resolve().is_relative_to(CHECKOUT)
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    locked = [*pip, "--require-hashes", "--only-binary=:all:"]
    run([*locked, "-r", BUILD_LOCK], cwd=root)
    # --no-compile: byte-compiling numpy, matplotlib and the rest would double the time
    run([*locked, "--no-compile", "--no-build-isolation", "-r", RUNTIME_LOCK], cwd=root)
    run([*pip, "--no-deps", release.wheel], cwd=root)
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=root).stdout.strip()  # fmt: skip
    env = {name: value for name, value in os.environ.items()
           if name not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "INCIDENT_DB_URL"}
           and not name.startswith("PORTAL_")}  # fmt: skip
    env["PATH"] = f"{root / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    workdir = root / "work"
    workdir.mkdir()
    return Installed(root / "venv" / "bin", Path(purelib), workdir, env)


def test_installed_packages_do_not_lead_back_to_the_checkout(installed: Installed) -> None:
    """No .pth, .egg-link or editable finder, and every package imports from the venv."""
    checkout = str(CHECKOUT)
    assert not list(installed.purelib.glob("*.egg-link"))
    assert not list(installed.purelib.glob("__editable__*"))
    for pth in installed.purelib.glob("*.pth"):
        assert checkout not in pth.read_text(encoding="utf-8"), pth
    (dist_info,) = installed.purelib.glob("cso_portal-*.dist-info")
    direct_url = json.loads((dist_info / "direct_url.json").read_text(encoding="utf-8"))
    assert checkout not in direct_url["url"]
    assert not direct_url.get("dir_info", {}).get("editable")
    code = "import sys\nfor name in sys.argv[1:]: print(__import__(name).__file__)"
    found = installed.run("python", "-c", code, *PACKAGES).stdout.split()
    assert len(found) == len(PACKAGES)
    for path in found:
        assert Path(path).is_relative_to(installed.purelib), path


@pytest.fixture(scope="module")
def data_dir(installed: Installed) -> Path:
    """A demo data directory made by the installed `portal init --demo`."""
    data = installed.workdir / "portal-data"
    out = installed.run("portal", "--data-dir", data, "init", "--demo").stdout
    assert "migrated to the latest schema" in out
    assert "key directory:" in out
    return data


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> tuple[int, bytes]:
    """GET a URL; the status and body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_portal_serve_answers_the_form_and_the_key_directory(
    installed: Installed, data_dir: Path
) -> None:
    """`portal serve` runs the wheel's own gunicorn config, templates and static files."""
    port = free_port()
    log = installed.workdir / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [installed.bin / "portal", "--data-dir", data_dir, "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=installed.workdir, env=installed.env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"portal serve stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"portal serve never answered:\n{log.read_text()}"
            try:
                status, page = fetch(f"{base}/")
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200
        assert b"<form" in page
        status, body = fetch(f"{base}/keys/directory.json")
        assert status == 200
        stored = json.loads((data_dir / "key-directory.json").read_text(encoding="utf-8"))
        assert json.loads(body) == stored
        assert b'src="/static/bundle/report-page.js"' in page
        status, script = fetch(f"{base}/static/bundle/report-page.js")
        assert status == 200
        assert (
            script == (installed.purelib / "portal/web/static/bundle/report-page.js").read_bytes()
        )
        # the compiled catalogs work from the wheel: a page and the browser's messages
        status, arabic = fetch(f"{base}/?lang=ar")
        assert status == 200
        assert b'<html lang="ar" dir="rtl">' in arabic
        assert "الإبلاغ".encode() in arabic
        status, messages = fetch(f"{base}/i18n/ar.json")
        assert status == 200
        assert len(json.loads(messages)) > 50
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    assert server.returncode == 0, log.read_text()


def test_portal_deploy_configs_renders_from_the_wheel(installed: Installed) -> None:
    """Every template ships: nginx, tor, nftables, systemd units and gunicorn's config."""
    out = installed.workdir / "configs"
    done = installed.run("portal", "deploy-configs", "--out", out, "--domain", "cso.example.org")
    written = {Path(line).relative_to(out).as_posix() for line in done.stdout.split()}
    assert {
        "etc/nginx/nginx.conf",
        "etc/nginx/sites-enabled/cso-portal.conf",
        "etc/tor/torrc",
        "etc/nftables.conf",
        "etc/systemd/system/cso-portal-intake.service",
        "etc/systemd/system/cso-portal-backup.timer",
        "etc/cso-portal/gunicorn.conf.py",
    } <= written
    assert f"{len(written)} files for a portal at https://cso.example.org/" in done.stderr
    shipped_conf = installed.purelib / "portal" / "deploy" / "gunicorn_conf.py"
    assert (out / "etc/cso-portal/gunicorn.conf.py").read_text() == shipped_conf.read_text()
    assert "cso.example.org" in (out / "etc/nginx/sites-enabled/cso-portal.conf").read_text()


def test_portal_asset_manifest_hashes_the_installed_static_files(installed: Installed) -> None:
    """`portal asset-manifest` finds the static files inside the installed package."""
    static = installed.purelib / "portal" / "web" / "static"
    expected = set()
    for path in static.rglob("*.js"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        expected.add(f"{digest}  static/{path.relative_to(static).as_posix()}")
    listed = set(installed.run("portal", "asset-manifest").stdout.splitlines())
    assert any(line.endswith("  static/bundle/report-page.js") for line in expected)
    assert expected <= listed


@pytest.fixture(scope="module")
def feed_slice(installed: Installed) -> Path:
    """The first and last 15 records of the Crime at Sea feed (read in place, never copied in)."""
    assert FEED.is_file(), f"the Crime at Sea data set is missing: {FEED}"
    with FEED.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    path = installed.workdir / "slice.csv"
    with path.open("w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows([rows[0], *rows[1:16], *rows[-15:]])
    return path


def test_incident_db_imports_the_feed_and_writes_a_brief(
    installed: Installed, feed_slice: Path
) -> None:
    """The shipped mapping, migrations and brief template work from the wheel."""
    db = f"sqlite:///{installed.workdir / 'incidents.sqlite3'}"
    imported = installed.run("incident-db", "--db", db, "import-feed", feed_slice,
                             "--mapping", "crime-at-sea")  # fmt: skip
    assert imported.stdout.startswith("crime-at-sea: 30 rows: 30 added, 0 already present, ")
    again = installed.run("incident-db", "--db", db, "import-feed", feed_slice,
                          "--mapping", "crime-at-sea")  # fmt: skip
    assert again.stdout.startswith("crime-at-sea: 30 rows: 0 added, 30 already present, ")
    brief = installed.workdir / "brief.html"
    installed.run("incident-db", "--db", db, "brief", "--near", "4.6,4.6", "--radius-nm", "500",
                  "--out", brief)  # fmt: skip
    assert "<title>Incident brief: within 500 nm of 4.6, 4.6" in brief.read_text(encoding="utf-8")


def test_reviewer_runs_from_the_wheel(installed: Installed, data_dir: Path) -> None:
    """`reviewer --help` lists its commands; `reviewer init` takes the demo key."""
    usage = installed.run("reviewer", "--help").stdout
    assert usage.startswith("usage: reviewer")
    assert "import" in usage
    assert "forward" in usage
    demo = data_dir / "demo"
    portal_key = (data_dir / "portal-signing.pub").read_text(encoding="utf-8").strip()
    done = installed.run("reviewer", "init", "--workspace", demo / "workspace",
                         "--key", demo / "reviewer-1.key", "--passphrase-file",
                         demo / "passphrase", "--portal-key", portal_key)  # fmt: skip
    assert "workspace created:" in done.stdout
    assert "csoenc1" in done.stdout


def test_without_the_reviewer_extra_the_confusable_check_stops_with_one_line(
    installed: Installed,
) -> None:
    """A portal host's install has no PyICU: the reviewer's identity check on a name
    written in Cyrillic look-alikes fails with the fix, never runs weaker."""
    text = installed.workdir / "cyrillic.txt"
    text.write_text("Crew member \u041c\u0430ry Ann was hurt\n", encoding="utf-8")
    done = subprocess.run(
        [installed.bin / "reviewer", "detect", text, "--identity", "Mary Ann"],
        capture_output=True, text=True, timeout=120, cwd=installed.workdir, env=installed.env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "reviewer: error: the confusable check needs PyICU: pip install 'cso-portal[reviewer]'\n"
    )
    # Plain ASCII needs no skeletons: the same check runs and finds the name.
    text.write_text("Crew member Mary Ann was hurt\n", encoding="utf-8")
    found = installed.run("reviewer", "detect", text, "--identity", "Mary Ann").stdout
    assert '"text": "Mary Ann"' in found


#: untracked files an operator or a developer may leave in package folders
LEFT_BEHIND = (
    "portal/web/static/demo-reviewer.key",
    "portal/web/static/notes.txt",
    "portal/.env",
    "portal/var/secret_key",
    "portal/web/app.py.bak",
    "reviewer_tool/ca.pem",
)
#: the same kinds of file, committed by mistake: MANIFEST.in keeps them out
COMMITTED_BY_MISTAKE = (
    "portal/web/static/committed.key",
    "portal/web/.env",
    "portal/var/portal.sqlite3",
    "incident_db/var/incidents.sqlite3",
    "crypto/envelope.py.bak",
    "web_hardening/server.pem",
)


def test_make_dist_ships_only_committed_files(tmp_path: Path) -> None:
    """`make dist` (this checkout's Makefile) on a clone: untracked files in the
    package folders stay out, and so do committed keys, .env files, data
    directories and backups."""
    git = shutil.which("git")
    make = shutil.which("make")
    assert git, "git is needed"
    assert make, "make is needed"
    clone = tmp_path / "clone"
    run([git, "clone", "--quiet", "--no-hardlinks", CHECKOUT, clone])
    identity = ["-c", "user.name=release test", "-c", "user.email=release@test.invalid"]
    # The packaging files as they stand in the checkout, committed in the clone
    # together with the mistakes.
    for name in ("MANIFEST.in", "pyproject.toml"):
        shutil.copy2(CHECKOUT / name, clone / name)
    for name in COMMITTED_BY_MISTAKE:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("secret\n")
    run([git, "-C", clone, "add", "-f", "MANIFEST.in", "pyproject.toml", *COMMITTED_BY_MISTAKE])
    run([git, "-C", clone, *identity, "commit", "--quiet", "-m", "mistakes"])
    for name in LEFT_BEHIND:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("secret\n")
    # This venv's tools (its stamp counts as made), the clone as the directory.
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", CHECKOUT / ".venv")) / "bin"
    run([make, "--no-print-directory", "-C", clone, "-f", CHECKOUT / "Makefile",
         "-o", ".venv/.installed", f"BIN={venv_bin}", "dist"])  # fmt: skip
    (wheel,) = (clone / "dist").glob("cso_portal-*.whl")
    (sdist,) = (clone / "dist").glob("cso_portal-*.tar.gz")
    names = wheel_names(wheel)
    with tarfile.open(sdist) as archive:
        top = f"{sdist.name.removesuffix('.tar.gz')}/"
        in_sdist = {member.name.removeprefix(top) for member in archive.getmembers()}
    for name in (*LEFT_BEHIND, *COMMITTED_BY_MISTAKE):
        assert name not in names, f"{name} is in the wheel"
        assert name not in in_sdist, f"{name} is in the sdist"
    assert "portal/web/static/js/report-page.js" in names
    assert "portal/web/static/bundle/report-page.js" in names  # committed: no Node.js to build
    assert "portal/web/app.py" in names
