"""Barrier scenarios drawn by planners: the QGIS template and reading a filled file back.

The template (:func:`plan_barrier_template`) is two empty GeoPackage tables,
``plan_barrier_point`` and ``plan_barrier_line`` (a GeoPackage table has one geometry type,
as in :mod:`geo_protect.outputs.exports`), with the fields of :data:`PLAN_FIELDS`. The
export of a city includes them; a planner draws in them in QGIS and
:func:`read_scenario` reads the file back (or a GeoJSON with the same properties) into a
validated :class:`~geo_protect.scenario.model.Scenario`.

Everything is checked at this boundary, and either a whole scenario comes back or one
:class:`~geo_protect.errors.ValidationError` naming the file, each feature at fault and
its field: the CRS (missing, or not convertible to WGS84; a GeoJSON without a ``crs``
member is WGS84 by RFC 7946), the geometry (empty, self-intersecting, a point where the
type needs a line, outside the city's bbox), the type, the rating, the spacing and the
barrier a ``remove``/``open`` names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pydantic
import pyogrio
from pyogrio.errors import DataLayerError
from pyogrio.errors import DataSourceError as OgrDataSourceError
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import City
from geo_protect.errors import DataSourceError, ValidationError
from geo_protect.scenario.model import BarrierEdit, RatingParser, Scenario, city_problems
from geo_protect.schema import WGS84

__all__ = ["PLAN_FIELDS", "PLAN_LAYERS", "plan_barrier_template", "read_scenario"]

#: The fields a planner fills, with their dtypes (``type`` is a barrier type of
#: ``plan_barrier_types``; ``action`` add, remove or open, blank meaning add).
PLAN_FIELDS: dict[str, str] = {
    "type": "string",
    "action": "string",
    "rating": "string",
    "spacing_m": "float64",
    "osm_id": "string",
    "note": "string",
}

#: The template's tables and their declared geometry types.
PLAN_LAYERS: dict[str, str] = {"plan_barrier_point": "Point", "plan_barrier_line": "LineString"}

#: Scenario file column -> BarrierEdit field.
_FIELD_OF_COLUMN = {"type": "kind"}
_COLUMN_OF_FIELD = {v: k for k, v in _FIELD_OF_COLUMN.items()}
_SUFFIXES = (".geojson", ".json", ".gpkg")


def plan_barrier_template() -> dict[str, tuple[gpd.GeoDataFrame, str]]:
    """The empty ``plan_barrier_point`` and ``plan_barrier_line`` tables of the export.

    Returns
    -------
    dict
        Table name -> (empty WGS84 GeoDataFrame with :data:`PLAN_FIELDS`, geometry type).

    Examples
    --------
    >>> {name: (len(rows), kind) for name, (rows, kind) in plan_barrier_template().items()}
    {'plan_barrier_point': (0, 'Point'), 'plan_barrier_line': (0, 'LineString')}
    >>> list(plan_barrier_template()["plan_barrier_line"][0].columns)
    ['type', 'action', 'rating', 'spacing_m', 'osm_id', 'note', 'geometry']
    """
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in PLAN_FIELDS.items()})
    return {
        name: (gpd.GeoDataFrame(empty.copy(), geometry=gpd.GeoSeries([], crs=WGS84)), kind)
        for name, kind in PLAN_LAYERS.items()
    }


def _read_layers(path: Path) -> dict[str, gpd.GeoDataFrame]:
    """The file's feature tables: the plan layers of a GeoPackage, or the GeoJSON."""
    try:
        if path.suffix.lower() != ".gpkg":
            return {"": pyogrio.read_dataframe(path)}
        present = set(pyogrio.list_layers(path)[:, 0])
        wanted = [name for name in PLAN_LAYERS if name in present]
        if not wanted:
            raise ValidationError(
                f"{path}: no {' or '.join(PLAN_LAYERS)} layer (has: {', '.join(sorted(present))})"
            )
        return {name: pyogrio.read_dataframe(path, layer=name) for name in wanted}
    except (OgrDataSourceError, DataLayerError) as exc:
        raise DataSourceError(f"{path}: cannot read the scenario file: {exc}") from exc


def _to_wgs84(frame: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise ValidationError(f"{where}: missing CRS (save the layer in EPSG:4326)")
    if frame.crs.equals(WGS84):
        return frame
    try:
        out = frame.to_crs(WGS84)
    except (CRSError, ProjError) as exc:
        raise ValidationError(
            f"{where}: CRS {frame.crs.name!r} cannot be converted to {WGS84}: {exc}"
        ) from exc
    return out


def _blank(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value))) or value == ""


def _raw_edit(row: pd.Series) -> dict[str, object]:
    """One feature as BarrierEdit input: blank cells dropped, remove/open without geometry."""
    raw: dict[str, object] = {}
    for column in PLAN_FIELDS:
        value = row.get(column)
        if not _blank(value):
            raw[_FIELD_OF_COLUMN.get(column, column)] = (
                value.strip() if isinstance(value, str) else float(value)
            )
    raw["action"] = raw.get("action", "add")
    if raw["action"] == "add":
        geom = row.geometry  # a null geometry is None or NaN: both "empty"
        raw["geometry"] = geom if isinstance(geom, BaseGeometry) else None
    return raw


def _label(where: str, position: int, row: pd.Series) -> str:
    osm_id = row.get("osm_id")
    named = "" if _blank(osm_id) else f" ({osm_id})"
    return f"{where}feature {position + 1}{named}"


def _problems(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors as (file column, message)."""
    out = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        field = str(err["loc"][0]) if err["loc"] else ""
        if not field:
            field, _, msg = msg.partition(": ")
        out.append((_COLUMN_OF_FIELD.get(field, field), msg))
    return out


#: A problem, keyed by (layer number, feature position) to list it in file order.
_Problem = tuple[tuple[int, int], str]


def _edits(
    frame: gpd.GeoDataFrame,
    where: tuple[int, str],
    context: dict[str, object],
    problems: list[_Problem],
) -> list[tuple[tuple[int, int], str, BarrierEdit]]:
    layer, prefix = where
    unknown = sorted(set(frame.columns) - set(PLAN_FIELDS) - {frame.geometry.name, "fid"})
    if unknown:
        known = ", ".join(PLAN_FIELDS)
        problems.append(
            ((layer, -1), f"{prefix}unknown field(s) {', '.join(unknown)} (known: {known})")
        )
    edits = []
    for position, (_, row) in enumerate(frame.iterrows()):  # a planner's few features
        key, label = (layer, position), _label(prefix, position, row)
        try:
            edit = BarrierEdit.model_validate(_raw_edit(row), context=context)
        except pydantic.ValidationError as exc:
            problems += [(key, f"{label}, field {f!r}: {msg}") for f, msg in _problems(exc)]
            continue
        edits.append((key, label, edit))
    return edits


def _checked_edits(
    path: Path, city: City, barriers: pd.DataFrame, context: dict[str, object]
) -> list[BarrierEdit]:
    """Every feature of the file as an edit, or one error listing every problem."""
    problems: list[_Problem] = []
    edits: list[tuple[tuple[int, int], str, BarrierEdit]] = []
    for number, (layer, frame) in enumerate(_read_layers(path).items()):
        prefix = f"layer {layer}, " if layer else ""
        frame = _to_wgs84(frame, f"{path}, {prefix}".rstrip(", "))
        edits += _edits(frame, (number, prefix), context, problems)
    plain = [edit for _, _, edit in edits]
    for i, field, msg in city_problems(plain, city=city, barriers=barriers):
        key, label, _ = edits[i]
        problems.append((key, f"{label}, field {_COLUMN_OF_FIELD.get(field, field)!r}: {msg}"))
    if not problems and not plain:
        problems.append(((0, 0), "no features (draw in plan_barrier_point or plan_barrier_line)"))
    if problems:
        texts = [text for _, text in sorted(problems, key=lambda p: p[0])]
        many = f"{len(texts)} problems:" + "".join(f"\n  - {t}" for t in texts)
        listed = texts[0] if len(texts) == 1 else many
        raise ValidationError(f"{path}: {listed}")
    return plain


def read_scenario(
    path: Path,
    *,
    city: City,
    barriers: pd.DataFrame,
    name: str | None = None,
    author: str | None = None,
    description: str = "",
    created: dt.datetime | None = None,
    rating_parser: RatingParser | None = None,
    data_dir: Path | None = None,
) -> Scenario:
    """Read and validate the barrier scenario a planner drew (GeoJSON or GeoPackage).

    Parameters
    ----------
    path : Path
        A ``.geojson``/``.json`` file, or a ``.gpkg`` with the ``plan_barrier_point`` and/or
        ``plan_barrier_line`` layers of the export; fields of :data:`PLAN_FIELDS`.
    city : City
        The city the scenario is for (its slug and ``bbox``).
    barriers : DataFrame
        The city's stored ``barrier`` layer, indexed by uid (``"node/123"``).
    name : str or None
        The scenario's name; the file's stem by default.
    author : str or None
        Who drew it.
    description : str
        A free description.
    created : datetime or None
        When it was made (time-zone aware); now by default.
    rating_parser : callable or None
        Checks a crash-rating string (:func:`~geo_protect.scenario.model.default_rating_parser`
        by default).
    data_dir : Path or None
        The data folder of the reference tables (the active one by default).

    Returns
    -------
    Scenario
        The scenario, its edits in file order (a GeoPackage's points, then its lines).

    Raises
    ------
    ValidationError
        Listing every problem, each naming the file, the feature and the field.
    DataSourceError
        If the file cannot be read.

    Examples
    --------
    >>> import json, tempfile
    >>> from geo_protect.cities import get_city
    >>> feature = {"type": "Feature", "properties": {"type": "block"},
    ...            "geometry": {"type": "Point", "coordinates": [25.5887, 45.6418]}}
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "square.geojson").write_text(json.dumps(
    ...     {"type": "FeatureCollection", "features": [feature]}))
    >>> sc = read_scenario(folder / "square.geojson", city=get_city("brasov"),
    ...                    barriers=pd.DataFrame())
    >>> sc.name, [e.kind for e in sc.edits]
    ('square', ['block'])
    """
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValidationError(f"{path}: a scenario is a {', '.join(_SUFFIXES)} file")
    context: dict[str, object] = {"rating_parser": rating_parser, "data_dir": data_dir}
    plain = _checked_edits(path, city, barriers, context)
    try:
        return Scenario(
            name=name or path.stem,
            city=city.slug,
            author=author,
            description=description,
            created=created or dt.datetime.now(dt.UTC),
            edits=plain,
        )
    except pydantic.ValidationError as exc:
        found = "; ".join(f"{field or 'scenario'}: {msg}" for field, msg in _problems(exc))
        raise ValidationError(f"{path}: {found}") from exc
