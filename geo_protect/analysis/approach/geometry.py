"""Geometry of the hostile-vehicle approach search (private to :mod:`.approach`).

Everything the search needs from the street geometry, independent of the vehicle class:

* :func:`turn_radius`, the radius of the fastest arc through a bend of width ``w``;
* ``_prepare``: the directed-piece graph of the vehicle network (edges cut at barriers
  and at the targets' outlines, :mod:`.pieces`), with edge geometry simplified to
  within ``w/2`` (Douglas-Peucker), the bends (interior vertices of the simplified
  edges) and the turns between directed pieces at each node, U-turns included, each
  with its deflection, width and straight leg (the radius depends on the vehicle's
  width: :func:`radius_for`);
* ``_space_edges``: which vehicle pieces lie inside which public space;
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

from geo_protect.analysis.approach.pieces import (
    END_OUTLINE,
    BoolArray,
    FloatArray,
    IntArray,
    _cut_edges,
    _given_through,
    _locate,
    _Pieces,
    _through_length,
)
from geo_protect.analysis.network import StreetNetwork
from geo_protect.errors import AnalysisError

__all__ = ["BoolArray", "FloatArray", "IntArray", "radius_for", "turn_radius"]


_KMH = 3.6  # m/s -> km/h (unit conversion)
_EPS_M = 1e-9  # numerical tolerance on lengths (m)


def turn_radius(
    deflection_rad: npt.ArrayLike, width_m: npt.ArrayLike, leg_m: npt.ArrayLike
) -> FloatArray:
    """Radius of the fastest arc through a bend of the street, in metres.

    ``R = max(w / (2·sin(Δ/2)), min(w / (1 − cos(Δ/2)), leg / tan(Δ/2)))``

    * ``w / (1 − cos(Δ/2))`` is the racing line: an arc from the outside of the street
      before the bend, touching the inside of the corner, to the outside after it, using
      the whole width ``w``. ``w`` is the lateral room of the vehicle's *centre*: the
      carriageway width less the vehicle's width (:func:`radius_for`; kerbs are
      mounted by an attacker, so the kerb-to-kerb width counts).
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
    """The directed-piece graph of the vehicle network.

    Vehicle edges are cut into pieces at barriers and target outlines
    (:mod:`.pieces`); directed piece ``2p`` runs u→v along piece ``p``, ``2p+1`` back.
    """

    edge_index: pd.Index  # network edge id of undirected vehicle edge i
    pieces: _Pieces  # undirected pieces (edge i, lo, hi, nodes)
    transit: BoolArray  # per directed piece: may be driven through (the search's mask)
    geoms: npt.NDArray[np.object_]  # original LineString of edge i, drawn u→v
    edge_length: FloatArray  # per undirected edge i
    length: FloatArray  # per directed piece
    road_v: FloatArray  # per directed piece: road speed (m/s) of a through-road, else 0
    through_m: FloatArray  # per directed piece: length of its connected through-road pieces
    width: FloatArray  # per directed piece: the street width (mapped or default), m
    width_mapped: BoolArray  # per directed piece: its width is mapped (width=*), not a default
    bend_dedge: IntArray  # per bend (sorted by directed piece)
    bend_pos: FloatArray  # distance of the bend from the directed piece's tail
    bend_delta: FloatArray  # deflection (rad), street width and straight leg of each bend
    bend_width: FloatArray
    bend_leg: FloatArray
    bend_start: IntArray  # CSR offsets of the bends of each directed piece (len 2p + 1)
    turn_pred: IntArray  # per turn (sorted by pred)
    turn_succ: IntArray
    turn_delta: FloatArray  # deflection (rad; 0 straight on at an outline cut), width, leg
    turn_width: FloatArray
    turn_leg: FloatArray
    turn_start: IntArray  # CSR offsets of the turns out of each directed piece (len 2p + 1)
    turn_count: IntArray  # turns out of each directed piece (np.diff of turn_start)
    into_order: IntArray  # the turns sorted by successor
    into_start: IntArray  # CSR offsets of into_order per directed piece (len 2p + 1)
    xy: FloatArray  # vertices of the original geometries, edge after edge
    xy_start: IntArray  # CSR offsets of the vertices of each undirected edge (len n + 1)
    xy_at: FloatArray  # distance of each vertex from its edge's u end


@dataclass(frozen=True)
class _Simple:
    """Simplified edge geometry: vertices, owner edge and each edge's first/last vertex."""

    xy: FloatArray
    own: IntArray
    first: IntArray
    last: IntArray


def _prepare(
    network: StreetNetwork,
    *,
    default_width_m: float,
    outlines: npt.NDArray[np.object_] | None = None,
    through_m: pd.DataFrame | None = None,
) -> _Graph:
    """Directed pieces, bends and turns of the vehicle network (class independent).

    ``outlines`` (the targets' space boundaries, metric) cut the edges where they meet
    them, as do closing barriers; ``through_m``: see :func:`.pieces.through_lengths`.
    """
    ve = network.edges[network.edges["hostile_vehicle"].to_numpy(dtype=bool, na_value=False)]
    if ve.empty:
        raise AnalysisError("approach_speeds: the network has no edge a vehicle can drive")
    n = len(ve)
    geoms = ve.geometry.to_numpy()
    width = ve["width_m"].to_numpy(dtype=float, na_value=np.nan)
    width = np.where(np.isfinite(width) & (width > 0), width, default_width_m)
    source = ve["width_source"] if "width_source" in ve.columns else pd.Series("", index=ve.index)
    mapped = (source.astype("string") == "width").to_numpy(dtype=bool, na_value=False)
    length = shapely.length(geoms)
    pieces = _cut_edges(network, ve, geoms, length, outlines)
    simple = _simplify(geoms, width)
    bend = _bends(geoms, simple, width, length, pieces)
    turn = _turns(simple, width, pieces)
    gxy, gown = shapely.get_coordinates(geoms, return_index=True)
    step = np.r_[0.0, np.hypot(*np.diff(gxy, axis=0).T)]
    step[np.searchsorted(gown, np.arange(n))] = 0.0
    run = np.cumsum(step)
    gat = run - run[np.searchsorted(gown, np.arange(n))][gown]
    through = ve["through_road"].to_numpy(dtype=bool, na_value=False)
    road = ve["speed_kmh"].to_numpy(dtype=float, na_value=0.0)[pieces.edge]
    road_v = np.where(through[pieces.edge], road / _KMH, 0.0)
    n_pieces = len(pieces.edge)
    return _Graph(
        edge_index=pd.Index(ve.index),
        pieces=pieces,
        transit=np.ones(2 * n_pieces, dtype=bool),
        geoms=geoms,
        edge_length=length,
        length=np.repeat(pieces.hi - pieces.lo, 2),
        road_v=np.repeat(road_v, 2),
        through_m=np.repeat(_piece_through(pieces, ve, through, through_m), 2),
        width=np.repeat(width[pieces.edge], 2),
        width_mapped=np.repeat(mapped[pieces.edge], 2),
        bend_dedge=bend[0],
        bend_pos=bend[1],
        bend_delta=bend[2],
        bend_width=bend[3],
        bend_leg=bend[4],
        bend_start=np.searchsorted(bend[0], np.arange(2 * n_pieces + 1)).astype(np.int64),
        turn_pred=turn[0],
        turn_succ=turn[1],
        turn_delta=turn[2],
        turn_width=turn[3],
        turn_leg=turn[4],
        turn_start=(turn_start := np.searchsorted(turn[0], np.arange(2 * n_pieces + 1))).astype(
            np.int64
        ),
        turn_count=np.diff(turn_start).astype(np.int64),
        into_order=(into := np.argsort(turn[1], kind="stable")).astype(np.int64),
        into_start=np.searchsorted(turn[1][into], np.arange(2 * n_pieces + 1)).astype(np.int64),
        xy=gxy,
        xy_start=np.searchsorted(gown, np.arange(n + 1)).astype(np.int64),
        xy_at=gat,
    )


def _piece_through(
    pieces: _Pieces, ve: pd.DataFrame, through: BoolArray, given: pd.DataFrame | None
) -> FloatArray:
    """Per piece: the length of its through route, measured here or given."""
    if given is None:
        return _through_length(pieces, through)
    return _given_through(pieces, pd.Index(ve.index), given)


def _simplify(geoms: npt.NDArray[np.object_], width: FloatArray) -> _Simple:
    """Edge geometry simplified to within ``w/2``, for headings and bends only."""
    n = len(geoms)
    simple = shapely.simplify(geoms, width / 2, preserve_topology=False)
    sxy, sown = shapely.get_coordinates(simple, return_index=True)
    seg_ok = np.ones(n, dtype=bool)
    same = sown[1:] == sown[:-1]
    zero = same & (np.hypot(*np.diff(sxy, axis=0).T) <= _EPS_M)
    seg_ok[sown[1:][zero]] = False
    simple = np.where(seg_ok & (shapely.get_num_coordinates(simple) >= 2), simple, geoms)
    sxy, sown = shapely.get_coordinates(simple, return_index=True)
    first = np.searchsorted(sown, np.arange(n)).astype(np.int64)
    last = (np.searchsorted(sown, np.arange(n), side="right") - 1).astype(np.int64)
    return _Simple(xy=sxy, own=sown.astype(np.int64), first=first, last=last)


def _bends(
    geoms: npt.NDArray[np.object_],
    simple: _Simple,
    width: FloatArray,
    length: FloatArray,
    pieces: _Pieces,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Bends (interior vertices of the simplified edges) on the directed pieces:
    directed piece, position, deflection, street width and straight leg.

    A bend at a cut belongs to the piece that ends there in the direction of travel:
    it caps the speed driving on, not at a target at the cut. The radius depends on the
    vehicle (the width it has left, :func:`radius_for`), so the geometry is kept.
    """
    sxy = simple.xy
    interior = np.ones(len(sxy), dtype=bool)
    interior[simple.first] = False
    interior[simple.last] = False
    k = np.flatnonzero(interior)
    owner = simple.own[k]
    vin = sxy[k] - sxy[k - 1]
    vout = sxy[k + 1] - sxy[k]
    lin, lout = np.hypot(*vin.T), np.hypot(*vout.T)
    delta = _angle(vin, vout)
    leg = np.minimum(lin, lout) / 2
    pos = shapely.line_locate_point(geoms[owner], shapely.points(sxy[k]))
    keep = delta > 0
    owner, pos, delta, leg = owner[keep], pos[keep], delta[keep], leg[keep]
    fwd, x_fwd = _locate(pieces, owner, np.ones(len(owner), dtype=bool), pos)
    rev, x_rev = _locate(pieces, owner, np.zeros(len(owner), dtype=bool), pos)
    b_dedge = np.r_[fwd, rev]
    b_pos = np.r_[x_fwd, x_rev]
    b_delta, b_width, b_leg = np.tile(delta, 2), np.tile(width[owner], 2), np.tile(leg, 2)
    o = np.argsort(b_dedge, kind="stable")
    return b_dedge[o], b_pos[o], b_delta[o], b_width[o], b_leg[o]


def _turns(
    simple: _Simple, width: FloatArray, pieces: _Pieces
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray]:
    """Turns between directed pieces at each node, sorted by predecessor: predecessor,
    successor, deflection, mean width of both streets and straight leg.

    At a network node: every pair, U-turns included, with its turn radius. At an
    outline cut: straight on only (no bend there: the way runs on). At a barrier: the
    U-turn of a dead end only.
    """
    sxy, first, last = simple.xy, simple.first, simple.last
    m = len(pieces.edge)
    dp = np.arange(2 * m)
    p, odd = dp // 2, dp % 2 == 1
    tail = np.where(odd, pieces.head[p], pieces.tail[p])
    head = np.where(odd, pieces.tail[p], pieces.head[p])
    head_kind = np.where(odd, pieces.tail_kind[p], pieces.head_kind[p])
    e = pieces.edge[p]
    fwd_first = sxy[first + 1] - sxy[first]
    fwd_last = sxy[last] - sxy[last - 1]
    # heading leaving the tail and arriving at the head (at cuts: unused, see below)
    h_out = np.where(odd[:, None], -fwd_last[e], fwd_first[e])
    h_in = np.where(odd[:, None], -fwd_first[e], fwd_last[e])
    seg_out = np.hypot(*h_out.T)
    seg_in = np.hypot(*h_in.T)
    pairs = pd.merge(
        pd.DataFrame({"node": head, "pred": dp}),
        pd.DataFrame({"node": tail, "succ": dp}),
        on="node",
    )
    pred = pairs["pred"].to_numpy(dtype=np.int64)
    succ = pairs["succ"].to_numpy(dtype=np.int64)
    uturn = (pred ^ 1) == succ
    at_outline = head_kind[pred] == END_OUTLINE
    keep = ~(at_outline & uturn)
    pred, succ, uturn, at_outline = pred[keep], succ[keep], uturn[keep], at_outline[keep]
    delta = _angle(h_in[pred], h_out[succ])
    delta[uturn] = np.pi
    delta[at_outline] = 0.0  # straight on through the cut
    t_width = (width[pieces.edge[pred // 2]] + width[pieces.edge[succ // 2]]) / 2
    t_leg = np.minimum(seg_in[pred], seg_out[succ]) / 2
    o = np.lexsort((succ, pred))
    return pred[o], succ[o], delta[o], t_width[o], t_leg[o]


def radius_for(
    deflection_rad: FloatArray, width_m: FloatArray, leg_m: FloatArray, vehicle_width_m: float
) -> FloatArray:
    """Radius of the fastest arc of a vehicle's centre: :func:`turn_radius` with the
    street width less the vehicle's width (the room its centre has to cut the corner)."""
    room = np.maximum(np.asarray(width_m, dtype=float) - vehicle_width_m, 0.0)
    return turn_radius(deflection_rad, room, leg_m)


def _ranges(start: IntArray, count: IntArray) -> tuple[IntArray, IntArray]:
    """Concatenated ``arange(start[k], start[k] + count[k])`` and the owner ``k`` of each."""
    total = int(count.sum())
    owner = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    return (np.arange(total) - first[owner] + start[owner]).astype(np.int64), owner


@dataclass(frozen=True)
class _SpaceEdges:
    """Which vehicle pieces lie inside which space (for the own-space exclusion)."""

    target_space: IntArray  # per target: position of its space, -1 if none
    keys: IntArray  # sorted ``space * n_pieces + piece`` of the pieces inside a space


def _target_spaces(
    spaces: gpd.GeoDataFrame | None, targets: pd.DataFrame, crs: str
) -> tuple[IntArray, npt.NDArray[np.object_]] | None:
    """Per target the position of its space in ``spaces`` (-1 if none), and the metric
    polygons of all spaces (``None`` without spaces)."""
    if spaces is None or spaces.empty:
        return None
    if spaces.crs is None:
        raise AnalysisError("approach_speeds: the spaces frame has no CRS")
    metric = spaces.to_crs(crs)
    target_space = pd.Index(metric.index).get_indexer(targets["space_uid"].to_numpy(dtype=object))
    return target_space.astype(np.int64), metric.geometry.to_numpy()


def _outlines(
    found: tuple[IntArray, npt.NDArray[np.object_]] | None, also: IntArray | None = None
) -> npt.NDArray[np.object_]:
    """Boundaries of the targets' spaces and of spaces ``also`` (where pieces are cut)."""
    if found is None:
        return np.zeros(0, dtype=object)
    target_space, polys = found
    wanted = np.unique(np.r_[target_space, also if also is not None else []].astype(np.int64))
    return np.asarray(shapely.boundary(polys[wanted[wanted >= 0]]), dtype=object)


def _piece_midpoints(graph: _Graph) -> npt.NDArray[np.object_]:
    """The middle point of every undirected piece."""
    p = graph.pieces
    return np.asarray(
        shapely.line_interpolate_point(graph.geoms[p.edge], (p.lo + p.hi) / 2), dtype=object
    )


def _space_edges(
    graph: _Graph, found: tuple[IntArray, npt.NDArray[np.object_]] | None
) -> _SpaceEdges | None:
    """Pieces inside each target's space: exactly those whose middle is inside it (the
    pieces are cut at the outlines, so each is wholly inside or outside)."""
    if found is None:
        return None
    target_space, polys = found
    wanted = np.unique(target_space[target_space >= 0])
    s_i, p_i = shapely.STRtree(_piece_midpoints(graph)).query(polys[wanted], predicate="contains")
    n_pieces = len(graph.pieces.edge)
    keys = np.unique(wanted[s_i].astype(np.int64) * n_pieces + p_i)
    return _SpaceEdges(target_space=target_space, keys=keys)


@dataclass
class _Paths:
    """Traced approaches of a batch of targets; pieces are parts of directed edges."""

    speed_q: FloatArray  # run-up from rest (m) of the speed at the target
    start_q: FloatArray  # run-up from rest (m) of the start speed
    run_up: FloatArray
    target: IntArray  # per piece: the target (position in the batch)
    step: IntArray  # 0 = the piece that ends at the entry, 1 = the one before...
    dedge: IntArray
    lo: FloatArray  # piece from lo to hi, distances from the directed edge's tail
    hi: FloatArray


def _select(paths: _Paths, keep: BoolArray) -> _Paths:
    return _Paths(
        paths.speed_q,
        paths.start_q,
        paths.run_up,
        paths.target[keep],
        paths.step[keep],
        paths.dedge[keep],
        paths.lo[keep],
        paths.hi[keep],
    )


def _concat(parts: list[_Paths]) -> _Paths:
    return _Paths(
        parts[0].speed_q,
        parts[0].start_q,
        parts[0].run_up,
        np.concatenate([p.target for p in parts]),
        np.concatenate([p.step for p in parts]),
        np.concatenate([p.dedge for p in parts]),
        np.concatenate([p.lo for p in parts]),
        np.concatenate([p.hi for p in parts]),
    )


def _draw(graph: _Graph, paths: _Paths) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """One LineString per target, from the start of its run-up to the entry."""
    piece = paths.dedge // 2
    edge = graph.pieces.edge[piece]
    odd = paths.dedge % 2 == 1
    lo_p, hi_p = graph.pieces.lo[piece], graph.pieces.hi[piece]
    a_fwd = np.where(odd, hi_p - paths.lo, lo_p + paths.lo)  # travel start, from the u end
    b_fwd = np.where(odd, hi_p - paths.hi, lo_p + paths.hi)  # travel end
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
