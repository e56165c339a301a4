"""What the planner workspace keeps beside a stored scenario (PostGIS, migration 0010).

:mod:`geo_protect.store.scenarios` stores the scenario itself (its JSON and listing
columns, through ``pg_save_scenario``); this module adds what the planner needs around it,
all on a connection in the caller's transaction:

* :func:`lock_scenario` serialises writers of one ``(city, name)`` for the rest of the
  transaction (an advisory lock), so "create only if absent" and "replace" cannot race;
* :func:`plan_rows` / :func:`plan_row` list the scenarios with the planner's columns
  (``scheme``, ``updated``) without parsing their JSON;
* :func:`set_plan_fields` records the scheme option and the save time;
* :func:`delete_scenario` removes one.

The tables are reached through a lightweight table clause of the columns used here: the
table itself belongs to :mod:`geo_protect.store.scenarios` and its migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo_protect.store import audit
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "PlanRow",
    "delete_scenario",
    "lock_scenario",
    "plan_row",
    "plan_rows",
    "set_plan_fields",
]

_T = sa.table(
    "scenario",
    sa.column("city"),
    sa.column("name"),
    sa.column("author"),
    sa.column("created"),
    sa.column("updated"),
    sa.column("n_edits"),
    sa.column("scheme"),
    schema=SCHEMA,
)
#: First key of the advisory locks taken by :func:`lock_scenario` ("gpsc").
_LOCK_CLASS = 0x6770_7363


@dataclass(frozen=True)
class PlanRow:
    """A stored scenario as the planner lists it.

    Attributes
    ----------
    name : str
        The scenario's name (unique in its city).
    author : str or None
        Who saved it first.
    created : datetime
        Its first save (UTC).
    updated : datetime or None
        Its last save (UTC); None for scenarios saved before the planner existed.
    n_edits : int
        How many edits it holds.
    scheme : str or None
        Its HVM scheme option (``hvm_scheme_options.csv``), None when not recorded.
    """

    name: str
    author: str | None
    created: datetime
    updated: datetime | None
    n_edits: int
    scheme: str | None

    def as_dict(self) -> dict[str, object]:
        """The row as JSON-ready values (times as ISO 8601)."""
        return {
            "name": self.name,
            "author": self.author,
            "created": self.created.isoformat(),
            "updated": None if self.updated is None else self.updated.isoformat(),
            "n_edits": self.n_edits,
            "scheme": self.scheme,
        }


def _row(r: sa.Row[tuple[object, ...]]) -> PlanRow:
    m = r._mapping
    created, updated = m["created"], m["updated"]
    assert isinstance(created, datetime)
    return PlanRow(
        name=str(m["name"]),
        author=None if m["author"] is None else str(m["author"]),
        created=created.astimezone(UTC),
        updated=updated.astimezone(UTC) if isinstance(updated, datetime) else None,
        n_edits=int(str(m["n_edits"])),
        scheme=None if m["scheme"] is None else str(m["scheme"]),
    )


def lock_scenario(conn: Connection, city: str, name: str) -> None:
    """Hold the write lock of ``(city, name)`` until the transaction ends.

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city, name : str
        The city's slug and the scenario's name.
    """
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:k, hashtext(:key))"),
        {"k": _LOCK_CLASS, "key": f"{city}\x1f{name}"},
    )


def plan_rows(conn: Connection, city: str) -> list[PlanRow]:
    """The city's scenarios, by name (bytewise, as ``pg_scenario_names``).

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city : str
        The city's slug.
    """
    query = sa.select(_T).where(_T.c.city == city).order_by(_T.c.name.collate("C"))
    return [_row(r) for r in conn.execute(query)]


def plan_row(conn: Connection, city: str, name: str) -> PlanRow | None:
    """The scenario ``name`` of ``city``, or None when there is none.

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city, name : str
        The city's slug and the scenario's name.
    """
    found = conn.execute(sa.select(_T).where(_T.c.city == city, _T.c.name == name)).first()
    return None if found is None else _row(found)


def set_plan_fields(
    conn: Connection, city: str, name: str, *, scheme: str | None, updated: datetime
) -> None:
    """Record the scheme option and the save time of a scenario just saved.

    Parameters
    ----------
    conn : Connection
        A connection in the transaction that saved the scenario.
    city, name : str
        The city's slug and the scenario's name.
    scheme : str or None
        The HVM scheme option code.
    updated : datetime
        When it was saved (timezone-aware).
    """
    conn.execute(
        sa.update(_T)
        .where(_T.c.city == city, _T.c.name == name)
        .values(scheme=scheme, updated=updated.astimezone(UTC))
    )


def delete_scenario(conn: Connection, city: str, name: str, *, actor: audit.Actor) -> bool:
    """Delete the scenario ``name`` of ``city``, with its audit row; whether there was one.

    Parameters
    ----------
    conn : Connection
        A connection in the caller's transaction.
    city, name : str
        The city's slug and the scenario's name.
    actor : Actor
        Who deletes it: a ``scenario.delete`` audit row (the scenario before, nothing
        after) in the same transaction.
    """
    gone: sa.Row[tuple[object]] | None = conn.execute(
        sa.delete(_T).where(_T.c.city == city, _T.c.name == name).returning(sa.column("scenario"))
    ).first()
    if gone is None:
        return False
    audit.record(
        conn, actor, "scenario.delete", f"scenario:{city}/{name}", gone[0], None, city=city
    )
    return True
