#!/usr/bin/env bash
# Set up PostgreSQL + PostGIS for geo_protect on a Debian 12 machine. Run as root.
#
# Idempotent: every step checks first and skips what is already done.
#   1. install postgresql-15-postgis-3 if the PostGIS extension files are missing;
#   2. create the cluster if it does not exist, start it if it is not answering;
#   3. wait (bounded) until it accepts connections;
#   4. create the database (default geo_protect) and `CREATE EXTENSION IF NOT EXISTS postgis`.
#
# Settings (environment): PG_VERSION (15), PG_CLUSTER (main), PGPORT (5432),
# GEO_PROTECT_DB (geo_protect), WAIT_SECONDS (60).
# The store itself creates its schema (Alembic migrations) when it first connects.
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PGPORT="${PGPORT:-5432}"
DB="${GEO_PROTECT_DB:-geo_protect}"
WAIT_SECONDS="${WAIT_SECONDS:-60}"

log() { echo "setup-postgis: $*"; }
die() { echo "setup-postgis: error: $*" >&2; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }
psql_postgres() { as_postgres psql -X -v ON_ERROR_STOP=1 -p "$PGPORT" "$@"; }

[ "$(id -u)" -eq 0 ] || die "run as root (it may apt-get install and start PostgreSQL)"
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || die "GEO_PROTECT_DB=$DB is not a plain lower-case identifier"

# 1. packages
control="/usr/share/postgresql/${PG_VERSION}/extension/postgis.control"
if [ -f "$control" ]; then
    log "PostGIS extension files present ($control)"
else
    log "installing postgresql-${PG_VERSION}-postgis-3"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "postgresql-${PG_VERSION}" "postgresql-${PG_VERSION}-postgis-3"
    [ -f "$control" ] || die "$control still missing after apt-get install"
fi

# 2. cluster
if ! pg_lsclusters --no-header | awk '{print $1"/"$2}' | grep -qx "${PG_VERSION}/${PG_CLUSTER}"; then
    log "creating cluster ${PG_VERSION}/${PG_CLUSTER} on port ${PGPORT}"
    pg_createcluster --port "$PGPORT" "$PG_VERSION" "$PG_CLUSTER"
fi
if as_postgres pg_isready -q -p "$PGPORT"; then
    log "PostgreSQL ${PG_VERSION}/${PG_CLUSTER} is answering on port ${PGPORT}"
else
    log "starting PostgreSQL ${PG_VERSION}/${PG_CLUSTER}"
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start || true
fi

# 3. wait
deadline=$((SECONDS + WAIT_SECONDS))
until as_postgres pg_isready -q -p "$PGPORT"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        die "PostgreSQL did not answer on port ${PGPORT} within ${WAIT_SECONDS} s; see /var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log"
    fi
    sleep 1
done

# 4. database and extension
if [ "$(psql_postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" = "1" ]; then
    log "database ${DB} exists"
else
    log "creating database ${DB}"
    as_postgres createdb -p "$PGPORT" "$DB"
fi
psql_postgres -d "$DB" -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS postgis"
log "ready: postgresql+psycopg://postgres@127.0.0.1:${PGPORT}/${DB} ($(psql_postgres -d "$DB" -tAc 'SELECT postgis_lib_version()'))"
