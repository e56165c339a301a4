"""Frontage breaches: open edges of a space that a road runs alongside.

Where a hostile-vehicle edge runs within ``frontage_max_offset_m`` of a space's outline
with no mapped barrier or building in between, a vehicle can mount the kerb anywhere
along that stretch. Each such stretch at least ``frontage_min_length_m`` long becomes a
``vehicle_permeable`` entry of kind ``frontage`` at its middle (part of
:func:`geo_protect.analysis.entries.entry_points`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo_protect.reference import table

__all__ = ["frontage_breaches"]

_GeomArray = npt.NDArray[np.object_]
_IntArray = npt.NDArray[np.intp]


def frontage_breaches(
    polys: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    *,
    barriers: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    crossings: pd.DataFrame,
    max_offset_m: float,
    min_length_m: float,
    tolerance_m: float,
    merge_m: float,
    max_bollard_gap_m: float,
) -> pd.DataFrame:
    """Stretches of outline a hostile-vehicle edge runs along with nothing in between.

    Parameters
    ----------
    polys : GeoDataFrame
        The public spaces in a metric CRS (polygons or multipolygons).
    edges : GeoDataFrame
        Network edges in the same CRS; the open hostile-vehicle ones (not
        ``blocked_by`` a barrier) are the roads looked at.
    barriers : GeoDataFrame or None
        The ``barrier`` layer (any CRS): barriers that stop vehicles (``barrier_types``
        reference table) between a road and an outline shield it.
    buildings : GeoDataFrame or None
        The ``building`` layer (any CRS): buildings in between shield the outline too.
    crossings : DataFrame
        The network entries already found (:func:`.crossings.network_crossings`);
        the outline within ``merge_m + max_offset_m`` of them belongs to them.
    max_offset_m : float
        How far from the outline a road may run (``frontage_max_offset_m``).
    min_length_m : float
        Shortest stretch reported (``frontage_min_length_m``).
    tolerance_m : float
        Outline tolerance (``entry_boundary_tolerance_m``).
    merge_m : float
        Entry merge distance (``entry_merge_m``).
    max_bollard_gap_m : float
        A post between a road and an outline shields this far on either side
        (``max_bollard_gap_m``).

    Returns
    -------
    DataFrame
        One row per breach, of kind ``frontage`` and class ``vehicle_permeable``, with
        the columns of :func:`~geo_protect.analysis.crossings.network_crossings`; ``width_m`` is
        the stretch's length. An empty frame when there is none.
    """
    vehicle = edges[edges["hostile_vehicle"] & edges["blocked_by"].isna()]
    if vehicle.empty:
        return pd.DataFrame()
    lines = vehicle.geometry.values
    along = _roads_along(polys, lines, max_offset_m=max_offset_m, tolerance_m=tolerance_m)
    if along is None:
        return pd.DataFrame()
    si, ei, outside, stretch = along
    stoppers = _stoppers(barriers, buildings, polys.crs)
    if stoppers is not None and len(stoppers):
        stretch = _shielded(
            stretch,
            outside,
            stoppers,
            max_offset_m=max_offset_m,
            tolerance_m=tolerance_m,
            max_bollard_gap_m=max_bollard_gap_m,
        )
    if len(crossings):
        stretch = _left_to_crossings(stretch, si, crossings, len(polys), merge_m + max_offset_m)
    parts, owner = shapely.get_parts(shapely.line_merge(stretch), return_index=True)
    keep = shapely.length(parts) >= min_length_m
    parts, owner = parts[keep], owner[keep]
    if len(parts) == 0:
        return pd.DataFrame()
    found = _breaches(parts, si[owner], vehicle.iloc[ei[owner]], lines[ei[owner]])
    # a stable order whatever the order of the intermediate geometry: two roads along the
    # same stretch give breaches at the same point, and the first one of them is kept
    return found.sort_values(["space", "x", "y", "edge"], kind="stable").reset_index(drop=True)


def _roads_along(
    polys: gpd.GeoDataFrame, lines: _GeomArray, *, max_offset_m: float, tolerance_m: float
) -> tuple[_IntArray, _IntArray, _GeomArray, _GeomArray] | None:
    """Pairs of a space and a road within ``max_offset_m`` of its outline.

    Returns the space and road numbers of each pair, the road's stretch outside the
    space and the stretch of outline within the offset of it; ``None`` when no road
    comes that close.
    """
    geom = polys.geometry.values
    bnd = shapely.boundary(geom)
    si, ei = shapely.STRtree(lines).query(bnd, predicate="dwithin", distance=max_offset_m)
    if len(si) == 0:
        return None
    # the part of the outline within the offset of the road's stretches outside the space
    outside = shapely.difference(lines[ei], shapely.buffer(geom[si], -tolerance_m))
    keep = ~shapely.is_empty(outside)
    si, ei, outside = si[keep], ei[keep], outside[keep]
    zone = shapely.buffer(outside, max_offset_m, cap_style="flat")
    stretch = shapely.intersection(bnd[si], zone)
    return si, ei, outside, stretch


def _shielded(
    stretch: _GeomArray,
    outside: _GeomArray,
    stoppers: gpd.GeoDataFrame,
    *,
    max_offset_m: float,
    tolerance_m: float,
    max_bollard_gap_m: float,
) -> _GeomArray:
    """``stretch`` without the outline shielded by what stands between it and the road.

    A post shields ``max_bollard_gap_m`` on either side, anything else ``max_offset_m``.
    """
    near_road = shapely.intersection(outside, shapely.buffer(stretch, max_offset_m + tolerance_m))
    between = shapely.buffer(shapely.convex_hull(shapely.union(stretch, near_road)), -tolerance_m)
    bi, ki = stoppers.sindex.query(between, predicate="intersects")
    if len(bi):
        piece = shapely.intersection(between[bi], stoppers.geometry.values[ki])
        is_point = shapely.get_type_id(stoppers.geometry.values[ki]) == 0
        radius = np.where(is_point, max_bollard_gap_m, max_offset_m)
        shadow = (
            gpd.GeoSeries(shapely.buffer(piece, radius))
            .groupby(bi)
            .agg(lambda g: shapely.union_all(g.values))
        )
        idx = shadow.index.to_numpy()
        stretch[idx] = shapely.difference(stretch[idx], np.asarray(shadow.values))
    return stretch


def _left_to_crossings(
    stretch: _GeomArray, si: _IntArray, crossings: pd.DataFrame, n_spaces: int, reach_m: float
) -> _GeomArray:
    """``stretch`` without the outline within ``reach_m`` of a network entry of its space
    (that outline belongs to the entry)."""
    ordered = crossings.sort_values("space")
    space_no = ordered["space"].to_numpy(dtype=np.int64)
    holders, dense = np.unique(space_no, return_inverse=True)
    points = shapely.multipoints(ordered[["x", "y"]].to_numpy(dtype=float), indices=dense)
    known = np.full(n_spaces, None, dtype=object)
    known[holders] = shapely.buffer(points, reach_m)
    has = np.isin(si, space_no)
    stretch[has] = shapely.difference(stretch[has], known[si[has]])
    return stretch


def _breaches(
    parts: _GeomArray, space: _IntArray, e: gpd.GeoDataFrame, road: _GeomArray
) -> pd.DataFrame:
    """One entry at the middle of each stretch ``parts`` of outline of ``space`` along
    road edge ``e`` (geometry ``road``), in the columns of the network crossings."""
    mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
    s = shapely.line_locate_point(road, mid)
    foot = shapely.line_interpolate_point(road, s)
    xy = shapely.get_coordinates(mid)
    d = shapely.get_coordinates(mid) - shapely.get_coordinates(foot)
    norm = np.hypot(d[:, 0], d[:, 1])
    norm[norm == 0] = np.nan
    length_e = shapely.length(road)
    ahead = shapely.line_interpolate_point(road, np.minimum(s + 1.0, length_e))
    back = shapely.line_interpolate_point(road, np.maximum(s - 1.0, 0.0))
    tangent = shapely.get_coordinates(ahead) - shapely.get_coordinates(back)
    tangent /= np.hypot(tangent[:, 0], tangent[:, 1])[:, None]
    return pd.DataFrame(
        {
            "space": space,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "walk": e["walk"].to_numpy(dtype=bool),
            "vehicle": True,
            "networks": np.where(e["walk"].to_numpy(dtype=bool), "walk+vehicle", "vehicle"),
            "entry_class": "vehicle_permeable",
            "width_m": shapely.length(parts),
            "width_source": "frontage",
            "street_uid": e["street_uid"].astype(object).to_numpy(),
            "edge": pd.array(e.index.to_numpy(), dtype="Int64"),
            "at_m": s,
            # the vehicle drives along the road to the foot point, then mounts the kerb:
            # towards the farther end, so the run-up covers most of the edge
            "towards": np.where(s >= length_e / 2, "v", "u"),
            "in_dx": d[:, 0] / norm,
            "in_dy": d[:, 1] / norm,
            "way_dx": tangent[:, 0],
            "way_dy": tangent[:, 1],
            "kind": "frontage",
            "mapped": False,
        }
    )


def _stoppers(
    barriers: gpd.GeoDataFrame | None, buildings: gpd.GeoDataFrame | None, crs: object
) -> gpd.GeoDataFrame | None:
    """What stops a vehicle mounting the kerb: barriers that stop vehicles (or rows of
    posts) and buildings, in ``crs``."""
    geoms = []
    if barriers is not None and not barriers.empty:
        stops = table("barrier_types").set_index("barrier")["stops_vehicle"]
        kind = barriers["kind"].map(stops).fillna("yes")
        geoms.append(barriers[(kind != "no").to_numpy()].to_crs(crs).geometry.values)
    if buildings is not None and not buildings.empty:
        geoms.append(buildings.to_crs(crs).geometry.values)
    if not geoms:
        return None
    return gpd.GeoDataFrame(geometry=np.concatenate(geoms), crs=crs)
