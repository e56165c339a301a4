#!/usr/bin/env bash
# Live control room, demo (2 of 2), while scripts/serve.sh runs: stream the real
# Melbourne pedestrian counts (data/crowd/) onto a city's busiest spaces, one hour every
# 6 s, over MQTT. Usage: scripts/replay.sh [city] [geo-protect replay options]
set -euo pipefail
cd "$(dirname "$0")/.."
city=${1:-brasov}
shift || true
export GEO_PROTECT_STORE=postgis
export GEO_PROTECT_DATABASE_URL=${GEO_PROTECT_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/geo_protect}
exec .venv/bin/geo-protect replay "$city" --via mqtt --speed 600 "$@"
