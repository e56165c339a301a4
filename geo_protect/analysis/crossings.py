"""Network crossings: where the walk and hostile-vehicle networks cross a space's outline.

The network part of :func:`geo_protect.analysis.entries.entry_points`. For every way piece
(network edge) that reaches an outline:

* each point where an edge meets the outline is looked at from both sides, a few metres
  along the edge (``entry_probe_m``): the edge is *inside* the space there, *outside*,
  or *along* the outline (within ``entry_boundary_tolerance_m``);
* a point is an entry when some edge there goes inside and some other side is outside
  or along the outline (a street crossing the outline, or continuing into the space
  from a node on it), or when every edge there comes from outside and ends on the
  outline (OSM pedestrian areas are often not in the street layer: streets end on
  their outline); edges that only run along the outline, or touch it from inside, are
  not;
* entry points closer than ``entry_merge_m`` are one entry.

An entry is ``vehicle_permeable`` when a hostile-vehicle edge reaches it from outside
and no closing barrier stands on that edge between the entry and its outer end (every
closing barrier of the network's ``barriers`` table counts, wherever it stands; one
within ``entry_barrier_tolerance_m`` inside the entry closes it too), ``blocked`` when
every such edge is closed, ``pedestrian_only`` when no hostile-vehicle edge reaches it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["network_crossings"]

# states of a way just beside an outline point
_ALONG, _INSIDE, _OUTSIDE = 0, 1, 2
#: Outline points of edge sides closer than this (metres) are one point (grid key).
_POINT_KEY_M = 0.05


def network_crossings(
    polys: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    closures: pd.DataFrame | None,
    *,
    tolerance_m: float,
    probe_m: float,
    merge_m: float,
    barrier_tolerance_m: float,
) -> pd.DataFrame:
    """Entries where network edges cross (or end on) the outlines of public spaces.

    Parameters
    ----------
    polys : GeoDataFrame
        The public spaces in a metric CRS (polygons or multipolygons).
    edges : GeoDataFrame
        The walk and hostile-vehicle edges of the
        :class:`~geo_protect.analysis.network.StreetNetwork`, in the same CRS.
    closures : DataFrame or None
        Every closing barrier with its position along its edge
        (:attr:`~geo_protect.analysis.network.StreetNetwork.barriers`: ``edge``,
        ``at_m``); ``None`` when there is none.
    tolerance_m : float
        How close a point must be to an outline to be on it
        (``entry_boundary_tolerance_m``).
    probe_m : float
        How far along an edge, on either side of the outline, its state is read
        (``entry_probe_m``).
    merge_m : float
        Entry points of one space closer than this are one entry (``entry_merge_m``).
    barrier_tolerance_m : float
        Slack when placing a closing barrier on one side of the entry
        (``entry_barrier_tolerance_m``).

    Returns
    -------
    DataFrame
        One row per merged entry, of kind ``crossing``: ``space`` (row number in
        ``polys``), point ``x, y``, ``walk``, ``vehicle``, ``networks``,
        ``entry_class``, ``width_m``, ``width_source``, ``street_uid``, ``edge``,
        ``at_m``, ``towards``, the direction into the space ``in_dx, in_dy`` and the
        way's direction ``way_dx, way_dy``. An empty frame when nothing crosses.
    """
    half = _half_edges(polys, edges, tolerance_m, probe_m)
    return _network_entries(polys, edges, half, closures, merge_m, barrier_tolerance_m)


def _half_edges(
    polys: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, tol: float, probe: float
) -> pd.DataFrame:
    """Every edge side at every point where an edge meets a space outline.

    One row per (space, edge, position, side): ``space`` (row number in ``polys``),
    ``edge`` (label), ``s`` (metres from ``u``), ``side`` (-1 towards ``u``, +1
    towards ``v``), ``state`` (along / inside / outside), point ``x, y`` and the
    unit direction ``dx, dy`` from the point along that side.
    """
    geom = polys.geometry.values
    bnd = shapely.boundary(geom)
    lines = edges.geometry.values
    si, ei = shapely.STRtree(lines).query(bnd, predicate="dwithin", distance=tol)
    if len(si) == 0:
        return pd.DataFrame(columns=["space", "edge", "s", "side", "state", "x", "y", "dx", "dy"])
    line = lines[ei]
    length = shapely.length(line)
    # (a) points where the edge meets the outline: vertices of the intersection
    inter = shapely.intersection(line, bnd[si])
    xy, pair = shapely.get_coordinates(inter, return_index=True)
    s_cross = shapely.line_locate_point(line[pair], shapely.points(xy))
    # (b) edge ends on (or within tolerance of) the outline
    ends = np.r_[shapely.get_point(line, 0), shapely.get_point(line, -1)]
    end_pair = np.r_[np.arange(len(si)), np.arange(len(si))]
    near = shapely.distance(ends, bnd[si][end_pair]) <= tol
    s_end = np.r_[np.zeros(len(si)), length][near]
    cand = pd.DataFrame({"pair": np.r_[pair, end_pair[near]], "s": np.r_[s_cross, s_end]})
    cand_len = length[cand["pair"].to_numpy()]
    s = cand["s"].to_numpy()
    s = np.where(s <= tol, 0.0, np.where(s >= cand_len - tol, cand_len, s))
    cand["s"] = s
    cand["key"] = np.round(s, 2)
    cand = cand.drop_duplicates(["pair", "key"]).reset_index(drop=True)
    pair_of = cand["pair"].to_numpy()
    s = cand["s"].to_numpy()
    cand_len = length[pair_of]

    # each candidate has a side towards u (if s > 0) and a side towards v (if s < length)
    rows = []
    for side, exists in ((-1, s > 0), (1, s < cand_len)):
        k = np.flatnonzero(exists)
        room = np.where(side < 0, s[k], cand_len[k] - s[k])
        step = np.minimum(probe, room / 2) if len(k) else room
        rows.append(pd.DataFrame({"cand": k, "side": side, "probe": s[k] + side * step}))
    sides = pd.concat(rows, ignore_index=True)
    k = sides["cand"].to_numpy()
    pk = pair_of[k]
    the_line = line[pk]
    at = shapely.line_interpolate_point(the_line, s[k])
    sample = shapely.line_interpolate_point(the_line, sides["probe"].to_numpy())
    space_geom = geom[si[pk]]
    on_outline = shapely.distance(sample, bnd[si[pk]]) <= tol
    inside = shapely.contains(space_geom, sample)
    state = np.where(on_outline, _ALONG, np.where(inside, _INSIDE, _OUTSIDE))
    a = shapely.get_coordinates(at)
    b = shapely.get_coordinates(sample)
    d = b - a
    norm = np.hypot(d[:, 0], d[:, 1])
    norm[norm == 0] = np.nan
    return pd.DataFrame(
        {
            "space": si[pk],
            "edge": edges.index.to_numpy()[ei[pk]],
            "s": s[k],
            "length": cand_len[k],
            "side": sides["side"].to_numpy(),
            "state": state,
            "x": a[:, 0],
            "y": a[:, 1],
            "dx": d[:, 0] / norm,
            "dy": d[:, 1] / norm,
        }
    )


def _network_entries(
    polys: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    half: pd.DataFrame,
    closures: pd.DataFrame | None,
    merge: float,
    barrier_tol: float,
) -> pd.DataFrame:
    """Entries where the network reaches an outline, one row per merged entry."""
    if half.empty:
        return pd.DataFrame()
    half = _entry_sides(half)
    if half.empty:
        return pd.DataFrame()
    half = _side_attributes(half, edges, closures, barrier_tol)
    # merge entry points of one space closer than merge_m
    pts = half.drop_duplicates("point")[["point", "space", "x", "y"]]
    comp = _clusters(pts, merge)
    half["entry"] = half["point"].map(pd.Series(comp, index=pts["point"].to_numpy()))
    return _summarise(half)


def _entry_sides(half: pd.DataFrame) -> pd.DataFrame:
    """The edge sides at outline points that are entries, with their ``point`` id."""
    # group the sides meeting at one point of one outline
    key = np.round(half[["x", "y"]].to_numpy() / _POINT_KEY_M).astype(np.int64)
    half = half.assign(kx=key[:, 0], ky=key[:, 1])
    point_id = half.groupby(["space", "kx", "ky"], sort=False).ngroup().to_numpy()
    half["point"] = point_id
    st = half["state"].to_numpy()
    g = pd.DataFrame(
        {
            "point": point_id,
            "inside": st == _INSIDE,
            "out": st != _INSIDE,
            "outside": st == _OUTSIDE,
        }
    ).groupby("point")
    agg = g.agg(inside=("inside", "any"), out=("out", "any"), outside=("outside", "all"))
    # ways crossing the outline or continuing inside from it; or ways that all end on
    # it from outside (a pedestrian area missing from the street layer)
    is_entry = (agg["inside"] & agg["out"]) | agg["outside"]
    return half[is_entry.reindex(point_id).to_numpy()].copy()


def _side_attributes(
    half: pd.DataFrame, edges: gpd.GeoDataFrame, closures: pd.DataFrame | None, barrier_tol: float
) -> pd.DataFrame:
    """Edge attributes of each side, and whether a vehicle can come in along it."""
    e = edges.loc[half["edge"].to_numpy()]
    half["walk"] = e["walk"].to_numpy(dtype=bool)
    half["vehicle"] = e["hostile_vehicle"].to_numpy(dtype=bool)
    half["width"] = e["width_m"].to_numpy(dtype=float, na_value=np.nan)
    half["width_source"] = e["width_source"].astype(object).to_numpy()
    half["gap"] = e["clear_gap_m"].to_numpy(dtype=float, na_value=np.nan)
    half["speed"] = e["speed_kmh"].to_numpy(dtype=float, na_value=np.nan)
    half["street_uid"] = e["street_uid"].astype(object).to_numpy()
    half["closed"] = _closed_outside(half, closures, barrier_tol)
    approach = half["vehicle"].to_numpy() & (half["state"].to_numpy() != _INSIDE)
    half["approach"] = approach
    half["open"] = approach & ~half["closed"].to_numpy()
    return half


def _first_by(half: pd.DataFrame, state: int) -> pd.DataFrame:
    """Per entry, the side in ``state``: vehicle sides first, then the widest."""
    return (
        half[half["state"] == state]
        .sort_values(["entry", "vehicle", "width"], ascending=[True, False, False])
        .drop_duplicates("entry")
        .set_index("entry")
    )


def _summarise(half: pd.DataFrame) -> pd.DataFrame:
    """One row per merged entry from its sides."""
    # representative side: open vehicle approach, then blocked approach, then inside
    # sides (for the direction into the space), widest first
    half["rank"] = np.select(
        [half["open"], half["approach"], half["state"] == _INSIDE], [3, 2, 1], default=0
    )
    ordered = half.sort_values(
        ["entry", "rank", "speed", "width"], ascending=[True, False, False, False]
    )
    rep = ordered.drop_duplicates("entry").set_index("entry")
    inward, outward = _first_by(half, _INSIDE), _first_by(half, _OUTSIDE)
    by = half.groupby("entry")
    out = pd.DataFrame(
        {
            "space": by["space"].first(),
            "x": by["x"].mean(),
            "y": by["y"].mean(),
            "walk": by["walk"].any(),
            "vehicle": by["vehicle"].any(),
            "any_approach": by["approach"].any(),
            "any_open": by["open"].any(),
            "max_width": by["width"].max(),
        }
    )
    # direction into the space: the inside side, else the outside side reversed
    ddx = inward["dx"].reindex(out.index).fillna(-outward["dx"].reindex(out.index))
    ddy = inward["dy"].reindex(out.index).fillna(-outward["dy"].reindex(out.index))
    out["in_dx"], out["in_dy"] = ddx.fillna(rep["dx"]), ddy.fillna(rep["dy"])
    # the way's direction for the impact angle: the representative side
    out["way_dx"], out["way_dy"] = rep["dx"], rep["dy"]
    out["entry_class"] = np.where(
        out["any_open"],
        "vehicle_permeable",
        np.where(out["any_approach"], "blocked", "pedestrian_only"),
    )
    _widths(out, rep, half)
    _location(out, rep)
    out["networks"] = np.where(
        out["walk"] & out["vehicle"], "walk+vehicle", np.where(out["vehicle"], "vehicle", "walk")
    )
    out["kind"] = "crossing"
    out["mapped"] = False
    return out.reset_index(drop=True)


def _widths(out: pd.DataFrame, rep: pd.DataFrame, half: pd.DataFrame) -> None:
    """Entry width: the bollard gap or width of the vehicle side, else the widest way."""
    vehicle_rep = out["any_approach"].to_numpy()
    gap = rep["gap"].to_numpy()
    use_gap = vehicle_rep & ~np.isnan(gap)
    out["width_m"] = np.where(use_gap, gap, np.where(vehicle_rep, rep["width"], out["max_width"]))
    widest = half.sort_values(["entry", "width"], ascending=[True, False]).drop_duplicates("entry")
    widest_source = widest.set_index("entry")["width_source"].reindex(out.index)
    out["width_source"] = np.where(
        use_gap, "bollard_spacing", np.where(vehicle_rep, rep["width_source"], widest_source)
    )
    out["street_uid"] = rep["street_uid"]


def _location(out: pd.DataFrame, rep: pd.DataFrame) -> None:
    """Where an open entry is on the vehicle network: ``edge``, ``at_m``, ``towards``."""
    is_open = out["any_open"].to_numpy()
    out["edge"] = pd.array(np.where(is_open, rep["edge"], 0), dtype="Int64")
    out.loc[~is_open, "edge"] = pd.NA
    out["at_m"] = np.where(is_open, rep["s"], np.nan)
    # the vehicle comes from the outer end of its side and drives towards the other end
    out["towards"] = pd.array(np.where(rep["side"] < 0, "v", "u"), dtype="string")
    out.loc[~is_open, "towards"] = pd.NA


def _closed_outside(
    half: pd.DataFrame, closures: pd.DataFrame | None, barrier_tol: float
) -> np.ndarray:
    """Whether any closing barrier of each side's edge stands on that side (or at the entry).

    A side towards ``u`` (``side`` -1) running from the entry at ``s`` to the edge's
    ``u`` end is closed by a barrier at ``at_m ≤ s + tol``; a side towards ``v`` by one
    at ``at_m ≥ s − tol``. Every barrier on the edge is looked at, not only the first.
    """
    closed = np.zeros(len(half), dtype=bool)
    if closures is None or closures.empty:
        return closed
    sides = pd.DataFrame(
        {
            "k": np.arange(len(half)),
            "edge": half["edge"].to_numpy(dtype=np.int64),
            "s": half["s"].to_numpy(dtype=float),
            "side": half["side"].to_numpy(),
        }
    )
    pairs = sides.merge(
        pd.DataFrame(
            {
                "edge": closures["edge"].to_numpy(dtype=np.int64),
                "at": closures["at_m"].to_numpy(dtype=float),
            }
        ),
        on="edge",
    )
    if pairs.empty:
        return closed
    at, s = pairs["at"].to_numpy(), pairs["s"].to_numpy()
    on_side = np.where(pairs["side"].to_numpy() < 0, at <= s + barrier_tol, at >= s - barrier_tol)
    closed[np.unique(pairs["k"].to_numpy()[on_side])] = True
    return closed


def _clusters(pts: pd.DataFrame, distance: float) -> np.ndarray:
    """Component label of each point: points of one space closer than ``distance``."""
    geom = shapely.points(pts[["x", "y"]].to_numpy())
    a, b = shapely.STRtree(geom).query(geom, predicate="dwithin", distance=distance)
    space = pts["space"].to_numpy()
    same = space[a] == space[b]
    n = len(geom)
    graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels)
