"""The server store: PostGIS, the system of record.

Schema ``geo_protect`` (created and upgraded by the Alembic migrations in
:mod:`geo_protect.store.migrations` when the store opens) holds one table per layer, keyed by
``(city, uid)``, with typed columns (``tags`` is JSONB) and a ``geom`` column in
EPSG:4326 with a GiST index, plus the ``city`` table (slug, ingest time, reference
version, ingest report, stored layers) and the ``scenario`` table of barrier scenarios
(:mod:`geo_protect.store.scenarios`). Writes delete the city's rows and COPY the new
ones in a single transaction, so readers see the old city or the new one, never half;
:meth:`PostGISStore.read_layers` reads several layers in one ``REPEATABLE READ``
transaction (one snapshot), so it never sees a write half-way either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from psycopg import Error as _PsycopgError
from psycopg import OperationalError as _OperationalError
from psycopg import sql
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from geo_protect.citydata import IngestReport
from geo_protect.errors import StoreError, StoreUnavailableError, UnknownCityError
from geo_protect.schema import LayerSpec, canonical_json, conform, empty_layer
from geo_protect.store import audit, migrations
from geo_protect.store import scenarios as _scenarios
from geo_protect.store._common import (
    CityInfo,
    check_slug,
    layer_frame,
    order_layers,
    report_from_json,
    report_to_json,
    spec_of,
)
from geo_protect.store.migrations import GEOMETRY_COLUMN, SCHEMA, SRID

__all__ = ["PostGISStore", "masked_url"]

_CITY = sa.Table(
    "city",
    sa.MetaData(schema=SCHEMA),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("ingested_at", sa.DateTime(timezone=True)),
    sa.Column("reference_version", sa.Text),
    sa.Column("report", JSONB),
    sa.Column("layers", JSONB),
)
_GEOMETRY_COLUMNS = sa.table(
    "geometry_columns",
    sa.column("f_table_schema"),
    sa.column("f_table_name"),
    sa.column("f_geometry_column"),
)


def masked_url(url: str | sa.URL) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable database URL>"


class PostGISStore:
    """Layers in a PostGIS database.

    Opening connects, checks for the PostGIS extension and runs the migrations
    (``upgrade head``; a no-op when the schema is current).

    Parameters
    ----------
    url
        SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://``.
    reference_version
        Version of the reference tables recorded with each ingest; by default the one
        of the configured data folder (:func:`geo_protect.reference.version`).
    connect_timeout
        Seconds to wait for the server before giving up.

    Raises
    ------
    StoreUnavailableError
        The server does not answer, or the database lacks the PostGIS extension.
    """

    def __init__(
        self, url: str, *, reference_version: str | None = None, connect_timeout: int = 10
    ) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreUnavailableError(
                f"database URL {url!r} is not a valid SQLAlchemy URL "
                "(expected postgresql+psycopg://user@host:5432/database)"
            ) from exc
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername != "postgresql+psycopg":
            raise StoreUnavailableError(
                f"database URL {masked_url(parsed)}: driver {parsed.drivername!r} is not "
                "supported, "
                "use postgresql+psycopg://"
            )
        self.url = masked_url(parsed)
        self._reference_version = reference_version
        self._engine: Engine = sa.create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": connect_timeout}
        )
        self._tables: dict[str, sa.Table] = {}
        try:
            self._open()
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"PostGISStore({self.url!r})"

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def __enter__(self) -> PostGISStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contract -------------------------------------------------------------------

    def replace_city(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], report: IngestReport
    ) -> None:
        """Replace every row of ``city`` (all layer tables) and its record, in one transaction."""
        check_slug(city)
        names = list(layers)
        for name in names:
            spec_of(name)
        record = {
            "slug": city,
            "ingested_at": datetime.now(UTC),
            "reference_version": self._reference(),
            "report": json.loads(report_to_json(report)),
            "layers": order_layers(names),
        }
        upsert = insert(_CITY).values(record)
        upsert = upsert.on_conflict_do_update(
            index_elements=[_CITY.c.slug],
            set_={k: upsert.excluded[k] for k in record if k != "slug"},
        )
        with self._transaction(f"replacing city {city!r}") as conn:
            conn.execute(upsert)  # locks the city row: concurrent writers of a city queue here
            for table in self._layer_tables(conn):
                conn.execute(sa.delete(table).where(table.c.city == city))
            for name in names:
                self._copy(conn, city, name, conform(name, layers[name]))

    def write_layers(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], *, actor: audit.Actor | None = None
    ) -> None:
        """Replace the given layers of an ingested city in one transaction (``assessment``:
        with its audit row, :func:`~geo_protect.store.audit.record_assessment`)."""
        check_slug(city)
        names = list(layers)
        for name in names:
            spec_of(name)
        with self._transaction(f"writing layers of {city!r}") as conn:
            row = conn.execute(
                sa.select(_CITY.c.layers).where(_CITY.c.slug == city).with_for_update()
            ).first()
            if row is None:
                raise self._unknown(city)
            for name in names:
                table = self._table(conn, name)
                old = self._select(conn, city, name) if name == "assessment" else None
                conn.execute(sa.delete(table).where(table.c.city == city))
                self._copy(conn, city, name, new := conform(name, layers[name]))
                if old is not None:
                    audit.record_assessment(conn, actor, city, old, new)
            stored = order_layers([*row.layers, *names])
            conn.execute(sa.update(_CITY).where(_CITY.c.slug == city).values(layers=stored))

    def read_layer(self, city: str, layer: str) -> gpd.GeoDataFrame:
        """One layer of a city, sorted by ``uid`` (an empty layer if it has none)."""
        spec_of(layer)
        check_slug(city)
        with self._transaction(f"reading {layer!r} of {city!r}") as conn:
            self._record(conn, city)
            return self._select(conn, city, layer)

    def read_layers(
        self, city: str, names: Iterable[str] | None = None
    ) -> dict[str, gpd.GeoDataFrame]:
        """Several layers of a city from one snapshot (one ``REPEATABLE READ`` transaction).

        Parameters
        ----------
        city : str
            The city's slug.
        names : iterable of str, optional
            The layers to read (an empty layer for each one the city has none of); by
            default every stored layer, in the order of :meth:`layers`.

        Returns
        -------
        dict of str to GeoDataFrame
            Layer name to layer, sorted by ``uid``, in the order asked for.

        Raises
        ------
        UnknownCityError
            The city is not in the store.
        StoreError
            A name is not a registered layer, or a query fails.
        """
        wanted = None if names is None else [spec_of(name).name for name in names]
        check_slug(city)
        with self._transaction(f"reading the layers of {city!r}", snapshot=True) as conn:
            stored = self._record(conn, city).layers
            chosen = list(stored) if wanted is None else wanted
            return {name: self._select(conn, city, name) for name in chosen}

    def report(self, city: str) -> IngestReport:
        """The ingest report stored with the city."""
        with self._transaction(f"reading the report of {city!r}") as conn:
            return report_from_json(self._record(conn, check_slug(city)).report)

    def cities(self) -> list[str]:
        """Slugs of the stored cities."""
        with self._transaction("listing cities") as conn:
            return list(conn.scalars(sa.select(_CITY.c.slug).order_by(_CITY.c.slug.collate("C"))))

    def layers(self, city: str) -> list[str]:
        """Names of the layers stored for ``city`` (empty ones included)."""
        return self.info(city).layers

    def save_scenario(
        self, city: str, scenario: _scenarios.ScenarioDocument, *, actor: audit.Actor
    ) -> None:
        """Store ``scenario`` (table ``scenario``) with its audit row, replacing its namesake."""
        record = _scenarios.StoredScenario.of(check_slug(city), scenario)
        with self._transaction(f"saving scenario {record.name!r} of {city!r}") as conn:
            self._record(conn, city)
            _scenarios.pg_save_scenario(conn, record, actor=actor)

    def scenarios(self, city: str) -> list[str]:
        """Names of the scenarios stored for ``city``, sorted."""
        with self._transaction(f"listing the scenarios of {city!r}") as conn:
            self._record(conn, check_slug(city))
            return _scenarios.pg_scenario_names(conn, city)

    def read_scenario(self, city: str, name: str) -> _scenarios.StoredScenario:
        """The scenario ``name`` of ``city`` (:class:`MissingDataError` if it has none)."""
        with self._transaction(f"reading scenario {name!r} of {city!r}") as conn:
            self._record(conn, check_slug(city))
            where = f"the PostGIS store {self.url}"
            return _scenarios.pg_read_scenario(conn, city, name, where)

    # -- extras ---------------------------------------------------------------------

    def info(self, city: str) -> CityInfo:
        """Ingest time, reference version and layers of a stored city."""
        with self._transaction(f"reading the record of {city!r}") as conn:
            row = self._record(conn, check_slug(city))
        return CityInfo(
            slug=row.slug,
            ingested_at=row.ingested_at.astimezone(UTC),
            reference_version=row.reference_version,
            layers=list(row.layers),
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools that query the tables directly)."""
        return self._engine

    # -- internals ------------------------------------------------------------------

    def _open(self) -> None:
        try:
            with self._engine.begin() as conn:
                has_postgis = conn.scalar(
                    sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
                )
                if not has_postgis:
                    database = conn.scalar(sa.text("SELECT current_database()"))
                    raise StoreUnavailableError(
                        f"database {database!r} at {self.url} lacks the PostGIS extension: run "
                        f"`CREATE EXTENSION postgis` in it as a superuser "
                        "(or scripts/setup-postgis.sh)"
                    )
                migrations.upgrade(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, _OperationalError):
                raise StoreUnavailableError(
                    f"cannot connect to PostGIS at {self.url}: {_first_line(exc.orig)}. "
                    "Start PostgreSQL (scripts/setup-postgis.sh) or point "
                    "GEO_PROTECT_DATABASE_URL at a running server."
                ) from exc
            raise StoreError(
                f"preparing the schema at {self.url} failed: {_first_line(exc.orig)}"
            ) from exc

    def _reference(self) -> str:
        if self._reference_version is None:
            from geo_protect.reference import version

            self._reference_version = version()
        return self._reference_version

    def _transaction(self, what: str, *, snapshot: bool = False) -> _Transaction:
        return _Transaction(self, what, snapshot=snapshot)

    def _unknown(self, city: str) -> UnknownCityError:
        return UnknownCityError(
            f"city {city!r} is not in the PostGIS store {self.url}: ingest it first"
        )

    def _record(self, conn: Connection, city: str) -> sa.Row[Any]:
        row = conn.execute(sa.select(_CITY).where(_CITY.c.slug == city)).first()
        if row is None:
            raise self._unknown(city)
        return row

    def _select(self, conn: Connection, city: str, layer: str) -> gpd.GeoDataFrame:
        """The rows of ``layer`` for ``city``, sorted by ``uid`` (in the caller's transaction)."""
        spec = spec_of(layer)
        table = self._table(conn, layer)
        query = (
            sa.select(
                table.c.uid,
                *(table.c[c] for c in spec.columns),
                sa.func.ST_AsBinary(table.c[GEOMETRY_COLUMN], type_=sa.LargeBinary).label("wkb"),
            )
            .where(table.c.city == city)
            .order_by(table.c.uid.collate("C"))
        )
        rows = conn.execute(query).all()
        if not rows:
            return empty_layer(layer)
        values = list(zip(*rows, strict=True))
        columns: dict[str, Any] = dict(zip(spec.columns, values[1:-1], strict=True))
        for col, dt in spec.columns.items():
            if dt == "json":
                columns[col] = [None if v is None else canonical_json(v) for v in columns[col]]
        geometry = shapely.from_wkb(np.asarray(values[-1], dtype=object))
        return layer_frame(spec, values[0], columns, geometry)

    def _layer_tables(self, conn: Connection) -> list[sa.TableClause]:
        names = conn.scalars(
            sa.select(_GEOMETRY_COLUMNS.c.f_table_name).where(
                _GEOMETRY_COLUMNS.c.f_table_schema == SCHEMA,
                _GEOMETRY_COLUMNS.c.f_geometry_column == GEOMETRY_COLUMN,
            )
        ).all()
        return [sa.table(n, sa.column("city"), schema=SCHEMA) for n in names]

    def _table(self, conn: Connection, layer: str) -> sa.Table:
        """The table of ``layer``, checked once against its spec."""
        table = self._tables.get(layer)
        if table is not None:
            return table
        spec = spec_of(layer)
        found = set(
            conn.scalars(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = :table"
                ),
                {"schema": SCHEMA, "table": layer},
            )
        )
        if not found:
            raise StoreError(
                f"{self.url}: layer {layer!r} has no table {SCHEMA}.{layer}; add an Alembic "
                "migration that creates it (geo_protect/migrations/versions, create_layer_table)"
            )
        missing = [c for c in ("city", "uid", *spec.columns, GEOMETRY_COLUMN) if c not in found]
        if missing:
            raise StoreError(
                f"{self.url}: table {SCHEMA}.{layer} lacks column(s) {', '.join(missing)} of the "
                "layer spec; add an Alembic migration that adds them"
            )
        table = _layer_table(spec)
        self._tables[layer] = table
        return table

    def _copy(self, conn: Connection, city: str, name: str, layer: gpd.GeoDataFrame) -> None:
        """COPY a conformed layer into its table (in the caller's transaction)."""
        self._table(conn, name)
        if not len(layer):
            return
        spec = spec_of(name)
        columns = ["city", "uid", *spec.columns, GEOMETRY_COLUMN]
        wkb = shapely.to_wkb(
            shapely.set_srid(layer.geometry.values, SRID), hex=True, include_srid=True
        )
        data = [repeat(city), layer.index.tolist()]
        data += [_plain(layer[c]) for c in spec.columns]
        data.append(wkb.tolist())
        statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            sql.Identifier(SCHEMA),
            sql.Identifier(name),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        )
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*data, strict=False):
                copy.write_row(row)


class _Transaction:
    """``with store._transaction(what) as conn``: one transaction, errors made StoreErrors.

    With ``snapshot`` the transaction is ``REPEATABLE READ, READ ONLY``: every statement
    sees the database as of the first one, so concurrent commits stay invisible.
    """

    def __init__(self, store: PostGISStore, what: str, *, snapshot: bool = False) -> None:
        self._store = store
        self._what = what
        self._snapshot = snapshot
        self._context: Any = None

    def __enter__(self) -> Connection:
        try:
            if self._snapshot:
                self._context = _snapshot_begin(self._store._engine)
            else:
                self._context = self._store._engine.begin()
            conn: Connection = self._context.__enter__()
        except DBAPIError as exc:
            raise StoreUnavailableError(
                f"cannot connect to PostGIS at {self._store.url}: {_first_line(exc.orig)}. "
                "Start PostgreSQL (scripts/setup-postgis.sh) or check GEO_PROTECT_DATABASE_URL."
            ) from exc
        return conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            self._context.__exit__(kind, exc, tb)  # commits, or rolls back on an exception
        except SQLAlchemyError as error:
            raise StoreError(f"{self._store.url}: {self._what} failed: {error}") from error
        if isinstance(exc, SQLAlchemyError | _PsycopgError):
            orig = getattr(exc, "orig", exc)
            raise StoreError(
                f"{self._store.url}: {self._what} failed and was rolled back: {_first_line(orig)}"
            ) from exc


@contextmanager
def _snapshot_begin(engine: Engine) -> Iterator[Connection]:
    """Like :meth:`Engine.begin`, in a ``REPEATABLE READ, READ ONLY`` transaction."""
    with (
        engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as conn,
        conn.begin(),
    ):
        yield conn


def _layer_table(spec: LayerSpec) -> sa.Table:
    return sa.Table(
        spec.name,
        sa.MetaData(schema=SCHEMA),
        sa.Column("city", sa.Text),
        sa.Column("uid", sa.Text),
        *(sa.Column(c, migrations.COLUMN_TYPES[dt]) for c, dt in spec.columns.items()),
        sa.Column(GEOMETRY_COLUMN, sa.LargeBinary),  # read through ST_AsBinary only
    )


def _plain(series: pd.Series) -> list[Any]:
    """Values as plain Python objects with ``None`` for missing (what COPY expects)."""
    values: list[Any] = series.astype(object).where(series.notna(), None).tolist()
    return values


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip() if error is not None else "unknown error"
    return text.splitlines()[0] if text else type(error).__name__
