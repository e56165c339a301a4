"""Barriers on the street network: where a vehicle cannot drive through a street piece.

A street piece (an edge of :class:`~geo_protect.analysis.network.StreetNetwork`) is closed
to a hostile vehicle at every point where a solid obstacle stands on it (block, gate,
...), a solid line (wall, fence) crosses it away from a passable opening, or a row of
posts (bollards, planters) leaves clear gaps all within ``max_bollard_gap_m`` (plus the
mapping tolerance ``bollard_gap_mapping_tolerance_m``, see :func:`closes_gap`). Which
OSM barrier values stop a vehicle is the ``barrier_types`` reference table.

Every closing barrier is kept with its position along the edge (the network's
``barriers`` table, :data:`CLOSURE_COLUMNS`), not only the first one per edge: an edge
may be closed twice (a bollard row outside a square and a block inside it), and which
side of an entry a barrier stands on decides whether the entry is open.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.reference import parameter, table

__all__ = ["CLOSURE_COLUMNS", "apply_barriers", "clear_gaps", "closes_gap"]

#: Columns of the closure table: one row per closing barrier per edge.
CLOSURE_COLUMNS = ("edge", "at_m", "barrier_uid", "reason", "clear_gap_m")


def closes_gap(gap_m: np.ndarray | float, max_gap_m: float, tolerance_m: float) -> np.ndarray:
    """Whether a row of posts with widest clear gap ``gap_m`` closes the street.

    ``gap ≤ max_gap + tolerance``: a gap mapped within the mapping tolerance of the
    limit counts as *closed*. OSM stores coordinates to 1e-7° (≈ 1.1 cm north-south,
    ≈ 0.8 cm east-west here), so a gap between two posts carries up to ≈ 2 cm of pure
    rounding; rows are installed *at* the CPNI 1.2 m maximum, and without a tolerance a
    compliant row would be open or closed by the rounding of its nodes. Closed is the
    defensible side: a gap of 1.2 m + 2 cm stops every class of the threat table just
    as 1.2 m does (the narrowest, a car, is ``min_vehicle_width_m`` = 1.7 m wide), so
    closing it understates no vehicle risk, while opening it would run approaches
    through posts no vehicle can pass. Survey error (metres on imagery) is not
    corrected here; gaps near ``car_passable_gap_m`` stay open.

    Parameters
    ----------
    gap_m : ndarray or float
        Widest clear gap of each row (m).
    max_gap_m : float
        ``max_bollard_gap_m``.
    tolerance_m : float
        ``bollard_gap_mapping_tolerance_m``.

    Returns
    -------
    ndarray
        Boolean, True where the row closes the street.
    """
    return np.asarray(np.asarray(gap_m, dtype=float) <= max_gap_m + tolerance_m)


def apply_barriers(
    edges: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame,
    *,
    max_gap: float,
    gap_tolerance: float | None = None,
) -> pd.DataFrame:
    """Find every closing barrier on every edge; set ``blocked_by`` / ``clear_gap_m``.

    Parameters
    ----------
    edges : GeoDataFrame
        Network edges (metric CRS), updated in place: ``blocked_by`` (the closing
        barrier nearest the ``u`` end, a summary) and ``clear_gap_m``.
    barriers : GeoDataFrame
        The ``barrier`` layer in the edges' CRS.
    max_gap : float
        ``max_bollard_gap_m``.
    gap_tolerance : float, optional
        ``bollard_gap_mapping_tolerance_m`` (reference value by default).

    Returns
    -------
    DataFrame
        The closures (:data:`CLOSURE_COLUMNS`), sorted by edge and position.
    """
    tol = parameter("bollard_gap_mapping_tolerance_m") if gap_tolerance is None else gap_tolerance
    kinds = table("barrier_types").set_index("barrier")["stops_vehicle"]
    stops = barriers["kind"].map(kinds).fillna("yes").to_numpy()  # unknown stop cars (OSRM)
    is_point = shapely.get_type_id(barriers.geometry.values) == 0
    parts = [
        _solid_points(edges, barriers[is_point & (stops == "yes")]),
        _solid_lines(
            edges, barriers[~is_point & (stops == "yes")], barriers[is_point & (stops == "no")]
        ),
        _post_rows(edges, barriers[stops == "gap"], max_gap=max_gap, tolerance=tol),
    ]
    closures = pd.concat([p for p in parts if len(p)] or [empty_closures()], ignore_index=True)
    closures = closures.sort_values(["edge", "at_m"], kind="stable").reset_index(drop=True)
    first = closures.drop_duplicates("edge")
    edges.loc[first["edge"].to_numpy(), "blocked_by"] = first["barrier_uid"].to_numpy()
    return closures


def empty_closures() -> pd.DataFrame:
    """An empty closure table with the right dtypes."""
    return pd.DataFrame(
        {
            "edge": pd.Series(dtype=np.int64),
            "at_m": pd.Series(dtype=float),
            "barrier_uid": pd.Series(dtype="string"),
            "reason": pd.Series(dtype="string"),
            "clear_gap_m": pd.Series(dtype=float),
        }
    )


def _closures(
    edges: gpd.GeoDataFrame, ei: np.ndarray, where: np.ndarray, uid: np.ndarray, reason: str
) -> pd.DataFrame:
    """Closure rows for edge positions ``ei`` closed at points ``where``."""
    at = shapely.line_locate_point(edges.geometry.values[ei], where)
    return pd.DataFrame(
        {
            "edge": edges.index.to_numpy()[ei].astype(np.int64),
            "at_m": at,
            "barrier_uid": pd.array(uid.astype(str), dtype="string"),
            "reason": reason,
            "clear_gap_m": np.nan,
        }
    )


def _solid_points(edges: gpd.GeoDataFrame, solid: gpd.GeoDataFrame) -> pd.DataFrame:
    """Solid point obstacles standing on an edge."""
    if solid.empty:
        return empty_closures()
    on_tol = parameter("barrier_on_edge_tolerance_m")
    bi, ei = edges.sindex.query(solid.geometry.values, predicate="dwithin", distance=on_tol)
    return _closures(edges, ei, solid.geometry.values[bi], solid.index.to_numpy()[bi], "solid")


def _solid_lines(
    edges: gpd.GeoDataFrame, lines: gpd.GeoDataFrame, openings: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Solid lines (walls, fences): every crossing point away from a passable opening."""
    if lines.empty:
        return empty_closures()
    bi, ei = edges.sindex.query(lines.geometry.values, predicate="crosses")
    if len(bi) == 0:
        return empty_closures()
    cross = shapely.intersection(lines.geometry.values[bi], edges.geometry.values[ei])
    pts, pair = shapely.get_parts(cross, return_index=True)
    pts = shapely.centroid(pts)  # a line part (overlap) closes at its middle
    if len(openings):
        on_tol = parameter("barrier_on_edge_tolerance_m")
        hit, _ = shapely.STRtree(openings.geometry.values).query(
            pts, predicate="dwithin", distance=on_tol
        )
        keep = np.ones(len(pts), dtype=bool)
        keep[np.unique(hit)] = False
        pts, pair = pts[keep], pair[keep]
    return _closures(edges, ei[pair], pts, lines.index.to_numpy()[bi[pair]], "line")


def _post_rows(
    edges: gpd.GeoDataFrame, gap_kind: gpd.GeoDataFrame, *, max_gap: float, tolerance: float
) -> pd.DataFrame:
    """Rows of bollards / planters: each row whose clear gaps are all within the limit."""
    posts = _posts(gap_kind, edges.crs)
    if posts.empty:
        return empty_closures()
    rows = _gap_rows(edges, posts)
    if rows.empty:
        return empty_closures()
    narrowest = rows.groupby("edge")["clear_gap_m"].min()
    edges.loc[narrowest.index, "clear_gap_m"] = narrowest.to_numpy()
    closed = rows[closes_gap(rows["clear_gap_m"].to_numpy(), max_gap, tolerance)]
    return pd.DataFrame(
        {
            "edge": closed["edge"].to_numpy(dtype=np.int64),
            "at_m": closed["at_m"].to_numpy(dtype=float),
            "barrier_uid": pd.array(closed["barrier_uid"].astype(str), dtype="string"),
            "reason": "posts",
            "clear_gap_m": closed["clear_gap_m"].to_numpy(dtype=float),
        }
    )


def _posts(gap_kind: gpd.GeoDataFrame, crs: object) -> gpd.GeoDataFrame:
    """Point posts: mapped post nodes plus the vertices of mapped rows (lines)."""
    is_point = shapely.get_type_id(gap_kind.geometry.values) == 0
    posts = gap_kind[is_point][["geometry"]]
    post_lines = gap_kind[~is_point]
    if not post_lines.empty:  # a mapped row of bollards: its vertices are the posts
        xy, owner = shapely.get_coordinates(post_lines.geometry.values, return_index=True)
        owners = pd.Index(post_lines.index.to_numpy()[owner])
        extra = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(xy), index=owners, crs=crs))
        posts = pd.concat([posts, extra])
    return gpd.GeoDataFrame(posts, geometry="geometry", crs=crs)


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
    edges : GeoDataFrame
        Network edges with ``width_m``, in a metric CRS.
    posts : GeoDataFrame
        Point barriers of the "gap" kind, in the same CRS, indexed by barrier uid.
    search_m, row_depth_m, post_diameter_m : float, optional
        Override ``bollard_row_search_m``, ``bollard_row_depth_m`` and
        ``bollard_diameter_m``.

    Returns
    -------
    DataFrame
        Indexed by edge, columns ``clear_gap_m`` (the narrowest row's widest gap) and
        ``barrier_uid`` (a post of that row).
    """
    rows = _gap_rows(
        edges, posts, search_m=search_m, row_depth_m=row_depth_m, post_diameter_m=post_diameter_m
    )
    out = rows.sort_values(["edge", "clear_gap_m"], kind="stable").drop_duplicates("edge")
    out = out.set_index("edge")[["clear_gap_m", "barrier_uid"]]
    out["barrier_uid"] = out["barrier_uid"].astype("string")
    return out


def _gap_rows(
    edges: gpd.GeoDataFrame,
    posts: gpd.GeoDataFrame,
    *,
    search_m: float | None = None,
    row_depth_m: float | None = None,
    post_diameter_m: float | None = None,
) -> pd.DataFrame:
    """Every row of posts across every edge: edge, position, widest clear gap, a post uid."""
    search = parameter("bollard_row_search_m") if search_m is None else search_m
    depth = parameter("bollard_row_depth_m") if row_depth_m is None else row_depth_m
    diameter = parameter("bollard_diameter_m") if post_diameter_m is None else post_diameter_m
    cand = _post_candidates(edges, posts, search)
    if cand.empty:
        return pd.DataFrame(
            {
                "edge": pd.Series(dtype=np.int64),
                "at_m": pd.Series(dtype=float),
                "clear_gap_m": pd.Series(dtype=float),
                "barrier_uid": pd.Series(dtype="string"),
            }
        )
    rows: list[tuple[object, float, float, object]] = []
    for edge_id, group in cand.sort_values(["edge", "along"]).groupby("edge", sort=False):
        row_id = np.cumsum(np.r_[0, np.diff(group["along"].to_numpy()) > depth])
        for _, row in group.groupby(row_id):
            w = float(row["half"].iloc[0])
            inside = np.sort(np.clip(row["offset"].to_numpy(), -w, w))
            between = np.diff(inside) - diameter
            sides = np.array([inside[0] + w, w - inside[-1]]) - diameter / 2
            gap = float(np.max(np.r_[between, sides].clip(min=0)))
            rows.append((edge_id, float(row["along"].mean()), gap, row["uid"].iloc[0]))
    out = pd.DataFrame(rows, columns=["edge", "at_m", "clear_gap_m", "barrier_uid"])
    out["barrier_uid"] = out["barrier_uid"].astype("string")
    return out


def _post_candidates(
    edges: gpd.GeoDataFrame, posts: gpd.GeoDataFrame, search: float
) -> pd.DataFrame:
    """Each post near each edge: position ``along`` it and signed ``offset`` across it."""
    if posts.empty or edges.empty:
        return pd.DataFrame()
    half = edges["width_m"].to_numpy(dtype=float) / 2
    reach = float(np.nanmax(half)) + search
    pi, ei = edges.sindex.query(posts.geometry.values, predicate="dwithin", distance=reach)
    if len(pi) == 0:
        return pd.DataFrame()
    lines = edges.geometry.values[ei]
    pts = posts.geometry.values[pi]
    along = shapely.line_locate_point(lines, pts)
    foot = shapely.line_interpolate_point(lines, along)
    lateral = shapely.distance(pts, foot)
    probe = parameter("bollard_side_probe_m")
    ahead = shapely.line_interpolate_point(lines, np.minimum(along + probe, shapely.length(lines)))
    back = shapely.line_interpolate_point(lines, np.maximum(along - probe, 0))
    d = shapely.get_coordinates(ahead) - shapely.get_coordinates(back)
    r = shapely.get_coordinates(pts) - shapely.get_coordinates(foot)
    side = np.sign(d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0])
    near = lateral <= half[ei] + search
    return pd.DataFrame(
        {
            "edge": edges.index.to_numpy()[ei],
            "along": along,
            "offset": side * lateral,
            "half": half[ei],
            "uid": posts.index.to_numpy()[pi],
        }
    )[near]
