#!/usr/bin/env bash
# Live control room, demo (1 of 2): set up, load every city into PostGIS (first time
# only), then run the service on http://127.0.0.1:8000/control/brasov
# Extra arguments go to `geo-protect serve` (e.g. `--workers 2 --port 8080`).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[service]"
bash scripts/setup-postgis.sh
export GEO_PROTECT_STORE=postgis
export GEO_PROTECT_DATABASE_URL=${GEO_PROTECT_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/geo_protect}
if ! .venv/bin/python - <<'PY'
import sys
from geo_protect.settings import Settings
from geo_protect.store import open_store
sys.exit(0 if "brasov" in open_store(Settings()).cities() else 1)
PY
then
  .venv/bin/geo-protect run --store postgis
fi
if ! .venv/bin/python - <<'PY'
import sys
from geo_protect.settings import Settings
from geo_protect.store import PostGISStore
from geo_protect.store.users import list_users
with PostGISStore(Settings().database_url) as db:
    sys.exit(0 if list_users(db.engine) else 1)
PY
then  # first run: an admin to log in with (development only; change the password)
  pw=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(15))')
  printf '%s\n' "$pw" | .venv/bin/geo-protect users add admin --grant 'admin@*' --password-stdin
  echo "serve: first run: log in as admin / $pw  (change it: geo-protect users password admin)" >&2
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "serve: no MQTT broker on 127.0.0.1:1883; starting mosquitto" >&2
  mosquitto -d || { echo "serve: install mosquitto (apt-get install -y mosquitto) or pass --no-mqtt" >&2; exit 1; }
fi
exec .venv/bin/geo-protect serve "$@"
