#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries (used by the multi-worker tuning test) when they are missing.
# Best effort: without root or sudo rights the PostgreSQL test is skipped, with its reason, and everything else runs.
set -uo pipefail
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "note: no apt-get: the PostgreSQL tuning test will be skipped"; exit 0; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null; then
  echo "installed PostgreSQL server binaries"
else
  echo "note: could not install postgresql: the PostgreSQL tuning test will be skipped"
fi
exit 0
