"""The live tables of the PostGIS store: sensors, readings, alerts and the event log (issue 11).

SQLAlchemy Core over the tables of migration ``0007``. Every function takes the engine or
connection it works on: given an :class:`~sqlalchemy.engine.Engine` it runs in a
transaction of its own, given a :class:`~sqlalchemy.engine.Connection` in the caller's
transaction, which the caller commits (after a database error that transaction is
aborted: roll it back, and nothing it wrote is kept).

This module holds the sensors and readings, and re-exports the alerts
(:mod:`geo_protect.store.live_alerts`) and the event log
(:mod:`geo_protect.store.live_events`), so callers use ``store.live`` alone.

Sensors
    One row per sensor id (unique across cities): its city, space or drawn zone (a
    polygon, EPSG:4326), kind, covered area, exit width, installation time and where the
    registration came from. :func:`register_sensors` upserts a whole table at once.
Readings
    Keyed by ``(sensor_id, observed_at)``. :func:`insert_readings` writes a batch in one
    statement (an ``unnest`` of one array per column, ``ON CONFLICT DO NOTHING``): a
    reading already stored is counted as a duplicate, not an error, so a redelivered
    batch changes nothing; the database checks counts (≥ 0), densities (≥ 0) and
    intervals (> 0), and one bad row fails the whole batch.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo_protect.errors import ValidationError
from geo_protect.schema import WGS84
from geo_protect.store._common import check_slug
from geo_protect.store.audit import Actor, diff_records, record
from geo_protect.store.live_alerts import (
    ALERT_STATES,
    acknowledge_alert,
    alert_city,
    apply_alert_changes,
    city_alerts,
    get_alert,
    resolve_alert,
    save_tracked,
    tracked_alerts,
    unresolved_alerts,
)
from geo_protect.store.live_events import (
    LIVE_CHANNEL,
    Bind,
    append_event,
    aware,
    begin,
    events_since,
    first_line,
    last_event_id,
    plain,
    utc_frame,
)
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "ALERT_STATES",
    "LIVE_CHANNEL",
    "READING_COLUMNS",
    "SENSOR_COLUMNS",
    "Bind",
    "acknowledge_alert",
    "alert_city",
    "append_event",
    "apply_alert_changes",
    "city_alerts",
    "city_sensors",
    "events_since",
    "get_alert",
    "insert_readings",
    "last_event_id",
    "latest_readings",
    "recent_readings",
    "register_sensors",
    "resolve_alert",
    "save_tracked",
    "tracked_alerts",
    "unresolved_alerts",
]

#: Columns of a sensor table (index ``sensor_id``, plus the zone as ``geometry``).
SENSOR_COLUMNS = ("space_uid", "kind", "name", "area_m2", "exit_width_m", "installed_at", "source")
#: Columns of a frame of readings.
READING_COLUMNS = (
    *("sensor_id", "observed_at", "count_in", "count_out", "present", "density", "interval_s"),
)
_COUNTS = ("count_in", "count_out", "present")
_UPSERT_SENSORS = sa.text(f"""
    INSERT INTO {SCHEMA}.sensor AS s (sensor_id, city, space_uid, zone, kind, name, area_m2,
        exit_width_m, installed_at, source)
    SELECT t.sensor_id, :city, t.space_uid, ST_SetSRID(ST_GeomFromWKB(decode(t.zone, 'hex')),
        4326), t.kind, t.name, t.area_m2, t.exit_width_m, t.installed_at, :source
    FROM unnest(CAST(:sensor_id AS text[]), CAST(:space_uid AS text[]), CAST(:zone AS text[]),
        CAST(:kind AS text[]), CAST(:name AS text[]), CAST(:area_m2 AS float8[]),
        CAST(:exit_width_m AS float8[]), CAST(:installed_at AS timestamptz[]))
        AS t(sensor_id, space_uid, zone, kind, name, area_m2, exit_width_m, installed_at)
    ON CONFLICT (sensor_id) DO UPDATE SET space_uid = EXCLUDED.space_uid, zone = EXCLUDED.zone,
        kind = EXCLUDED.kind, name = EXCLUDED.name, area_m2 = EXCLUDED.area_m2,
        exit_width_m = EXCLUDED.exit_width_m, installed_at = EXCLUDED.installed_at,
        source = EXCLUDED.source
    WHERE s.city = EXCLUDED.city""")
_SENSOR_STATE = sa.text(f"""
    SELECT sensor_id, city, space_uid, kind, name, area_m2, exit_width_m, installed_at, source,
        ST_AsText(zone) AS zone
    FROM {SCHEMA}.sensor WHERE sensor_id = ANY(:ids) AND city = :city""")
_SENSORS = sa.text(f"""
    SELECT sensor_id, space_uid, kind, name, area_m2, exit_width_m, installed_at, source,
        ST_AsBinary(zone) AS zone
    FROM {SCHEMA}.sensor WHERE city = :city ORDER BY sensor_id COLLATE "C" """)
_INSERT_READINGS = sa.text(f"""
    WITH ins AS (
        INSERT INTO {SCHEMA}.reading ({", ".join(READING_COLUMNS)})
        SELECT * FROM unnest(CAST(:sensor_id AS text[]), CAST(:observed_at AS timestamptz[]),
            CAST(:count_in AS integer[]), CAST(:count_out AS integer[]),
            CAST(:present AS integer[]), CAST(:density AS float8[]),
            CAST(:interval_s AS float8[]))
        ON CONFLICT (sensor_id, observed_at) DO NOTHING
        RETURNING 1)
    SELECT count(*) FROM ins""")
_RECENT = f"""
    SELECT {", ".join(f"r.{c}" for c in READING_COLUMNS)}
    FROM {SCHEMA}.reading r JOIN {SCHEMA}.sensor s ON s.sensor_id = r.sensor_id
    WHERE s.city = :city AND r.observed_at >= :since {{sensors}}
    ORDER BY r.sensor_id, r.observed_at"""
_RECENT_PER_SENSOR = f"""
    SELECT {", ".join(f"r.{c}" for c in READING_COLUMNS)}
    FROM {SCHEMA}.sensor s CROSS JOIN LATERAL (
        SELECT * FROM {SCHEMA}.reading x
        WHERE x.sensor_id = s.sensor_id AND x.observed_at >= :since
        ORDER BY x.observed_at DESC LIMIT :per_sensor) r
    WHERE s.city = :city {{sensors}}
    ORDER BY r.sensor_id, r.observed_at"""
_LATEST = sa.text(f"""
    SELECT s.sensor_id, {", ".join(f"r.{c}" for c in READING_COLUMNS[1:])}
    FROM {SCHEMA}.sensor s CROSS JOIN LATERAL (
        SELECT * FROM {SCHEMA}.reading x WHERE x.sensor_id = s.sensor_id
        ORDER BY x.observed_at DESC LIMIT 1) r
    WHERE s.city = :city ORDER BY s.sensor_id COLLATE "C" """)


# -- sensors -----------------------------------------------------------------------------


def _sensor_arrays(sensors: gpd.GeoDataFrame) -> dict[str, list[Any]]:
    """One list per column of the upsert, checked (ids, kinds, times, zones)."""
    ids = [str(i) for i in sensors.index]
    if not ids:
        return {"sensor_id": []}
    if sensors.index.hasnans or sensors.index.has_duplicates or not all(ids):
        raise ValidationError("sensors: every sensor needs an id of its own (index sensor_id)")
    for col in ("kind", "installed_at"):
        if col not in sensors or sensors[col].isna().any():
            raise ValidationError(f"sensors: column {col!r} is required for every sensor")
    times = pd.to_datetime(sensors["installed_at"])
    if times.dt.tz is None:
        raise ValidationError("sensors: installed_at must be time-zone aware")
    zones: Any = np.full(len(ids), None, dtype=object)
    if isinstance(sensors, gpd.GeoDataFrame) and sensors.active_geometry_name is not None:
        geo = sensors.geometry
        geo = geo.to_crs(WGS84) if geo.crs is not None and not geo.crs.equals(WGS84) else geo
        zones = np.asarray(geo.values, dtype=object)
        zones[shapely.is_missing(zones) | shapely.is_empty(zones)] = None
        wrong = [
            i for i, z in zip(ids, zones, strict=True) if z is not None and z.geom_type != "Polygon"
        ]
        if wrong:
            raise ValidationError(f"sensors: the zone of {wrong[0]!r} is not a Polygon")
    data = {"sensor_id": ids, "zone": list(shapely.to_wkb(zones, hex=True))}
    for col in ("space_uid", "kind", "name", "area_m2", "exit_width_m"):
        data[col] = plain(sensors[col]) if col in sensors else [None] * len(ids)
    data["installed_at"] = [t.to_pydatetime() for t in times.dt.tz_convert(UTC)]
    return data


def _sensor_state(conn: Connection, city: str, ids: list[str]) -> dict[str, Any]:
    """The stored sensors of ``ids`` in ``city``, for the audit trail (zones as WKT)."""
    rows = conn.execute(_SENSOR_STATE, {"ids": ids, "city": city}).mappings()
    return {r["sensor_id"]: {k: v for k, v in r.items() if k != "sensor_id"} for r in rows}


def register_sensors(
    engine: Bind, city: str, sensors: gpd.GeoDataFrame, *, source: str, actor: Actor
) -> int:
    """Insert or update the sensors of a city, all in one transaction, with its audit row.

    Parameters
    ----------
    engine : Engine or Connection
        The PostGIS store (a connection: the caller's transaction).
    city : str
        The city's slug.
    sensors : GeoDataFrame
        Indexed by ``sensor_id``; ``kind`` and ``installed_at`` (aware) required,
        ``space_uid``, ``name``, ``area_m2``, ``exit_width_m`` optional; the geometry is the
        zone polygon or None (a frame without geometry: no zones). A frame's own ``source``
        column is ignored.
    source : str
        Where the registration comes from (a file name, ``api``, ``replay:melbourne``).
    actor : Actor
        Who registers them: one ``sensor.register`` audit row (target ``sensors:<city>``,
        the sensors that changed before and after) in the same transaction.

    Returns
    -------
    int
        Sensors inserted or updated.

    Raises
    ------
    ValidationError
        An id missing or repeated, a kind or time missing, a zone that is not a polygon, a
        value the database refuses, or a sensor id registered for another city (then
        nothing is written).
    StoreError
        The audit row was refused (nothing is written).
    """
    check_slug(city)
    data = _sensor_arrays(sensors)
    if not data["sensor_id"]:
        return 0
    with begin(engine) as conn:
        before = _sensor_state(conn, city, data["sensor_id"])
        try:
            n = conn.execute(_UPSERT_SENSORS, {**data, "city": city, "source": source}).rowcount
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            raise ValidationError(f"sensors of {city}: {first_line(exc)}") from exc
        if n != len(data["sensor_id"]):
            taken = conn.execute(
                sa.text(
                    f"SELECT sensor_id, city FROM {SCHEMA}.sensor "
                    "WHERE sensor_id = ANY(:ids) AND city <> :city ORDER BY 1"
                ),
                {"ids": data["sensor_id"], "city": city},
            ).first()
            where = f"{taken[0]!r} is a sensor of {taken[1]}" if taken else "a sensor id is taken"
            raise ValidationError(f"sensors of {city}: {where} (sensor ids are unique)")
        old, new = diff_records(before, _sensor_state(conn, city, data["sensor_id"]))
        record(conn, actor, "sensor.register", f"sensors:{city}", old, new, city=city)
    return int(n)


def city_sensors(engine: Bind, city: str) -> gpd.GeoDataFrame:
    """The sensors of a city, sorted by id.

    Returns
    -------
    GeoDataFrame
        Indexed by ``sensor_id`` (string) with :data:`SENSOR_COLUMNS` (``installed_at`` UTC)
        and the zones (None for a sensor without one), in WGS84.
    """
    with begin(engine) as conn:
        rows = conn.execute(_SENSORS, {"city": city}).all()
    frame = utc_frame(rows, ["sensor_id", *SENSOR_COLUMNS, "zone"], ["installed_at"])
    index = pd.Index(frame["sensor_id"], dtype="string", name="sensor_id")
    data = {c: frame[c].to_numpy() for c in SENSOR_COLUMNS}
    out = pd.DataFrame(data, index=index)
    for col in ("space_uid", "kind", "name", "source"):
        out[col] = out[col].astype(object).where(out[col].notna(), None).astype("string")
    for col in ("area_m2", "exit_width_m"):
        out[col] = pd.to_numeric(out[col]).astype(float)
    zones = shapely.from_wkb(np.asarray(frame["zone"].tolist() or [], dtype=object))
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(zones, index=index, crs=WGS84))


# -- readings ----------------------------------------------------------------------------


def insert_readings(conn: Connection, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Store a batch of readings in the caller's transaction, in one statement.

    Parameters
    ----------
    conn : Connection
        An open connection; its transaction is the caller's to commit.
    rows : list of dict
        ``sensor_id``, ``observed_at`` (aware) and any of ``count_in``, ``count_out``,
        ``present`` (int), ``density``, ``interval_s`` (float); missing keys are NULL.

    Returns
    -------
    tuple of int
        ``(inserted, duplicates)``: a duplicate is a reading whose sensor and time are
        stored already (or repeated in the batch); it is left as it was.

    Raises
    ------
    ValidationError
        A row without a sensor or an aware time, or a batch the database refuses (an unknown
        sensor, a negative count or density, an interval ≤ 0, a count beyond int4): the
        transaction is then aborted and none of the batch is stored once it rolls back.
    """
    if not rows:
        return 0, 0
    try:
        data: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in READING_COLUMNS}
    except AttributeError as exc:
        raise ValidationError("readings: every item must be a mapping") from exc
    for i, (sid, at) in enumerate(zip(data["sensor_id"], data["observed_at"], strict=True)):
        if not isinstance(sid, str) or not sid:
            raise ValidationError(f"readings: item {i} has no sensor_id")
        aware(at, f"readings: item {i} ({sid}) observed_at")
    try:
        for col in _COUNTS:  # operator.index: ints (numpy's too), never a float
            data[col] = [None if v is None else operator.index(v) for v in data[col]]
        for col in ("density", "interval_s"):  # NaN would pass the checks (NaN > 0 in SQL)
            data[col] = [None if v is None or v != v else float(v) for v in data[col]]
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"readings: a count or measure of the wrong type ({exc})") from exc
    try:
        inserted = int(conn.execute(_INSERT_READINGS, data).scalar_one())
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        raise ValidationError(
            f"readings: the database refused the batch of {len(rows)} (none of it is "
            f"stored): {first_line(exc)}"
        ) from exc
    return inserted, len(rows) - inserted


def _readings_frame(rows: Sequence[Any]) -> pd.DataFrame:
    frame = utc_frame(rows, READING_COLUMNS, ["observed_at"])
    frame["sensor_id"] = frame["sensor_id"].astype("string")
    for col in _COUNTS:
        frame[col] = frame[col].astype("Int64")
    for col in ("density", "interval_s"):
        frame[col] = pd.to_numeric(frame[col]).astype(float)
    return frame


def recent_readings(
    engine_or_conn: Bind,
    city: str,
    since: datetime,
    *,
    sensors: Sequence[str] | None = None,
    per_sensor: int | None = None,
) -> pd.DataFrame:
    """The readings of a city's sensors observed at or after ``since``.

    Parameters
    ----------
    engine_or_conn : Engine or Connection
        The PostGIS store.
    city : str
        The city's slug.
    since : datetime
        Start of the window (aware, inclusive).
    sensors : sequence of str, optional
        Only these sensors (of the city); all by default.
    per_sensor : int, optional
        At most this many readings of each sensor, its latest (all by default): the
        work of a refresh stays bounded however fast a sensor reports.

    Returns
    -------
    DataFrame
        :data:`READING_COLUMNS`, sorted by sensor and time: ``observed_at`` UTC, counts
        ``Int64``, ``density`` and ``interval_s`` float (NaN: not given).
    """
    params: dict[str, Any] = {"city": city, "since": aware(since, "since")}
    if sensors is not None:
        params["ids"] = [str(s) for s in sensors]
        if not params["ids"]:
            return _readings_frame([])
    query = _RECENT
    if per_sensor is not None:
        query, params["per_sensor"] = _RECENT_PER_SENSOR, int(per_sensor)
    column = "s" if per_sensor is not None else "r"
    clause = f"AND {column}.sensor_id = ANY(:ids)" if sensors is not None else ""
    with begin(engine_or_conn) as conn:
        rows = conn.execute(sa.text(query.format(sensors=clause)), params).all()
    return _readings_frame(rows)


def latest_readings(engine_or_conn: Bind, city: str) -> pd.DataFrame:
    """The last reading of each sensor of a city (sensors without one are left out).

    Returns
    -------
    DataFrame
        :data:`READING_COLUMNS` as in :func:`recent_readings`, one row per sensor.
    """
    with begin(engine_or_conn) as conn:
        rows = conn.execute(_LATEST, {"city": city}).all()
    return _readings_frame(rows)
