"""The event log of the live control room, and helpers of the live store modules (issue 11).

:func:`append_event` adds to ``live_event`` (migration ``0007``) and sends ``NOTIFY`` on
:data:`LIVE_CHANNEL` (payload ``"<city>:<event_id>"``) in the same transaction, so a
listener hears of an event only once it is committed, and never of one rolled back.
Appending takes a per-city transaction lock, so a city's event ids are committed in
order and a reader resuming after an id (``Last-Event-ID``, :func:`events_since`) never
skips one that commits later.

The helpers (:func:`begin`, :func:`aware`, :func:`plain`, :func:`jsonable`,
:func:`utc_frame`, :func:`first_line`) are shared with :mod:`geo_protect.store.live` and
:mod:`geo_protect.store.live_alerts`.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from geo_protect.errors import ValidationError
from geo_protect.store._common import check_slug
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "LIVE_CHANNEL",
    "Bind",
    "append_event",
    "aware",
    "begin",
    "events_since",
    "first_line",
    "jsonable",
    "last_event_id",
    "plain",
    "utc_frame",
]

#: The PostgreSQL ``NOTIFY`` channel of committed live events.
LIVE_CHANNEL = "geo_protect_live"
#: What the live store functions work on: an engine (own transaction) or a connection.
Bind = Engine | Connection

#: Class of the per-city event locks ("live"; the two-key form, apart from one-key locks).
_EVENT_LOCK = 0x6C697665
_EVENT = sa.Table(
    "live_event",
    sa.MetaData(schema=SCHEMA),
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("city", sa.Text),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("kind", sa.Text),
    sa.Column("payload", JSONB),
)
_APPEND_EVENT = sa.text(f"""
    WITH ins AS (
        INSERT INTO {SCHEMA}.live_event (city, kind, payload)
        VALUES (:city, :kind, CAST(:payload AS jsonb)) RETURNING event_id)
    SELECT event_id, pg_notify(:channel, :city || ':' || event_id) FROM ins""")


@contextmanager
def begin(bind: Bind) -> Iterator[Connection]:
    """The caller's connection as it is (its transaction), or a transaction of the engine's."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


def aware(value: Any, what: str) -> datetime:
    """``value`` if it is a time-zone aware datetime, else a :class:`ValidationError`."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what}: expected a time-zone aware datetime, got {value!r}")
    return value


def plain(values: Any) -> list[Any]:
    """Values as plain Python objects, ``None`` for missing ones (NaN, NA, NaT)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return list(series.astype(object).where(series.notna(), None).tolist())


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: times as UTC ISO text, NaN, NA and infinities as None.

    Examples
    --------
    >>> jsonable({"t": datetime(2026, 5, 1, 12, tzinfo=UTC), "v": [np.float64("nan"), 2]})
    {'t': '2026-05-01T12:00:00+00:00', 'v': [None, 2]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def utc_frame(rows: Sequence[Any], columns: Sequence[str], times: Sequence[str]) -> pd.DataFrame:
    """A frame of result rows, the ``times`` columns as ``datetime64[ns, UTC]``."""
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    return frame


def first_line(exc: sa.exc.DBAPIError) -> str:
    """The first line of the database's message."""
    text = str(exc.orig).strip() if exc.orig is not None else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def append_event(conn: Connection, city: str, kind: str, payload: dict[str, Any]) -> int:
    """Add an event to the city's log and notify :data:`LIVE_CHANNEL`, in ``conn``'s transaction.

    The notification (``"<city>:<event_id>"``) is delivered when the transaction commits,
    and not at all if it rolls back. A per-city lock, held to the end of the transaction,
    keeps a city's event ids in commit order: take row locks before appending events.

    Parameters
    ----------
    conn : Connection
        The caller's transaction.
    city : str
        The city's slug.
    kind : str
        Event kind (the SSE ``event`` name): ``state``, ``alert``, ``sensor``...
    payload : dict
        JSON-ready data; times become UTC ISO text, NaN and infinities ``null``.

    Returns
    -------
    int
        The event id.

    Raises
    ------
    StoreError
        ``city`` is not a valid slug.
    """
    check_slug(city)
    body = json.dumps(jsonable(payload), allow_nan=False, separators=(",", ":"))
    key = zlib.crc32(city.encode()) - (1 << 31)  # into the int4 range
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _EVENT_LOCK, "b": key})
    params = {"city": city, "kind": kind, "payload": body, "channel": LIVE_CHANNEL}
    return int(conn.execute(_APPEND_EVENT, params).scalar_one())


def events_since(
    engine_or_conn: Bind, city: str, last_id: int, limit: int = 1000
) -> list[dict[str, Any]]:
    """The city's events after ``last_id``, oldest first, at most ``limit`` of them.

    Parameters
    ----------
    engine_or_conn : Engine or Connection
        The PostGIS store.
    city : str
        The city's slug.
    last_id : int
        The last event the reader has (0: from the start).
    limit : int
        Page size.

    Returns
    -------
    list of dict
        ``event_id``, ``at`` (UTC), ``kind``, ``payload``.
    """
    query = (
        sa.select(_EVENT.c.event_id, _EVENT.c.at, _EVENT.c.kind, _EVENT.c.payload)
        .where(_EVENT.c.city == city, _EVENT.c.event_id > int(last_id))
        .order_by(_EVENT.c.event_id)
        .limit(int(limit))
    )
    with begin(engine_or_conn) as conn:
        rows = conn.execute(query).mappings().all()
    return [{**r, "at": r["at"].astimezone(UTC)} for r in rows]


def last_event_id(engine_or_conn: Bind, city: str) -> int:
    """The id of the city's newest event (0 when it has none): where a new stream starts."""
    query = sa.select(sa.func.coalesce(sa.func.max(_EVENT.c.event_id), 0)).where(
        _EVENT.c.city == city
    )
    with begin(engine_or_conn) as conn:
        return int(conn.execute(query).scalar_one())
