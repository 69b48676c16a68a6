#!/usr/bin/env bash
# Build (once) a bootable Debian 12 disk image for the booted-host test
# (tests/host/), and print the directory that holds it.
#
#   scripts/host-image.sh [CACHE_DIR]       # default /var/cache/cso-portal-host
#
# The image is a plain Debian 12 with systemd as PID 1, its kernel, an SSH
# server that lets in root with a key made here, and Python for Ansible;
# nothing of the portal. It is kept under CACHE_DIR/<key>/, where the key is a
# hash of this script (the package list is in it), so a rerun reuses it and a
# change to the list builds a new one. Needs root, debootstrap and
# qemu-utils (scripts/install-system-deps.sh --host installs them).
set -euo pipefail
# Whatever umask the caller has (CI runs with 077), the image's directories
# must be the usual 0755: under 077 the /usr made below came out 0700, and
# systemd-networkd, which runs as its own user, could not be executed, so the
# guest never got an address.
umask 022

cache=${1:-/var/cache/cso-portal-host}
mirror=${CSO_HOST_MIRROR:-http://deb.debian.org/debian}
size=${CSO_HOST_DISK_SIZE:-6G}

# debootstrap's own set plus what must be there before the first boot. The
# installer's packages (nginx, tor, …) are left to the installer itself.
base_packages=systemd-sysv,dbus,udev,kmod,linux-image-amd64,initramfs-tools,openssh-server,python3,python3-apt,sudo,curl,iproute2,ca-certificates

key=$(sha256sum "$0" | cut -c1-16)
dir=$cache/$key
if [ -f "$dir/done" ]; then
  echo "$dir"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "building the host image needs root" >&2
  exit 1
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
root=$work/rootfs
trap 'umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true; rm -rf "$work"' EXIT

# The packages' scripts must not start anything on this machine while they
# are unpacked in a folder: debootstrap stops its base set itself, and the
# policy below stops the rest.
mkdir -p "$root/usr/sbin"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
debootstrap --include="$base_packages" bookworm "$root" "$mirror" >&2
rm -f "$root/usr/sbin/policy-rc.d"
# Refuse an image whose system folders a service user could not enter.
for d in "$root" "$root/usr" "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib" "$root/etc" "$root/var"; do
  if [ "$(stat -c %a "$d")" != 755 ]; then
    echo "host image: ${d#"$root"} is mode $(stat -c %a "$d"), not 755" >&2
    exit 1
  fi
done

# Networking: DHCP from qemu's user-mode network, its DNS server.
cat > "$root/etc/systemd/network/50-qemu.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"
echo "cso-host" > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcso-host\n' > "$root/etc/hosts"
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
  > "$root/etc/apt/sources.list"
# A serial console for the log, no password anywhere: SSH with this key only.
ln -sf /lib/systemd/system/serial-getty@.service \
  "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
ssh-keygen -q -t ed25519 -N "" -C cso-host-test -f "$work/id_ed25519"
cp "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
chmod 600 "$root/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
  > "$root/etc/ssh/sshd_config.d/host-test.conf"
# Host keys made now, so the first boot does not wait for them.
chroot "$root" ssh-keygen -A >&2
rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"
rm -rf "$root/var/cache/apt/archives/"*.deb

cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
chmod 644 "$work/vmlinuz" "$work/initrd.img"
mke2fs -q -t ext4 -L cso-host -d "$root" "$work/disk.raw" "$size" >&2

rm -rf "$root"
mkdir -p "$dir"
mv "$work/vmlinuz" "$work/initrd.img" "$work/disk.raw" "$work/id_ed25519" "$work/id_ed25519.pub" "$dir/"
touch "$dir/done"
echo "$dir"
