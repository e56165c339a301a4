"""Barrier scenarios in the stores: one record per (city, name), the scenario as JSON.

The store sits on the foundation only, so it does not know the
:class:`~geo_protect.scenario.model.Scenario` model: it takes anything of its shape
(:class:`ScenarioDocument`: a name, an author, a creation time, edits and
``model_dump_json``) and gives back a :class:`StoredScenario`, whose ``document`` the caller
validates (``Scenario.model_validate_json``). Both backends keep ``name``, ``author``,
``created`` (UTC) and ``n_edits`` beside the JSON, for listing without parsing it.

* GeoPackage: the non-spatial table ``scenario`` in the city's file (``created`` as UTC
  ISO 8601 text), rewritten whole by a write through the store's copy-and-replace; the
  layer tables are copied byte for byte.
* PostGIS: the table ``geo_protect.scenario`` (migration 0006), keyed by
  ``(city, name)``; a save is one ``INSERT ... ON CONFLICT DO UPDATE``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyogrio
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection

from geo_protect.errors import MissingDataError
from geo_protect.store import audit
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "SCENARIO_TABLE",
    "ScenarioDocument",
    "StoredScenario",
    "gpkg_scenarios",
    "missing_scenario",
    "pg_read_scenario",
    "pg_save_scenario",
    "pg_scenario_names",
    "write_gpkg_scenarios",
]

#: The table of scenarios, in a city's GeoPackage and in the PostGIS schema.
SCENARIO_TABLE = "scenario"

_PG_SCENARIO = sa.Table(
    SCENARIO_TABLE,
    sa.MetaData(schema=SCHEMA),
    sa.Column("city", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("author", sa.Text),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("n_edits", sa.Integer),
    sa.Column("scenario", JSONB),
)


class ScenarioDocument(Protocol):
    """What the store needs of a scenario (the ``Scenario`` model has it)."""

    @property
    def name(self) -> str: ...

    @property
    def author(self) -> str | None: ...

    @property
    def created(self) -> datetime: ...

    @property
    def edits(self) -> Sequence[object]: ...

    def model_dump_json(self) -> str: ...


@dataclass(frozen=True)
class StoredScenario:
    """A scenario as a store keeps it.

    Attributes
    ----------
    city
        The city's slug.
    name
        The scenario's name (unique in the city).
    author
        Who drew it, if known.
    created
        When it was made (UTC, timezone-aware).
    n_edits
        Number of edits.
    document
        The scenario as JSON text (``Scenario.model_validate_json`` reads it back).

    Examples
    --------
    >>> from geo_protect.scenario.model import BarrierEdit, Scenario
    >>> sc = Scenario(name="rows", city="brasov", author="planner",
    ...               created=datetime.fromisoformat("2026-05-01T09:00:00+02:00"),
    ...               edits=[BarrierEdit(action="open", osm_id="node/1")])
    >>> rec = StoredScenario.of("brasov", sc)
    >>> rec.name, rec.author, rec.n_edits, rec.created.isoformat()
    ('rows', 'planner', 1, '2026-05-01T07:00:00+00:00')
    >>> Scenario.model_validate_json(rec.document) == sc
    True
    """

    city: str
    name: str
    author: str | None
    created: datetime
    n_edits: int
    document: str

    @classmethod
    def of(cls, city: str, scenario: ScenarioDocument) -> StoredScenario:
        """The record of ``scenario`` in ``city`` (``created`` converted to UTC).

        Parameters
        ----------
        city : str
            The city's slug.
        scenario : ScenarioDocument
            The scenario (a :class:`~geo_protect.scenario.model.Scenario`).

        Returns
        -------
        StoredScenario
            Its record, ``document`` being ``scenario.model_dump_json()``.
        """
        created = scenario.created
        if created.tzinfo is None:
            raise ValueError(f"scenario {scenario.name!r}: created needs a time zone")
        return cls(
            city=city,
            name=scenario.name,
            author=scenario.author,
            created=created.astimezone(UTC),
            n_edits=len(scenario.edits),
            document=scenario.model_dump_json(),
        )


def missing_scenario(city: str, name: str, known: Sequence[str], where: str) -> MissingDataError:
    """The error for a scenario ``name`` that ``city`` does not have.

    Parameters
    ----------
    city, name : str
        The city's slug and the scenario asked for.
    known : sequence of str
        The city's scenarios, listed in the message.
    where : str
        The store.

    Examples
    --------
    >>> print(missing_scenario("brasov", "x", ["rows"], "store /tmp/s"))
    city 'brasov' has no scenario 'x' in store /tmp/s (stored: rows)
    """
    stored = ", ".join(known) if known else "none"
    return MissingDataError(f"city {city!r} has no scenario {name!r} in {where} (stored: {stored})")


# -- GeoPackage ---------------------------------------------------------------------------


def gpkg_scenarios(city: str, con: sqlite3.Connection) -> list[StoredScenario]:
    """Every scenario of a city's GeoPackage, by name (none when it has no table).

    Parameters
    ----------
    city : str
        The city's slug (recorded in each :class:`StoredScenario`).
    con : sqlite3.Connection
        A connection to the city's file, in the caller's transaction if any.

    Examples
    --------
    >>> gpkg_scenarios("brasov", sqlite3.connect(":memory:"))
    []
    """
    has = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SCENARIO_TABLE,)
    ).fetchone()
    if has is None:
        return []
    rows = con.execute(
        f'SELECT name, author, created, n_edits, scenario FROM "{SCENARIO_TABLE}" ORDER BY name'
    ).fetchall()
    return [
        StoredScenario(
            city=city,
            name=str(name),
            author=None if author is None else str(author),
            created=datetime.fromisoformat(str(created)).astimezone(UTC),
            n_edits=int(n_edits),
            document=str(document),
        )
        for name, author, created, n_edits, document in rows
    ]


def write_gpkg_scenarios(path: Path, records: Sequence[StoredScenario], version: str) -> None:
    """(Re)write the ``scenario`` table of the GeoPackage at ``path`` with ``records``.

    Only that table is written (GDAL replaces it); the file is created if need be.

    Parameters
    ----------
    path : Path
        The GeoPackage (a temporary copy, in the store).
    records : sequence of StoredScenario
        Every scenario the table will hold.
    version : str
        The GeoPackage version of the file (``VERSION`` creation option).

    Examples
    --------
    >>> import tempfile
    >>> rec = StoredScenario("c", "rows", "planner", datetime.now(UTC), 1, '{"name": "rows"}')
    >>> path = Path(tempfile.mkdtemp()) / "c.gpkg"
    >>> write_gpkg_scenarios(path, [rec], "1.2")
    >>> [(r.name, r.author) for r in gpkg_scenarios("c", sqlite3.connect(path))]
    [('rows', 'planner')]
    """
    ordered = sorted(records, key=lambda r: r.name)
    frame = pd.DataFrame(
        {
            "name": pd.array([r.name for r in ordered], dtype="string"),
            "author": pd.array([r.author for r in ordered], dtype="string"),
            "created": pd.array([r.created.isoformat() for r in ordered], dtype="string"),
            "n_edits": pd.array([r.n_edits for r in ordered], dtype="int64"),
            "scenario": pd.array([r.document for r in ordered], dtype="string"),
        }
    )
    pyogrio.write_dataframe(
        frame, path, layer=SCENARIO_TABLE, driver="GPKG", dataset_options={"VERSION": version}
    )


# -- PostGIS ------------------------------------------------------------------------------


def pg_save_scenario(conn: Connection, record: StoredScenario, *, actor: audit.Actor) -> None:
    """Insert ``record``, replacing the city's scenario of that name, with its audit row.

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction (needs a server: no example here; the
        contract tests in ``tests/test_store_contract.py`` run it).
    record : StoredScenario
        The scenario to store.
    actor : Actor
        Who saves it: a ``scenario.save`` audit row (target ``scenario:<city>/<name>``,
        the stored scenario before and after) in the same transaction.
    """
    where = (_PG_SCENARIO.c.city == record.city, _PG_SCENARIO.c.name == record.name)
    before = conn.execute(
        sa.select(_PG_SCENARIO.c.scenario).where(*where).with_for_update()
    ).scalar()
    values: dict[str, Any] = {
        "city": record.city,
        "name": record.name,
        "author": record.author,
        "created": record.created,
        "n_edits": record.n_edits,
        "scenario": json.loads(record.document),
    }
    upsert = insert(_PG_SCENARIO).values(values)
    upsert = upsert.on_conflict_do_update(
        index_elements=[_PG_SCENARIO.c.city, _PG_SCENARIO.c.name],
        set_={k: upsert.excluded[k] for k in values if k not in ("city", "name")},
    )
    conn.execute(upsert)
    target = f"scenario:{record.city}/{record.name}"
    audit.record(conn, actor, "scenario.save", target, before, values["scenario"], city=record.city)


def pg_scenario_names(conn: Connection, city: str) -> list[str]:
    """Names of the city's scenarios, sorted bytewise (``COLLATE "C"``, as SQLite's).

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city : str
        The city's slug.
    """
    query = (
        sa.select(_PG_SCENARIO.c.name)
        .where(_PG_SCENARIO.c.city == city)
        .order_by(_PG_SCENARIO.c.name.collate("C"))
    )
    return [str(n) for n in conn.scalars(query)]


def pg_read_scenario(conn: Connection, city: str, name: str, where: str) -> StoredScenario:
    """The city's scenario ``name``; :class:`MissingDataError` if there is none.

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city, name : str
        The city's slug and the scenario's name.
    where : str
        The store, for the message.
    """
    row = conn.execute(
        sa.select(_PG_SCENARIO).where(_PG_SCENARIO.c.city == city, _PG_SCENARIO.c.name == name)
    ).first()
    if row is None:
        raise missing_scenario(city, name, pg_scenario_names(conn, city), where)
    return StoredScenario(
        city=city,
        name=str(row.name),
        author=row.author,
        created=row.created.astimezone(UTC),
        n_edits=int(row.n_edits),
        document=json.dumps(row.scenario, ensure_ascii=False),
    )
