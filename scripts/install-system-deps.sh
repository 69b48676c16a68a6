#!/usr/bin/env bash
# Install what the tests need from Debian's packages, when it is missing.
# Idempotent: does nothing on a machine that already has everything.
set -euo pipefail

# With --build, only what `pip install` needs to build the project's own
# dependencies (`make run` needs no browser or database server). With --host,
# also what the booted-host test needs (tests/host/: a Debian 12 image made by
# debootstrap, booted under qemu, reached over SSH).
build_only=0
if [ "${1:-}" = "--build" ]; then build_only=1; fi

need=()
if [ "${1:-}" = "--host" ]; then
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
  command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
  command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
  command -v mke2fs >/dev/null 2>&1 || need+=(e2fsprogs)
fi
# PyICU (the reviewer tool's confusable skeletons) builds against ICU.
if ! pkg-config --exists icu-i18n 2>/dev/null; then need+=(libicu-dev pkg-config); fi
if ! command -v g++ >/dev/null 2>&1; then need+=(g++); fi
if [ "$build_only" -eq 1 ]; then
  if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing build packages: ${need[*]} (run as root, or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
  exit 0
fi
node_major=0
if command -v node >/dev/null 2>&1; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
fi
# WebCrypto X25519 and Ed25519 without flags need Node.js 20 or newer.
if [ "$node_major" -lt 20 ]; then need+=(nodejs); fi
# npm installs axe-core for the accessibility tests (tests/axe/, never served).
if ! command -v npm >/dev/null 2>&1; then need+=(npm); fi
# Browser tests drive Debian's Chromium (never a browser downloaded by a tool).
if [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
# The portal's pages come in scripts that DejaVu (which Chromium brings) does not
# draw: Burmese, Devanagari and Arabic are in fonts-noto-core, Simplified Chinese in
# fonts-noto-cjk. Without them the browser tests would see boxes (tofu).
noto=/usr/share/fonts/truetype/noto
if [ ! -e "$noto/NotoSansMyanmar-Regular.ttf" ] || [ ! -e "$noto/NotoSansDevanagari-Regular.ttf" ] \
  || [ ! -e "$noto/NotoSansArabic-Regular.ttf" ]; then need+=(fonts-noto-core); fi
if [ ! -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then need+=(fonts-noto-cjk); fi
# Storage tests also run against a real PostgreSQL server they start themselves.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then need+=(postgresql); fi
# Deployment tests check the rendered configuration with the real tools and
# run nginx in front of gunicorn; the installer's dry run needs apt's Python
# bindings for the system Python.
if [ ! -x /usr/sbin/nginx ]; then need+=(nginx); fi
if [ ! -x /usr/sbin/tor ]; then need+=(tor); fi
if ! command -v nft >/dev/null 2>&1; then need+=(nftables); fi
if ! command -v systemd-analyze >/dev/null 2>&1 \
  || ! command -v systemd-socket-activate >/dev/null 2>&1; then need+=(systemd); fi
if ! command -v curl >/dev/null 2>&1; then need+=(curl); fi
if ! command -v git >/dev/null 2>&1; then need+=(git); fi
if ! command -v pg_dump >/dev/null 2>&1; then need+=(postgresql-client); fi
if ! /usr/bin/python3 -c 'import apt' >/dev/null 2>&1; then need+=(python3-apt); fi

if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Installing nginx or tor would start them (nginx on port 80, tor out to the
# Tor network): the tests run their own, so no service starts during install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
