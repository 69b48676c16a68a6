#!/usr/bin/env bash
# The booted-host test: the installer (deploy/ansible/site.yml) run against a
# real Debian 12 with systemd as PID 1, in a qemu virtual machine, then checked
# from inside (tests/host/). Needs root. Under software emulation it takes about
# 30 minutes, and about 5 more the first time (it builds and caches a disk image
# under /var/cache/cso-portal-host).
#
#   scripts/host-test.sh [PYTEST OPTIONS]      # CSO_HOST_KEEP=1 keeps the logs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh --host
exec .venv/bin/pytest -p no:cacheprovider -o addopts="--strict-markers -ra" -s -v tests/host "$@"
