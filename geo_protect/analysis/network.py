"""Street networks: the walk network and the hostile-vehicle network of a city.

Both are built from the ``street`` layer by *noding*: ways are split wherever they share
a vertex with another way (or end), which works the same for every source (OSM ways
share node coordinates exactly; GraphML edges share their end points; OSM-derived
GeoJSON shares vertices). No node ids are needed, so a sixth city with a new kind of
file needs no new graph code.

The hostile-vehicle network ignores ``oneway`` and ``access`` on purpose (an attacker
ignores road rules, domain brief §2.1) and is closed only by physical obstacles: barrier
kinds that stop vehicles (``data/reference/barrier_types.csv``), and rows of bollards or
planters whose clear gaps are all at most ``max_bollard_gap_m`` across the carriageway
(within ``bollard_gap_mapping_tolerance_m``). Every closing barrier is kept with its
position along its edge (:attr:`StreetNetwork.barriers`): an edge is closed *at those
points*, and the parts of it between them stay drivable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.barriers import apply_barriers, clear_gaps, empty_closures
from geo_protect.errors import AnalysisError
from geo_protect.reference import parameter, table

__all__ = [
    "StreetNetwork",
    "clear_gaps",
    "street_network",
    "with_barriers",
]

#: Coordinates closer than this (metres) are one vertex when noding.
SNAP_M = 0.01  # also where the approach search merges cuts of an edge


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
        ``width_source``, ``walk``, ``hostile_vehicle``, ``blocked_by`` (a summary:
        the closing barrier nearest ``u``, NA when none), ``clear_gap_m`` (the
        narrowest bollard row's widest gap), ``speed_kmh``, ``through_road`` (the
        road *class* is a through-road class; whether a vehicle can arrive at speed is
        decided on the network by the approach analysis); LineString geometry drawn
        from ``u`` to ``v``.
    crs
        The metric CRS of both frames.
    barriers
        Every closing barrier on every edge, one row per (edge, barrier position):
        ``edge``, ``at_m`` (metres from ``u``), ``barrier_uid``, ``reason``
        (``solid`` point, ``line`` crossing, ``posts`` row) and ``clear_gap_m`` (rows
        of posts only), sorted by edge and position.
    """

    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    crs: str
    barriers: pd.DataFrame = field(default_factory=empty_closures)

    @property
    def vehicle_edges(self) -> gpd.GeoDataFrame:
        """Edges a vehicle can drive end to end: vehicle-passable class, no closing barrier."""
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
    bollard_gap_tolerance_m: float | None = None,
) -> StreetNetwork:
    """Node the street layer into a network and mark physically blocked edges.

    Parameters
    ----------
    streets : GeoDataFrame
        The ``street`` layer (WGS84 or any CRS; reprojected to ``crs``).
    barriers : GeoDataFrame, optional
        The ``barrier`` layer; ``None`` for a network without obstacles.
    crs : str
        Metric CRS to measure in (the city's ``City.crs``).
    lane_width_m, max_bollard_gap_m, bollard_gap_tolerance_m : float, optional
        Override the reference values ``lane_width_m``, ``max_bollard_gap_m`` and
        ``bollard_gap_mapping_tolerance_m`` (``data/reference/parameters.csv``).

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
    bare = StreetNetwork(nodes=nodes, edges=edges, crs=crs, barriers=empty_closures())
    return with_barriers(
        bare, barriers, max_bollard_gap_m=max_gap, bollard_gap_tolerance_m=bollard_gap_tolerance_m
    )


def with_barriers(
    network: StreetNetwork,
    barriers: gpd.GeoDataFrame | None,
    *,
    max_bollard_gap_m: float | None = None,
    bollard_gap_tolerance_m: float | None = None,
    near: np.ndarray | None = None,
) -> StreetNetwork:
    """The same streets closed by another set of barriers (no re-noding).

    What a barrier scenario changes: :func:`street_network` is this on the noded streets.
    With ``near``, only the streets within reach of those geometries are looked at
    again; the closures elsewhere are ``network``'s own.

    Parameters
    ----------
    network : StreetNetwork
        A noded network (its own closures are dropped).
    barriers : GeoDataFrame or None
        The ``barrier`` layer (any CRS).
    max_bollard_gap_m, bollard_gap_tolerance_m : float, optional
        As for :func:`street_network`.
    near : ndarray of geometries, optional
        Where the barriers differ from those ``network`` was closed with (metric): the
        barriers added, removed or opened. A closure depends only on the barriers within
        half the street's width plus ``bollard_row_search_m`` (or
        ``barrier_on_edge_tolerance_m``) of it, so the result is the same as without
        ``near``, for the work of the streets around the edits.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> s = gpd.GeoDataFrame({"name": ["A"], "highway": ["residential"], "walk": [True],
    ...     "hostile_vehicle": [True], "width_m": [6.0], "lanes": [np.nan],
    ...     "maxspeed_kmh": [np.nan]}, geometry=[shapely.LineString([(0, 0), (100, 0)])],
    ...     index=["way/1"], crs="EPSG:32635")
    >>> net = street_network(s, crs="EPSG:32635")
    >>> block = gpd.GeoDataFrame({"kind": ["block"]}, geometry=[shapely.Point(50, 0)],
    ...     index=["node/1"], crs="EPSG:32635")
    >>> with_barriers(net, block).barriers["barrier_uid"].tolist()
    ['node/1']
    """
    max_gap = parameter("max_bollard_gap_m") if max_bollard_gap_m is None else max_bollard_gap_m
    if near is not None:
        return _rebarrier(network, barriers, near, max_gap, bollard_gap_tolerance_m)
    edges = network.edges.copy()
    edges["blocked_by"] = pd.Series(pd.NA, index=edges.index, dtype="string")
    edges["clear_gap_m"] = np.nan
    closures = empty_closures()
    if barriers is not None and not barriers.empty:
        closures = apply_barriers(
            edges,
            barriers.to_crs(network.crs),
            max_gap=max_gap,
            gap_tolerance=bollard_gap_tolerance_m,
        )
    return StreetNetwork(nodes=network.nodes, edges=edges, crs=network.crs, barriers=closures)


def _rebarrier(
    network: StreetNetwork,
    barriers: gpd.GeoDataFrame | None,
    near: np.ndarray,
    max_gap: float,
    gap_tolerance: float | None,
) -> StreetNetwork:
    """:func:`with_barriers` recomputing only the closures of the edges near ``near``."""
    if barriers is None or barriers.empty:
        return with_barriers(network, barriers, max_bollard_gap_m=max_gap)
    # copy-on-write: only the columns written below are copied, not every geometry
    edges = network.edges.copy(deep=False)
    near = near[~pd.isna(near)] if len(near) else near
    if len(near) == 0:
        return StreetNetwork(
            nodes=network.nodes, edges=edges, crs=network.crs, barriers=network.barriers.copy()
        )
    half = float(np.nanmax(edges["width_m"].to_numpy(dtype=float, na_value=np.nan))) / 2
    reach = half + max(parameter("bollard_row_search_m"), parameter("barrier_on_edge_tolerance_m"))
    # the original frame's index is built once and kept with it (the copy's is not)
    _, ei = network.edges.sindex.query(near, predicate="dwithin", distance=reach)
    ids = edges.index[np.unique(ei)]
    sub = edges.loc[ids].copy()
    sub["blocked_by"] = pd.Series(pd.NA, index=sub.index, dtype="string")
    sub["clear_gap_m"] = np.nan
    metric = barriers.to_crs(network.crs)
    bi, _ = shapely.STRtree(sub.geometry.values).query(
        metric.geometry.values, predicate="dwithin", distance=reach
    )
    mine = metric.iloc[np.unique(bi)]
    fresh = (
        apply_barriers(sub, mine, max_gap=max_gap, gap_tolerance=gap_tolerance)
        if len(mine)
        else empty_closures()
    )
    edges.loc[ids, ["blocked_by", "clear_gap_m"]] = sub[["blocked_by", "clear_gap_m"]]
    kept = network.barriers[~network.barriers["edge"].isin(ids)]
    closures = pd.concat([kept, fresh] if len(fresh) else [kept], ignore_index=True)
    closures = closures.sort_values(["edge", "at_m"], kind="stable").reset_index(drop=True)
    return StreetNetwork(nodes=network.nodes, edges=edges, crs=network.crs, barriers=closures)


def _node(lines: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Split ways at shared vertices; return (edges, nodes) frames."""
    crs = lines.crs
    coords, way = shapely.get_coordinates(lines.geometry.values, return_index=True)
    # drop repeated consecutive vertices (zero-length segments)
    same_way_prev = np.r_[False, way[1:] == way[:-1]]
    repeat = same_way_prev & np.r_[False, (np.abs(np.diff(coords, axis=0)) < SNAP_M).all(axis=1)]
    coords, way = coords[~repeat], way[~repeat]
    # a way that collapses to one point (all its vertices within the snap) has no segment
    degenerate = np.bincount(way, minlength=len(lines))[way] < 2
    coords, way = coords[~degenerate], way[~degenerate]

    key = np.round(coords / SNAP_M).astype(np.int64)
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
