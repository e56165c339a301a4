"""A city's own register of public spaces of interest (GeoJSON or GeoPackage).

Cities know spaces OSM does not draw (a market held on a car park, an event ground) and
draw some better than OSM. A register is validated once, here, and becomes a
``public_space`` layer: its features carry uid ``register/<id>``, or the OSM uid of the
space they replace when they give ``osm_type`` and ``osm_id``.

Fields: ``id`` (required, unique), ``name`` (required), ``kind`` (optional, a known
public-space kind; ``register`` when absent), ``osm_type`` + ``osm_id`` (optional,
together). Other fields are kept as tags.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo_protect.cities import City
from geo_protect.errors import DataSourceError, ValidationError
from geo_protect.reference import table
from geo_protect.schema import WGS84, conform

__all__ = ["REGISTER_KIND", "SUFFIXES", "public_space_kinds", "read_spaces"]

log = logging.getLogger(__name__)

#: Kind of a register feature that does not say its kind.
REGISTER_KIND = "register"
#: File types a register may come in.
SUFFIXES = (".geojson", ".json", ".gpkg")
_FIELDS = ("id", "name", "kind", "osm_type", "osm_id")
_OSM_TYPES = ("node", "way", "relation")


def public_space_kinds() -> frozenset[str]:
    """Kinds a public space may have: the taxonomy's, ``pedestrian_street`` and ``register``.

    Returns
    -------
    frozenset of str
        The kinds.

    Examples
    --------
    >>> sorted(public_space_kinds())[:3]
    ['marketplace', 'park', 'pedestrian_area']
    """
    rules = table("osm_taxonomy")
    kinds = set(rules.loc[rules["layer"] == "public_space", "kind"].astype(str))
    return frozenset(kinds | {"pedestrian_street", REGISTER_KIND})


def read_spaces(path: Path, *, city: City) -> gpd.GeoDataFrame:
    """Read and validate a city's register of public spaces.

    Parameters
    ----------
    path : Path
        A ``.geojson`` (WGS84, RFC 7946) or ``.gpkg`` (any CRS; reprojected) file.
    city : City
        The city; every space must lie within its ``bbox``.

    Returns
    -------
    geopandas.GeoDataFrame
        A ``public_space`` layer (see :func:`geo_protect.schema.conform`), ``source`` the
        file name. ``attrs["repaired"]`` lists the ids whose invalid geometry was made
        valid (also logged as a warning).

    Raises
    ------
    DataSourceError
        If the file is missing, of another type or unreadable.
    ValidationError
        Naming the file and the feature or field at fault: a missing or empty ``id`` or
        ``name``, a repeated ``id`` or OSM uid, an unknown ``kind``, a half or bad
        ``osm_type``/``osm_id``, a missing, empty or non-polygon geometry, no CRS, or a
        space outside the city's bbox.
    """
    frame = _read(path)
    where = path.name
    if frame.crs is None:
        raise ValidationError(f"{where}: no CRS; declare one (GeoJSON is WGS84 by RFC 7946)")
    fields = _Fields.validate(frame, where)
    geoms, repaired = _geometries(frame.geometry.to_numpy(), where, fields.label)
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    if not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    _check_within_city(frame, city, where, fields.label)
    extra = [c for c in frame.columns if c not in (*_FIELDS, frame.geometry.name)]
    layer = gpd.GeoDataFrame(
        {
            "osm_type": fields.osm_type.to_numpy(),
            "osm_id": fields.osm_id.to_numpy(),
            "name": fields.names.to_numpy(),
            "kind": fields.kinds.to_numpy(),
            "tags": _tags(frame[extra]),
            "source": where,
            "data_date": pd.NA,
        },
        geometry=frame.geometry.to_numpy(),
        crs=WGS84,
        index=_uid_index(fields, where),
    )
    out = conform("public_space", layer)
    out.attrs["repaired"] = repaired
    return out


@dataclass(frozen=True)
class _Fields:
    """The validated register fields, one value per feature."""

    ids: pd.Series
    names: pd.Series
    kinds: pd.Series
    osm_type: pd.Series
    osm_id: pd.Series
    label: np.ndarray  # how error messages name each feature

    @classmethod
    def validate(cls, frame: gpd.GeoDataFrame, where: str) -> _Fields:
        for field in ("id", "name"):
            if field not in frame.columns:
                raise ValidationError(f"{where}: required field {field!r} is missing")
        ids = _text_column(frame["id"])
        _check_required(ids, where, "id", np.arange(len(frame)))
        dup = ids[ids.duplicated()]
        if len(dup):
            raise ValidationError(f"{where}: field 'id': {dup.iloc[0]!r} is not unique")
        label = np.array([f"feature id={i!r}" for i in ids], dtype=object)
        names = _text_column(frame["name"])
        _check_required(names, where, "name", label)
        kinds = _kinds(frame, where, label)
        osm_type, osm_id = _osm_ref(frame, where, label)
        return cls(ids, names, kinds, osm_type, osm_id, label)


def _check_within_city(frame: gpd.GeoDataFrame, city: City, where: str, label: np.ndarray) -> None:
    """Raise unless every (WGS84) space lies within the city's bbox."""
    west, south, east, north = city.bbox
    outside = ~shapely.covered_by(frame.geometry.to_numpy(), shapely.box(west, south, east, north))
    if outside.any():
        raise ValidationError(
            f"{where}: {', '.join(label[outside])} outside the bbox of {city.name_en} "
            f"{list(city.bbox)}"
        )


def _uid_index(fields: _Fields, where: str) -> pd.Index:
    """``osm_type/osm_id`` of the spaces that replace an OSM one, else ``register/<id>``."""
    has_osm = fields.osm_type.notna().to_numpy()
    uids = np.where(
        has_osm,
        fields.osm_type.astype(str) + "/" + fields.osm_id.astype(str),
        "register/" + fields.ids,
    )
    uid_index = pd.Index(uids, dtype="string", name="uid")
    if uid_index.has_duplicates:
        raise ValidationError(
            f"{where}: fields 'osm_type'/'osm_id': {uid_index[uid_index.duplicated()][0]} is "
            "replaced by more than one feature"
        )
    return uid_index


def _read(path: Path) -> gpd.GeoDataFrame:
    if path.suffix.lower() not in SUFFIXES:
        raise DataSourceError(f"{path}: a register must be one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataSourceError(f"{path}: register file not found")
    try:
        frame = _read_geojson(path) if path.suffix.lower() != ".gpkg" else gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataSourceError(f"{path}: cannot read the register ({exc})") from exc
    if frame.empty:
        raise ValidationError(f"{path.name}: the register holds no features")
    return frame


def _read_geojson(path: Path) -> gpd.GeoDataFrame:
    """A GeoJSON register read as written (no type guessing per column), in WGS84."""
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"{path}: cannot read the register ({exc})") from exc
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list):
        raise DataSourceError(f"{path}: not a GeoJSON FeatureCollection")
    props = [dict(f.get("properties") or {}) for f in features]
    geoms = [
        shapely.from_geojson(json.dumps(f["geometry"])) if f.get("geometry") else None
        for f in features
    ]
    frame = pd.DataFrame(props, dtype=object) if props else pd.DataFrame(index=range(0))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def _text_column(values: pd.Series) -> pd.Series:
    """Text of a column, integral numbers without a decimal point, missing as NA."""

    def text(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v).strip() or pd.NA

    return values.map(text).astype("string")


def _check_required(values: pd.Series, where: str, field: str, label: np.ndarray) -> None:
    missing = values.isna().to_numpy()
    if missing.any():
        first = label[missing][0]
        first = f"feature {first}" if isinstance(first, int | np.integer) else first
        raise ValidationError(f"{where}: {first}: required field {field!r} is empty")


def _kinds(frame: gpd.GeoDataFrame, where: str, label: np.ndarray) -> pd.Series:
    if "kind" not in frame.columns:
        return pd.Series(REGISTER_KIND, index=frame.index, dtype="string")
    kinds = _text_column(frame["kind"]).fillna(REGISTER_KIND)
    known = public_space_kinds()
    bad = ~kinds.isin(known).to_numpy()
    if bad.any():
        raise ValidationError(
            f"{where}: {label[bad][0]}: field 'kind': {kinds[bad].iloc[0]!r} is not a "
            f"public-space kind ({', '.join(sorted(known))})"
        )
    return kinds


def _osm_ref(frame: gpd.GeoDataFrame, where: str, label: np.ndarray) -> tuple[pd.Series, pd.Series]:
    n = len(frame)
    osm_type = (
        _text_column(frame["osm_type"])
        if "osm_type" in frame
        else pd.Series([pd.NA] * n, dtype="string")
    )
    raw_id = (
        _text_column(frame["osm_id"])
        if "osm_id" in frame
        else pd.Series([pd.NA] * n, dtype="string")
    )
    half = (osm_type.isna() != raw_id.isna()).to_numpy()
    if half.any():
        raise ValidationError(
            f"{where}: {label[half][0]}: give both 'osm_type' and 'osm_id', or neither"
        )
    bad_type = (osm_type.notna() & ~osm_type.isin(_OSM_TYPES)).to_numpy()
    if bad_type.any():
        raise ValidationError(
            f"{where}: {label[bad_type][0]}: field 'osm_type': {osm_type[bad_type].iloc[0]!r} "
            "is not node, way or relation"
        )
    bad_id = (raw_id.notna() & ~raw_id.str.fullmatch(r"[1-9]\d*").fillna(False)).to_numpy()
    if bad_id.any():
        raise ValidationError(
            f"{where}: {label[bad_id][0]}: field 'osm_id': {raw_id[bad_id].iloc[0]!r} is not a "
            "positive whole number"
        )
    return osm_type, raw_id.astype("Int64")


def _geometries(geoms: np.ndarray, where: str, label: np.ndarray) -> tuple[np.ndarray, list[str]]:
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        raise ValidationError(f"{where}: {label[empty][0]}: geometry is missing or empty")
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not polygonal.all():
        raise ValidationError(
            f"{where}: {label[~polygonal][0]}: geometry is a {geoms[~polygonal][0].geom_type}, "
            "expected Polygon or MultiPolygon"
        )
    invalid = ~shapely.is_valid(geoms)
    repaired: list[str] = []
    if invalid.any():
        reasons = shapely.is_valid_reason(geoms[invalid])
        geoms = geoms.copy()
        fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        polys = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        lost = shapely.is_empty(polys) | shapely.is_missing(polys)
        if lost.any():
            raise ValidationError(
                f"{where}: {label[invalid][lost][0]}: invalid geometry with no area once repaired"
            )
        geoms[invalid] = polys
        repaired = [str(x) for x in label[invalid]]
        for reason, lab in zip(reasons, label[invalid], strict=True):
            log.warning("%s: %s: invalid geometry made valid (%s)", where, lab, reason)
    return geoms, repaired


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def _tags(extra: pd.DataFrame) -> list[dict[str, str]]:
    cols = [str(c) for c in extra.columns]
    values = extra.to_numpy(dtype=object)
    present = extra.notna().to_numpy()
    return [
        {cols[j]: str(values[i, j]) for j in np.flatnonzero(present[i])} for i in range(len(extra))
    ]
