"""Derived public spaces: pedestrian-street corridors and station forecourts.

Two kinds of public space are derived from the classified layers rather than tagged
(:func:`geo_protect.osm.taxonomy.classify` calls these in turn):

* pedestrian-street corridors: linear ``highway=pedestrian`` ways buffered by half their
  width, merged by name (:func:`pedestrian_corridors`);
* station forecourts: squares and pedestrian areas near a railway or bus station
  (:func:`station_forecourts`).

Spaces too small to hold a crowd, and corridors drawn inside a mapped square or
pedestrian area, are then dropped (:func:`drop_slivers_and_nested_corridors`).
"""

from __future__ import annotations

from collections.abc import Collection

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo_protect.citydata import IngestReport
from geo_protect.schema import WGS84, empty_layer

__all__ = [
    "DROP_SHORT_STREET",
    "drop_slivers_and_nested_corridors",
    "merge_street_surfaces",
    "pedestrian_corridors",
    "station_forecourts",
]

DROP_SHORT_STREET = "pedestrian street shorter than min_pedestrian_street_length_m"

_SPACE_KINDS_NEAR_STATIONS = ("square", "pedestrian_area")


def pedestrian_corridors(
    streets: gpd.GeoDataFrame,
    *,
    crs: str,
    classes: pd.DataFrame,
    min_length_m: float,
    report: IngestReport,
) -> gpd.GeoDataFrame:
    """Public spaces of linear pedestrian streets: buffered ways merged by name.

    Linear ``highway=pedestrian`` ways are buffered by half their width (the class's
    ``default_width_m`` when untagged); ways that touch and share a name (or are pieces
    of one OSM way) are one corridor, kept when its total length reaches
    ``min_length_m``.

    Parameters
    ----------
    streets : GeoDataFrame
        The classified ``street`` layer (WGS84, with ``highway`` and ``width_m``).
    crs : str
        The city's metric CRS, for widths and lengths.
    classes : DataFrame
        The ``highway_classes`` reference table.
    min_length_m : float
        Shortest corridor kept (``min_pedestrian_street_length_m``).
    report : IngestReport
        Counts the ways dropped as too short (:data:`DROP_SHORT_STREET`).

    Returns
    -------
    GeoDataFrame
        Public spaces of kind ``pedestrian_street`` in WGS84, uid ``corridor/{osm_id}``
        of the corridor's first way; empty when there is none.
    """
    ped = streets[streets["highway"] == "pedestrian"]
    if ped.empty:
        return empty_layer("public_space")
    lines = np.asarray(ped.geometry.to_crs(crs).values, dtype=object)
    comp = _corridor_of_each_way(ped, lines)
    length = pd.Series(shapely.length(lines)).groupby(comp).transform("sum").to_numpy()
    keep = length >= min_length_m
    report.drop("public_space", DROP_SHORT_STREET, int((~keep).sum()))
    if not keep.any():
        return empty_layer("public_space")
    default = float(classes.set_index("highway").at["pedestrian", "default_width_m"])
    width = ped["width_m"].to_numpy(dtype=float, na_value=np.nan)
    width = np.where(np.isfinite(width) & (width > 0), width, default)
    bodies = gpd.GeoDataFrame(
        {"comp": comp[keep]}, geometry=shapely.buffer(lines[keep], width[keep] / 2), crs=crs
    ).dissolve(by="comp")
    first = _first_way_of_each_corridor(ped, comp, keep)
    lead = ped.iloc[first.to_numpy()]
    out = _corridor_provenance(lead)
    geom = gpd.GeoSeries(bodies.geometry.loc[first.index].to_numpy(), crs=crs).to_crs(WGS84)
    return gpd.GeoDataFrame(out, geometry=geom.set_axis(out.index), crs=WGS84)


def _corridor_of_each_way(ped: gpd.GeoDataFrame, lines: np.ndarray) -> np.ndarray:
    """Corridor label per way: touching ways of one name, or pieces of one OSM way."""
    names = ped["name"].to_numpy(dtype=object, na_value=None)
    left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
    ids = ped["osm_id"].to_numpy(dtype=float, na_value=np.nan)
    same_name = (names[left] != None) & (names[left] == names[right])  # noqa: E711
    same_way = ~np.isnan(ids[left]) & (ids[left] == ids[right])  # pieces of one way (GraphML)
    same = (left != right) & (same_name | same_way)
    n = len(lines)
    graph = coo_matrix((np.ones(int(same.sum())), (left[same], right[same])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return np.asarray(comp)


def _first_way_of_each_corridor(
    ped: gpd.GeoDataFrame, comp: np.ndarray, keep: np.ndarray
) -> pd.Series:
    """Per kept corridor (index), the position of its way of lowest OSM id (else first)."""
    ids = ped["osm_id"].to_numpy(dtype=float, na_value=np.nan)
    order = np.lexsort((np.arange(len(ped)), np.where(np.isnan(ids), np.inf, ids), comp))
    order = order[keep[order]]
    return pd.Series(order).groupby(comp[order]).first()


def _corridor_provenance(lead: gpd.GeoDataFrame) -> pd.DataFrame:
    """Columns of the corridors, from their lead ways; uid ``corridor/{osm_id}``."""
    suffix = [
        str(int(i)) if pd.notna(i) else str(uid).rsplit("/", 1)[-1]
        for i, uid in zip(lead["osm_id"], lead.index, strict=True)
    ]
    return pd.DataFrame(
        {
            "osm_type": lead["osm_type"].to_numpy(),
            "osm_id": lead["osm_id"].to_numpy(),
            "name": lead["name"].to_numpy(),
            "kind": "pedestrian_street",
            "tags": lead["tags"].to_numpy(),
            "source": lead["source"].to_numpy(),
            "data_date": lead["data_date"].to_numpy(),
        },
        index=pd.Index(_unique([f"corridor/{s}" for s in suffix]), dtype="string", name="uid"),
    )


def station_forecourts(
    spaces: pd.DataFrame,
    pois: gpd.GeoDataFrame,
    *,
    crs: str,
    distance_m: float,
    station_tags: Collection[str],
) -> pd.DataFrame:
    """Re-class squares and pedestrian areas within ``distance_m`` of a station.

    Parameters
    ----------
    spaces : DataFrame
        Public spaces in WGS84 (with ``kind``).
    pois : GeoDataFrame
        The classified ``poi`` layer (WGS84, with ``tag``).
    crs : str
        The city's metric CRS, for distances.
    distance_m : float
        How near a station a space must be (``station_forecourt_distance_m``).
    station_tags : Collection of str
        ``key=value`` tags of the POIs that are stations.

    Returns
    -------
    DataFrame
        ``spaces`` with the kind of those near a station set to ``station_forecourt``
        (the same frame when nothing changes, else a copy).
    """
    stations = pois[pois["tag"].isin(list(station_tags))] if "tag" in pois else pois.iloc[:0]
    candidate = spaces["kind"].isin(_SPACE_KINDS_NEAR_STATIONS).to_numpy(dtype=bool, na_value=False)
    if stations.empty or not candidate.any():
        return spaces
    areas = gpd.GeoSeries(spaces.geometry.values[candidate], crs=WGS84).to_crs(crs).values
    points = stations.geometry.to_crs(crs).values
    hit, _ = shapely.STRtree(points).query(areas, predicate="dwithin", distance=distance_m)
    near = np.zeros(len(spaces), dtype=bool)
    near[np.flatnonzero(candidate)[np.unique(hit)]] = True
    spaces = spaces.copy()
    spaces.loc[near, "kind"] = "station_forecourt"
    return spaces


def drop_slivers_and_nested_corridors(
    spaces: pd.DataFrame,
    *,
    crs: str,
    min_area_m2: float,
    nested_share: float,
    report: IngestReport,
) -> pd.DataFrame:
    """Drop spaces too small to hold a crowd, and corridors drawn inside a mapped area.

    A linear pedestrian way that runs across a mapped square or pedestrian area would
    otherwise become a second, overlapping space; the mapped area is the better outline.
    Where that area bears the street's name (the street's own surface, as Strada
    Republicii in Brașov), it becomes the ``pedestrian_street``.

    Parameters
    ----------
    spaces : DataFrame
        Public spaces in WGS84 (with ``kind`` and ``name``).
    crs : str
        The city's metric CRS, for areas.
    min_area_m2 : float
        Smallest space kept (``min_public_space_area_m2``).
    nested_share : float
        Share of a corridor's area inside mapped areas above which it is dropped
        (``nested_corridor_share``).
    report : IngestReport
        Counts the spaces dropped, by reason.

    Returns
    -------
    DataFrame
        The spaces kept.
    """
    if len(spaces) == 0:
        return spaces
    metric = gpd.GeoSeries(spaces.geometry.values, crs=WGS84).to_crs(crs).values
    area = shapely.area(metric)
    small = area < min_area_m2
    corridor = (spaces["kind"] == "pedestrian_street").to_numpy(dtype=bool, na_value=False)
    nested = np.zeros(len(spaces), dtype=bool)
    mapped = np.flatnonzero(~corridor & ~small)
    if corridor.any() and len(mapped):
        ci, mi = shapely.STRtree(metric[mapped]).query(metric[corridor], predicate="intersects")
        if len(ci):
            corridors = np.flatnonzero(corridor)[ci]
            shared = shapely.area(shapely.intersection(metric[corridors], metric[mapped[mi]]))
            covered = np.bincount(corridors, weights=shared, minlength=len(spaces))
            nested = corridor & (covered >= nested_share * area)
            # a mapped pedestrian area named like the street drawn in it is that street's
            # surface: it takes the corridor's kind, so its ends and junctions are found
            names = spaces["name"].to_numpy(dtype=object, na_value=None)
            area_kind = spaces["kind"].to_numpy(dtype=object, na_value=None)
            surface = (
                nested[corridors]
                & (names[corridors] == names[mapped[mi]])
                & (area_kind[mapped[mi]] == "pedestrian_area")
            )
            if surface.any():
                spaces = spaces.copy()
                spaces.iloc[np.unique(mapped[mi][surface]), spaces.columns.get_loc("kind")] = (
                    "pedestrian_street"
                )
    report.drop(
        "public_space",
        f"area under min_public_space_area_m2 ({min_area_m2:g} m²)",
        int(small.sum()),
    )
    report.drop(
        "public_space",
        "pedestrian street drawn inside a mapped square or area",
        int((nested & ~small).sum()),
    )
    return spaces[~(small | nested)]


DROP_MERGED_SURFACE = "pedestrian-street area merged with the adjoining one of the same name"


def merge_street_surfaces(
    spaces: pd.DataFrame, *, crs: str, gap_m: float, report: IngestReport
) -> pd.DataFrame:
    """Merge adjoining pedestrian-street spaces that bear the same name into one space.

    A street mapped as several areas (Strada Republicii in Brașov is two) is one place for
    its crowd and its entries: left apart, the seam between the pieces would count as
    entries of each. The merged space keeps the uid, OSM id and tags of its first piece
    (by uid); the others are counted as dropped.

    Parameters
    ----------
    spaces : DataFrame
        Public spaces in WGS84.
    crs : str
        Metric CRS to measure ``gap_m`` in.
    gap_m : float
        Pieces this close count as adjoining.
    report : IngestReport
        Counts the pieces merged into another (:data:`DROP_MERGED_SURFACE`).

    Returns
    -------
    DataFrame
        The spaces, one per merged street (the same frame when nothing merges).
    """
    street = (spaces["kind"] == "pedestrian_street").to_numpy(dtype=bool, na_value=False)
    names = spaces["name"].to_numpy(dtype=object, na_value=None)
    candidates = np.flatnonzero(street & (names != None))  # noqa: E711 - elementwise
    if len(candidates) < 2:
        return spaces
    metric = gpd.GeoSeries(spaces.geometry.values[candidates], crs=WGS84).to_crs(crs).values
    a, b = shapely.STRtree(metric).query(metric, predicate="dwithin", distance=gap_m)
    keep = (a < b) & (names[candidates][a] == names[candidates][b])
    if not keep.any():
        return spaces
    n = len(candidates)
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups = pd.Series(candidates).groupby(label)
    spaces = spaces.copy()
    geometry = spaces.geometry.to_numpy().copy()
    merged: list[int] = []
    for _, rows in groups:
        if len(rows) < 2:
            continue
        ordered = rows.to_numpy()[np.argsort(spaces.index.to_numpy()[rows.to_numpy()])]
        geometry[ordered[0]] = shapely.union_all(geometry[ordered])
        merged.extend(ordered[1:].tolist())
    spaces["geometry"] = geometry
    report.drop("public_space", DROP_MERGED_SURFACE, len(merged))
    return spaces.drop(index=spaces.index[merged])


def _unique(uids: list[str]) -> list[str]:
    """Suffix repeated uids with ``#2``, ``#3``... (first one unchanged)."""
    seen: dict[str, int] = {}
    out = []
    for uid in uids:
        seen[uid] = seen.get(uid, 0) + 1
        out.append(uid if seen[uid] == 1 else f"{uid}#{seen[uid]}")
    return out
