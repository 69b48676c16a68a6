#!/usr/bin/env bash
# Install what the tests need from Debian's packages, when it is missing.
# Idempotent: does nothing on a machine that already has everything.
set -euo pipefail

need=()
node_major=0
if command -v node >/dev/null 2>&1; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
fi
# WebCrypto X25519 and Ed25519 without flags need Node.js 20 or newer.
if [ "$node_major" -lt 20 ]; then need+=(nodejs); fi
# Browser tests drive Debian's Chromium (never a browser downloaded by a tool).
if [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
# Storage tests also run against a real PostgreSQL server they start themselves.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then need+=(postgresql); fi

if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
