"""Schema migrations of the PostGIS store (Alembic), run programmatically.

The store calls :func:`upgrade` every time it opens a database; Alembic applies the
revisions in ``versions/`` that the database has not seen yet, so opening twice is a
no-op. There is no ``alembic.ini``: :func:`alembic_config` builds the configuration in
code (``env.py`` also accepts ``-x url=...`` when driven by Alembic's own commands on a
config made with :func:`alembic_config`, e.g. to write a new revision with
``alembic.command.revision(alembic_config(), "add entry_point", rev_id="0002")``).

A new layer needs one new revision that calls :func:`create_layer_table` with an
explicit, frozen column dict; a migration never reads :data:`geo_protect.schema.LAYERS`,
because the layer spec may change after the migration was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

__all__ = [
    "COLUMN_TYPES",
    "GEOMETRY_COLUMN",
    "GEOMETRY_TYPES",
    "LOCK_KEY",
    "MIGRATIONS_DIR",
    "SCHEMA",
    "SRID",
    "VERSION_TABLE",
    "alembic_config",
    "create_layer_table",
    "current_revision",
    "drop_layer_table",
    "head_revision",
    "upgrade",
]

#: The PostgreSQL schema that holds every geo_protect table.
SCHEMA = "geo_protect"
#: Alembic's bookkeeping table (in :data:`SCHEMA`).
VERSION_TABLE = "alembic_version"
#: Folder of ``env.py``, ``script.py.mako`` and ``versions/``.
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Key of the advisory lock that serialises concurrent upgrades ("geo_prot" in ASCII).
LOCK_KEY = 0x67656F5F70726F74
#: Name and SRID of the geometry column of every layer table.
GEOMETRY_COLUMN = "geom"
SRID = 4326

#: SQL type of each column dtype of :mod:`geo_protect.schema`.
COLUMN_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "string": sa.Text(),
    "Int64": sa.BigInteger(),
    "float64": sa.Double(),
    "boolean": sa.Boolean(),
    "json": JSONB(),
}

#: PostGIS geometry type of each layer geometry kind of :mod:`geo_protect.schema`.
GEOMETRY_TYPES: dict[str, str] = {
    "Point": "POINT",
    "LineString": "LINESTRING",
    "MultiPolygon": "MULTIPOLYGON",
    "Geometry": "GEOMETRY",
}


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for :data:`MIGRATIONS_DIR`, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the database behind ``connection`` to ``revision`` (idempotent).

    Runs inside the caller's transaction, which the caller commits. Concurrent callers
    are serialised by a transaction-level advisory lock (see ``env.py``).
    """
    command.upgrade(alembic_config(connection), revision)


def head_revision() -> str | None:
    """The newest revision in ``versions/``."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": SCHEMA}
    )
    return context.get_current_revision()


def create_layer_table(
    name: str,
    geometry: str,
    columns: Mapping[str, str],
    *,
    schema: str = SCHEMA,
) -> None:
    """Create the table of one layer, inside a migration.

    The table has ``city`` and ``uid`` (text, primary key together), one column per
    entry of ``columns`` and a ``geom`` column of the layer's geometry type in EPSG:4326
    with a GiST index.

    Parameters
    ----------
    name
        Layer (and table) name.
    geometry
        ``Point``, ``LineString``, ``MultiPolygon`` or ``Geometry`` (any type).
    columns
        ``{column: dtype}`` with the dtypes of :mod:`geo_protect.schema`
        (``string``, ``Int64``, ``float64``, ``boolean``, ``json``). Write the dict out in
        the migration: it is a frozen snapshot of the layer spec.
    schema
        PostgreSQL schema of the table.

    Raises
    ------
    ValueError
        For an unknown geometry kind or column dtype, or a reserved column name.
    """
    if geometry not in GEOMETRY_TYPES:
        raise ValueError(
            f"layer {name!r}: unknown geometry {geometry!r}, use {list(GEOMETRY_TYPES)}"
        )
    reserved = {"city", "uid", GEOMETRY_COLUMN} & set(columns)
    if reserved:
        raise ValueError(f"layer {name!r}: column name(s) {sorted(reserved)} are reserved")
    bad = {col: dt for col, dt in columns.items() if dt not in COLUMN_TYPES}
    if bad:
        raise ValueError(f"layer {name!r}: unknown dtype(s) {bad}, use {list(COLUMN_TYPES)}")
    op.create_table(
        name,
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        *(sa.Column(col, COLUMN_TYPES[dt]) for col, dt in columns.items()),
        sa.Column(
            GEOMETRY_COLUMN,
            Geometry(geometry_type=GEOMETRY_TYPES[geometry], srid=SRID, spatial_index=False),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("city", "uid", name=f"{name}_pkey"),
        schema=schema,
    )
    op.create_index(
        f"{name}_{GEOMETRY_COLUMN}_gist",
        name,
        [GEOMETRY_COLUMN],
        schema=schema,
        postgresql_using="gist",
    )


def drop_layer_table(name: str, *, schema: str = SCHEMA) -> None:
    """Drop the table of one layer (the ``downgrade`` of :func:`create_layer_table`)."""
    op.drop_table(name, schema=schema)


def add_layer_columns(name: str, columns: Mapping[str, str], *, schema: str = SCHEMA) -> None:
    """Add columns to the table of one layer, inside a migration (nullable, no default).

    Parameters
    ----------
    name
        Layer (and table) name.
    columns
        ``{column: dtype}`` as in :func:`create_layer_table`, written out in the migration.

    Raises
    ------
    ValueError
        For an unknown column dtype or a reserved column name.
    """
    reserved = {"city", "uid", GEOMETRY_COLUMN} & set(columns)
    if reserved:
        raise ValueError(f"layer {name!r}: column name(s) {sorted(reserved)} are reserved")
    bad = {col: dt for col, dt in columns.items() if dt not in COLUMN_TYPES}
    if bad:
        raise ValueError(f"layer {name!r}: unknown dtype(s) {bad}, use {list(COLUMN_TYPES)}")
    for col, dt in columns.items():
        op.add_column(name, sa.Column(col, COLUMN_TYPES[dt]), schema=schema)


def drop_layer_columns(name: str, columns: Iterable[str], *, schema: str = SCHEMA) -> None:
    """Drop columns of one layer's table (the ``downgrade`` of :func:`add_layer_columns`)."""
    for col in columns:
        op.drop_column(name, col, schema=schema)


def enable_city_scope(table: str, kind: str, *, column: str = "city", schema: str = SCHEMA) -> None:
    """Turn on row-level security of ``table``: the scoped role sees its cities' rows only.

    Inside a migration. Rows are visible to (and may be written by) the role
    ``geo_protect_scoped`` only when ``column`` is in the comma-separated setting
    ``geo_protect.<kind>_cities`` of the transaction (``*``: every city); other roles
    are not affected. Call it for every new table with a city column.

    Parameters
    ----------
    table
        Table name.
    kind
        ``read`` (layers, scores, scenarios) or ``live`` (sensors, alerts, events).
    column
        The column holding the city slug.
    schema
        PostgreSQL schema of the table.
    """
    if kind not in {"read", "live"}:
        raise ValueError(f"unknown scope kind {kind!r}: use 'read' or 'live'")
    op.execute(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_scope ON {schema}.{table} TO geo_protect_scoped "
        f"USING ({schema}.in_scope({column}, '{kind}'))"
    )
