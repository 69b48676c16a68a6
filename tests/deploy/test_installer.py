"""The one-shot installer (deploy/ansible/site.yml), in check mode on this machine.

A dry run changes nothing, so it is safe here; it still runs every task that
can be checked without the changes before it, renders the configuration with
`portal deploy-configs` on the controller, and must end with no failure.
Tasks that need a running systemd are skipped on a machine without it. The
release it is given is a wheel built here from the files about to ship
(tests/release/build.py), as `make dist` would make it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from portal.deploy.configs import HostLayout, render
from tests.conftest import ROOT
from tests.release.build import release_wheel

PLAYBOOK = ROOT / "deploy" / "ansible" / "site.yml"


def test_installer_runs_clean_in_check_mode(tmp_path: Path) -> None:
    render_dir = tmp_path / "render"
    wheel = release_wheel(tmp_path / "release")
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path / "ansible"))
    before = _snapshot()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--check", "--diff",
         "--inventory", "localhost,", "--connection", "local", str(PLAYBOOK),
         "--extra-vars", "portal_domain=report.example.org",
         "--extra-vars", f"portal_render_dir={render_dir}",
         "--extra-vars", f"portal_wheel={wheel}",
         "--extra-vars", "ansible_python_interpreter=/usr/bin/python3"],
        capture_output=True, text=True, env=environment, timeout=300, cwd=ROOT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    recap = re.search(
        r"localhost\s+: ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)", output
    )
    assert recap is not None, output[-4000:]
    assert (recap.group(2), recap.group(3)) == ("0", "0")
    assert int(recap.group(1)) > 10

    # What the playbook would install is exactly what deploy-configs renders.
    rendered = {
        f"/{p.relative_to(render_dir / 'files').as_posix()}": p.read_text()
        for p in (render_dir / "files").rglob("*")
        if p.is_file()
    }
    expected = {str(f.path): f.text for f in render(HostLayout(domain="report.example.org"))}
    assert rendered == expected
    for host_path in ("/etc/nginx/nginx.conf", "/etc/tor/torrc", "/etc/nftables.conf"):
        assert f"(item={host_path})" in output
    assert _snapshot() == before  # a dry run leaves the machine as it was
    assert "no release to install" not in output


def test_installer_refuses_to_run_without_a_release(tmp_path: Path) -> None:
    """No wheel given and none in dist/: the run stops at once and says how to make one."""
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path / "ansible"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--check",
         "--inventory", "localhost,", "--connection", "local", str(PLAYBOOK),
         "--extra-vars", f"portal_render_dir={tmp_path / 'render'}",
         "--extra-vars", f"portal_wheel={tmp_path / 'missing' / 'cso_portal-9-py3-none-any.whl'}",
         "--extra-vars", "ansible_python_interpreter=/usr/bin/python3"],
        capture_output=True, text=True, env=environment, timeout=300, cwd=ROOT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "no release to install" in output
    assert "make dist" in output


def _snapshot() -> dict[str, bytes | None]:
    """What the installer would change first, as it is now."""
    paths = ("/etc/nginx/nginx.conf", "/etc/tor/torrc", "/etc/fstab", "/etc/cso-portal/portal.env")
    return {p: Path(p).read_bytes() if Path(p).exists() else None for p in paths}
