"""The live state of a city's spaces as GeoJSON features, and a page of them.

The live state is not a table: it is computed from the recent readings when asked
(:func:`geo_protect.live.feed.current_state`). :func:`state_features` turns its rows into
features on the spaces' outlines (id: the space uid; time: ``last_reading_at``), and
:func:`select_page` filters and pages them in memory, as the stored collections are in SQL:
``bbox`` (the outline meets it), property equality (compared as text, booleans as
``true``/``false``), a time interval (ends included) and ``limit``/``offset`` in uid order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import shapely
import shapely.geometry

__all__ = ["STATE_PROPERTIES", "select_page", "state_features"]

_S, _N, _B = {"type": "string"}, {"type": "number"}, {"type": "boolean"}
#: The properties of a live-state feature, as JSON Schema types.
STATE_PROPERTIES: dict[str, dict[str, str]] = {
    "space_uid": _S,
    "name": _S,
    "density": _N,
    "los": _S,
    "alert": _S,
    "rise_per_min": _N,
    "rapid_rise": _B,
    "exit_flow_p_min_m": _N,
    "exit_flow_alert": _B,
    "risk_100": _N,
    "live_risk": _N,
    "last_reading_at": {"type": "string", "format": "date-time"},
    "stale": _B,
    "stale_sensors": {"type": "string", "description": "silent sensors, comma-separated"},
    "worst_speed_kmh": _N,
}


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "stale_sensors":
        return ",".join(str(v) for v in value) if not isinstance(value, str) else value
    if name == "last_reading_at":
        t = pd.Timestamp(value)
        return None if pd.isna(t) else t.tz_convert("UTC").isoformat().replace("+00:00", "Z")
    return value


def state_features(
    rows: Iterable[Mapping[str, Any]], outlines: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The rows of the live state as GeoJSON features on the spaces' outlines, by uid.

    Parameters
    ----------
    rows : iterable of mapping
        :func:`~geo_protect.live.feed.current_state` rows (``space_uid`` and the state).
    outlines : mapping
        Space uid → WGS84 outline (a space without one gets a null geometry).

    Returns
    -------
    list of dict
        One feature per row, sorted by uid; properties :data:`STATE_PROPERTIES`.

    Examples
    --------
    >>> rows = [{"space_uid": "way/1", "density": 2.5, "los": "E", "stale": False,
    ...          "stale_sensors": ["s1"], "last_reading_at": "2026-05-01T09:00:00+00:00"}]
    >>> f = state_features(rows, {"way/1": shapely.box(0, 0, 1, 1)})[0]
    >>> f["id"], f["geometry"]["type"], f["properties"]["stale_sensors"]
    ('way/1', 'Polygon', 's1')
    >>> f["properties"]["last_reading_at"]
    '2026-05-01T09:00:00Z'
    """
    out = []
    for row in sorted(rows, key=lambda r: str(r["space_uid"])):
        uid = str(row["space_uid"])
        outline = outlines.get(uid)
        geometry = None if outline is None else shapely.geometry.mapping(outline)
        props = {k: _value(k, row.get(k)) for k in STATE_PROPERTIES}
        props["space_uid"] = uid
        out.append({"type": "Feature", "id": uid, "geometry": geometry, "properties": props})
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _time(value: Any) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(str(value))


def select_page(
    features: list[dict[str, Any]],
    *,
    bbox: tuple[float, float, float, float] | None = None,
    equals: Mapping[str, str] | None = None,
    during: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    time_property: str = "last_reading_at",
    limit: int,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The page of ``features`` that pass the filters, and how many pass in all.

    Examples
    --------
    >>> fs = state_features([{"space_uid": f"way/{i}", "stale": i % 2 == 0}
    ...                      for i in range(5)], {})
    >>> page, n = select_page(fs, equals={"stale": "true"}, limit=2)
    >>> [f["id"] for f in page], n
    (['way/0', 'way/2'], 3)
    """
    kept = features
    if bbox is not None:
        box = shapely.box(*bbox)
        kept = [
            f
            for f in kept
            if f["geometry"] is not None
            and shapely.intersects(shapely.geometry.shape(f["geometry"]), box)
        ]
    for name, value in (equals or {}).items():
        kept = [f for f in kept if _text(f["properties"].get(name)) == value]
    if during is not None:
        start, end = during
        times = [(_time(f["properties"].get(time_property)), f) for f in kept]
        kept = [
            f
            for t, f in times
            if t is not None and (start is None or t >= start) and (end is None or t <= end)
        ]
    return kept[offset : offset + limit], len(kept)
