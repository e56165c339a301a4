"""Reader of OSM-derived GeoJSON (street centrelines, pedestrian areas, POI exports).

The OSM identity of a feature is read from the first of these property layouts that
fits: ``element``/``type`` + ``id`` (``node``, ``way``, ``relation``), ``osm_way_id`` /
``osm_node_id`` / ``osm_relation_id``, ``osm_type`` + ``osm_id``, or ``@id`` / ``id``
(``way/123``, overpass turbo). Tags are the ``tags`` object when there is one, else the
remaining properties without nulls; a ``tag_key`` + ``tag_value`` pair (exports that keep
one primary tag per node) is the tag ``{tag_key: tag_value}``. Values are kept as OSM
writes them (text). Features
without an OSM id get the uid ``<file stem>/<n>`` (``n`` = position in the file).
Geometries stay as drawn (polygons stay polygons).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import Element, elements_frame
from geo_protect.schema import WGS84

__all__ = ["NON_TAG_PROPERTIES", "osm_identity", "read_geojson"]

OSM_TYPES = ("node", "way", "relation")

#: Properties that identify a feature or describe the export, never OSM tags.
NON_TAG_PROPERTIES = frozenset(
    {
        "element", "id", "osm_id", "osm_type", "osm_way_id", "osm_node_id",
        "osm_relation_id", "@id", "@type", "@timestamp", "@version", "@changeset", "@user",
        "@uid", "tags", "layer_src", "tag_key", "tag_value",
    }
)  # fmt: skip

DROP_NO_GEOMETRY = "feature without geometry"
DROP_DUPLICATE = "feature repeating an OSM id already read"


def read_geojson(path: Path, *, source: Source) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read an OSM-derived GeoJSON FeatureCollection into an elements frame.

    Parameters
    ----------
    path : Path
        The ``.geojson`` file (RFC 7946 WGS84; a legacy ``crs`` member is honoured).
    source : Source
        Its registry entry (``layer`` says what the file is for; tags are kept as they
        are for the taxonomy).

    Returns
    -------
    tuple
        The elements frame and the counts of dropped features by reason.

    Raises
    ------
    DataSourceError
        If the file is missing, is not JSON or not a FeatureCollection, names an
        unknown CRS or holds an unreadable geometry.

    Examples
    --------
    >>> from geo_protect.cities import get_city
    >>> city = get_city("vilnius")
    >>> src = next(s for s in city.sources if s.layer == "public_space")
    >>> areas, drops = read_geojson(city.path(src), source=src)
    >>> areas.loc["way/54055201", "tags"]["name"]
    'Rotušės a.'
    """
    collection = _load(path)
    stem = path.name.split(".")[0]
    drops: dict[str, int] = {}
    out: list[Element] = []
    seen: set[str] = set()
    for n, feature in enumerate(collection["features"]):
        if not isinstance(feature, Mapping):
            raise DataSourceError(f"{path}: feature {n} is not a GeoJSON object")
        if not feature.get("geometry"):
            drops[DROP_NO_GEOMETRY] = drops.get(DROP_NO_GEOMETRY, 0) + 1
            continue
        props = feature.get("properties") or {}
        osm_type, osm_id = osm_identity(props)
        uid = f"{osm_type}/{osm_id}" if osm_type else f"{stem}/{n}"
        if uid in seen:
            drops[DROP_DUPLICATE] = drops.get(DROP_DUPLICATE, 0) + 1
            continue
        seen.add(uid)
        out.append((uid, osm_type, osm_id, _tags(props), _geometry(feature["geometry"], path, n)))
    frame = elements_frame(out, source=path.name, data_date=source.data_date)
    crs = _crs(collection, path)
    if not crs.equals(WGS84) and len(frame):
        frame = frame.set_crs(crs, allow_override=True).to_crs(WGS84)
    return frame, drops


def osm_identity(props: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """``(osm_type, osm_id)`` of a feature from its properties, or ``(None, None)``.

    Parameters
    ----------
    props : Mapping of str to Any
        The feature's properties.

    Returns
    -------
    tuple
        ``(osm_type, osm_id)``, or ``(None, None)`` when the properties name no OSM element.
    """
    for type_key in ("element", "type", "osm_type", "@type"):
        kind = props.get(type_key)
        if kind in OSM_TYPES:
            for id_key in ("id", "osm_id"):
                if _is_id(props.get(id_key)):
                    return str(kind), int(props[id_key])
    for kind in OSM_TYPES:
        value = props.get(f"osm_{kind}_id")
        if _is_id(value):
            return kind, int(str(value))
    for ref_key in ("@id", "id"):
        ref = props.get(ref_key)
        if isinstance(ref, str) and ref.count("/") == 1:
            kind, _, num = ref.partition("/")
            if kind in OSM_TYPES and num.isdigit():
                return kind, int(num)
    return None, None


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.isdigit()


def _tags(props: Mapping[str, Any]) -> dict[str, str]:
    nested = props.get("tags")
    if isinstance(nested, str):
        try:
            nested = json.loads(nested)
        except json.JSONDecodeError:
            nested = None
    if isinstance(nested, Mapping):
        raw = nested
    else:  # `type` is the element type in some exports and an OSM tag in others
        skip = NON_TAG_PROPERTIES | ({"type"} if props.get("type") in OSM_TYPES else set())
        raw = {k: v for k, v in props.items() if k not in skip}
    tags = {str(k): _text(v) for k, v in raw.items() if v is not None}
    key, value = props.get("tag_key"), props.get("tag_value")
    if isinstance(key, str) and key and value is not None and not isinstance(nested, Mapping):
        tags.setdefault(key, _text(value))
    return tags


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _geometry(geometry: Mapping[str, Any], path: Path, n: int) -> BaseGeometry:
    try:
        geom = shapely.from_geojson(json.dumps(geometry))
    except shapely.errors.GEOSException as exc:
        raise DataSourceError(f"{path}: feature {n}: unreadable geometry ({exc})") from exc
    if geom is None or geom.is_empty:
        raise DataSourceError(f"{path}: feature {n}: empty geometry")
    return geom


def _load(path: Path) -> dict[str, Any]:
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataSourceError(f"{path}: GeoJSON file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise DataSourceError(f"{path}: not a GeoJSON FeatureCollection")
    if not isinstance(collection.get("features"), list):
        raise DataSourceError(f"{path}: FeatureCollection without a `features` list")
    return collection


def _crs(collection: Mapping[str, Any], path: Path) -> CRS:
    name = ((collection.get("crs") or {}).get("properties") or {}).get("name")
    if not name:
        return CRS.from_user_input(WGS84)
    try:
        crs = CRS.from_user_input(name)
    except CRSError as exc:
        raise DataSourceError(f"{path}: unknown CRS {name!r} in the `crs` member") from exc
    return CRS.from_user_input(WGS84) if crs.equals(CRS.from_user_input("OGC:CRS84")) else crs
