#!/usr/bin/env bash
# Quick start (a): set up geo_protect and run the main job for every city on the
# embedded store (GeoPackage files in ./store, no database server needed).
# Extra arguments go to `geo-protect run` (e.g. `scripts/main.sh --store postgis`).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/geo-protect run "$@"
