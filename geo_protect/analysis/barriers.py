"""Barriers on the street network: which pieces of street a vehicle cannot drive through.

A street piece (an edge of :class:`~geo_protect.analysis.network.StreetNetwork`) is closed
to a hostile vehicle by a solid obstacle standing on it (block, gate, ...), a solid line
(wall, fence) crossing it away from a passable opening, or a row of posts (bollards,
planters) whose clear gaps are all within ``max_bollard_gap_m``. Which OSM barrier values
stop a vehicle is the ``barrier_types`` reference table.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.reference import parameter, table

__all__ = ["apply_barriers", "clear_gaps"]


def apply_barriers(edges: gpd.GeoDataFrame, barriers: gpd.GeoDataFrame, *, max_gap: float) -> None:
    """Set ``blocked_by`` / ``clear_gap_m`` from the barrier layer (in the edges' CRS)."""
    kinds = table("barrier_types").set_index("barrier")["stops_vehicle"]
    stops = barriers["kind"].map(kinds).fillna("yes")  # unknown barrier values stop cars (OSRM)
    on_tol = parameter("barrier_on_edge_tolerance_m")
    geom = barriers.geometry.values
    is_point = shapely.get_type_id(geom) == 0

    # solid point obstacles standing on an edge
    solid = barriers[is_point & (stops == "yes").to_numpy()]
    if not solid.empty:
        bi, ei = edges.sindex.query(solid.geometry.values, predicate="dwithin", distance=on_tol)
        _block(edges, ei, solid.index.to_numpy()[bi])

    # solid lines (walls, fences) crossing an edge away from a passable opening
    solid_lines = barriers[~is_point & (stops == "yes").to_numpy()]
    if not solid_lines.empty:
        bi, ei = edges.sindex.query(solid_lines.geometry.values, predicate="crosses")
        if len(bi):
            openings = barriers[is_point & (stops == "no").to_numpy()].geometry.values
            cross = shapely.intersection(solid_lines.geometry.values[bi], edges.geometry.values[ei])
            at_opening = np.zeros(len(bi), dtype=bool)
            if len(openings):
                tree = shapely.STRtree(openings)
                hit, _ = tree.query(cross, predicate="dwithin", distance=on_tol)
                at_opening[np.unique(hit)] = True
            _block(edges, ei[~at_opening], solid_lines.index.to_numpy()[bi[~at_opening]])

    # rows of bollards / planters: blocked when every clear gap is within max_gap
    gap_kind = (stops == "gap").to_numpy()
    posts = barriers[gap_kind & is_point]
    post_lines = barriers[gap_kind & ~is_point]
    if not post_lines.empty:  # a mapped row of bollards: its vertices are the posts
        xy, owner = shapely.get_coordinates(post_lines.geometry.values, return_index=True)
        owners = pd.Index(post_lines.index.to_numpy()[owner])
        extra = gpd.GeoDataFrame(
            geometry=gpd.GeoSeries(shapely.points(xy), index=owners, crs=edges.crs)
        )
        posts = pd.concat([posts[["geometry"]], extra])
    if not posts.empty:
        gaps = clear_gaps(edges, posts)
        edges.loc[gaps.index, "clear_gap_m"] = gaps["clear_gap_m"]
        closed = gaps[gaps["clear_gap_m"] <= max_gap]
        _block(edges, closed.index.to_numpy(), closed["barrier_uid"].to_numpy())


def _block(edges: gpd.GeoDataFrame, edge_ids: np.ndarray, barrier_uids: np.ndarray) -> None:
    if len(edge_ids) == 0:
        return
    first = pd.Series(barrier_uids, index=edges.index[edge_ids]).groupby(level=0).first()
    free = edges.loc[first.index, "blocked_by"].isna()
    edges.loc[first.index[free.to_numpy()], "blocked_by"] = first[free.to_numpy()].to_numpy()


def clear_gaps(
    edges: gpd.GeoDataFrame,
    posts: gpd.GeoDataFrame,
    *,
    search_m: float | None = None,
    row_depth_m: float | None = None,
    post_diameter_m: float | None = None,
) -> pd.DataFrame:
    """Widest clear gap left by rows of posts (bollards, planters) across each street.

    Posts within half the carriageway width plus ``search_m`` of an edge, and within
    ``row_depth_m`` of each other along it, form a row. The row's clear gaps are the
    spaces between neighbouring posts (centre distance minus one post diameter) and
    between the outer posts and the carriageway edges (half a diameter), measured across
    the edge's width. A single post in the middle of a 2.5 m footway leaves two 1.15 m
    gaps; the same post on a 6 m road leaves 2.9 m.

    Parameters
    ----------
    edges
        Network edges with ``width_m``, in a metric CRS.
    posts
        Point barriers of the "gap" kind, in the same CRS, indexed by barrier uid.

    Returns
    -------
    DataFrame
        Indexed by edge, columns ``clear_gap_m`` (the narrowest row's widest gap) and
        ``barrier_uid`` (a post of that row).
    """
    search = parameter("bollard_row_search_m") if search_m is None else search_m
    depth = parameter("bollard_row_depth_m") if row_depth_m is None else row_depth_m
    diameter = parameter("bollard_diameter_m") if post_diameter_m is None else post_diameter_m
    empty = pd.DataFrame(
        {"clear_gap_m": pd.Series(dtype=float), "barrier_uid": pd.Series(dtype="string")}
    )
    empty.index.name = "edge"
    if posts.empty or edges.empty:
        return empty
    half = edges["width_m"].to_numpy(dtype=float) / 2
    reach = float(np.nanmax(half)) + search
    pi, ei = edges.sindex.query(posts.geometry.values, predicate="dwithin", distance=reach)
    if len(pi) == 0:
        return empty
    lines = edges.geometry.values[ei]
    pts = posts.geometry.values[pi]
    along = shapely.line_locate_point(lines, pts)
    foot = shapely.line_interpolate_point(lines, along)
    lateral = shapely.distance(pts, foot)
    ahead = shapely.line_interpolate_point(lines, np.minimum(along + 0.5, shapely.length(lines)))
    back = shapely.line_interpolate_point(lines, np.maximum(along - 0.5, 0))
    d = shapely.get_coordinates(ahead) - shapely.get_coordinates(back)
    r = shapely.get_coordinates(pts) - shapely.get_coordinates(foot)
    side = np.sign(d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0])
    offset = side * lateral
    near = lateral <= half[ei] + search
    cand = pd.DataFrame(
        {
            "edge": edges.index.to_numpy()[ei],
            "along": along,
            "offset": offset,
            "half": half[ei],
            "uid": posts.index.to_numpy()[pi],
        }
    )[near]
    rows: list[tuple[object, float, object]] = []
    for edge_id, group in cand.sort_values(["edge", "along"]).groupby("edge", sort=False):
        row_id = np.cumsum(np.r_[0, np.diff(group["along"].to_numpy()) > depth])
        best: tuple[float, object] | None = None
        for _, row in group.groupby(row_id):
            w = float(row["half"].iloc[0])
            inside = np.sort(np.clip(row["offset"].to_numpy(), -w, w))
            between = np.diff(inside) - diameter
            sides = np.array([inside[0] + w, w - inside[-1]]) - diameter / 2
            gap = float(np.max(np.r_[between, sides].clip(min=0)))
            if best is None or gap < best[0]:
                best = (gap, row["uid"].iloc[0])
        assert best is not None
        rows.append((edge_id, best[0], best[1]))
    out = pd.DataFrame(rows, columns=["edge", "clear_gap_m", "barrier_uid"]).set_index("edge")
    out["barrier_uid"] = out["barrier_uid"].astype("string")
    return out
