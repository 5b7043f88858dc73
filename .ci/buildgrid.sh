#!/usr/bin/env bash
# A BuildGrid server for the remote cache tests (tests/reapi.py starts and stops it), in
# a virtualenv of its own: the server's protos and the client's (buildgrid-common)
# cannot be imported by one process. Idempotent: does nothing when `bgd` is there.
#   CONVEYOR_BUILDGRID_VENV   where the virtualenv goes (default: .venv-buildgrid here)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CONVEYOR_BUILDGRID_VENV:-$PWD/.venv-buildgrid}"
if [ -x "$venv/bin/bgd" ]; then
  exit 0
fi
# 0.4.4 is the newest release that installs on Python 3.11; [database] adds the SQL
# drivers, so the same server can also schedule remote execution (PostgreSQL).
python3 -m venv "$venv"
"$venv/bin/pip" install -q "buildgrid[database]==0.4.4"
"$venv/bin/bgd" --help >/dev/null
echo "buildgrid: installed in $venv"
