"""Alembic environment of geo_protect.

The store hands over an open connection in ``config.attributes["connection"]`` and
commits the transaction itself. From the command line, pass the database URL with
``-x url=postgresql+psycopg://...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateSchema

from geo_protect.store.migrations import LOCK_KEY, SCHEMA, VERSION_TABLE


def _run(connection: Connection) -> None:
    # Serialise concurrent upgrades (two services starting at once); released at commit.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    connection.execute(CreateSchema(SCHEMA, if_not_exists=True))
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        version_table_schema=SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("geo_protect migrations run online only (they take an advisory lock)")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError(
            "pass the database URL: alembic -x url=postgresql+psycopg://... upgrade head"
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
