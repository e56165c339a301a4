#!/usr/bin/env bash
# Quick start (b): install and start what the tests need (PostGIS, Chromium, the Python
# packages), then run lint, type checks and the whole test suite.
# With CI=true, a skipped PostGIS or browser test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)  # fsync-order test of the stores
command -v ogrinfo >/dev/null 2>&1 || need_apt+=(gdal-bin)  # GeoPackage export opens in GDAL
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)  # live MQTT tests
command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing ${need_apt[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "!! ${need_apt[*]} missing and not root: browser / ogrinfo tests will fail in CI" >&2
  fi
fi

echo "== PostgreSQL + PostGIS"
bash scripts/setup-postgis.sh

echo "== MQTT broker (Mosquitto on 127.0.0.1:1883)"
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  if command -v mosquitto >/dev/null 2>&1; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf 2>/dev/null || mosquitto -d
    for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    echo "!! no MQTT broker on 127.0.0.1:1883 and none could be started: MQTT tests will fail in CI" >&2
  fi
fi

echo "== Python environment"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,service]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null

echo "== ruff"
.venv/bin/ruff check geo_protect tests benchmarks
.venv/bin/ruff format --check geo_protect tests benchmarks
echo "== mypy"
.venv/bin/mypy geo_protect

echo "== pytest"
export GEO_PROTECT_TEST_PG=${GEO_PROTECT_TEST_PG:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
export GEO_PROTECT_CHROMIUM=${GEO_PROTECT_CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
