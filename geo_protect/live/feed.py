"""Sensor readings through the live room: stored, then state, alerts and events.

The service (HTTP and MQTT alike) calls :func:`store_readings` inside one database
transaction and acknowledges the batch once that transaction has committed:

1. the batch is validated as a whole (:func:`~geo_protect.live.readings.validate_batch`):
   one bad item rejects it, naming the item and field, and nothing is stored;
2. the readings are inserted; a reading already stored (same sensor and time) is a
   duplicate, not an error, so a redelivered batch changes nothing.

Then, in a transaction of its own, :func:`refresh` (one per round of batches, for the
sensors that reported; and periodically for silent sensors and running holds):

3. under a per-city transaction lock (two workers never interleave one city), the live
   state of the spaces of those sensors is recomputed from the recent window
   (:func:`~geo_protect.live.state.space_state`), the alert rules run against their
   alerts not yet resolved (:func:`~geo_protect.live.alerts.evaluate_alerts`), and the
   changes are written with their history;
4. each change becomes a ``live_event`` row and a ``NOTIFY``, delivered to listeners only
   when the transaction commits.

:class:`Room` is what a city's batches need besides readings: its spaces (usable area,
design density, baseline risk, worst approach speed) and its sensor register.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo_protect.analysis.crowd import design_density
from geo_protect.live.alerts import evaluate_alerts
from geo_protect.live.readings import SensorInfo, validate_batch
from geo_protect.live.sensors import sensor_infos
from geo_protect.live.state import space_state
from geo_protect.store import live as store

__all__ = [
    "Limits",
    "Outcome",
    "Room",
    "current_state",
    "refresh",
    "room_spaces",
    "store_readings",
]

#: Columns of a space in :attr:`Room.spaces`.
SPACE_COLUMNS = (
    "name",
    "usable_area_m2",
    "design_density",
    "area_type",
    "risk_100",
    "worst_speed_kmh",
)


@dataclass(frozen=True)
class Limits:
    """Bounds of one batch and of the state window (reference values, passed in)."""

    max_items: int
    future_skew_s: float
    window_s: float
    stale_after_s: float | None = None
    per_sensor: int | None = None  # readings of each sensor a state reads at most


@dataclass(frozen=True)
class Room:
    """A city's spaces and sensors, as the live state needs them."""

    city: str
    spaces: pd.DataFrame  # index space uid, SPACE_COLUMNS
    sensors: pd.DataFrame  # index sensor_id: space_uid, kind, area_m2, exit_width_m, ...
    infos: Mapping[str, SensorInfo] = field(default_factory=dict)
    outlines: Mapping[str, Any] = field(default_factory=dict)  # space uid -> WGS84 polygon

    @classmethod
    def of(
        cls,
        city: str,
        spaces: pd.DataFrame,
        sensors: pd.DataFrame,
        outlines: Mapping[str, Any] | None = None,
    ) -> Room:
        """A room with the sensors' validation records derived from the register."""
        infos = sensor_infos(sensors) if len(sensors) else {}
        return cls(city, spaces, sensors, infos, dict(outlines or {}))


@dataclass(frozen=True)
class Outcome:
    """What one batch did: rows inserted and duplicated, and the sensors that reported."""

    inserted: int
    duplicates: int
    sensors: tuple[str, ...] = ()  # the sensors with new readings


def room_spaces(
    space_metric: pd.DataFrame, assessment: pd.DataFrame, *, profile: str = "event"
) -> pd.DataFrame:
    """Per space: what its live state needs, from the stored analysis layers.

    Parameters
    ----------
    space_metric : DataFrame
        The city's ``space_metric`` layer (usable area, kind, worst approach speed).
    assessment : DataFrame
        Its ``assessment`` layer: the space's baseline risk is its worst ``risk_100``
        over the threat types (NaN where nothing is assessed).
    profile : str
        Time profile of the design density and area type (``design_density.csv``).

    Returns
    -------
    DataFrame
        Indexed by space uid, :data:`SPACE_COLUMNS`.

    Examples
    --------
    >>> m = pd.DataFrame({"name": ["Sq"], "label": ["Sq"], "kind": ["square"],
    ...     "usable_area_m2": [400.0], "worst_speed_kmh": [42.0]}, index=["way/1"])
    >>> a = pd.DataFrame({"space_uid": ["way/1", "way/1"], "risk_100": [20.0, 45.0]})
    >>> row = room_spaces(m, a).loc["way/1"]
    >>> float(row["risk_100"]), row["area_type"]
    (45.0, 'standing')
    """
    kinds = design_density(space_metric["kind"].astype("string"), profile=profile)
    risk = (
        assessment.assign(r=assessment["risk_100"].astype(float))
        .groupby(assessment["space_uid"].astype(str))["r"]
        .max()
    )
    idx = space_metric.index.astype(str)
    name = space_metric["name"].astype("string").fillna(space_metric["label"].astype("string"))
    return pd.DataFrame(
        {
            "name": name.to_numpy(),
            "usable_area_m2": space_metric["usable_area_m2"].astype(float).to_numpy(),
            "design_density": kinds["design_density"].astype(float).to_numpy(),
            "area_type": kinds["area_type"].astype(str).to_numpy(),
            "risk_100": risk.reindex(idx).to_numpy(dtype=float),
            "worst_speed_kmh": space_metric["worst_speed_kmh"].astype(float).to_numpy(),
        },
        index=pd.Index(idx, name="space_uid"),
    )


def store_readings(
    conn: Connection, room: Room, items: Any, *, now: dt.datetime, limits: Limits
) -> Outcome:
    """Validate and store one batch, nothing more (:func:`refresh` follows, apart).

    The state follows apart (:func:`refresh` with the ``sensors`` of the outcomes), so
    that a burst of batches costs one refresh, not one per batch.

    Raises
    ------
    ItemsValidationError
        When any item is invalid (nothing of the batch is stored).
    """
    readings = validate_batch(
        items,
        room.infos,
        now=now,
        max_items=limits.max_items,
        future_skew_s=limits.future_skew_s,
    )
    inserted, duplicates = store.insert_readings(conn, [r.model_dump() for r in readings])
    sensors = tuple(sorted({r.sensor_id for r in readings})) if inserted else ()
    return Outcome(inserted, duplicates, sensors)


def refresh(
    conn: Connection,
    room: Room,
    *,
    now: dt.datetime,
    limits: Limits,
    sensors: list[str] | None = None,
    seen: dict[str, tuple[Any, ...]] | None = None,
) -> tuple[int, ...]:
    """Recompute the live state of the spaces of ``sensors`` (all: ``None``) and their
    alerts, write the changes and their events; returns the event ids.

    The periodic pass (``sensors=None``) is what notices sensors gone silent. It passes
    ``seen`` (per space, the statuses last sent; updated here): its state event then
    carries only the spaces whose level of service, band, flags or silent sensors
    changed, and there is none when nothing did.
    """
    _lock_city(conn, room.city)
    which = list(room.sensors.index) if sensors is None else sensors
    state = _state(conn, room, which, now=now, limits=limits)
    if state.empty:
        return ()
    active = store.tracked_alerts(conn, room.city)
    # only the alerts of the spaces (and their sensors) refreshed are evaluated; the
    # others pass to the next evaluation as they are
    mine = _of_spaces(active, room, set(state.index.astype(str)))
    changes = evaluate_alerts(state, active[mine], now=pd.Timestamp(now))
    stored = store.apply_alert_changes(conn, room.city, changes.opened, changes.changed)
    kept = active[~mine]
    tracked = pd.concat([changes.tracked, kept]) if len(kept) else changes.tracked
    store.save_tracked(conn, room.city, tracked)
    rows = _state_rows(state) if seen is None else _changed_rows(_state_rows(state), seen)
    events = [store.append_event(conn, room.city, "state", {"spaces": rows})] if rows else []
    events += [store.append_event(conn, room.city, "alert", _plain(a)) for a in stored]
    return tuple(events)


#: What the periodic pass compares to decide whether a space's state is news.
_STATUS = ("los", "alert", "stale", "rapid_rise", "exit_flow_alert", "stale_sensors")


def _changed_rows(
    rows: list[dict[str, Any]], seen: dict[str, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The rows whose statuses differ from ``seen`` (which is brought up to date)."""
    out = []
    for row in rows:
        status = tuple(str(row.get(k)) for k in _STATUS)
        if seen.get(row["space_uid"]) != status:
            seen[row["space_uid"]] = status
            out.append(row)
    return out


def current_state(
    conn: Connection, room: Room, *, now: dt.datetime, limits: Limits
) -> list[dict[str, Any]]:
    """The live state of every space with a sensor, read now (nothing is written).

    Examples
    --------
    >>> room = Room.of("x", pd.DataFrame(columns=list(SPACE_COLUMNS)), pd.DataFrame())
    >>> current_state(None, room, now=dt.datetime.now(dt.UTC),  # type: ignore[arg-type]
    ...               limits=Limits(10, 60.0, 900.0))
    []
    """
    if room.sensors.empty:
        return []
    state = _state(conn, room, list(room.sensors.index), now=now, limits=limits)
    return _state_rows(state)


def _state(
    conn: Connection, room: Room, sensors: list[str], *, now: dt.datetime, limits: Limits
) -> pd.DataFrame:
    """:func:`space_state` of the spaces of ``sensors`` from the recent window."""
    mine = room.sensors.loc[_known(room, sensors)]
    spaces = sorted(set(mine["space_uid"].dropna().astype(str)) & set(room.spaces.index))
    on_spaces = room.sensors[room.sensors["space_uid"].astype(str).isin(spaces)]
    if on_spaces.empty:
        return pd.DataFrame()
    since = now - dt.timedelta(seconds=limits.window_s)
    window = store.recent_readings(
        conn, room.city, since, sensors=list(on_spaces.index), per_sensor=limits.per_sensor
    )
    state = space_state(
        window, on_spaces, room.spaces, now=pd.Timestamp(now), stale_after_s=limits.stale_after_s
    )
    extra = [c for c in ("worst_speed_kmh", "name") if c not in state.columns]
    return state.join(room.spaces[extra], how="left") if extra else state


def _of_spaces(active: pd.DataFrame, room: Room, spaces: set[str]) -> np.ndarray:
    """Per tracked alert: does it belong to one of ``spaces`` or to one of their sensors?"""
    if active.empty:
        return np.zeros(0, dtype=bool)
    sensors = set(room.sensors.index[room.sensors["space_uid"].astype(str).isin(spaces)])
    on_space = active["space_uid"].astype(str).isin(spaces)
    on_sensor = active["sensor_id"].astype(str).isin(sensors)
    return np.asarray((on_space | on_sensor).to_numpy(), dtype=bool)


def _known(room: Room, sensors: list[str]) -> list[str]:
    return [s for s in sensors if s in room.sensors.index]


def _lock_city(conn: Connection, city: str) -> None:
    """Serialise the state and alert updates of one city across connections."""
    key = zlib.crc32(f"geo_protect.live:{city}".encode())
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _state_rows(state: pd.DataFrame) -> list[dict[str, Any]]:
    """The state as JSON-ready rows (one per space)."""
    cols = [
        "name",
        "density",
        "los",
        "alert",
        "rise_per_min",
        "rapid_rise",
        "exit_flow_p_min_m",
        "exit_flow_alert",
        "risk_100",
        "live_risk",
        "last_reading_at",
        "stale",
        "stale_sensors",
        "worst_speed_kmh",
    ]
    present = [c for c in cols if c in state.columns]
    out = []
    for uid, row in state[present].iterrows():
        out.append({"space_uid": str(uid), **{c: _plain(row[c]) for c in present}})
    return out


def _plain(value: Any) -> Any:
    """A JSON-ready copy: timestamps as ISO text, NA as None, numpy scalars as Python."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp | dt.datetime):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if value is None or (
        not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)
    ):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
