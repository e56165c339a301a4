"""Street networks: the walk network and the hostile-vehicle network of a city.

Both are built from the ``street`` layer by *noding*: ways are split wherever they share
a vertex with another way (or end), which works the same for every source (OSM ways
share node coordinates exactly; GraphML edges share their end points; OSM-derived
GeoJSON shares vertices). No node ids are needed, so a sixth city with a new kind of
file needs no new graph code.

The hostile-vehicle network ignores ``oneway`` and ``access`` on purpose (an attacker
ignores road rules, domain brief §2.1) and is closed only by physical obstacles: barrier
kinds that stop vehicles (``data/reference/barrier_types.csv``), and rows of bollards or
planters whose clear gaps are all at most ``max_bollard_gap_m`` across the carriageway.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect._errors import AnalysisError
from geo_protect.reference import parameter, table

__all__ = ["StreetNetwork", "clear_gaps", "street_network"]

#: Coordinates closer than this (metres) are one vertex when noding.
_SNAP_M = 0.01


@dataclass(frozen=True)
class StreetNetwork:
    """A noded street network in a metric CRS.

    Attributes
    ----------
    nodes
        Junctions and way ends: index ``node`` (int), ``degree``, Point geometry.
    edges
        Undirected pieces of ways between nodes: index ``edge`` (int), columns ``u``,
        ``v``, ``street_uid``, ``highway``, ``name``, ``length_m``, ``width_m``,
        ``width_source``, ``walk``, ``hostile_vehicle``, ``blocked_by``,
        ``clear_gap_m``, ``speed_kmh``, ``through_road``; LineString geometry drawn
        from ``u`` to ``v``.
    crs
        The metric CRS of both frames.
    """

    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    crs: str

    @property
    def vehicle_edges(self) -> gpd.GeoDataFrame:
        """Edges a hostile vehicle can drive: vehicle-passable class and not blocked."""
        e = self.edges
        return e[e["hostile_vehicle"] & e["blocked_by"].isna()]

    @property
    def walk_edges(self) -> gpd.GeoDataFrame:
        """Edges of the walk network."""
        return self.edges[self.edges["walk"]]


def street_network(
    streets: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame | None = None,
    *,
    crs: str,
    lane_width_m: float | None = None,
    max_bollard_gap_m: float | None = None,
) -> StreetNetwork:
    """Node the street layer into a network and mark physically blocked edges.

    Parameters
    ----------
    streets
        The ``street`` layer (WGS84 or any CRS; reprojected to ``crs``).
    barriers
        The ``barrier`` layer; ``None`` for a network without obstacles.
    crs
        Metric CRS to measure in (the city's ``City.crs``).
    lane_width_m, max_bollard_gap_m
        Override the reference values (``data/reference/parameters.csv``).

    Returns
    -------
    StreetNetwork

    Raises
    ------
    AnalysisError
        If ``streets`` holds no line geometry.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from geo_protect.schema import conform
    >>> s = gpd.GeoDataFrame(
    ...     {"osm_type": ["way", "way"], "osm_id": [1, 2], "name": ["A", "B"],
    ...      "kind": ["residential"] * 2, "tags": ["{}"] * 2, "source": ["t"] * 2,
    ...      "data_date": [None] * 2, "highway": ["residential"] * 2, "walk": [True] * 2,
    ...      "hostile_vehicle": [True] * 2, "width_m": [np.nan] * 2, "lanes": [np.nan] * 2,
    ...      "maxspeed_kmh": [np.nan] * 2},
    ...     geometry=[shapely.LineString([(0, 0), (50, 0), (100, 0)]),
    ...               shapely.LineString([(50, 0), (50, 80)])],
    ...     index=["way/1", "way/2"], crs="EPSG:32635")
    >>> net = street_network(s, crs="EPSG:32635")
    >>> len(net.nodes), len(net.edges)
    (4, 3)
    """
    lane_width = parameter("lane_width_m") if lane_width_m is None else lane_width_m
    max_gap = parameter("max_bollard_gap_m") if max_bollard_gap_m is None else max_bollard_gap_m
    lines = streets.to_crs(crs)
    lines = lines[shapely.get_type_id(lines.geometry.values) == 1]
    if lines.empty:
        raise AnalysisError("street network: the street layer holds no line geometry")

    edges, nodes = _node(lines)
    _add_attributes(edges, lines, lane_width=lane_width)
    edges["blocked_by"] = pd.Series(pd.NA, index=edges.index, dtype="string")
    edges["clear_gap_m"] = np.nan
    if barriers is not None and not barriers.empty:
        _apply_barriers(edges, barriers.to_crs(crs), max_gap=max_gap)
    return StreetNetwork(nodes=nodes, edges=edges, crs=crs)


def _node(lines: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Split ways at shared vertices; return (edges, nodes) frames."""
    crs = lines.crs
    coords, way = shapely.get_coordinates(lines.geometry.values, return_index=True)
    # drop repeated consecutive vertices (zero-length segments)
    same_way_prev = np.r_[False, way[1:] == way[:-1]]
    repeat = same_way_prev & np.r_[False, (np.abs(np.diff(coords, axis=0)) < _SNAP_M).all(axis=1)]
    coords, way = coords[~repeat], way[~repeat]

    key = np.round(coords / _SNAP_M).astype(np.int64)
    _, vertex = np.unique(key, axis=0, return_inverse=True)
    vertex = vertex.ravel()
    first = np.r_[True, way[1:] != way[:-1]]
    last = np.r_[way[1:] != way[:-1], True]
    occurrences = np.bincount(vertex)
    is_node = first | last | (occurrences[vertex] > 1)

    starts = first | (is_node & ~last)
    edge_of_vertex = np.cumsum(starts) - 1  # edge that starts at or runs through vertex k
    body = ~last  # vertex k opens the segment (k, k+1) of edge_of_vertex[k]
    ends = is_node & ~first  # vertex k closes the edge of vertex k-1
    rows_edge = np.r_[edge_of_vertex[body], edge_of_vertex[np.flatnonzero(ends) - 1]]
    rows_pos = np.r_[np.flatnonzero(body), np.flatnonzero(ends)]
    order = np.lexsort((rows_pos, rows_edge))
    geoms = shapely.linestrings(coords[rows_pos[order]], indices=rows_edge[order])

    start_pos = np.flatnonzero(starts)
    end_pos = np.flatnonzero(ends)
    node_vertices, node_index = np.unique(vertex[is_node], return_inverse=True)
    node_id = np.full(vertex.max() + 1, -1, dtype=np.int64)
    node_id[node_vertices] = np.arange(len(node_vertices))
    u = node_id[vertex[start_pos]]
    v = node_id[vertex[end_pos]]

    edges = gpd.GeoDataFrame(
        {"u": u, "v": v, "_way": way[start_pos]},
        geometry=gpd.GeoSeries(geoms, crs=crs),
    )
    edges.index.name = "edge"
    node_xy = np.zeros((len(node_vertices), 2))
    node_xy[node_index] = coords[is_node]
    degree = np.bincount(np.r_[u, v], minlength=len(node_vertices))
    nodes = gpd.GeoDataFrame(
        {"degree": degree}, geometry=gpd.GeoSeries(shapely.points(node_xy), crs=crs)
    )
    nodes.index.name = "node"
    return edges, nodes


def _add_attributes(edges: gpd.GeoDataFrame, lines: gpd.GeoDataFrame, *, lane_width: float) -> None:
    classes = table("highway_classes").set_index("highway")
    src = lines.iloc[edges.pop("_way").to_numpy()]
    highway = src["highway"].astype("string").to_numpy()
    known = pd.Index(classes.index).get_indexer(highway)
    default_width = np.where(
        known >= 0, classes["default_width_m"].to_numpy(dtype=float, na_value=np.nan)[known], np.nan
    )
    default_speed = np.where(
        known >= 0, classes["default_speed_kmh"].to_numpy(dtype=float, na_value=np.nan)[known], 0.0
    )
    through = np.where(
        known >= 0, classes["through_road"].to_numpy(dtype=bool, na_value=False)[known], False
    )
    mapped = src["width_m"].to_numpy(dtype=float, na_value=np.nan)
    lanes = src["lanes"].to_numpy(dtype=float, na_value=np.nan)
    from_lanes = lanes * lane_width
    width = np.where(
        ~np.isnan(mapped), mapped, np.where(~np.isnan(from_lanes), from_lanes, default_width)
    )
    source = np.where(
        ~np.isnan(mapped), "width", np.where(~np.isnan(from_lanes), "lanes", "road_class")
    )
    maxspeed = src["maxspeed_kmh"].to_numpy(dtype=float, na_value=np.nan)

    edges["street_uid"] = pd.array(src.index.to_numpy(), dtype="string")
    edges["highway"] = pd.array(highway, dtype="string")
    edges["name"] = pd.array(src["name"].to_numpy(), dtype="string")
    edges["length_m"] = shapely.length(edges.geometry.values)
    edges["width_m"] = width
    edges["width_source"] = pd.array(source, dtype="string")
    edges["walk"] = src["walk"].to_numpy(dtype=bool, na_value=False)
    edges["hostile_vehicle"] = src["hostile_vehicle"].to_numpy(dtype=bool, na_value=False)
    edges["speed_kmh"] = np.where(~np.isnan(maxspeed), maxspeed, default_speed)
    edges["through_road"] = through


def _apply_barriers(edges: gpd.GeoDataFrame, barriers: gpd.GeoDataFrame, *, max_gap: float) -> None:
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
