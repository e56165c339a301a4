"""The OSM taxonomy: which stored layer and class each OSM element belongs to.

One set of rules classifies the elements of every reader (PBF/XML, Overpass JSON, GraphML
edges, GeoJSON), so a square is a square whatever file it came from. The rules are the
rows of ``data/reference/osm_taxonomy.csv``:

``layer, kind, key, values``
    An element with tag ``key`` set to one of ``values`` (``a|b|c``; ``*`` for any value
    but ``no``) belongs to ``layer`` with class ``kind`` (``*``: the tag's value).
``geometry``
    Which shapes the rule takes: ``node`` (points), ``line``, ``area`` or ``any``.
``closed_way``
    When a closed way counts as an area: ``area`` (unless ``area=no``) or ``area=yes``
    (only when tagged so, e.g. ``highway=pedestrian`` plazas). Polygons always are areas.
``kind_key``
    Optional key whose value is the class instead (``surveillance:type``).

The first matching row of a layer wins, so the table order is the priority. An element
may land in several layers (a park is a public space and landcover). Two kinds of public
space are derived rather than tagged (:mod:`geo_protect.osm.derived_spaces`): pedestrian-street
corridors (linear ``highway=pedestrian`` ways buffered by half their width, merged by
name) and station forecourts (squares and pedestrian areas near a railway or bus station).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.citydata import IngestReport
from geo_protect.errors import ValidationError
from geo_protect.osm.derived_spaces import DROP_SHORT_STREET as DROP_SHORT_STREET
from geo_protect.osm.derived_spaces import (
    drop_slivers_and_nested_corridors,
    merge_street_surfaces,
    pedestrian_corridors,
    station_forecourts,
)
from geo_protect.osm.tags import parse_length, parse_maxspeed, parse_number, tag_columns, tag_dicts
from geo_protect.osm.taxonomy_rules import Match, Rule, match_rules, read_rules
from geo_protect.reference import parameter, table
from geo_protect.schema import SOURCE_LAYERS, WGS84, conform, empty_layer

__all__ = [
    "STATION_TAGS",
    "classify",
    "layers_of",
    "osm_keys",
]

Shape = Literal["node", "line", "closed_line", "area"]

#: POI tags that make a nearby square or pedestrian area a station forecourt.
STATION_TAGS: tuple[str, ...] = (
    "railway=station",
    "public_transport=station",
    "amenity=bus_station",
)


_AREA_LAYERS = ("public_space", "building", "landcover")
_POINT_LAYERS = ("entrance", "poi", "surveillance")
#: Keys read for the extra columns of a layer.
_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "poi": ("capacity",),
    "barrier": ("maxwidth",),
    "building": ("building:levels",),
    "street": ("foot", "width", "lanes", "maxspeed"),
}
DROP_INVALID_AREA = "area whose outline does not enclose a surface"
DROP_NOT_A_LINE = "street not drawn as a single line"


def classify(
    elements: gpd.GeoDataFrame,
    *,
    crs: str,
    report: IngestReport,
    rules: pd.DataFrame | None = None,
    highway_classes: pd.DataFrame | None = None,
    min_vehicle_width_m: float | None = None,
    min_pedestrian_street_length_m: float | None = None,
    station_forecourt_distance_m: float | None = None,
    min_public_space_area_m2: float | None = None,
    nested_corridor_share: float | None = None,
    station_tags: Collection[str] = STATION_TAGS,
) -> dict[str, gpd.GeoDataFrame]:
    """Sort an elements frame into the source layers of :mod:`geo_protect.schema`.

    Parameters
    ----------
    elements : GeoDataFrame
        An elements frame (see :mod:`geo_protect.osm.elements`) from any reader; ``tags`` may
        be dicts or JSON text.
    crs : str
        The city's metric CRS, for widths, lengths and distances.
    report : IngestReport
        Receives the counts of what was dropped, by layer and reason.
    rules, highway_classes : DataFrame, optional
        The ``osm_taxonomy`` and ``highway_classes`` reference tables (read by default).
    min_vehicle_width_m, min_pedestrian_street_length_m : float, optional
        Override the values of the ``parameters`` reference table.
    station_forecourt_distance_m, min_public_space_area_m2, nested_corridor_share : float, optional
        Override the values of the ``parameters`` reference table.
    station_tags : Collection of str
        ``key=value`` tags of the POIs that make nearby squares station forecourts.

    Returns
    -------
    dict
        Every layer of :data:`~geo_protect.schema.SOURCE_LAYERS`, conformed (possibly
        empty), in WGS84.

    Raises
    ------
    ValidationError
        If the elements frame is not in WGS84.
    ConfigError
        If a rule of ``osm_taxonomy.csv`` is malformed.

    Examples
    --------
    >>> from shapely import Point
    >>> from geo_protect.osm.elements import elements_frame
    >>> els = elements_frame(
    ...     [("node/1", "node", 1, {"barrier": "bollard"}, Point(25.58, 45.64))],
    ...     source="doc", data_date=None)
    >>> layers = classify(els, crs="EPSG:32635", report=IngestReport())
    >>> layers["barrier"]["kind"].tolist()
    ['bollard']
    """
    _check_wgs84(elements)
    rule_list = read_rules(rules)
    classes = table("highway_classes") if highway_classes is None else highway_classes
    tagged = _TaggedElements.read(elements, rule_list)
    matched = match_rules(rule_list, tagged.cols, _shape_masks(tagged.geoms))
    min_width = _param(min_vehicle_width_m, "min_vehicle_width_m")
    layers = {
        name: _source_layer(name, tagged, matched.get(name), classes, min_width, report)
        for name in SOURCE_LAYERS
    }
    layers["public_space"] = _public_spaces(
        layers,
        crs=crs,
        classes=classes,
        report=report,
        min_length_m=_param(min_pedestrian_street_length_m, "min_pedestrian_street_length_m"),
        station_distance_m=_param(station_forecourt_distance_m, "station_forecourt_distance_m"),
        station_tags=station_tags,
        min_area_m2=_param(min_public_space_area_m2, "min_public_space_area_m2"),
        nested_share=_param(nested_corridor_share, "nested_corridor_share"),
    )
    return {name: conform(name, layers[name]) for name in SOURCE_LAYERS}


def _check_wgs84(elements: gpd.GeoDataFrame) -> None:
    if elements.crs is None or not elements.crs.equals(WGS84):
        raise ValidationError(f"elements frame: CRS must be {WGS84}, got {elements.crs}")


@dataclass(frozen=True)
class _TaggedElements:
    """An elements frame with its tags parsed: the input every layer is cut from."""

    elements: gpd.GeoDataFrame
    tags: list[dict[str, str]]
    cols: Mapping[str, np.ndarray]  # the tags the rules (and names) look at, as columns
    geoms: np.ndarray

    @classmethod
    def read(cls, elements: gpd.GeoDataFrame, rule_list: Sequence[Rule]) -> _TaggedElements:
        tags = tag_dicts(elements["tags"])
        keys = {r.key for r in rule_list} | {r.kind_key for r in rule_list if r.kind_key}
        return cls(
            elements=elements,
            tags=tags,
            cols=tag_columns(tags, keys | {"area", "name"}),
            geoms=np.asarray(elements.geometry.values, dtype=object),
        )


def _shape_masks(geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Which geometries are points, lines, closed rings and polygons (for :func:`_match`)."""
    types = shapely.get_type_id(geoms)
    return {
        "point": types == 0,
        "linear": np.isin(types, (1, 5)),
        "closed": (types == 1) & shapely.is_closed(geoms) & (shapely.get_num_points(geoms) >= 4),
        "poly": np.isin(types, (3, 6)),
    }


def _source_layer(
    name: str,
    tagged: _TaggedElements,
    hit: Match | None,
    classes: pd.DataFrame,
    min_width_m: float,
    report: IngestReport,
) -> gpd.GeoDataFrame:
    """One source layer: the elements its rules matched, shaped and with its own columns."""
    if hit is None or not hit[0].any():
        return empty_layer(name)
    mask, kind, tag, as_area = hit
    frame = _provenance(tagged.elements, tagged.cols, mask, kind)
    geom = _layer_geometry(name, tagged.geoms[mask], as_area[mask])
    frame = _with_geometry(frame, geom, name, report)
    pos = frame.pop("_pos").to_numpy()
    extra = tag_columns([tagged.tags[i] for i in pos], _LAYER_KEYS.get(name, ()))
    return _layer_columns(name, frame, extra, tag[pos], classes, min_width_m)


def _layer_geometry(name: str, geom: np.ndarray, as_area: np.ndarray) -> np.ndarray:
    """The shapes a layer stores: areas as polygons, points as points, streets as lines."""
    if name in _AREA_LAYERS:
        return _polygons(geom, as_area)
    if name in _POINT_LAYERS:
        return _points(geom, as_area)
    if name == "barrier":
        return np.where(as_area, _polygons(geom, as_area), geom)
    if name == "street":  # a MultiLineString that is one line in pieces: merge it
        multi = shapely.get_type_id(geom) == 5
        pieces = np.where(multi, geom, np.full_like(geom, None))
        return np.where(multi, shapely.line_merge(pieces), geom)
    return geom


def _layer_columns(
    name: str,
    frame: gpd.GeoDataFrame,
    extra: Mapping[str, np.ndarray],
    tag: np.ndarray,
    classes: pd.DataFrame,
    min_width_m: float,
) -> gpd.GeoDataFrame:
    """The columns of a layer beyond provenance, parsed from its ``_LAYER_KEYS`` tags."""
    if name == "poi":
        frame["tag"] = tag
        frame["capacity"] = parse_number(_series(extra["capacity"], frame))
    elif name == "barrier":
        frame["maxwidth_m"] = parse_length(_series(extra["maxwidth"], frame))
    elif name == "building":
        frame["levels"] = parse_number(_series(extra["building:levels"], frame))
    elif name == "street":
        frame = _street_columns(frame, extra, classes, min_width_m)
    return frame


def _public_spaces(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    crs: str,
    classes: pd.DataFrame,
    report: IngestReport,
    min_length_m: float,
    station_distance_m: float,
    station_tags: Collection[str],
    min_area_m2: float,
    nested_share: float,
) -> gpd.GeoDataFrame:
    """Tagged public spaces plus the derived ones (:mod:`~geo_protect.osm.derived_spaces`)."""
    corridors = pedestrian_corridors(
        layers["street"], crs=crs, classes=classes, min_length_m=min_length_m, report=report
    )
    spaces = (
        pd.concat([layers["public_space"], corridors]) if len(corridors) else layers["public_space"]
    )
    spaces = station_forecourts(
        spaces, layers["poi"], crs=crs, distance_m=station_distance_m, station_tags=station_tags
    )
    spaces = drop_slivers_and_nested_corridors(
        spaces, crs=crs, min_area_m2=min_area_m2, nested_share=nested_share, report=report
    )
    spaces = merge_street_surfaces(
        spaces, crs=crs, gap_m=parameter("street_surface_gap_m"), report=report
    )
    return gpd.GeoDataFrame(spaces, geometry="geometry", crs=WGS84)


def osm_keys(rules: pd.DataFrame | None = None) -> list[str]:
    """The OSM keys the taxonomy looks at (for readers that pre-filter elements by key).

    Parameters
    ----------
    rules : DataFrame, optional
        The ``osm_taxonomy`` reference table (read by default).

    Returns
    -------
    list of str
        The keys, sorted.

    Examples
    --------
    >>> "place" in osm_keys() and "highway" in osm_keys()
    True
    """
    return sorted({r.key for r in read_rules(rules)})


def layers_of(
    tags: Sequence[Mapping[str, str]],
    *,
    shapes: Sequence[Shape],
    rules: pd.DataFrame | None = None,
) -> list[list[str]]:
    """Layers each element would land in, from its tags and shape (to attribute drops).

    Parameters
    ----------
    tags : Sequence of Mapping
        The elements' OSM tags.
    shapes : Sequence of str
        Per element: ``node``, ``line`` (an open way), ``closed_line`` (a closed way) or
        ``area`` (a multipolygon relation).
    rules : DataFrame, optional
        The ``osm_taxonomy`` reference table (read by default).

    Returns
    -------
    list of list of str
        Per element, the names of the layers it matches, in ``SOURCE_LAYERS`` order.

    Examples
    --------
    >>> layers_of([{"highway": "pedestrian", "area": "yes"}, {"highway": "pedestrian"}],
    ...           shapes=["closed_line", "closed_line"])
    [['public_space'], ['street']]
    """
    rule_list = read_rules(rules)
    keys = {r.key for r in rule_list} | {r.kind_key for r in rule_list if r.kind_key} | {"area"}
    cols = tag_columns(tags, keys)
    shape = np.asarray(shapes, dtype=object)
    base = {
        "point": shape == "node",
        "linear": np.isin(shape, ["line", "closed_line"]),
        "closed": shape == "closed_line",
        "poly": shape == "area",
    }
    matched = match_rules(rule_list, cols, base)
    names = [name for name in SOURCE_LAYERS if name in matched]
    return [[name for name in names if matched[name][0][i]] for i in range(len(shape))]


# --------------------------------------------------------------------------- geometry


def _polygons(geoms: np.ndarray, closed_area: np.ndarray) -> np.ndarray:
    """Closed ways as polygons, polygons as they are; invalid ones repaired (None if empty)."""
    out = np.asarray(geoms, dtype=object).copy()
    if closed_area.any():
        coords, idx = shapely.get_coordinates(out[closed_area], return_index=True)
        rings = shapely.linearrings(coords, indices=idx)
        out[closed_area] = shapely.polygons(rings)
    polygonal = np.isin(shapely.get_type_id(out), (3, 6))
    out[~polygonal] = None
    bad = polygonal & ~shapely.is_valid(out)
    if bad.any():
        fixed = shapely.make_valid(out[bad])
        parts, owner = shapely.get_parts(fixed, return_index=True)
        keep = shapely.get_type_id(parts) == 3
        merged = np.full(len(fixed), None, dtype=object)
        if keep.any():
            owners = np.unique(owner[keep])
            merged[owners] = shapely.multipolygons(
                parts[keep], indices=np.searchsorted(owners, owner[keep])
            )
        out[bad] = merged
    out[shapely.is_empty(out)] = None
    return out


def _points(geoms: np.ndarray, closed_area: np.ndarray) -> np.ndarray:
    """Points as they are; areas and lines by a representative point."""
    out = np.asarray(geoms, dtype=object).copy()
    if closed_area.any():
        out[closed_area] = _polygons(out[closed_area], np.ones(int(closed_area.sum()), dtype=bool))
    other = shapely.get_type_id(out) != 0
    valid = other & ~shapely.is_missing(out)
    out[valid] = shapely.point_on_surface(out[valid])
    return out


def _with_geometry(
    frame: pd.DataFrame, geom: np.ndarray, layer: str, report: IngestReport
) -> gpd.GeoDataFrame:
    """Attach geometries, dropping (and counting) those that could not be built."""
    ok = ~shapely.is_missing(geom) & ~shapely.is_empty(geom)
    if layer == "street":
        single = shapely.get_type_id(geom) == 1
        report.drop(layer, DROP_NOT_A_LINE, int((ok & ~single).sum()))
        ok &= single
    else:
        report.drop(layer, DROP_INVALID_AREA, int((~ok).sum()))
    return gpd.GeoDataFrame(
        frame[ok], geometry=gpd.GeoSeries(geom[ok], index=frame.index[ok], crs=WGS84)
    )


# --------------------------------------------------------------------------- columns


def _provenance(
    elements: gpd.GeoDataFrame, cols: Mapping[str, np.ndarray], mask: np.ndarray, kind: np.ndarray
) -> pd.DataFrame:
    src = elements[mask]
    frame = pd.DataFrame(
        {
            "osm_type": src["osm_type"].astype("string").to_numpy(),
            "osm_id": src["osm_id"].astype("Int64").to_numpy(),
            "name": pd.array(cols["name"][mask], dtype="string"),
            "kind": pd.array(kind[mask], dtype="string"),
            "tags": src["tags"].to_numpy(),
            "source": src["source"].astype("string").to_numpy(),
            "data_date": src["data_date"].astype("string").to_numpy(),
            "_pos": np.flatnonzero(mask),
        },
        index=pd.Index(src.index.astype("string"), name="uid"),
    )
    return frame


def _street_columns(
    frame: gpd.GeoDataFrame,
    cols: Mapping[str, np.ndarray],
    classes: pd.DataFrame,
    min_width_m: float,
) -> gpd.GeoDataFrame:
    highway = pd.Series(frame["kind"].to_numpy(dtype=object), index=frame.index, dtype="string")
    by_class = classes.set_index("highway")
    walk_class = highway.map(by_class["walk"].astype(bool)).fillna(False).astype(bool)
    vehicle_class = highway.map(by_class["hostile_vehicle"].astype(bool)).fillna(False).astype(bool)
    width = parse_length(pd.Series(cols["width"], index=frame.index))
    foot_no = pd.Series(cols["foot"], index=frame.index, dtype="object") == "no"
    frame["highway"] = highway
    frame["walk"] = (walk_class & ~foot_no).astype("boolean")
    frame["hostile_vehicle"] = (vehicle_class & ~(width < min_width_m)).astype("boolean")
    frame["width_m"] = width
    frame["lanes"] = parse_number(pd.Series(cols["lanes"], index=frame.index))
    frame["maxspeed_kmh"] = parse_maxspeed(pd.Series(cols["maxspeed"], index=frame.index))
    return frame


# --------------------------------------------------------------------------- helpers


def _param(value: float | None, name: str) -> float:
    return parameter(name) if value is None else float(value)


def _series(values: np.ndarray, frame: pd.DataFrame) -> pd.Series:
    return pd.Series(values, index=frame.index, dtype="object")
