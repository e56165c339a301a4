"""The sensors of a city, registered from a file: CSV or GeoJSON, checked as a whole.

A sensor has an id, a kind (:data:`~geo_protect.live.readings.SENSOR_KINDS`) and belongs to
a public space of the city, given by ``space_uid``, by a drawn *zone* polygon (the space it
overlaps most is taken; a zone that overlaps none stands for itself) or by a location
(the space containing it). Fields (:data:`SENSOR_FIELDS`):

``sensor_id`` (required, 1–128 characters, unique in the file), ``kind`` (required),
``space_uid``, ``name``, ``area_m2`` (the area it covers, m² > 0; a zone's own area when
blank, and blank for a whole space, whose area the service takes), ``exit_width_m``
(clear width a line counter watches, m > 0), ``installed_at`` (required, ISO 8601; a date
or a time without zone is the city's local time).

* **CSV**: one row per sensor with the columns above, plus ``zone`` (a WGS84 polygon as
  WKT) or ``lon``/``lat`` (WGS84 degrees).
* **GeoJSON**: one feature per sensor with the fields as properties and a ``Polygon``
  (the zone), a ``Point`` (the location) or no geometry. Without a ``crs`` member it is
  WGS84 (RFC 7946); an old-style named ``crs`` is converted, one that cannot be is an error.

Either every sensor comes back, or one :class:`~geo_protect.errors.ItemsValidationError`
names the file and, for each problem, the line or feature, the field and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
from pyproj.exceptions import CRSError, ProjError
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import City
from geo_protect.errors import DataSourceError, ItemProblem, ItemsValidationError, ValidationError
from geo_protect.live.readings import SENSOR_KINDS, SensorInfo, SensorKind
from geo_protect.schema import WGS84

__all__ = ["SENSOR_COLUMNS", "SENSOR_FIELDS", "read_sensor_file", "sensor_frame", "sensor_infos"]

#: The fields of a sensor in a file (CSV columns, GeoJSON properties).
SENSOR_FIELDS: tuple[str, ...] = (
    "sensor_id",
    "kind",
    "space_uid",
    "name",
    "area_m2",
    "exit_width_m",
    "installed_at",
)
#: The columns of a sensor table (index ``sensor_id``, geometry the zone or None).
SENSOR_COLUMNS: dict[str, str] = {
    "space_uid": "string",
    "kind": "string",
    "name": "string",
    "area_m2": "float64",
    "exit_width_m": "float64",
    "installed_at": "datetime64[ns, UTC]",
    "source": "string",
}
_CSV_GEOMETRY = ("zone", "lon", "lat")
_SUFFIXES = (".csv", ".geojson", ".json")


@dataclass
class _Row:
    """One line of a CSV or feature of a GeoJSON: raw values, before any check."""

    number: int  # the line (CSV, header = 1) or feature (GeoJSON, from 1) number
    label: str  # "line 3" / "feature 2"
    values: dict[str, object]
    geometry: BaseGeometry | None = None
    geometry_field: str = "geometry"
    problems: list[tuple[str, str]] = field(default_factory=list)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _csv_rows(path: Path) -> tuple[list[_Row], list[tuple[str, str]]]:
    """The CSV's rows (zone WKT and lon/lat parsed), and problems of the file itself."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: cannot read the sensor file: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise ValidationError(f"{path}: empty file (expected a header row)") from exc
    unknown = sorted(set(frame.columns) - set(SENSOR_FIELDS) - set(_CSV_GEOMETRY))
    problems = []
    if unknown:
        known = ", ".join((*SENSOR_FIELDS, *_CSV_GEOMETRY))
        problems.append(("", f"unknown column(s) {', '.join(unknown)} (known: {known})"))
    rows = []
    for i, record in enumerate(frame.to_dict("records")):
        values: dict[str, object] = {
            str(k): v.strip() for k, v in record.items() if isinstance(v, str) and v.strip()
        }
        row = _Row(i + 2, f"line {i + 2}", values)
        _csv_geometry(row)
        rows.append(row)
    return rows, problems


def _csv_geometry(row: _Row) -> None:
    """Parse the row's ``zone`` (WKT) or ``lon``/``lat`` into its geometry."""
    zone, lon, lat = (cast(str | None, row.values.pop(k, None)) for k in _CSV_GEOMETRY)
    if zone is not None:
        row.geometry_field = "zone"
        try:
            row.geometry = shapely.from_wkt(zone)
        except (GEOSException, ShapelyError) as exc:
            row.problems.append(("zone", f"not WKT: {exc}"))
        if lon is not None or lat is not None:
            row.problems.append(("lon", "give a zone or lon/lat, not both"))
        return
    if lon is None and lat is None:
        return
    row.geometry_field = "lon"
    try:
        x, y = float(lon or "nan"), float(lat or "nan")
    except ValueError:
        row.problems.append(("lon", f"lon/lat must be numbers, got {lon!r}, {lat!r}"))
        return
    if not (math.isfinite(x) and math.isfinite(y)):
        row.problems.append(("lon", "needs both lon and lat, as finite numbers"))
        return
    row.geometry = shapely.Point(x, y)


def _geojson_crs(doc: dict[str, Any], path: Path) -> pyproj.Transformer | None:
    """The transformer to WGS84 of an old-style ``crs`` member (None: already WGS84)."""
    member = doc.get("crs")
    if member is None:
        return None  # RFC 7946: GeoJSON is WGS84 longitude/latitude
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    try:
        crs = pyproj.CRS.from_user_input(name)
        if crs.equals(pyproj.CRS.from_user_input(WGS84), ignore_axis_order=True):
            return None
        return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    except (CRSError, ProjError, TypeError) as exc:
        raise ValidationError(
            f"{path}: CRS {name!r} cannot be converted to {WGS84}: {exc}"
        ) from exc


def _geojson_rows(path: Path) -> tuple[list[_Row], list[tuple[str, str]]]:
    """The GeoJSON's features (geometry in WGS84), and problems of the file itself."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"{path}: cannot read the sensor file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ValidationError(f"{path}: not a GeoJSON FeatureCollection")
    to_wgs84 = _geojson_crs(doc, path)
    rows = []
    for i, feature in enumerate(doc.get("features") or []):
        row = _Row(i + 1, f"feature {i + 1}", {})
        rows.append(row)
        if not isinstance(feature, dict):
            row.problems.append(("", "not a GeoJSON feature"))
            continue
        props = feature.get("properties") or {}
        row.values = {k: v for k, v in props.items() if not _blank(v)}
        unknown = sorted(set(row.values) - set(SENSOR_FIELDS))
        if unknown:
            row.problems.append((unknown[0], f"unknown field(s) {', '.join(unknown)}"))
        if feature.get("geometry") is not None:
            try:
                geom = shapely.geometry.shape(feature["geometry"])
            except (GEOSException, ShapelyError, ValueError, TypeError, KeyError) as exc:
                row.problems.append(("geometry", f"not a GeoJSON geometry: {exc}"))
                continue
            if to_wgs84 is not None:
                geom = shapely.transform(geom, _xy(to_wgs84), interleaved=False)
            row.geometry = geom
    return rows, []


def _xy(transformer: pyproj.Transformer) -> Any:
    return lambda x, y: transformer.transform(x, y)


def _time(value: object, timezone: str) -> pd.Timestamp:
    """An ISO 8601 date or date-time; without a zone it is the city's local time."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__} {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return pd.Timestamp(parsed).tz_convert("UTC")


def _positive(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(cast(str | float, value))
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"must be a positive finite number, got {value!r}")
    return number


def _geometry_problems(row: _Row, city: City) -> list[tuple[str, str]]:
    geom, where = row.geometry, row.geometry_field
    if geom is None:
        return []
    if geom.is_empty:
        return [(where, "empty geometry")]
    allowed = {"Polygon"} if where == "zone" else {"Polygon", "Point"}
    if geom.geom_type not in allowed:
        return [(where, f"a zone is a Polygon (a location a Point), got {geom.geom_type}")]
    if not geom.is_valid:
        return [(where, f"invalid polygon: {shapely.is_valid_reason(geom)}")]
    if not shapely.box(*city.bbox).covers(geom):
        return [(where, f"outside {city.name_en}'s bbox {list(city.bbox)} (lon/lat WGS84)")]
    return []


def _check(row: _Row, city: City, spaces: pd.Index) -> dict[str, Any]:
    """The row's checked values; problems are added to ``row.problems``."""
    v = row.values
    out: dict[str, Any] = {"number": row.number, "label": row.label, "where": row.geometry_field}
    sid = v.get("sensor_id")
    if not isinstance(sid, str) or not 1 <= len(sid) <= 128:
        row.problems.append(("sensor_id", f"required, a string of 1-128 characters: {sid!r}"))
    else:
        out["sensor_id"] = sid
    kind = v.get("kind")
    if kind not in SENSOR_KINDS:
        shown = "missing" if kind is None else f"unknown kind {kind!r}"
        row.problems.append(("kind", f"{shown} (known: {', '.join(SENSOR_KINDS)})"))
    out["kind"] = kind
    for name in ("space_uid", "name"):
        value = v.get(name)
        if value is not None and not isinstance(value, str):
            row.problems.append((name, f"expected a string, got {value!r}"))
        out[name] = value if isinstance(value, str) else None
    if out["space_uid"] is not None and out["space_uid"] not in spaces:
        msg = f"unknown space_uid {out['space_uid']!r} (no such public space in {city.name_en})"
        row.problems.append(("space_uid", msg))
    for name in ("area_m2", "exit_width_m"):
        try:
            out[name] = math.nan if v.get(name) is None else _positive(v[name])
        except ValueError as exc:
            row.problems.append((name, str(exc)))
    try:
        if v.get("installed_at") is None:
            raise ValueError("required (ISO 8601, e.g. 2026-05-01 or 2026-05-01T08:00:00+03:00)")
        out["installed_at"] = _time(v["installed_at"], city.timezone)
    except (ValueError, OverflowError) as exc:
        row.problems.append(("installed_at", str(exc)))
    row.problems += _geometry_problems(row, city)
    geom = row.geometry
    out["zone"] = geom if geom is not None and geom.geom_type == "Polygon" else None
    out["point"] = geom if geom is not None and geom.geom_type == "Point" else None
    placed = geom is not None or any(f == row.geometry_field for f, _ in row.problems)
    if out["space_uid"] is None and not placed:
        row.problems.append(("space_uid", "a sensor needs a space_uid, a zone or a location"))
    return out


def _assign(
    checked: list[dict[str, Any]], spaces: gpd.GeoDataFrame, city: City
) -> dict[int, tuple[str, str]]:
    """Fill ``space_uid`` of zone / location sensors; a zone's own area when blank.

    Returns the problem of each row (by number) whose location lies in no space.
    """
    metric = spaces.to_crs(city.crs) if len(spaces) else spaces
    problems = {}
    for out in checked:
        zone, point = out["zone"], out["point"]
        if zone is not None:
            zone_m = gpd.GeoSeries([zone], crs=WGS84).to_crs(city.crs).iloc[0]
            if math.isnan(out["area_m2"]):
                out["area_m2"] = float(zone_m.area)
            if out["space_uid"] is None and len(metric):
                hits = metric.iloc[metric.sindex.query(zone_m, predicate="intersects")]
                overlap = hits.geometry.intersection(zone_m).area
                overlap = overlap[overlap > 0]
                if len(overlap):
                    ranked = sorted(overlap.items(), key=lambda kv: (-kv[1], str(kv[0])))
                    out["space_uid"] = str(ranked[0][0])
        elif point is not None and out["space_uid"] is None:
            point_m = gpd.GeoSeries([point], crs=WGS84).to_crs(city.crs).iloc[0]
            hits = (
                metric.iloc[metric.sindex.query(point_m, predicate="within")]
                if len(metric)
                else metric
            )
            if len(hits):
                ranked = sorted(hits.area.items(), key=lambda kv: (kv[1], str(kv[0])))
                out["space_uid"] = str(ranked[0][0])  # the smallest space holding it
            else:
                msg = f"the location lies in no public space of {city.name_en}"
                problems[out["number"]] = (out["where"], msg)
    return problems


def _describe(path: Path, problems: list[ItemProblem], labels: Mapping[int, str]) -> str:
    texts = []
    for p in problems:
        where = "" if p.index is None else labels[p.index]
        named = f" (sensor {p.sensor_id!r})" if p.sensor_id else ""
        field_part = f"field {p.field!r}: " if p.field else ""
        texts.append(f"{where}{named}, {field_part}{p.reason}" if where else p.reason)
    listed = (
        texts[0]
        if len(texts) == 1
        else f"{len(texts)} problems:" + "".join(f"\n  - {t}" for t in texts)
    )
    return f"{path}: {listed}"


def read_sensor_file(path: Path, *, city: City, spaces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Read and check a city's sensors from a CSV or GeoJSON file.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.geojson`` or ``.json`` file (fields: see the module's docstring).
    city : City
        The city (its bbox, metric CRS and time zone).
    spaces : GeoDataFrame
        The city's ``public_space`` layer (WGS84, indexed by uid).

    Returns
    -------
    GeoDataFrame
        Indexed by ``sensor_id``, in file order, with the columns of
        :data:`SENSOR_COLUMNS` (``source`` is the file's name; ``installed_at`` in UTC)
        and the zone polygon (WGS84) or None as geometry.

    Raises
    ------
    ItemsValidationError
        Naming the file and, per problem, the line or feature, the sensor and the field:
        unknown kind or space_uid, a zone that is invalid or outside the city's bbox, a
        location in no public space, a duplicate sensor_id, a bad number or timestamp.
        Nothing is returned in part.
    DataSourceError
        If the file cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> from geo_protect.cities import get_city
    >>> spaces = gpd.GeoDataFrame(geometry=[shapely.box(25.58, 45.64, 25.59, 45.645)],
    ...                           index=pd.Index(["way/1"], name="uid"), crs="EPSG:4326")
    >>> csv = Path(tempfile.mkdtemp()) / "sensors.csv"
    >>> _ = csv.write_text("sensor_id,kind,lon,lat,installed_at\\n"
    ...                    "s1,area_counter,25.585,45.642,2026-05-01\\n")
    >>> out = read_sensor_file(csv, city=get_city("brasov"), spaces=spaces)
    >>> out.loc["s1", "space_uid"], str(out.loc["s1", "installed_at"])
    ('way/1', '2026-04-30 21:00:00+00:00')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValidationError(f"{path}: a sensor file is a {', '.join(_SUFFIXES)} file")
    rows, file_problems = (_csv_rows if suffix == ".csv" else _geojson_rows)(path)
    problems = [ItemProblem(None, f, msg) for f, msg in file_problems]
    checked = [_check(row, city, spaces.index) for row in rows]
    first: dict[str, _Row] = {}
    for row, out in zip(rows, checked, strict=True):
        sid = out.get("sensor_id")
        if sid in first:
            row.problems.append(("sensor_id", f"duplicate of {first[sid].label}"))
        elif sid is not None:
            first[sid] = row
    valid = [out for row, out in zip(rows, checked, strict=True) if not row.problems]
    unplaced = _assign(valid, spaces, city)
    for row, out in zip(rows, checked, strict=True):
        if row.number in unplaced:
            row.problems.append(unplaced[row.number])
        sid = out.get("sensor_id")
        problems += [ItemProblem(row.number, f, msg, sid) for f, msg in row.problems]
    if not problems and not rows:
        problems.append(ItemProblem(None, "", "no sensors in the file"))
    if problems:
        labels = {row.number: row.label for row in rows}
        raise ItemsValidationError(_describe(path, problems, labels), problems)
    return sensor_frame(checked, source=path.name)


def sensor_frame(records: list[dict[str, Any]], *, source: str | None = None) -> gpd.GeoDataFrame:
    """A sensor table from checked records (``sensor_id``, the columns, ``zone``).

    Parameters
    ----------
    records : list of dict
        One per sensor: ``sensor_id``, ``space_uid``, ``kind``, ``name``, ``area_m2``,
        ``exit_width_m``, ``installed_at`` (aware), optionally ``source`` and ``zone``.
    source : str or None
        The ``source`` of records that carry none.

    Returns
    -------
    GeoDataFrame
        Indexed by ``sensor_id`` with :data:`SENSOR_COLUMNS` and the zones (WGS84).

    Examples
    --------
    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> frame = sensor_frame([{"sensor_id": "s1", "space_uid": "way/1", "kind": "density",
    ...                        "name": None, "area_m2": 40.0, "exit_width_m": float("nan"),
    ...                        "installed_at": t}], source="hand")
    >>> list(frame.columns), frame.index.name
    (['space_uid', 'kind', 'name', 'area_m2', 'exit_width_m', 'installed_at', 'source', \
'geometry'], 'sensor_id')
    """
    index = pd.Index([r["sensor_id"] for r in records], dtype="string", name="sensor_id")
    data: dict[str, pd.Series] = {}
    for column, dtype in SENSOR_COLUMNS.items():
        values = [r.get(column, source) if column == "source" else r[column] for r in records]
        raw = pd.Series(values, dtype=object, index=index)
        if column == "installed_at":
            data[column] = pd.to_datetime(raw, utc=True).astype(dtype)
        else:
            data[column] = raw.where(raw.notna(), None).astype(dtype)
    frame = pd.DataFrame(data, index=index)
    zones = gpd.GeoSeries([r.get("zone") for r in records], index=index, crs=WGS84)
    return gpd.GeoDataFrame(frame, geometry=zones, crs=WGS84)


def sensor_infos(sensors: pd.DataFrame) -> dict[str, SensorInfo]:
    """What :func:`~geo_protect.live.readings.validate_batch` needs of a sensor table.

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pd.DataFrame({"kind": ["density"],
    ...                       "installed_at": [pd.Timestamp("2026-01-01", tz="UTC")]},
    ...                      index=["s1"])
    >>> sensor_infos(frame)["s1"].kind
    'density'
    """
    return {
        str(sid): SensorInfo(
            str(sid), cast(SensorKind, str(kind)), pd.Timestamp(at).to_pydatetime()
        )
        for sid, kind, at in zip(
            sensors.index, sensors["kind"], sensors["installed_at"], strict=True
        )
    }
