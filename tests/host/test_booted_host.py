"""The installer against a real Debian 12 host: booted, systemd as PID 1.

A virtual machine (tests/host/vm.py) boots a plain Debian 12 made by
debootstrap (scripts/host-image.sh), and deploy/ansible/site.yml runs against
it over SSH as an operator would run it: the release wheel built from this
checkout, the hash-pinned runtime lock, the public keys of a key ceremony
(the demo's organisation key and signed directory, a backup key). The tests
then look from inside the host, and through the forwarded HTTPS port from
outside, at what the installer left running.

Stand-ins for what a test cannot have:

* Tor network: tor runs from the rendered torrc and makes both onion
  services' keys and hostnames, but a drop-in (IPAddressDeny=any, loopback
  allowed) keeps it off the network. Reports reach nginx's onion listener
  through an SSH tunnel to the guest's loopback, the hop tor makes.
* Let's Encrypt: no ACME e-mail is given, so the installer keeps the
  self-signed certificate it makes in /etc/cso-portal/tls (where the
  renewal hook would put certbot's); HTTPS is checked against that one.
* Python packages: the host installs offline from a wheelhouse of exactly
  the files the build and runtime locks name (the installer's
  ``portal_wheelhouse``), wheels only: a portal host has no compiler and
  builds nothing (PyICU is the reviewer's extra, not the portal's). Debian
  packages come from the real mirror.

Run with ``make test-host`` or ``scripts/host-test.sh`` (needs root, qemu,
debootstrap); it is not part of the default ``pytest`` run.
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import socket
import ssl
from pathlib import Path

from crypto.envelope import open_bytes
from tests.conftest import DemoPortal
from tests.host.conftest import DOMAIN, Installed, run_installer
from tests.integration.portal_server import submit_plain

DATA = "/var/lib/cso-portal"
CANARY = "HOST-CANARY-7c1e9d"
SERVICES = ("cso-portal-intake", "cso-portal-sync", "cso-portal-purge", "cso-portal-backup")


def test_installer_ran_clean(installed: Installed) -> None:
    assert installed.recap["failed"] == 0
    assert installed.recap["unreachable"] == 0
    assert installed.recap["changed"] > 10
    machine = installed.machine
    assert machine.ssh("readlink /proc/1/exe").stdout.strip() == "/usr/lib/systemd/systemd"
    # Wheels only: no compiler on the host, and no PyICU (the reviewer's extra).
    assert machine.ssh("/opt/cso-portal/venv/bin/python -c 'import portal'").returncode == 0
    no_icu = machine.ssh("/opt/cso-portal/venv/bin/python -c 'import icu'", check=False)
    assert "ModuleNotFoundError" in no_icu.stderr
    assert machine.ssh("command -v g++ cc", check=False).returncode != 0
    installed_wheel = machine.ssh("cat /opt/cso-portal/src/installed").stdout.strip()
    assert re.fullmatch(r"cso_portal-\S+\.whl", installed_wheel), installed_wheel


def test_services_are_socket_activated_and_answer_through_nginx(installed: Installed) -> None:
    machine = installed.machine
    for unit in ("cso-portal-intake.socket", "cso-portal-sync.socket", "nginx.service",
                 "tor@default.service", "nftables.service",
                 "cso-portal-purge.timer", "cso-portal-backup.timer"):  # fmt: skip
        state = machine.ssh(f"systemctl is-active {unit}", check=False).stdout.strip()
        assert state == "active", f"{unit}: {state}\n{_status(installed, unit)}"
    # nginx's onion listeners (where tor hands over connections) reach gunicorn.
    intake = machine.ssh("curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/")
    assert intake.stdout == "200"
    sync = machine.ssh(
        "curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8082/reviewer-sync/v1/"
    )
    assert sync.stdout not in ("000", "502", "503", "504"), sync.stdout
    for unit in ("cso-portal-intake.service", "cso-portal-sync.service"):
        state = machine.ssh(f"systemctl is-active {unit}", check=False).stdout.strip()
        assert state == "active", f"{unit}: {state}\n{_status(installed, unit)}"
    # From outside, over the firewall: TLS with the certificate the installer made,
    # asked for by name (nginx refuses a handshake for any other name).
    context = ssl.create_default_context(
        cadata=machine.read_bytes("/etc/cso-portal/tls/fullchain.pem").decode()
    )
    context.check_hostname = False  # the placeholder names DOMAIN in its CN only, no SAN
    raw = socket.create_connection(("127.0.0.1", machine.ports["https"]), timeout=60)
    with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        assert response.status == 200
        assert "max-age" in (response.getheader("Strict-Transport-Security") or "")
    onion = machine.ssh("cat /var/lib/tor/cso-portal-intake/hostname").stdout.strip()
    assert re.fullmatch(r"[a-z2-7]{56}\.onion", onion)
    assert f"PORTAL_ONION_ADDRESS={onion}" in machine.ssh("cat /etc/cso-portal/onion.env").stdout


def test_a_report_arrives_sealed_and_the_reviewer_opens_it(
    installed: Installed, demo_template: DemoPortal
) -> None:
    machine = installed.machine
    before = set(machine.ssh(f"ls {DATA}/blobs").stdout.split())
    with machine.tunnel(8081) as port:
        page = submit_plain(
            f"http://127.0.0.1:{port}",
            {"category": "piracy-or-armed-robbery", "incident_local_time": "2026-11-20T02:10",
             "incident_utc_offset": "+01:00", "place_name": "Lagos anchorage",
             "perpetrators_min": "3", "perpetrators_max": "6",
             "narrative": f"{CANARY} three men boarded at the anchorage"},
            [("deck-log.txt", f"{CANARY} deck log".encode(), "text/plain")],
        )  # fmt: skip
    assert "Your report was received" in page
    new = set(machine.ssh(f"ls {DATA}/blobs").stdout.split()) - before
    assert new, "no sealed part was stored"
    opened = [open_bytes(machine.read_bytes(f"{DATA}/blobs/{name}"), demo_template.identity(0))
              for name in sorted(new)]  # fmt: skip
    assert any(CANARY.encode() in plain for plain in opened)
    # Nowhere on the host in the clear: files, and the journal.
    found = machine.ssh(
        f"grep -rlsa {shlex.quote(CANARY)} /etc /var /tmp /run /opt /root; "
        f"journalctl -q --no-pager | grep -c {shlex.quote(CANARY)}",
        check=False,
    )
    assert found.stdout.strip() == "0", found.stdout


def test_portal_doctor_passes(installed: Installed) -> None:
    result = installed.machine.ssh(
        f"/opt/cso-portal/venv/bin/portal --data-dir {DATA} doctor", check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_purge_and_backup_run_when_their_timers_fire(installed: Installed) -> None:
    machine = installed.machine
    before = set(machine.ssh("ls /var/backups/cso-portal").stdout.split())
    for unit in ("cso-portal-purge.service", "cso-portal-backup.service"):
        machine.ssh(f"systemctl start {unit}", check=False, timeout=600)
        shown = machine.ssh(f"systemctl show -p Result -p ExecMainStatus {unit}").stdout
        assert shown.split() == ["Result=success", "ExecMainStatus=0"], _status(installed, unit)
    made = set(machine.ssh("ls /var/backups/cso-portal").stdout.split()) - before
    assert len(made) == 1, made
    timers = machine.ssh("systemctl list-timers --all --no-pager cso-portal-*").stdout
    assert "cso-portal-purge.timer" in timers
    assert "cso-portal-backup.timer" in timers


#: systemd-analyze's exposure score (0 best, 10 worst) each portal unit must keep to:
#: all four measured 0.2 "SAFE" on Debian 12 (systemd 252), so the limit sits just above
EXPOSURE_LIMIT = 0.3


def test_systemd_analyze_security_scores(installed: Installed, host_workdir: Path) -> None:
    """Each portal unit keeps its measured sandbox score; the scores go to the test's log."""
    machine = installed.machine
    scores = {}
    for service in SERVICES:
        output = machine.ssh(
            f"systemd-analyze security --no-pager {service}.service", check=False
        ).stdout
        match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", output)
        assert match is not None, output[-2000:]
        scores[service] = (float(match.group(1)), match.group(2))
    report = "\n".join(f"{name}: {value} {word}" for name, (value, word) in scores.items())
    (host_workdir / "security-scores.txt").write_text(report + "\n")
    print(report)
    for name, (value, _word) in scores.items():
        assert value <= EXPOSURE_LIMIT, f"{name} exposure {value}"


def test_installer_run_again_changes_nothing_in_the_release(
    installed: Installed, host_workdir: Path
) -> None:
    """An unchanged release is not reinstalled, and the portal keeps running."""
    variables = json.loads((host_workdir / "vars.json").read_text())
    again = run_installer(installed.machine, variables, host_workdir)
    assert "Install the release wheel itself" not in _changed_tasks(again.output)
    assert again.recap["failed"] == 0
    state = installed.machine.ssh("systemctl is-active nginx.service cso-portal-intake.socket")
    assert state.stdout.split() == ["active", "active"]


def _changed_tasks(output: str) -> str:
    """The names of tasks that reported a change, one a line."""
    names, current = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            current = line[6:].split("]")[0]
        elif line.startswith("changed:"):
            names.append(current)
    return "\n".join(names)


def _status(installed: Installed, unit: str) -> str:
    """systemctl status and the unit's journal, for a failure message."""
    return installed.machine.ssh(
        f"systemctl status --no-pager {unit}; journalctl -u {unit} --no-pager -n 40", check=False
    ).stdout[-3000:]
