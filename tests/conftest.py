"""Shared fixtures and the CI guard.

Fixtures
--------
``data_dir``
    The repository's ``data/`` folder.
``brasov_centre``
    ``data/osm/brasov/brasov_centre.osm.bz2``, the small real OSM clip (ODbL).
``centre_city``, ``centre_data``, ``centre_analysis``
    Brașov cut to the centre clip, its ingest and its analysis (once per session).
``centre_layers``
    Every layer of the centre clip from :func:`geo_protect.pipeline.evaluate`: ingest,
    analysis and scores pre-filled from evidence (once per session).
``pg_admin_url``
    SQLAlchemy URL of a PostgreSQL maintenance database (``GEO_PROTECT_TEST_PG``,
    default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); skips when the
    server does not answer or has no PostGIS package (fails in CI).
``postgis_url``
    A throwaway database ``geo_protect_test_<pid>`` with PostGIS, dropped at the end.
``postgis_store``
    A :class:`~geo_protect.store.postgis.PostGISStore` on it, emptied before each test.

CI guard
--------
A missing database, browser or tool is reported through :func:`tests.needs.unavailable`:
a skip locally, a failure under ``CI=true``. On top of that, when ``CI=true``, two kinds of
skip fail the session, so a skip from anywhere else cannot pass unnoticed either:

* at run time, a skipped test marked ``postgis``, ``browser`` or ``mqtt`` (:data:`REQUIRED_IN_CI`);
* at collection, **any** skipped module (or other collector): a module-level
  ``pytest.importorskip(...)`` or ``pytest.skip(..., allow_module_level=True)``. Such a
  module was never imported, so its ``pytestmark`` cannot be read and there is no safe way
  to tell a required module from an optional one; every collection-time skip is therefore
  treated as required. A test that may legitimately skip in CI must skip at run time
  (a fixture, ``skipif``) without a required marker.

Outside CI both kinds of skip are ordinary skips.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, make_url

from geo_protect.analysis.city import analyse_city
from geo_protect.cities import City, Source, get_city
from geo_protect.citydata import CityData
from geo_protect.osm.ingest import ingest_city
from tests.needs import in_ci, unavailable

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Markers whose tests must run (not skip) in CI.
REQUIRED_IN_CI = ("postgis", "browser", "mqtt")

_skipped_required = pytest.StashKey[list[str]]()
_skipped_collection = pytest.StashKey[list[str]]()


def _in_ci() -> bool:
    return in_ci()


# -- paths ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's ``data/`` folder."""
    return REPO_ROOT / "data"


@pytest.fixture(scope="session")
def brasov_centre(data_dir: Path) -> Path:
    """The Brașov centre OSM clip (48,839 nodes / 6,010 ways / 33 relations)."""
    path = data_dir / "osm" / "brasov" / "brasov_centre.osm.bz2"
    if not path.is_file():
        pytest.fail(f"test fixture {path} is missing (see data/osm/brasov/PROVENANCE.md)")
    return path


@pytest.fixture(scope="session")
def centre_city(brasov_centre: Path, tmp_path_factory: pytest.TempPathFactory) -> City:
    """Brașov restricted to the centre clip (the box it was cut with), as a registry city."""
    return get_city("brasov").model_copy(
        update={
            "bbox": (25.575, 45.633, 25.605, 45.652),
            "boundary": None,
            "sources": (Source(kind="osm", path=brasov_centre, data_date="2024-08-21"),),
            "data_dir": tmp_path_factory.mktemp("centre_data"),
        }
    )


@pytest.fixture(scope="session")
def centre_data(centre_city: City) -> CityData:
    """The centre clip ingested once per session (treat as read-only)."""
    return ingest_city(centre_city)


@pytest.fixture(scope="session")
def centre_analysis(centre_city: City, centre_data: CityData) -> dict[str, gpd.GeoDataFrame]:
    """The centre clip analysed once per session (treat as read-only)."""
    return analyse_city(centre_city, centre_data)


@pytest.fixture(scope="session")
def centre_layers(centre_city: City, centre_data: CityData) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of the centre clip, scored (``pipeline.evaluate``; treat as read-only)."""
    from geo_protect.pipeline import evaluate

    return evaluate(centre_city, centre_data)


# -- PostgreSQL / PostGIS ---------------------------------------------------------------


def libpq_url(url: URL) -> str:
    """A SQLAlchemy URL as a libpq URI for :func:`psycopg.connect`."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin: URL, name: str, *, postgis: bool) -> URL:
    """Create database ``name`` (from ``template0``), with PostGIS if asked; return its URL."""
    drop_database(admin, name)
    with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    url = admin.set(database=name)
    if postgis:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
    return url


@contextmanager
def scratch_database(admin: URL, name: str) -> Iterator[str]:
    """A PostGIS database ``name`` for one module, as a URL string; dropped at the end."""
    url = create_database(admin, name, postgis=True)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(admin, name)


def drop_database(admin: URL, name: str) -> None:
    """Drop database ``name``, closing other sessions on it."""
    with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=5) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """URL of the maintenance database; skips (fails in CI) without PostgreSQL + PostGIS."""
    admin = make_url(os.environ.get("GEO_PROTECT_TEST_PG", DEFAULT_TEST_PG))
    shown = admin.render_as_string(hide_password=True)
    try:
        with psycopg.connect(libpq_url(admin), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not answering at {shown} ({' '.join(str(exc).split())})")
    if not row or not row[0]:
        unavailable(f"PostgreSQL at {shown} has no PostGIS package: run scripts/setup-postgis.sh")
    return admin


@pytest.fixture(scope="session")
def postgis_url(pg_admin_url: URL) -> Iterator[str]:
    """A throwaway PostGIS database for the session (``geo_protect_test_<pid>``)."""
    name = f"geo_protect_test_{os.getpid()}"
    url = create_database(pg_admin_url, name, postgis=True)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def postgis_store(postgis_url: str) -> Iterator[object]:
    """A PostGIS store on the session database, with every table emptied first."""
    from geo_protect.store.migrations import SCHEMA, VERSION_TABLE
    from geo_protect.store.postgis import PostGISStore

    store = PostGISStore(postgis_url, reference_version="test")
    with store.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        tables = raw.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> %s",
            (SCHEMA, VERSION_TABLE),
        ).fetchall()
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(SCHEMA, t) for (t,) in tables)
            raw.execute(sql.SQL("TRUNCATE {}").format(names))
    try:
        yield store
    finally:
        store.close()


# -- CI guard ---------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and _in_ci():
        required = [m for m in REQUIRED_IN_CI if item.get_closest_marker(m) is not None]
        if required:
            item.config.stash.setdefault(_skipped_required, []).append(
                f"{item.nodeid} [{', '.join(required)}]: {_skip_reason(report)}"
            )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped and _in_ci():
        collector.config.stash.setdefault(_skipped_collection, []).append(
            f"{report.nodeid or collector.name}: {_skip_reason(report)}"
        )
    return report


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    return " ".join(str(reason).split()).removeprefix("Skipped: ")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stash = session.config.stash
    skipped = stash.get(_skipped_required, []) + stash.get(_skipped_collection, [])
    if skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.config.stash.get(_skipped_required, [])
    if skipped:
        terminalreporter.section("tests required in CI were skipped", sep="!", red=True)
        terminalreporter.line(
            f"CI=true: {len(skipped)} test(s) marked {' or '.join(REQUIRED_IN_CI)} were skipped; "
            "the session fails. Provide PostGIS (scripts/setup-postgis.sh), Chromium and Mosquitto."
        )
        for line in skipped:
            terminalreporter.line(f"  {line}")
    modules = terminalreporter.config.stash.get(_skipped_collection, [])
    if modules:
        terminalreporter.section("modules skipped at collection in CI", sep="!", red=True)
        terminalreporter.line(
            f"CI=true: {len(modules)} module(s) were skipped at collection (module-level "
            "importorskip or skip); the session fails. Install what they need."
        )
        for line in modules:
            terminalreporter.line(f"  {line}")
