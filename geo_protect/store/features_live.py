"""The live tables and the scenarios as OGC API – Features collections, read as they are now.

Each collection of :data:`LIVE_COLLECTIONS` is one SQL source over the tables of migrations
0006 and 0007, with a stable feature id, a time (the ``datetime`` filter and the temporal
extent) and a geometry:

``readings``
    One feature per reading (id ``<sensor_id>@<observed_at, UTC, µs>``, time
    ``observed_at``). A reading has no place of its own: it takes its sensor's drawn
    zone, else the outline of the sensor's space (``located_by``: ``zone``/``space``).
``alerts``
    One per alert (id ``alert_id``, time ``opened_at``), placed on its space, else on its
    sensor's zone or the sensor's space.
``sensors``
    One per sensor (id ``sensor_id``, time ``installed_at``), on its zone or its space.
``scenarios``
    One per stored scenario (id its name, time ``created``); the geometry collects its
    edits' geometries.
``scenario_barriers``
    One per edit of a scenario (id ``<scenario>/<n>``, n from 1): a drawn barrier's own
    geometry, or, for ``remove``/``open``, the baseline barrier it names
    (``located_by``: ``drawn``/``baseline``).

Rows that cannot be placed (a sensor with neither zone nor a stored space, a barrier
missing from the baseline) are served with ``"geometry": null`` (GeoJSON allows it) and
``located_by`` null: they count in ``numberMatched``; a ``bbox`` filter leaves them out.
Nothing is cached: every request reads the tables, in one snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo_protect.errors import NotFoundError
from geo_protect.store.features import BBox, filter_clauses
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "LIVE_COLLECTIONS",
    "Interval",
    "LiveCollection",
    "live_extent",
    "live_feature",
    "live_items",
]

#: A time interval, both ends inclusive; None: open.
Interval = tuple[dt.datetime | None, dt.datetime | None]
#: JSON Schema of the property types.
_S, _I, _N, _T = (
    {"type": "string"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "string", "format": "date-time"},
)
#: Who acknowledged and resolved an alert, when, and why.
_DECISIONS = {
    f"{d}_{c}": _T if c == "at" else _S
    for d in ("acknowledged", "resolved")
    for c in ("by", "at", "note")
}
_PLACED = {"type": "string", "description": "where the geometry comes from (null: nowhere)"}


@dataclass(frozen=True)
class LiveCollection:
    """One collection: its SQL source (columns ``fid``, the properties, ``t``, ``geom``;
    bound ``:city``), the key columns its feature id splits into, and its page order."""

    name: str
    title: str
    description: str
    source: str
    properties: Mapping[str, Mapping[str, str]]
    key: tuple[str, ...]
    order: str
    extent: str | None = None  # a cheaper extent query than the source's (readings)


def _s(table: str) -> str:
    return f"{SCHEMA}.{table}"


_DRAWN = (
    "CASE WHEN jsonb_typeof({e}->'geometry') = 'object' "
    "THEN ST_SetSRID(ST_GeomFromGeoJSON({e}->>'geometry'), 4326) END"
)
_READINGS = f"""
    SELECT r.sensor_id || '@' || to_char(r.observed_at AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS fid,
           r.sensor_id, s.space_uid, s.kind AS sensor_kind, r.observed_at, r.count_in,
           r.count_out, r.present, r.density, r.interval_s, r.received_at,
           CASE WHEN s.zone IS NOT NULL THEN 'zone' WHEN p.geom IS NOT NULL THEN 'space'
           END AS located_by,
           r.observed_at AS t, COALESCE(s.zone, p.geom) AS geom
    FROM {_s("reading")} r JOIN {_s("sensor")} s ON s.sensor_id = r.sensor_id
    LEFT JOIN {_s("public_space")} p ON p.city = s.city AND p.uid = s.space_uid
    WHERE s.city = :city"""
_READINGS_EXTENT = f"""
    SELECT ST_Extent(COALESCE(s.zone, p.geom)) AS e, min(x.lo) AS t0, max(x.hi) AS t1
    FROM {_s("sensor")} s
    LEFT JOIN {_s("public_space")} p ON p.city = s.city AND p.uid = s.space_uid
    CROSS JOIN LATERAL (SELECT min(observed_at) AS lo, max(observed_at) AS hi
                        FROM {_s("reading")} r WHERE r.sensor_id = s.sensor_id) x
    WHERE s.city = :city AND x.lo IS NOT NULL"""
_ALERTS = f"""
    SELECT a.alert_id AS fid, a.alert_key, a.kind, a.severity, a.condition, a.state,
           a.space_uid, a.sensor_id, a.value, a.threshold, a.unit, a.message, a.change,
           a.pending_since, a.opened_at, a.updated_at, a.acknowledged_by, a.acknowledged_at,
           a.acknowledged_note, a.resolved_by, a.resolved_at, a.resolved_note,
           CASE WHEN p.geom IS NOT NULL THEN 'space' WHEN s.zone IS NOT NULL THEN 'zone'
                WHEN ps.geom IS NOT NULL THEN 'sensor_space' END AS located_by,
           a.opened_at AS t, COALESCE(p.geom, s.zone, ps.geom) AS geom
    FROM {_s("alert")} a
    LEFT JOIN {_s("public_space")} p ON p.city = a.city AND p.uid = a.space_uid
    LEFT JOIN {_s("sensor")} s ON s.sensor_id = a.sensor_id
    LEFT JOIN {_s("public_space")} ps ON ps.city = s.city AND ps.uid = s.space_uid
    WHERE a.city = :city"""
_SENSORS = f"""
    SELECT s.sensor_id AS fid, s.space_uid, s.kind, s.name, s.area_m2, s.exit_width_m,
           s.installed_at, s.source,
           CASE WHEN s.zone IS NOT NULL THEN 'zone' WHEN p.geom IS NOT NULL THEN 'space'
           END AS located_by,
           s.installed_at AS t, COALESCE(s.zone, p.geom) AS geom
    FROM {_s("sensor")} s
    LEFT JOIN {_s("public_space")} p ON p.city = s.city AND p.uid = s.space_uid
    WHERE s.city = :city"""
_SCENARIOS = f"""
    SELECT sc.name AS fid, sc.author, sc.created, sc.n_edits,
           sc.scenario->>'description' AS description, sc.created AS t,
           (SELECT ST_Collect(COALESCE({_DRAWN.format(e="e.v")}, b.geom))
            FROM jsonb_array_elements(sc.scenario->'edits') AS e(v)
            LEFT JOIN {_s("barrier")} b ON b.city = sc.city AND b.uid = e.v->>'osm_id'
           ) AS geom
    FROM {_s("scenario")} sc
    WHERE sc.city = :city"""
_BARRIERS = f"""
    SELECT sc.name || '/' || e.n AS fid, sc.name AS scenario, e.n::integer AS edit,
           e.v->>'action' AS action, e.v->>'kind' AS kind, e.v->>'rating' AS rating,
           (e.v->>'spacing_m')::float8 AS spacing_m, e.v->>'osm_id' AS osm_id,
           e.v->>'note' AS note, sc.author, sc.created,
           CASE WHEN jsonb_typeof(e.v->'geometry') = 'object' THEN 'drawn'
                WHEN b.geom IS NOT NULL THEN 'baseline' END AS located_by,
           sc.created AS t, COALESCE({_DRAWN.format(e="e.v")}, b.geom) AS geom
    FROM {_s("scenario")} sc
    CROSS JOIN LATERAL jsonb_array_elements(sc.scenario->'edits') WITH ORDINALITY AS e(v, n)
    LEFT JOIN {_s("barrier")} b ON b.city = sc.city AND b.uid = e.v->>'osm_id'
    WHERE sc.city = :city"""

#: The live and scenario collections of every city, by name (``brasov.readings``).
LIVE_COLLECTIONS: dict[str, LiveCollection] = {
    c.name: c
    for c in (
        LiveCollection(
            "readings",
            "sensor readings",
            "Every stored reading of the city's sensors (time: observed_at), placed on the "
            "sensor's zone or space.",
            _READINGS,
            {
                **dict.fromkeys(("sensor_id", "space_uid", "sensor_kind"), _S),
                "observed_at": _T,
                **dict.fromkeys(("count_in", "count_out", "present"), _I),
                **dict.fromkeys(("density", "interval_s"), _N),
                "received_at": _T,
                "located_by": _PLACED,
            },
            ("sensor_id", "observed_at"),
            't, sensor_id COLLATE "C"',
            _READINGS_EXTENT,
        ),
        LiveCollection(
            "alerts",
            "alerts",
            "Alerts of the control room, every state (time: opened_at), placed on their space "
            "or sensor.",
            _ALERTS,
            {
                **dict.fromkeys(("alert_key", "kind", "severity", "condition", "state"), _S),
                **dict.fromkeys(("space_uid", "sensor_id"), _S),
                **dict.fromkeys(("value", "threshold"), _N),
                **dict.fromkeys(("unit", "message", "change"), _S),
                **dict.fromkeys(("pending_since", "opened_at", "updated_at"), _T),
                **_DECISIONS,
                "located_by": _PLACED,
            },
            ("fid",),
            "fid",
        ),
        LiveCollection(
            "sensors",
            "sensors",
            "The sensor register (time: installed_at), each on its zone or its space.",
            _SENSORS,
            {
                **dict.fromkeys(("space_uid", "kind", "name"), _S),
                **dict.fromkeys(("area_m2", "exit_width_m"), _N),
                "installed_at": _T,
                "source": _S,
                "located_by": _PLACED,
            },
            ("fid",),
            'fid COLLATE "C"',
        ),
        LiveCollection(
            "scenarios",
            "barrier scenarios",
            "Stored barrier scenarios (time: created); the geometry collects their edits.",
            _SCENARIOS,
            {"author": _S, "created": _T, "n_edits": _I, "description": _S},
            ("fid",),
            'fid COLLATE "C"',
        ),
        LiveCollection(
            "scenario_barriers",
            "scenario barriers",
            "Each edit of each stored scenario (time: the scenario's created): an added "
            "barrier as drawn, a removed or opened one as in the baseline.",
            _BARRIERS,
            {
                "scenario": _S,
                "edit": _I,
                **dict.fromkeys(("action", "kind", "rating"), _S),
                "spacing_m": _N,
                **dict.fromkeys(("osm_id", "note", "author"), _S),
                "created": _T,
                "located_by": _PLACED,
            },
            ("scenario", "edit"),
            'scenario COLLATE "C", edit',
        ),
    )
}


def _collection(name: str) -> LiveCollection:
    found = LIVE_COLLECTIONS.get(name)
    if found is None:
        raise NotFoundError(f"no live collection {name!r} (known: {', '.join(LIVE_COLLECTIONS)})")
    return found


def live_extent(
    engine: Engine, city: str, name: str
) -> tuple[BBox | None, tuple[dt.datetime, dt.datetime] | None]:
    """The WGS84 box and the time span of a city's collection (None where it is empty)."""
    c = _collection(name)
    inner = (
        c.extent or f"SELECT ST_Extent(geom) AS e, min(t) AS t0, max(t) AS t1 FROM ({c.source}) src"
    )
    query = sa.text(
        f"SELECT ST_XMin(x.e), ST_YMin(x.e), ST_XMax(x.e), ST_YMax(x.e), x.t0, x.t1 "
        f"FROM ({inner}) x"
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"city": city}).one()
    box = None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    span = None if row[4] is None else (row[4], row[5])
    return box, span


def _where(
    c: LiveCollection,
    bbox: BBox | None,
    equals: Mapping[str, str],
    during: Interval | None,
) -> tuple[str, dict[str, Any]]:
    known = {*c.properties, "fid"}
    filters, params = filter_clauses("geom", bbox, equals, known, c.name)
    clauses = ["TRUE", *filters]
    if during is not None:
        start, end = during
        if start is not None:
            clauses.append("t >= :t0")
            params["t0"] = start
        if end is not None:
            clauses.append("t <= :t1")
            params["t1"] = end
    return " AND ".join(clauses), params


def live_items(
    engine: Engine,
    city: str,
    name: str,
    *,
    bbox: BBox | None = None,
    equals: Mapping[str, str] | None = None,
    during: Interval | None = None,
    limit: int,
    offset: int = 0,
    key: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of a city's live collection, and how many features match in all.

    Parameters
    ----------
    engine : Engine
        The PostGIS store's engine.
    city : str
        The city's slug.
    name : str
        One of :data:`LIVE_COLLECTIONS`.
    bbox : tuple of float, optional
        West, south, east, north (WGS84): features whose geometry meets it.
    equals : mapping, optional
        Property name → value (compared as text).
    during : tuple, optional
        ``(start, end)``, aware, either None for an open end: features whose time lies in
        it, ends included.
    limit, offset : int
        The page, in the collection's order (time, then id; ids where there is no time).
    key : mapping, optional
        Key column → value: the one feature of that key (see :func:`live_feature`).

    Returns
    -------
    tuple
        The GeoJSON features and ``numberMatched``, read in one snapshot.
    """
    c = _collection(name)
    where, params = _where(c, bbox, equals or {}, during)
    for k, (column, value) in enumerate((key or {}).items()):
        where += f" AND {column} = :k{k}"
        params[f"k{k}"] = value
    props = ", ".join(f'"{p}"' for p in c.properties)
    page = sa.text(
        f"SELECT fid, {props}, ST_AsGeoJSON(geom, 7) AS geojson FROM ({c.source}) src "
        f"WHERE {where} ORDER BY {c.order} LIMIT :limit OFFSET :offset"
    )
    count = sa.text(f"SELECT count(*) FROM ({c.source}) src WHERE {where}")
    params.update(city=city, limit=int(limit), offset=int(offset))
    snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with snapshot as conn, conn.begin():
        matched = int(conn.execute(count, params).scalar_one())
        rows = conn.execute(page, params).mappings().all()
    return [_feature(dict(r), c) for r in rows], matched


def _key(c: LiveCollection, fid: str) -> dict[str, Any] | None:
    """The key columns of feature id ``fid`` (None: no feature can have it)."""
    if c.key == ("sensor_id", "observed_at"):
        sensor, _, at = fid.rpartition("@")
        try:
            t = dt.datetime.fromisoformat(at)
        except ValueError:
            return None
        return {"sensor_id": sensor, "observed_at": t} if sensor and t.tzinfo else None
    if c.key == ("scenario", "edit"):
        scenario, _, n = fid.rpartition("/")
        return {"scenario": scenario, "edit": int(n)} if scenario and n.isdigit() else None
    if c.name == "alerts":
        return {"fid": int(fid)} if fid.isdigit() and len(fid) < 19 else None
    return {"fid": fid}


def live_feature(engine: Engine, city: str, name: str, fid: str) -> dict[str, Any]:
    """One feature of a city's live collection by its id.

    Raises
    ------
    NotFoundError
        When the collection has no such feature.
    """
    c = _collection(name)
    key = _key(c, fid)
    found = [] if key is None else live_items(engine, city, name, key=key, limit=1)[0]
    if not found:
        raise NotFoundError(f"{city}.{name} has no feature {fid!r}")
    return found[0]


def _feature(row: Mapping[str, Any], c: LiveCollection) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": row["fid"],
        "geometry": None if row["geojson"] is None else orjson.loads(row["geojson"]),
        "properties": {p: _plain(row[p]) for p in c.properties},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
