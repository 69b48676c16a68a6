"""Fixtures for the booted-host test: the release, the machine, the installer run on it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, DemoPortal, ceremony_key
from tests.host.vm import CACHE, Machine, booted, build_image
from tests.release.build import release_wheel

PLAYBOOK = ROOT / "deploy" / "ansible" / "site.yml"
LOCK = ROOT / "requirements" / "runtime.txt"
BUILD_LOCK = ROOT / "requirements" / "build.txt"
DOMAIN = "report.example.test"


@dataclass
class Installed:
    """The booted machine after the installer ran on it, and what that run printed."""

    machine: Machine
    output: str
    recap: dict[str, int]


@pytest.fixture(scope="module")
def host_workdir() -> Iterator[Path]:
    """Scratch space for the release, the overlay disk and the logs."""
    workdir = Path(tempfile.mkdtemp(prefix="cso-host-"))
    yield workdir
    if not os.environ.get("CSO_HOST_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)


def wheelhouse() -> Path:
    """Every file the build and runtime locks name, wheels only (a portal host
    builds nothing); downloaded once per pair of locks and cached beside the image.
    The files are this machine's (x86_64, CPython 3.11, glibc), as are Debian 12's."""
    key = hashlib.sha256(BUILD_LOCK.read_bytes() + LOCK.read_bytes()).hexdigest()[:16]
    folder = CACHE / f"wheelhouse-{key}"
    if (folder / ".done").exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="wheelhouse.", dir=CACHE))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--only-binary=:all:", "-r", str(BUILD_LOCK), "-r", str(LOCK),
         "-d", str(partial)],
        check=True, timeout=900,
    )  # fmt: skip
    (partial / ".done").touch()
    partial.rename(folder)
    return folder


def run_installer(machine: Machine, variables: dict[str, object], workdir: Path) -> Installed:
    """ansible-playbook site.yml against the machine, over SSH, as an operator would."""
    (workdir / "vars.json").write_text(json.dumps(variables))
    inventory = (
        f"cso-host ansible_host=127.0.0.1 ansible_port={machine.ports['ssh']} ansible_user=root "
        f"ansible_ssh_private_key_file={machine.key} ansible_python_interpreter=/usr/bin/python3\n"
    )
    (workdir / "inventory").write_text(inventory)
    environment = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=str(workdir / "ansible"),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_SSH_ARGS=(
            "-o ControlMaster=auto -o ControlPersist=600 -o UserKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR"
        ),
    )
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--inventory",
         str(workdir / "inventory"), str(PLAYBOOK), "--extra-vars", f"@{workdir / 'vars.json'}"],
        capture_output=True, text=True, env=environment, timeout=1800, cwd=ROOT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    (workdir / f"installer-{len(list(workdir.glob('installer-*')))}.log").write_text(output)
    match = re.search(
        r"cso-host\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output
    )
    assert result.returncode == 0, output[-6000:]
    assert match is not None, output[-6000:]
    names = ("ok", "changed", "unreachable", "failed")
    recap = dict(zip(names, map(int, match.groups()), strict=True))
    return Installed(machine, output, recap)


@pytest.fixture(scope="module")
def installer_variables(
    host_workdir: Path, demo_template: DemoPortal, backup_key: dict[str, Path]
) -> dict[str, object]:
    """The operator's -e settings: the release, the ceremony's public keys, the domain."""
    backup_public = backup_key["public"].read_text().split()[-1]
    return {
        "portal_domain": DOMAIN,
        "portal_wheel": str(release_wheel(host_workdir / "release")),
        "portal_requirements": str(LOCK),
        "portal_build_requirements": str(BUILD_LOCK),
        "portal_wheelhouse": str(wheelhouse()),
        "portal_organisation_key": ceremony_key(demo_template.data_dir),
        "portal_key_directory_file": str(demo_template.data_dir / "key-directory.json"),
        "portal_backup_public_key": backup_public,
        "portal_render_dir": str(host_workdir / "render"),
    }


@pytest.fixture(scope="module")
def installed(host_workdir: Path, installer_variables: dict[str, object]) -> Iterator[Installed]:
    """A freshly booted Debian 12, with the stand-ins in place, after the installer ran."""
    image = build_image()
    with booted(image, host_workdir) as machine:
        # Stand-in for the Tor network, which this test cannot reach: tor runs,
        # makes both onion services' keys and hostnames, but may not connect
        # anywhere but loopback.
        machine.ssh(
            "mkdir -p /etc/systemd/system/tor@default.service.d && printf '%s\\n' "
            "'[Service]' 'IPAddressDeny=any' 'IPAddressAllow=localhost' "
            "> /etc/systemd/system/tor@default.service.d/no-network.conf"
        )
        yield run_installer(machine, installer_variables, host_workdir)
