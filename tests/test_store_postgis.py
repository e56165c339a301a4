"""PostGIS store specifics: schema, migrations, errors, COPY failures; and the CI guard."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa
from alembic import command
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL

from geo_protect import reference
from geo_protect.citydata import IngestReport
from geo_protect.errors import StoreError, StoreUnavailableError
from geo_protect.schema import LAYERS, SOURCE_LAYERS, WGS84, LayerSpec, conform
from geo_protect.settings import Settings
from geo_protect.store import GeoPackageStore, PostGISStore, migrations, open_store
from geo_protect.store.migrations import SCHEMA, create_layer_table, drop_layer_table
from tests.conftest import create_database, drop_database
from tests.store_cases import REPORT, assert_same_layer, source_layers

CONFTEST = Path(__file__).with_name("conftest.py")


@contextmanager
def _operations(store: PostGISStore) -> Iterator[None]:
    """Alembic's ``op`` bound to a transaction, as inside a migration."""
    with store.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        yield


def _query(store: PostGISStore, statement: str, **params: object) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(statement), params)]


@pytest.mark.postgis
def test_schema_has_typed_tables_with_gist_indexes(postgis_store: PostGISStore) -> None:
    geometry = dict(
        (name, (kind, srid))
        for name, kind, srid in _query(
            postgis_store,
            "SELECT f_table_name, type, srid FROM geometry_columns WHERE f_table_schema = :s "
            "AND f_geometry_column = 'geom'",  # not the sensors' zone (0007): no layer
            s=SCHEMA,
        )
    )
    assert geometry == {
        "public_space": ("MULTIPOLYGON", 4326),
        "street": ("LINESTRING", 4326),
        "entrance": ("POINT", 4326),
        "barrier": ("GEOMETRY", 4326),
        "poi": ("POINT", 4326),
        # analysis layers (migration 0002)
        "entry_point": ("POINT", 4326),
        "approach": ("LINESTRING", 4326),
        "space_metric": ("POINT", 4326),
        "assessment": ("POINT", 4326),
        "standoff": ("POINT", 4326),  # migration 0003
        "building": ("MULTIPOLYGON", 4326),
        "surveillance": ("POINT", 4326),
        "landcover": ("MULTIPOLYGON", 4326),
    }
    gist = {
        table
        for table, definition in _query(
            postgis_store,
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = :s",
            s=SCHEMA,
        )
        if "USING gist (geom)" in str(definition)
    }
    assert gist == set(geometry)  # every geometry column has its GiST index
    types = dict(
        ((table, column), kind)
        for table, column, kind in _query(
            postgis_store,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s",
            s=SCHEMA,
        )
    )
    assert types["street", "tags"] == "jsonb"
    assert types["street", "osm_id"] == "bigint"
    assert types["street", "walk"] == "boolean"
    assert types["street", "width_m"] == "double precision"
    assert types["city", "report"] == "jsonb"
    assert types["city", "ingested_at"] == "timestamp with time zone"
    keys = _query(
        postgis_store,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'geo_protect.street'::regclass "
        "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
    )
    assert keys == [("city",), ("uid",)]


@pytest.mark.postgis
def test_migrations_run_on_open_and_are_idempotent(postgis_url: str) -> None:
    stores = [PostGISStore(postgis_url, reference_version="test") for _ in range(3)]
    try:
        # source layers, analysis layers, stand-off, ranking, speed ranges, barrier
        # scenarios (0006, issue 10), the live tables (0007, issue 11), the audit trail
        # (0008, issue 13) and what follows
        head = migrations.head_revision()
        assert head is not None and head >= "0008"
        with stores[0].engine.connect() as conn:
            assert migrations.current_revision(conn) == head
        rows = _query(stores[0], "SELECT version_num FROM geo_protect.alembic_version")
        assert rows == [(head,)]
    finally:
        for store in stores:
            store.close()


@pytest.mark.postgis
def test_downgrade_to_base_and_upgrade_again(postgis_store: PostGISStore) -> None:
    with postgis_store.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"
    assert _query(postgis_store, tables, s=SCHEMA) == [("alembic_version",)]
    with postgis_store.engine.begin() as conn:
        migrations.upgrade(conn)
    analysis = ("entry_point", "approach", "space_metric", "assessment", "standoff")
    live = ("sensor", "reading", "alert", "alert_pending", "alert_history", "live_event")
    accounts = ("app_user", "user_grant", "credential", "login_attempt")
    # alembic_version, city, the layers, scenario (0006), the live tables (0007), audit (0008),
    # the accounts (0009)
    assert len(_query(postgis_store, tables, s=SCHEMA)) == 1 + 1 + len(SOURCE_LAYERS) + len(
        analysis
    ) + 1 + len(live) + 1 + len(accounts)


@pytest.mark.postgis
def test_a_new_layer_needs_its_spec_and_one_migration(
    postgis_store: PostGISStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = LayerSpec("test_metric", "Point", {"name": "string", "score": "float64", "n": "Int64"})
    monkeypatch.setitem(LAYERS, spec.name, spec)
    layer = conform(
        spec.name,
        gpd.GeoDataFrame(
            {"name": ["Piața Sfatului", None], "score": [0.5, None], "n": [3, None]},
            geometry=[shapely.Point(25.5887, 45.6427), shapely.Point(25.59, 45.64)],
            index=["way/100", "way/101"],
            crs=WGS84,
        ),
    )
    postgis_store.replace_city("brasov", {"street": source_layers()["street"]}, REPORT)
    with pytest.raises(
        StoreError, match=r"no table geo_protect\.test_metric; add an Alembic migration"
    ):
        postgis_store.write_layers("brasov", {spec.name: layer})
    with _operations(postgis_store):
        create_layer_table(spec.name, "Point", {"name": "string", "score": "float64", "n": "Int64"})
    try:
        postgis_store.write_layers("brasov", {spec.name: layer})
        assert_same_layer(postgis_store.read_layer("brasov", spec.name), layer)
        assert postgis_store.layers("brasov") == ["street", "test_metric"]
        postgis_store.replace_city("brasov", {"street": source_layers()["street"]}, REPORT)
        assert len(postgis_store.read_layer("brasov", spec.name)) == 0  # replace clears it too
    finally:
        with (
            postgis_store.engine.begin() as conn,
            Operations.context(MigrationContext.configure(conn)),
        ):
            drop_layer_table(spec.name)


def test_create_layer_table_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="unknown geometry 'Polygon'"):
        create_layer_table("x", "Polygon", {})
    with pytest.raises(ValueError, match=r"reserved"):
        create_layer_table("x", "Point", {"uid": "string"})
    with pytest.raises(ValueError, match=r"unknown dtype"):
        create_layer_table("x", "Point", {"a": "int"})


@pytest.mark.postgis
def test_a_failed_copy_rolls_back(postgis_store: PostGISStore, postgis_url: str) -> None:
    old = source_layers()
    postgis_store.replace_city("brasov", old, REPORT)
    new = source_layers(suffix="3")
    new["poi"] = new["poi"].assign(tags=["{not json", "{}"])  # text passes conform, not jsonb
    with pytest.raises(
        StoreError, match=r"replacing city 'brasov' failed and was rolled back: .*json"
    ):
        postgis_store.replace_city("brasov", new, IngestReport())
    with PostGISStore(postgis_url, reference_version="test") as other:
        for name in SOURCE_LAYERS:
            assert_same_layer(other.read_layer("brasov", name), old[name])
        assert other.report("brasov") == REPORT
    # the store is usable after the failure
    postgis_store.write_layers("brasov", {"street": new["street"]})
    assert_same_layer(postgis_store.read_layer("brasov", "street"), new["street"])


def test_server_down_names_the_url_without_password() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://geo:s3cret@127.0.0.1:{port}/geo_protect"
    with pytest.raises(StoreUnavailableError) as caught:
        PostGISStore(url, connect_timeout=3)
    message = str(caught.value)
    assert (
        f"cannot connect to PostGIS at postgresql+psycopg://geo:***@127.0.0.1:{port}/geo_protect"
        in message
    )
    assert "s3cret" not in message
    assert "Start PostgreSQL" in message and "GEO_PROTECT_DATABASE_URL" in message


@pytest.mark.postgis
def test_database_without_postgis(pg_admin_url: URL) -> None:
    name = f"geo_protect_test_{os.getpid()}_bare"
    url = create_database(pg_admin_url, name, postgis=False)
    try:
        with pytest.raises(
            StoreUnavailableError,
            match=rf"database '{name}' at .* lacks the PostGIS extension: "
            r"run `CREATE EXTENSION postgis`",
        ):
            PostGISStore(url.render_as_string(hide_password=False))
    finally:
        drop_database(pg_admin_url, name)


@pytest.mark.postgis
def test_open_store_picks_the_backend(tmp_path: Path, postgis_url: str, data_dir: Path) -> None:
    gpkg = open_store(Settings(store="gpkg", store_dir=tmp_path, data_dir=data_dir))
    assert isinstance(gpkg, GeoPackageStore) and gpkg.folder == tmp_path
    store = open_store(Settings(store="postgis", database_url=postgis_url, data_dir=data_dir))
    try:
        assert isinstance(store, PostGISStore)
        store.replace_city("brasov", {"entrance": source_layers()["entrance"]}, REPORT)
        assert store.info("brasov").reference_version == reference.version(data_dir)
    finally:
        store.close()


# -- the CI guard of tests/conftest.py ------------------------------------------------------

GUARDED = """
import pytest

@pytest.fixture
def database():
    pytest.skip("no server here")

@pytest.mark.postgis
def test_needs_database(database):
    pass

@pytest.mark.browser
def test_browser_skips():
    pytest.skip("no chromium")

@pytest.mark.postgis
def test_runs():
    pass

def test_unrelated_skip():
    pytest.skip("optional")
"""


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("", 0), ("false", 0)])
def test_ci_guard_fails_skipped_required_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, code: int
) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    postgis: db\n    browser: chromium\n")
    pytester.makepyfile(GUARDED)
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == code
    if code:
        result.stdout.fnmatch_lines(
            [
                "*tests required in CI were skipped*",
                "*CI=true: 2 test(s) marked postgis or browser or mqtt were skipped*",
                "*test_needs_database [[]postgis[]]*no server here*",
                "*test_browser_skips [[]browser[]]*no chromium*",
            ]
        )
    else:
        result.stdout.no_fnmatch_line("*required in CI*")
