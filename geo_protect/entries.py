"""Entry points of public spaces: where people and hostile vehicles can get in.

An entry is a point of a space's outline where a way of the walk or the hostile-vehicle
network gets in (domain brief §6.3: every intersection of the outline with a passable
way is an entrance), plus mapped ``entrance=*`` nodes and gates on the outline.

How the outline is read, for every way piece (network edge) that reaches it:

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

The vehicle class follows the hostile-vehicle network (:mod:`geo_protect.network`): an
entry is ``vehicle_permeable`` when a hostile-vehicle edge reaches it from outside and
no physical barrier closes that edge between its outer end and the entry (bollard rows
close an edge only when every clear gap is at most ``max_bollard_gap_m``); ``blocked``
when every such edge is closed; ``pedestrian_only`` when no hostile-vehicle edge reaches
it.

Optionally, *frontage breaches*: stretches of the outline along which a hostile-vehicle
edge runs within ``frontage_max_offset_m`` with no mapped barrier or building in between
(a vehicle can mount the kerb anywhere there) become ``vehicle_permeable`` entries of
kind ``frontage`` at the middle of the stretch.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo_protect._errors import AnalysisError, ValidationError
from geo_protect.network import StreetNetwork
from geo_protect.reference import parameter, table
from geo_protect.schema import WGS84, LayerSpec, conform, register_layer

__all__ = ["ENTRY_POINT", "entry_points"]

ENTRY_POINT = register_layer(
    LayerSpec(
        "entry_point",
        "Point",
        {
            "space_uid": "string",
            "kind": "string",
            "networks": "string",
            "bearing_deg": "float64",
            "width_m": "float64",
            "width_source": "string",
            "entry_class": "string",
            "street_uid": "string",
            "edge": "Int64",
            "at_m": "float64",
            "towards": "string",
            "impact_angle_deg": "float64",
            "worst_speed_kmh": "float64",
            "worst_vehicle": "string",
            "required_rating": "string",
        },
        description="Entry points of public spaces with their network, width and vehicle class.",
        analysis=True,
    )
)

# states of a way just beside an outline point
_ALONG, _INSIDE, _OUTSIDE = 0, 1, 2
_GEOD = Geod(ellps="WGS84")
_CLASS_RANK = {"pedestrian_only": 0, "blocked": 1, "vehicle_permeable": 2}


def entry_points(
    spaces: gpd.GeoDataFrame,
    network: StreetNetwork | None,
    *,
    entrances: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    crs: str | None = None,
    frontage: bool = True,
    merge_m: float | None = None,
    tolerance_m: float | None = None,
    probe_m: float | None = None,
    barrier_tolerance_m: float | None = None,
    street_end_depth_ratio: float | None = None,
    entrance_width_m: float | None = None,
    frontage_max_offset_m: float | None = None,
    frontage_min_length_m: float | None = None,
    max_bollard_gap_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Entry points of every public space (the ``entry_point`` layer).

    Parameters
    ----------
    spaces
        The ``public_space`` layer (any CRS; measured in ``network.crs``).
    network
        The city's :class:`~geo_protect.network.StreetNetwork`; ``None`` when the city
        has no streets (only mapped entrances and gates are then found).
    entrances
        The ``entrance`` layer: nodes on an outline become entries of kind ``entrance``.
    barriers
        The ``barrier`` layer: gates on an outline become entries of kind ``gate``; the
        positions of the barriers that close network edges decide whether they close
        the entry; barriers stop frontage breaches.
    buildings
        The ``building`` layer; buildings between a road and an outline stop frontage
        breaches.
    crs
        Metric CRS; the network's by default (required when ``network`` is ``None``).
    frontage
        Also report frontage breaches (kind ``frontage``).
    merge_m, tolerance_m, probe_m, barrier_tolerance_m, street_end_depth_ratio, \
entrance_width_m, frontage_max_offset_m, frontage_min_length_m, max_bollard_gap_m
        Override the reference values ``entry_merge_m``, ``entry_boundary_tolerance_m``,
        ``entry_probe_m``, ``entry_barrier_tolerance_m``, ``street_end_depth_ratio``,
        ``min_exit_width_m``, ``frontage_max_offset_m``, ``frontage_min_length_m``,
        ``max_bollard_gap_m`` (posts between a road and an outline shield this far on
        either side). Whether a bollard row closes a *network edge* is decided when the
        network is built (:func:`geo_protect.network.street_network`).

    Returns
    -------
    GeoDataFrame
        The ``entry_point`` layer in WGS84, uid ``"{space_uid}#{n}"`` numbered along
        each outline. ``edge``, ``at_m`` and ``towards`` locate vehicle-permeable
        entries on the hostile-vehicle network (``at_m`` from the edge's ``u`` end,
        ``towards`` the end a vehicle drives to in order to enter); ``bearing_deg`` is
        the direction into the space (0 = north, clockwise); ``impact_angle_deg`` the
        angle between the way and the outline (90 = perpendicular). The
        ``worst_*`` and ``required_rating`` columns are left empty for the vehicle
        analysis (:func:`geo_protect.analysis.analyse_city`). A space without entries
        simply has no rows.

    Raises
    ------
    ValidationError
        If ``spaces`` holds non-polygon geometries.
    AnalysisError
        If no metric CRS is known (``network`` is ``None`` and ``crs`` is not given).
    """
    p = _Params(
        merge=_value(merge_m, "entry_merge_m"),
        tol=_value(tolerance_m, "entry_boundary_tolerance_m"),
        probe=_value(probe_m, "entry_probe_m"),
        barrier_tol=_value(barrier_tolerance_m, "entry_barrier_tolerance_m"),
        end_ratio=_value(street_end_depth_ratio, "street_end_depth_ratio"),
        entrance_width=_value(entrance_width_m, "min_exit_width_m"),
        front_offset=_value(frontage_max_offset_m, "frontage_max_offset_m"),
        front_length=_value(frontage_min_length_m, "frontage_min_length_m"),
        max_gap=_value(max_bollard_gap_m, "max_bollard_gap_m"),
    )
    metric = crs or (network.crs if network is not None else None)
    if metric is None:
        raise AnalysisError("entry points: no metric CRS (pass crs= when there is no network)")
    if spaces.empty:
        return conform("entry_point", _empty())
    polys = spaces.to_crs(metric)
    types = shapely.get_type_id(polys.geometry.values)
    if not np.isin(types, (3, 6)).all():
        raise ValidationError("entry points: the public_space layer holds non-polygon geometries")
    frames = []
    if network is not None and not network.edges.empty:
        edges = network.edges[network.edges["walk"] | network.edges["hostile_vehicle"]]
        half = _half_edges(polys, edges, p)
        frames.append(_network_entries(polys, edges, half, barriers, p))
        if frontage:
            frames.append(_frontage_entries(polys, edges, barriers, buildings, frames[0], p))
    frames.append(_mapped_entries(polys, entrances, barriers, p))
    found = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else pd.DataFrame()
    )
    if found.empty:
        return conform("entry_point", _empty())
    entries = _merge_mapped(found, p.merge)
    return conform("entry_point", _finish(entries, polys, metric, p))


class _Params:
    def __init__(self, **values: float) -> None:
        self.merge = values["merge"]
        self.tol = values["tol"]
        self.probe = values["probe"]
        self.barrier_tol = values["barrier_tol"]
        self.end_ratio = values["end_ratio"]
        self.entrance_width = values["entrance_width"]
        self.front_offset = values["front_offset"]
        self.front_length = values["front_length"]
        self.max_gap = values["max_gap"]


def _value(given: float | None, name: str) -> float:
    return parameter(name) if given is None else float(given)


def _empty() -> gpd.GeoDataFrame:
    from geo_protect.schema import empty_layer

    return empty_layer("entry_point")


def _half_edges(polys: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, p: _Params) -> pd.DataFrame:
    """Every edge side at every point where an edge meets a space outline.

    One row per (space, edge, position, side): ``space`` (row number in ``polys``),
    ``edge`` (label), ``s`` (metres from ``u``), ``side`` (-1 towards ``u``, +1
    towards ``v``), ``state`` (along / inside / outside), point ``x, y`` and the
    unit direction ``dx, dy`` from the point along that side.
    """
    geom = polys.geometry.values
    bnd = shapely.boundary(geom)
    lines = edges.geometry.values
    si, ei = shapely.STRtree(lines).query(bnd, predicate="dwithin", distance=p.tol)
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
    near = shapely.distance(ends, bnd[si][end_pair]) <= p.tol
    s_end = np.r_[np.zeros(len(si)), length][near]
    cand = pd.DataFrame({"pair": np.r_[pair, end_pair[near]], "s": np.r_[s_cross, s_end]})
    cand_len = length[cand["pair"].to_numpy()]
    s = cand["s"].to_numpy()
    s = np.where(s <= p.tol, 0.0, np.where(s >= cand_len - p.tol, cand_len, s))
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
        step = np.minimum(p.probe, room / 2) if len(k) else room
        rows.append(pd.DataFrame({"cand": k, "side": side, "probe": s[k] + side * step}))
    sides = pd.concat(rows, ignore_index=True)
    k = sides["cand"].to_numpy()
    pk = pair_of[k]
    the_line = line[pk]
    at = shapely.line_interpolate_point(the_line, s[k])
    sample = shapely.line_interpolate_point(the_line, sides["probe"].to_numpy())
    space_geom = geom[si[pk]]
    on_outline = shapely.distance(sample, bnd[si[pk]]) <= p.tol
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
    barriers: gpd.GeoDataFrame | None,
    p: _Params,
) -> pd.DataFrame:
    """Entries where the network reaches an outline, one row per merged entry."""
    if half.empty:
        return pd.DataFrame()
    # group the sides meeting at one point of one outline
    key = np.round(half[["x", "y"]].to_numpy() / 0.05).astype(np.int64)
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
    half = half[is_entry.reindex(point_id).to_numpy()].copy()
    if half.empty:
        return pd.DataFrame()

    # edge attributes for each side
    e = edges.loc[half["edge"].to_numpy()]
    half["walk"] = e["walk"].to_numpy(dtype=bool)
    half["vehicle"] = e["hostile_vehicle"].to_numpy(dtype=bool)
    half["width"] = e["width_m"].to_numpy(dtype=float, na_value=np.nan)
    half["width_source"] = e["width_source"].astype(object).to_numpy()
    half["gap"] = e["clear_gap_m"].to_numpy(dtype=float, na_value=np.nan)
    half["speed"] = e["speed_kmh"].to_numpy(dtype=float, na_value=np.nan)
    half["street_uid"] = e["street_uid"].astype(object).to_numpy()
    half["closed"] = _closed_outside(half, e, barriers, p)
    approach = half["vehicle"].to_numpy() & (half["state"].to_numpy() != _INSIDE)
    half["approach"] = approach
    half["open"] = approach & ~half["closed"].to_numpy()

    # merge entry points of one space closer than merge_m
    pts = half.drop_duplicates("point")[["point", "space", "x", "y"]]
    comp = _clusters(pts, p.merge)
    half["entry"] = half["point"].map(pd.Series(comp, index=pts["point"].to_numpy()))

    # representative side: open vehicle approach, then blocked approach, then inside
    # sides (for the direction into the space), widest first
    half["rank"] = np.select(
        [half["open"], half["approach"], half["state"] == _INSIDE], [3, 2, 1], default=0
    )
    ordered = half.sort_values(
        ["entry", "rank", "speed", "width"], ascending=[True, False, False, False]
    )
    rep = ordered.drop_duplicates("entry").set_index("entry")
    inward = (
        half[half["state"] == _INSIDE]
        .sort_values(["entry", "vehicle", "width"], ascending=[True, False, False])
        .drop_duplicates("entry")
        .set_index("entry")
    )
    outward = (
        half[half["state"] == _OUTSIDE]
        .sort_values(["entry", "vehicle", "width"], ascending=[True, False, False])
        .drop_duplicates("entry")
        .set_index("entry")
    )
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
    is_open = out["any_open"].to_numpy()
    out["edge"] = pd.array(np.where(is_open, rep["edge"], 0), dtype="Int64")
    out.loc[~is_open, "edge"] = pd.NA
    out["at_m"] = np.where(is_open, rep["s"], np.nan)
    # the vehicle comes from the outer end of its side and drives towards the other end
    out["towards"] = pd.array(np.where(rep["side"] < 0, "v", "u"), dtype="string")
    out.loc[~is_open, "towards"] = pd.NA
    out["networks"] = np.where(
        out["walk"] & out["vehicle"], "walk+vehicle", np.where(out["vehicle"], "vehicle", "walk")
    )
    out["kind"] = "crossing"
    out["mapped"] = False
    return out.reset_index(drop=True)


def _closed_outside(
    half: pd.DataFrame, e: gpd.GeoDataFrame, barriers: gpd.GeoDataFrame | None, p: _Params
) -> np.ndarray:
    """Whether the barrier closing each side's edge stands on that side (or at the entry)."""
    blocked: np.ndarray = e["blocked_by"].notna().to_numpy(dtype=bool)
    closed: np.ndarray = blocked.copy()
    if barriers is None or barriers.empty or not blocked.any():
        return closed
    k = np.flatnonzero(blocked)
    uid = e["blocked_by"].to_numpy()[k].astype(str)
    metric = barriers.to_crs(e.crs)
    known = np.isin(uid, metric.index.astype(str))
    k, uid = k[known], uid[known]
    geoms = metric.geometry.loc[uid].values
    lines = e.geometry.values[k]
    # a line barrier closes the edge where it crosses it
    where = shapely.intersection(lines, geoms)
    where = np.where(shapely.is_empty(where), geoms, where)
    s_b = shapely.line_locate_point(lines, shapely.centroid(where))
    s = half["s"].to_numpy()[k]
    side = half["side"].to_numpy()[k]
    on_side = np.where(side < 0, s_b <= s + p.barrier_tol, s_b >= s - p.barrier_tol)
    closed[k] = on_side
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


def _mapped_entries(
    polys: gpd.GeoDataFrame,
    entrances: gpd.GeoDataFrame | None,
    barriers: gpd.GeoDataFrame | None,
    p: _Params,
) -> pd.DataFrame:
    """Mapped entrance nodes and gates standing on an outline."""
    parts = []
    if entrances is not None and not entrances.empty:
        parts.append(entrances.assign(_kind="entrance"))
    if barriers is not None and not barriers.empty:
        gates = table("entry_gates")["barrier"].astype(str).tolist()
        pts = barriers[
            (shapely.get_type_id(barriers.geometry.values) == 0) & barriers["kind"].isin(gates)
        ]
        if not pts.empty:
            parts.append(pts.assign(_kind="gate"))
    if not parts:
        return pd.DataFrame()
    nodes = pd.concat([x[["_kind", "tags", "geometry"]] for x in parts]).set_crs(
        parts[0].crs, allow_override=True
    )
    nodes = gpd.GeoDataFrame(nodes, geometry="geometry").to_crs(polys.crs)
    bnd = shapely.boundary(polys.geometry.values)
    ni, si = shapely.STRtree(bnd).query(nodes.geometry.values, predicate="dwithin", distance=p.tol)
    if len(ni) == 0:
        return pd.DataFrame()
    xy = shapely.get_coordinates(nodes.geometry.values[ni])
    width = _tag_width(nodes["tags"].to_numpy()[ni])
    return pd.DataFrame(
        {
            "space": si,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "kind": nodes["_kind"].to_numpy()[ni],
            "mapped": True,
            "walk": True,
            "vehicle": False,
            "networks": "walk",
            "entry_class": "pedestrian_only",
            "width_m": np.where(np.isnan(width), p.entrance_width, width),
            "width_source": np.where(np.isnan(width), "entrance", "width"),
            "in_dx": np.nan,
            "in_dy": np.nan,
            "way_dx": np.nan,
            "way_dy": np.nan,
        }
    )


def _tag_width(tags: np.ndarray) -> np.ndarray:
    """``width=*`` in metres from tags (JSON text or dicts); NaN when absent or not numeric."""
    out = np.full(len(tags), np.nan)
    for i, t in enumerate(tags):  # tags are small dicts; no geometry work here
        d = json.loads(t) if isinstance(t, str) and t else (t if isinstance(t, dict) else {})
        raw = str(d.get("width", "")).strip().removesuffix("m").strip()
        try:
            out[i] = float(raw)
        except ValueError:
            continue
    return out


def _merge_mapped(found: pd.DataFrame, merge: float) -> pd.DataFrame:
    """Fold mapped entrances and gates into network entries closer than ``merge``."""
    found = found.reset_index(drop=True)
    mapped = found["mapped"].to_numpy(dtype=bool)
    if not mapped.any() or mapped.all():
        return found.drop_duplicates(["space", "x", "y"]).reset_index(drop=True)
    net, own = found[~mapped], found[mapped]
    a, b = shapely.STRtree(shapely.points(net[["x", "y"]].to_numpy())).query(
        shapely.points(own[["x", "y"]].to_numpy()), predicate="dwithin", distance=merge
    )
    same = own["space"].to_numpy()[a] == net["space"].to_numpy()[b]
    a, b = a[same], b[same]
    # the network entry keeps its geometry, width and class; it takes the mapped kind
    kinds = pd.Series(own["kind"].to_numpy()[a], index=net.index[b])
    kinds = kinds[~kinds.index.duplicated()]
    found.loc[kinds.index, "kind"] = kinds.to_numpy()
    drop = own.index[np.unique(a)]
    return found.drop(index=drop).drop_duplicates(["space", "x", "y"]).reset_index(drop=True)


def _finish(
    entries: pd.DataFrame, polys: gpd.GeoDataFrame, crs: str, p: _Params
) -> gpd.GeoDataFrame:
    """Directions, angles, kinds of corridor entries, uids; WGS84 frame."""
    space = entries["space"].to_numpy()
    geom = polys.geometry.values[space]
    bnd = shapely.boundary(geom)
    pts = shapely.points(entries[["x", "y"]].to_numpy())
    # outline direction at the entry
    pos = shapely.line_locate_point(bnd, pts)
    total = shapely.length(bnd)
    ahead = shapely.line_interpolate_point(bnd, np.minimum(pos + 1.0, total))
    back = shapely.line_interpolate_point(bnd, np.maximum(pos - 1.0, 0.0))
    t = shapely.get_coordinates(ahead) - shapely.get_coordinates(back)
    t /= np.hypot(t[:, 0], t[:, 1])[:, None]
    # inward normal of the outline: the side of the tangent that is inside
    n = np.c_[-t[:, 1], t[:, 0]]
    xy = entries[["x", "y"]].to_numpy()
    flip = ~shapely.contains(geom, shapely.points(xy + n * p.tol * 2))
    n[flip] *= -1
    in_d = entries[["in_dx", "in_dy"]].to_numpy(dtype=float, copy=True)
    missing = np.isnan(in_d).any(axis=1)
    in_d[missing] = n[missing]
    way = entries[["way_dx", "way_dy"]].to_numpy(dtype=float, copy=True)
    cos = np.abs(way[:, 0] * t[:, 0] + way[:, 1] * t[:, 1])
    impact = np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))

    kind = entries["kind"].to_numpy(dtype=object).copy()
    corridor = (polys["kind"].astype(str).to_numpy()[space] == "pedestrian_street") & (
        kind == "crossing"
    )
    if corridor.any():
        kind[corridor] = _corridor_kind(geom[corridor], xy[corridor], n[corridor], p.end_ratio)

    # WGS84 bearings (true north) from the entry a metre into the space
    here = gpd.GeoSeries(shapely.points(xy), crs=crs).to_crs(WGS84)
    there = gpd.GeoSeries(shapely.points(xy + in_d), crs=crs).to_crs(WGS84)
    az, _, _ = _GEOD.inv(
        here.x.to_numpy(), here.y.to_numpy(), there.x.to_numpy(), there.y.to_numpy()
    )
    bearing = np.mod(np.asarray(az), 360.0)

    uids = polys.index.to_numpy()[space].astype(str)
    order = np.lexsort((pos / np.where(total > 0, total, 1), uids))
    number = np.empty(len(order), dtype=np.int64)
    ranks = pd.Series(uids[order]).groupby(uids[order]).cumcount().to_numpy() + 1
    number[order] = ranks
    out = pd.DataFrame(
        {
            "space_uid": uids,
            "kind": kind,
            "networks": entries["networks"].to_numpy(),
            "bearing_deg": np.round(bearing, 1),
            "width_m": entries["width_m"].to_numpy(dtype=float),
            "width_source": entries["width_source"].to_numpy(),
            "entry_class": entries["entry_class"].to_numpy(),
            "street_uid": _col(entries, "street_uid"),
            "edge": entries["edge"].astype("Int64").to_numpy() if "edge" in entries else pd.NA,
            "at_m": entries["at_m"].to_numpy(dtype=float) if "at_m" in entries else np.nan,
            "towards": _col(entries, "towards"),
            "impact_angle_deg": np.round(impact, 1),
            "worst_speed_kmh": np.nan,
            "worst_vehicle": pd.NA,
            "required_rating": pd.NA,
        },
        index=pd.Index([f"{u}#{k}" for u, k in zip(uids, number, strict=True)], name="uid"),
    )
    out = out.iloc[order]
    return gpd.GeoDataFrame(out, geometry=here.values[order], crs=WGS84)


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    return np.asarray(frame[name].astype(object).where(frame[name].notna(), None).to_numpy())


def _corridor_kind(
    geom: np.ndarray, xy: np.ndarray, normal: np.ndarray, ratio: float
) -> np.ndarray:
    """``street_end`` when the inward normal runs far along the corridor, else ``junction``."""
    width = 2 * shapely.area(geom) / shapely.length(shapely.boundary(geom))  # ≈ corridor width
    reach = width * (ratio + 1)
    ray = shapely.linestrings(
        np.stack([xy, xy + normal * reach[:, None]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(xy)), 2),
    )
    inside = shapely.length(shapely.intersection(ray, geom))
    return np.where(inside > width * ratio, "street_end", "junction")


def _frontage_entries(
    polys: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    found: pd.DataFrame,
    p: _Params,
) -> pd.DataFrame:
    """Stretches of outline a hostile-vehicle edge runs along with nothing in between."""
    vehicle = edges[edges["hostile_vehicle"] & edges["blocked_by"].isna()]
    if vehicle.empty:
        return pd.DataFrame()
    geom = polys.geometry.values
    bnd = shapely.boundary(geom)
    lines = vehicle.geometry.values
    si, ei = shapely.STRtree(lines).query(bnd, predicate="dwithin", distance=p.front_offset)
    if len(si) == 0:
        return pd.DataFrame()
    # the part of the outline within the offset of the road's stretches outside the space
    outside = shapely.difference(lines[ei], shapely.buffer(geom[si], -p.tol))
    keep = ~shapely.is_empty(outside)
    si, ei, outside = si[keep], ei[keep], outside[keep]
    zone = shapely.buffer(outside, p.front_offset, cap_style="flat")
    stretch = shapely.intersection(bnd[si], zone)
    stoppers = _stoppers(barriers, buildings, polys.crs)
    if stoppers is not None and len(stoppers):
        # what stands between the road and the outline shields the outline near it
        near_road = shapely.intersection(outside, shapely.buffer(stretch, p.front_offset + p.tol))
        between = shapely.buffer(shapely.convex_hull(shapely.union(stretch, near_road)), -p.tol)
        bi, ki = stoppers.sindex.query(between, predicate="intersects")
        if len(bi):
            piece = shapely.intersection(between[bi], stoppers.geometry.values[ki])
            is_point = shapely.get_type_id(stoppers.geometry.values[ki]) == 0
            radius = np.where(is_point, p.max_gap, p.front_offset)
            shadow = (
                gpd.GeoSeries(shapely.buffer(piece, radius))
                .groupby(bi)
                .agg(lambda g: shapely.union_all(g.values))
            )
            idx = shadow.index.to_numpy()
            stretch[idx] = shapely.difference(stretch[idx], np.asarray(shadow.values))
    if len(found):
        # the outline next to a network entry belongs to that entry
        ordered = found.sort_values("space")
        space_no = ordered["space"].to_numpy(dtype=np.int64)
        holders, dense = np.unique(space_no, return_inverse=True)
        points = shapely.multipoints(ordered[["x", "y"]].to_numpy(dtype=float), indices=dense)
        known = np.full(len(geom), None, dtype=object)
        known[holders] = shapely.buffer(points, p.merge + p.front_offset)
        has = np.isin(si, space_no)
        stretch[has] = shapely.difference(stretch[has], known[si[has]])
    parts, owner = shapely.get_parts(shapely.line_merge(stretch), return_index=True)
    keep = shapely.length(parts) >= p.front_length
    parts, owner = parts[keep], owner[keep]
    if len(parts) == 0:
        return pd.DataFrame()
    mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
    road = lines[ei[owner]]
    e = vehicle.iloc[ei[owner]]
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
            "space": si[owner],
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
