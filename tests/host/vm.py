"""A Debian 12 virtual machine with systemd as PID 1, for the booted-host test.

The disk image comes from ``scripts/host-image.sh`` (built once, then cached
under ``/var/cache/cso-portal-host``); each boot writes to a throwaway qcow2
overlay, so the cached image never changes. qemu runs under software
emulation unless ``CSO_HOST_KVM=1`` asks for KVM (see :func:`kvm_works`).
Its user-mode network gives the guest DHCP, DNS and the way out to the Debian
mirror, and forwards loopback ports of this machine to the guest's SSH, HTTP
and HTTPS: nothing the guest does (its firewall included) touches this
machine's own network namespace.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT
from tests.integration.portal_server import free_port

CACHE = Path(os.environ.get("CSO_HOST_CACHE", "/var/cache/cso-portal-host"))
IMAGE_SCRIPT = ROOT / "scripts" / "host-image.sh"
SSH = "/usr/bin/ssh"
BASH = "/bin/bash"
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_IMG = "/usr/bin/qemu-img"


def build_image() -> Path:
    """The cached image's directory (disk.raw, vmlinuz, initrd.img, id_ed25519)."""
    result = subprocess.run(
        [BASH, str(IMAGE_SCRIPT), str(CACHE)], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"host image build failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def kvm_works() -> bool:
    """Whether to run the guest under KVM: only when asked (``CSO_HOST_KVM=1``).

    A /dev/kvm that opens is not enough: in a nested sandbox (a Firecracker
    VM, for one) it opens, qemu starts, and the guest's kernel never prints a
    line. Software emulation is slower but runs everywhere.
    """
    if os.environ.get("CSO_HOST_KVM") != "1":
        return False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    return True


@dataclass
class Machine:
    """A booted guest: how to reach it over SSH, and its forwarded ports."""

    image: Path
    workdir: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]

    @property
    def key(self) -> Path:
        """The private key root's authorized_keys in the guest accepts."""
        return self.image / "id_ed25519"

    @property
    def console_log(self) -> Path:
        """The guest's serial console, as written so far."""
        return self.workdir / "console.log"

    def ssh_options(self) -> list[str]:
        """One multiplexed connection for every command (the guest's firewall
        limits new SSH connections to 30 a minute)."""
        return [
            "-i", str(self.key), "-p", str(self.ports["ssh"]),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self.workdir}/ssh-%C",
            "-o", "ControlPersist=600", "-o", "ServerAliveInterval=15",
        ]  # fmt: skip

    def ssh(
        self, command: str, *, check: bool = True, timeout: float = 300, stdin: bytes = b""
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest as root."""
        result = subprocess.run(
            [SSH, *self.ssh_options(), "root@127.0.0.1", command],
            input=stdin.decode() if stdin else None,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"in the guest: {command!r} exited {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def read_bytes(self, path: str) -> bytes:
        """A file of the guest, as bytes."""
        return subprocess.run(
            [SSH, *self.ssh_options(), "root@127.0.0.1", f"cat {shlex.quote(path)}"],
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip

    @contextmanager
    def tunnel(self, guest_port: int) -> Iterator[int]:
        """A loopback port here that reaches the guest's own 127.0.0.1:``guest_port``
        (the way tor hands onion connections to nginx)."""
        local = free_port()
        forward = subprocess.run(
            [SSH, *self.ssh_options(), "-O", "forward", "-L",
             f"127.0.0.1:{local}:127.0.0.1:{guest_port}", "root@127.0.0.1"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert forward.returncode == 0, forward.stderr
        try:
            yield local
        finally:
            subprocess.run(
                [SSH, *self.ssh_options(), "-O", "cancel", "-L",
                 f"127.0.0.1:{local}:127.0.0.1:{guest_port}", "root@127.0.0.1"],
                capture_output=True, timeout=30,
            )  # fmt: skip

    def wait_for_ssh(self, timeout: float) -> None:
        """Wait until the guest has booted far enough to take SSH commands."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"qemu exited:\n{self.console_tail()}")
            result = self.ssh("true", check=False, timeout=30)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"no SSH after {timeout} s:\n{self.console_tail()}")
            time.sleep(2)

    def console_tail(self) -> str:
        """The end of the serial console, for error messages."""
        if not self.console_log.exists():
            return ""
        return self.console_log.read_text(errors="replace")[-4000:]


@contextmanager
def booted(image: Path, workdir: Path, memory_mib: int = 2048) -> Iterator[Machine]:
    """Boot the cached image on a fresh overlay; power it off afterwards."""
    overlay = workdir / "overlay.qcow2"
    subprocess.run(
        [QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", "raw",
         "-b", str(image / "disk.raw"), str(overlay)],
        check=True, timeout=60,
    )  # fmt: skip
    ports = {name: free_port() for name in ("ssh", "http", "https")}
    accel = ["-accel", "kvm", "-cpu", "host"] if kvm_works() else ["-accel", "tcg"]
    forwards = ",".join(
        f"hostfwd=tcp:127.0.0.1:{ports[name]}-:{guest}"
        for name, guest in (("ssh", 22), ("http", 80), ("https", 443))
    )
    command = [
        QEMU, *accel, "-m", str(memory_mib), "-smp", "2",
        "-nographic", "-no-reboot", "-serial", f"file:{workdir / 'console.log'}",
        # The guest's clock starts at this machine's time in UTC (the doctor checks it).
        "-rtc", "base=utc,clock=host",
        "-monitor", "none",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=1 systemd.show_status=1",
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-netdev", f"user,id=net0,{forwards}", "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    with (workdir / "qemu.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    machine = Machine(image, workdir, ports, process)
    try:
        machine.wait_for_ssh(timeout=120 if kvm_works() else 900)
        yield machine
    finally:
        machine.ssh("systemctl poweroff", check=False, timeout=30)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subprocess.run(
            [SSH, *machine.ssh_options(), "-O", "exit", "root@127.0.0.1"],
            capture_output=True, timeout=30,
        )  # fmt: skip
        overlay.unlink(missing_ok=True)
