"""Geometry of the hostile-vehicle approach search (private to :mod:`.approach`).

Everything the search needs from the street geometry, independent of the vehicle class:

* :func:`turn_radius`, the radius of the fastest arc through a bend of width ``w``;
* ``_prepare``: the directed-edge graph of the vehicle network, with edge geometry
  simplified to within ``w/2`` (Douglas-Peucker), the bends (interior vertices of the
  simplified edges) and the turns between directed edges at each node, U-turns
  included, each with its turn radius;
* ``_space_edges``: which vehicle edges run inside which public space;
* ``_Paths`` and ``_draw``: traced approaches as pieces of directed edges, trimmed to
  their run-up and drawn as one LineString per target.

The underscore names are internals shared with :mod:`geo_protect.analysis.approach` only;
:func:`turn_radius` is public there.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo_protect.analysis.network import StreetNetwork
from geo_protect.errors import AnalysisError

__all__ = ["turn_radius"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_KMH = 3.6  # m/s -> km/h (unit conversion)
_EPS_M = 1e-9  # numerical tolerance on lengths (m)


def turn_radius(
    deflection_rad: npt.ArrayLike, width_m: npt.ArrayLike, leg_m: npt.ArrayLike
) -> FloatArray:
    """Radius of the fastest arc through a bend of the street, in metres.

    ``R = max(w / (2·sin(Δ/2)), min(w / (1 − cos(Δ/2)), leg / tan(Δ/2)))``

    * ``w / (1 − cos(Δ/2))`` is the racing line: an arc from the outside of the street
      before the bend, touching the inside of the corner, to the outside after it, using
      the whole width ``w`` (kerbs are mounted by an attacker, so the carriageway width
      stands for the lateral room of the vehicle's centre).
    * ``leg / tan(Δ/2)`` limits that arc to the straight length available on each side
      (half of the shorter adjacent segment, as the next vertex may be a bend too); on a
      circle digitised with chords it gives back the circle's radius.
    * ``w / (2·sin(Δ/2))``, the brief's estimate (an arc whose chord is the width), is
      the floor: the tightest turn made inside the junction itself.

    A U-turn (``Δ = π``) gets ``w/2``. Straight on (``Δ = 0``) gets ``inf``.

    Parameters
    ----------
    deflection_rad
        Change of heading at the bend, 0 (straight on) to π (U-turn).
    width_m
        Available width.
    leg_m
        Straight length available before and after the bend.

    Examples
    --------
    >>> import numpy as np
    >>> r = turn_radius([np.pi / 2, np.pi, 0.0], [4.0, 6.0, 6.0], [100.0, 100.0, 10.0])
    >>> r.round(2).tolist()
    [13.66, 3.0, inf]
    """
    delta = np.asarray(deflection_rad, dtype=float)
    w = np.asarray(width_m, dtype=float)
    leg = np.asarray(leg_m, dtype=float)
    half = delta / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        chord = w / (2 * np.sin(half))
        racing = w / (2 * np.sin(half / 2) ** 2)  # = w / (1 - cos(Δ/2)), stable for small Δ
        legs = leg / np.tan(half)
    radius = np.maximum(chord, np.minimum(racing, legs))
    return np.asarray(np.where(delta > 0, radius, np.inf), dtype=float)


def _angle(a: FloatArray, b: FloatArray) -> FloatArray:
    """Unsigned angle between vectors (rows), 0 to π."""
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    dot = (a * b).sum(axis=1)
    return np.asarray(np.arctan2(np.abs(cross), dot), dtype=float)


@dataclass(frozen=True)
class _Graph:
    """The directed-edge graph of the vehicle network (directed edge ``2i``: u→v, ``2i+1``: v→u)."""

    edge_index: pd.Index  # network edge id of undirected vehicle edge i
    transit: BoolArray  # per directed edge: not closed by a barrier (may be driven through)
    geoms: npt.NDArray[np.object_]  # original LineString of edge i, drawn u→v
    length: FloatArray  # per directed edge
    start_e: (
        FloatArray  # per directed edge: v² the vehicle may start with, before the top-speed cap
    )
    bend_dedge: IntArray  # per bend (sorted by directed edge)
    bend_pos: FloatArray  # distance of the bend from the directed edge's tail
    bend_radius: FloatArray
    bend_start: IntArray  # CSR offsets of the bends of each directed edge (len 2n + 1)
    turn_pred: IntArray  # per turn (sorted by pred)
    turn_succ: IntArray
    turn_radius: FloatArray
    turn_start: IntArray  # CSR offsets of the turns out of each directed edge (len 2n + 1)
    xy: FloatArray  # vertices of the original geometries, edge after edge
    xy_start: IntArray  # CSR offsets of the vertices of each undirected edge (len n + 1)
    xy_at: FloatArray  # distance of each vertex from its edge's u end


def _prepare(network: StreetNetwork, *, road_speed_factor: float, default_width_m: float) -> _Graph:
    """Directed edges, bends and turns of the vehicle network (class independent)."""
    ve = network.edges[network.edges["hostile_vehicle"].to_numpy(dtype=bool, na_value=False)]
    if ve.empty:
        raise AnalysisError("approach_speeds: the network has no edge a vehicle can drive")
    n = len(ve)
    geoms = ve.geometry.to_numpy()
    width = ve["width_m"].to_numpy(dtype=float, na_value=np.nan)
    width = np.where(np.isfinite(width) & (width > 0), width, default_width_m)
    length = shapely.length(geoms)

    # simplified geometry, for headings and bends only (lengths stay those of the original)
    simple = shapely.simplify(geoms, width / 2, preserve_topology=False)
    sxy, sown = shapely.get_coordinates(simple, return_index=True)
    seg_ok = np.ones(n, dtype=bool)
    same = sown[1:] == sown[:-1]
    zero = same & (np.hypot(*np.diff(sxy, axis=0).T) <= _EPS_M)
    seg_ok[sown[1:][zero]] = False
    simple = np.where(seg_ok & (shapely.get_num_coordinates(simple) >= 2), simple, geoms)
    sxy, sown = shapely.get_coordinates(simple, return_index=True)
    first = np.searchsorted(sown, np.arange(n))
    last = np.searchsorted(sown, np.arange(n), side="right") - 1

    # bends: interior vertices of the simplified geometry
    interior = np.ones(len(sxy), dtype=bool)
    interior[first] = False
    interior[last] = False
    k = np.flatnonzero(interior)
    vin = sxy[k] - sxy[k - 1]
    vout = sxy[k + 1] - sxy[k]
    bend_delta = _angle(vin, vout)
    lin, lout = np.hypot(*vin.T), np.hypot(*vout.T)
    owner = sown[k]
    bend_r = turn_radius(bend_delta, width[owner], np.minimum(lin, lout) / 2)
    pos = shapely.line_locate_point(geoms[owner], shapely.points(sxy[k]))
    keep = np.isfinite(bend_r)
    owner, pos, bend_r = owner[keep], pos[keep], bend_r[keep]
    b_dedge = np.r_[2 * owner, 2 * owner + 1]
    b_pos = np.r_[pos, length[owner] - pos]
    b_r = np.r_[bend_r, bend_r]
    order = np.argsort(b_dedge, kind="stable")
    b_dedge, b_pos, b_r = b_dedge[order], b_pos[order], b_r[order]
    bend_start = np.searchsorted(b_dedge, np.arange(2 * n + 1)).astype(np.int64)

    # turns between directed edges at each node (U-turns included)
    u = ve["u"].to_numpy(dtype=np.int64)
    v = ve["v"].to_numpy(dtype=np.int64)
    dedge = np.arange(2 * n)
    tail = np.where(dedge % 2 == 0, u[dedge // 2], v[dedge // 2])
    head = np.where(dedge % 2 == 0, v[dedge // 2], u[dedge // 2])
    # heading leaving the tail and arriving at the head, and the adjacent segment lengths
    fwd_first = sxy[first + 1] - sxy[first]
    fwd_last = sxy[last] - sxy[last - 1]
    h_out = np.empty((2 * n, 2))
    h_in = np.empty((2 * n, 2))
    h_out[0::2], h_out[1::2] = fwd_first, -fwd_last
    h_in[0::2], h_in[1::2] = fwd_last, -fwd_first
    seg_out = np.hypot(*h_out.T)
    seg_in = np.hypot(*h_in.T)
    pairs = pd.merge(
        pd.DataFrame({"node": head, "pred": dedge}),
        pd.DataFrame({"node": tail, "succ": dedge}),
        on="node",
    )
    pred = pairs["pred"].to_numpy(dtype=np.int64)
    succ = pairs["succ"].to_numpy(dtype=np.int64)
    delta = _angle(h_in[pred], h_out[succ])
    uturn = (pred ^ 1) == succ
    delta[uturn] = np.pi
    t_r = turn_radius(
        delta,
        (width[pred // 2] + width[succ // 2]) / 2,
        np.minimum(seg_in[pred], seg_out[succ]) / 2,
    )
    order = np.lexsort((succ, pred))
    pred, succ, t_r = pred[order], succ[order], t_r[order]
    turn_start = np.searchsorted(pred, np.arange(2 * n + 1)).astype(np.int64)

    gxy, gown = shapely.get_coordinates(geoms, return_index=True)
    step = np.r_[0.0, np.hypot(*np.diff(gxy, axis=0).T)]
    step[np.searchsorted(gown, np.arange(n))] = 0.0
    run = np.cumsum(step)
    gat = run - run[np.searchsorted(gown, np.arange(n))][gown]
    through = np.repeat(ve["through_road"].to_numpy(dtype=bool, na_value=False), 2)
    road = np.repeat(ve["speed_kmh"].to_numpy(dtype=float, na_value=0.0), 2)
    start_v = np.where(through, road * road_speed_factor / _KMH, 0.0)
    return _Graph(
        edge_index=pd.Index(ve.index),
        transit=np.repeat(ve["blocked_by"].isna().to_numpy(dtype=bool), 2),
        geoms=geoms,
        length=np.repeat(length, 2),
        start_e=start_v**2,
        bend_dedge=b_dedge,
        bend_pos=b_pos,
        bend_radius=b_r,
        bend_start=bend_start,
        turn_pred=pred,
        turn_succ=succ,
        turn_radius=t_r,
        turn_start=turn_start,
        xy=gxy,
        xy_start=np.searchsorted(gown, np.arange(n + 1)).astype(np.int64),
        xy_at=gat,
    )


def _ranges(start: IntArray, count: IntArray) -> tuple[IntArray, IntArray]:
    """Concatenated ``arange(start[k], start[k] + count[k])`` and the owner ``k`` of each."""
    total = int(count.sum())
    owner = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    return (np.arange(total) - first[owner] + start[owner]).astype(np.int64), owner


@dataclass(frozen=True)
class _SpaceEdges:
    """Which vehicle edges run inside which space (for the own-space exclusion)."""

    target_space: IntArray  # per target: position of its space, -1 if none
    keys: IntArray  # sorted ``space * n_edges + edge`` of the edges whose interior meets a space's


def _space_edges(
    graph: _Graph, spaces: gpd.GeoDataFrame | None, targets: pd.DataFrame, crs: str
) -> _SpaceEdges | None:
    if spaces is None or spaces.empty:
        return None
    if spaces.crs is None:
        raise AnalysisError("approach_speeds: the spaces frame has no CRS")
    metric = spaces.to_crs(crs)
    target_space = pd.Index(metric.index).get_indexer(targets["space_uid"].to_numpy(dtype=object))
    wanted = np.unique(target_space[target_space >= 0])
    polys = metric.geometry.to_numpy()[wanted]
    s_i, e_i = shapely.STRtree(graph.geoms).query(polys, predicate="intersects")
    inside = shapely.relate_pattern(graph.geoms[e_i], polys[s_i], "T********")
    keys = np.unique(wanted[s_i[inside]].astype(np.int64) * len(graph.geoms) + e_i[inside])
    return _SpaceEdges(target_space=target_space.astype(np.int64), keys=keys)


@dataclass
class _Paths:
    """Traced approaches of a batch of targets; pieces are parts of directed edges."""

    speed_e: FloatArray
    start_e: FloatArray
    run_up: FloatArray
    target: IntArray  # per piece: the target (position in the batch)
    step: IntArray  # 0 = the piece that ends at the entry, 1 = the one before...
    dedge: IntArray
    lo: FloatArray  # piece from lo to hi, distances from the directed edge's tail
    hi: FloatArray


def _select(paths: _Paths, keep: BoolArray) -> _Paths:
    return _Paths(
        paths.speed_e,
        paths.start_e,
        paths.run_up,
        paths.target[keep],
        paths.step[keep],
        paths.dedge[keep],
        paths.lo[keep],
        paths.hi[keep],
    )


def _concat(parts: list[_Paths]) -> _Paths:
    return _Paths(
        parts[0].speed_e,
        parts[0].start_e,
        parts[0].run_up,
        np.concatenate([p.target for p in parts]),
        np.concatenate([p.step for p in parts]),
        np.concatenate([p.dedge for p in parts]),
        np.concatenate([p.lo for p in parts]),
        np.concatenate([p.hi for p in parts]),
    )


def _draw(graph: _Graph, paths: _Paths) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """One LineString per target, from the start of its run-up to the entry."""
    edge = paths.dedge // 2
    odd = paths.dedge % 2 == 1
    length = graph.length[paths.dedge]
    a_fwd = np.where(odd, length - paths.lo, paths.lo)  # travel start, from the u end
    b_fwd = np.where(odd, length - paths.hi, paths.hi)  # travel end
    ends = shapely.get_coordinates(
        shapely.line_interpolate_point(graph.geoms[np.r_[edge, edge]], np.r_[a_fwd, b_fwd])
    )
    k = len(edge)
    idx, own = _ranges(graph.xy_start[edge], np.diff(graph.xy_start)[edge])
    at = graph.xy_at[idx]
    lo_f, hi_f = np.minimum(a_fwd, b_fwd)[own], np.maximum(a_fwd, b_fwd)[own]
    inner = (at > lo_f + _EPS_M) & (at < hi_f - _EPS_M)
    idx, own, at = idx[inner], own[inner], at[inner]
    xy = np.vstack([ends[:k], graph.xy[idx], ends[k:]])
    piece = np.r_[np.arange(k), own, np.arange(k)]
    sub = np.r_[np.full(k, -np.inf), np.where(odd[own], -at, at), np.full(k, np.inf)]
    target = paths.target[piece]
    order = np.lexsort((sub, -paths.step[piece], target))
    xy, target = xy[order], target[order]
    dup = np.r_[
        False, (target[1:] == target[:-1]) & (np.abs(np.diff(xy, axis=0)) <= _EPS_M).all(axis=1)
    ]
    xy, target = xy[~dup], target[~dup]
    drawn, count = np.unique(target, return_counts=True)
    single = np.flatnonzero(count == 1)
    if len(single):  # the vehicle is already at its start speed at the entry: a point
        first = np.searchsorted(target, drawn[single])
        xy = np.insert(xy, first, xy[first], axis=0)
        target = np.insert(target, first, drawn[single])
    lines = shapely.linestrings(xy, indices=np.searchsorted(drawn, target))
    return drawn, np.asarray(lines, dtype=object)


def _entry_points(
    network: StreetNetwork, edge_of: IntArray, pos_of: FloatArray
) -> npt.NDArray[np.object_]:
    geoms = network.edges.geometry.loc[edge_of].to_numpy()
    return np.asarray(shapely.line_interpolate_point(geoms, pos_of), dtype=object)
