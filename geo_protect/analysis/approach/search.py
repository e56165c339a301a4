"""The speed search over directed edges (private to :mod:`geo_protect.analysis.approach`).

See the package docstring for the model and the proof that the search is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo_protect.analysis.approach.geometry import (
    _EPS_M,
    BoolArray,
    FloatArray,
    IntArray,
    _concat,
    _draw,
    _Graph,
    _Paths,
    _ranges,
    _select,
    _SpaceEdges,
    radius_for,
)
from geo_protect.analysis.vehicles import SpeedCurve
from geo_protect.errors import AnalysisError

_EPS_E = 1e-9  # numerical tolerance on run-ups (m): smaller changes are not improvements


@dataclass(frozen=True)
class _Class:
    """A vehicle class on a graph, every speed written as its run-up from rest ``q``.

    ``q = curve.run_up(v)`` (m) is strictly increasing in ``v``, so a cap on ``v`` is a
    cap on ``q``, and driving ``L`` metres maps ``q ↦ q + L`` (see the package
    docstring).
    """

    curve: SpeedCurve
    top_q: float
    start_q: FloatArray  # per directed piece: run-up of its flying start (0: at rest)
    k: FloatArray  # per directed piece: q_out = min(k, q_in + L)
    bend_cap: FloatArray
    turn_cap: FloatArray
    transit: BoolArray  # per directed piece: may be driven through by this class
    fits: BoolArray  # per directed piece: not mapped narrower than the vehicle
    scratch: tuple[FloatArray, IntArray]  # work arrays of _search (-inf, -1), reused


def _vehicle_on(graph: _Graph, row: pd.Series, *, gravity: float) -> _Class:
    """The caps of one class (a row of :func:`~geo_protect.analysis.vehicles.parameter_sets`)."""
    curve = SpeedCurve.of(row)
    top_q = float(curve.run_up(curve.top_speed))
    # a street mapped narrower than the vehicle stops it; a default width does not (an
    # unknown width is not evidence that the vehicle cannot pass)
    fits = (graph.width >= float(row["width_m"]) - _EPS_M) | ~graph.width_mapped
    # a flying start only where this vehicle could have reached that speed from rest on
    # the connected through-roads it is on: their length covers the run-up q(v0)
    start_q = curve.run_up(graph.road_v * float(row["road_speed_factor"]))
    start_q = np.where((graph.through_m >= start_q - _EPS_M) & fits, start_q, 0.0)
    lateral = min(float(row["friction"]), float(row["rollover_g"])) * gravity
    width, r_min = float(row["width_m"]), float(row["turning_radius_m"])

    def cap(delta: FloatArray, w: FloatArray, leg: FloatArray) -> FloatArray:
        r = radius_for(delta, w, leg, width)
        return np.where(r >= r_min, curve.run_up(np.sqrt(lateral * r)), 0.0)

    bend_cap = cap(graph.bend_delta, graph.bend_width, graph.bend_leg)
    k = np.where(fits, top_q, 0.0)
    relaxed = bend_cap + (graph.length[graph.bend_dedge] - graph.bend_pos)
    np.minimum.at(k, graph.bend_dedge, relaxed)
    turn_cap = cap(graph.turn_delta, graph.turn_width, graph.turn_leg)
    turn_cap = np.where(fits[graph.turn_succ], turn_cap, 0.0)
    n = len(graph.length)
    scratch = (np.full(n, -np.inf), np.full(n, -1, dtype=np.int64))
    return _Class(curve, top_q, start_q, k, bend_cap, turn_cap, graph.transit & fits, fits, scratch)


def _search(
    graph: _Graph,
    klass: _Class,
    *,
    q_in: FloatArray | None = None,
    ptr: IntArray | None = None,
    frontier: IntArray | None = None,
    transit: BoolArray | None = None,
) -> tuple[FloatArray, IntArray]:
    """Label-correcting value iteration over directed edges; returns (q_in, predecessor).

    Labels are run-ups from rest (m), ``q_in`` of each directed piece.
    """
    n = len(graph.length)
    q_in = klass.start_q.copy() if q_in is None else q_in
    ptr = np.full(n, -1, dtype=np.int64) if ptr is None else ptr
    front = np.arange(n) if frontier is None else frontier
    if transit is not None:
        front = front[transit[front]]
    gain = graph.length
    n_turns = graph.turn_count
    best, slot = klass.scratch  # all -inf / -1 between rounds and between calls
    for _ in range(4 * n + 10):  # far above any real number of rounds
        if len(front) == 0:
            return q_in, ptr
        idx, _owner = _ranges(graph.turn_start[front], n_turns[front])
        pred = graph.turn_pred[idx]
        succ = graph.turn_succ[idx]
        cand = np.minimum(klass.turn_cap[idx], np.minimum(klass.k[pred], q_in[pred] + gain[pred]))
        np.maximum.at(best, succ, cand)
        top = best[succ]
        up = top > q_in[succ] + _EPS_E  # per turn: its successor improves this round
        sel = (cand >= top) & up
        ptr[succ[sel]] = pred[sel]
        changed = _distinct(succ[up], slot)  # only successors change: O(turns), not O(n)
        q_in[changed] = best[changed]
        best[succ] = -np.inf
        front = changed if transit is None else changed[transit[changed]]
    raise AnalysisError("approach_speeds: the speed search did not converge")  # pragma: no cover


def _distinct(values: IntArray, slot: IntArray) -> IntArray:
    """``values`` without repeats (order kept), in O(len(values)) with a scratch array
    ``slot`` of -1s covering every value (left all -1 again)."""
    pos = np.arange(len(values))
    slot[values] = pos
    keep = slot[values] == pos  # the last occurrence of each value
    slot[values] = -1
    return np.asarray(values[keep], dtype=np.int64)


def _solve(
    graph: _Graph,
    klass: _Class,
    tgt_dedge: IntArray,
    tgt_x: FloatArray,
    spaces: _SpaceEdges | None,
    *,
    draw: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.object_], _Paths]:
    """Search once, evaluate every target, redo those whose path crosses their own space.

    ``tgt_dedge`` / ``tgt_x``: each target's directed piece (-1 off the vehicle network)
    and its distance from that piece's tail. Returns run-ups from rest (m) of the impact
    speed and of the start speed, the run-up length driven, the drawn paths and the
    traced walks (pieces per target, ``target`` = position in the batch).
    """
    m = len(tgt_dedge)
    # a target on a street narrower than the vehicle is not reached by it (speed 0)
    ok = np.flatnonzero(tgt_dedge >= 0)
    ok = ok[klass.fits[tgt_dedge[ok]]]
    q_in, ptr = _search(graph, klass, transit=klass.transit)
    paths = _trace(graph, klass, q_in, ptr, tgt_dedge[ok], tgt_x[ok])
    paths.target = ok[paths.target]
    speed_q, start_q, run_up = np.zeros(m), np.zeros(m), np.zeros(m)
    speed_q[ok], start_q[ok], run_up[ok] = paths.speed_q, paths.start_q, paths.run_up

    if spaces is not None:
        n_edges = len(graph.pieces.edge)
        own = spaces.target_space[paths.target]
        crossing = (paths.step > 0) & (own >= 0)
        key = own * n_edges + paths.dedge // 2
        hit = crossing & np.isin(key, spaces.keys)
        redo = np.unique(paths.target[hit])
        keep = ~np.isin(paths.target, redo)
        parts = [_select(paths, keep)]
        children = _children(ptr)
        for space in np.unique(spaces.target_space[redo]):
            sub = redo[spaces.target_space[redo] == space]
            removed = spaces.keys[spaces.keys // n_edges == space] % n_edges
            q_r, p_r = _restricted(graph, klass, q_in, ptr, removed, children)
            again = _trace(graph, klass, q_r, p_r, tgt_dedge[sub], tgt_x[sub])
            again.target = sub[again.target]
            speed_q[sub], start_q[sub], run_up[sub] = again.speed_q, again.start_q, again.run_up
            parts.append(again)
        paths = _concat(parts)

    lines = np.full(m, None, dtype=object)
    if draw and len(paths.target):
        drawn, geoms = _draw(graph, paths)
        lines[drawn] = geoms
    return speed_q, start_q, run_up, lines, paths


def _restricted(
    graph: _Graph,
    klass: _Class,
    q_in: FloatArray,
    ptr: IntArray,
    removed: IntArray,
    children: tuple[IntArray, IntArray] | None = None,
) -> tuple[FloatArray, IntArray]:
    """The search without the ``removed`` edges, warm-started from the global labels.

    A global label whose walk (its predecessor chain) avoids the removed edges is
    achievable without them, and no restricted label can exceed it: it is final. The
    others — the subtrees of the predecessor forest below the removed pieces
    (:func:`_descendants`), and closed pieces — restart from their start values.
    """
    gone = np.r_[2 * removed, 2 * removed + 1]
    transit = klass.transit.copy()
    transit[gone] = False
    # only the removed pieces and the labels that depended on them restart; every other
    # label (closed pieces included) came from a walk that avoids them and stays final
    bad = np.unique(np.r_[gone, _descendants(children or _children(ptr), gone)])
    q0, p0 = q_in.copy(), ptr.copy()
    q0[bad], p0[bad] = klass.start_q[bad], -1
    turns, _ = _ranges(graph.into_start[bad], graph.into_start[bad + 1] - graph.into_start[bad])
    frontier = np.unique(graph.turn_pred[graph.into_order[turns]])
    return _search(graph, klass, q_in=q0, ptr=p0, frontier=frontier, transit=transit)


def _children(ptr: IntArray) -> tuple[IntArray, IntArray]:
    """The predecessor pointers turned around: (pieces by predecessor, CSR offsets)."""
    order = np.argsort(ptr, kind="stable").astype(np.int64)
    first = np.searchsorted(ptr[order], np.arange(len(ptr) + 1)).astype(np.int64)
    return order, first


def _descendants(children: tuple[IntArray, IntArray], roots: IntArray) -> IntArray:
    """Directed pieces whose predecessor chain runs through one of ``roots``.

    The predecessor pointers form a forest (a label only ever points at a piece that was
    driven through, never at a closed one), so these are the subtrees below ``roots``:
    walked down level by level, the work is their size, not the whole graph's.
    """
    order, first = children
    seen = np.zeros(len(order), dtype=bool)
    level = np.unique(roots)
    found: list[IntArray] = []
    while len(level):
        idx, _ = _ranges(first[level], first[level + 1] - first[level])
        level = order[idx]
        level = level[~seen[level]]
        seen[level] = True
        found.append(level)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _speed_at(
    graph: _Graph, klass: _Class, q_in: FloatArray, dedge: IntArray, x: FloatArray
) -> FloatArray:
    """Run-up ``q`` at distance ``x`` along directed edge ``dedge``, entering it with ``q_in``."""
    out = np.minimum(q_in[dedge] + x, klass.top_q)
    idx, own = _ranges(graph.bend_start[dedge], np.diff(graph.bend_start)[dedge])
    # a bend at the entry itself does not slow the impact: the vehicle need not turn there
    before = graph.bend_pos[idx] < x[own] - _EPS_M
    relaxed = np.where(before, klass.bend_cap[idx] + (x[own] - graph.bend_pos[idx]), np.inf)
    np.minimum.at(out, own, relaxed)
    return out


def _trace(
    graph: _Graph, klass: _Class, q_in: FloatArray, ptr: IntArray, dedge0: IntArray, x0: FloatArray
) -> _Paths:
    """Speed at each target and its worst-case path, traced back to the run-up start.

    The speed reached at the target is also reached starting where the required run-up
    (``q_target − distance to go``) falls to the start value: 0 anywhere (at rest) or
    the road-speed start on a through-road. Returned values are run-ups ``q``.
    """
    m = len(dedge0)
    speed_q = _speed_at(graph, klass, q_in, dedge0, x0)
    cur, end, req = dedge0.copy(), x0.copy(), speed_q.copy()
    run_up, start_q = np.zeros(m), np.zeros(m)
    active = np.arange(m)
    pieces: list[tuple[IntArray, int, IntArray, FloatArray, FloatArray]] = []
    step = 0
    pieces.append((active[:0], 0, cur[:0], x0[:0], x0[:0]))  # no target: empty arrays
    while len(active):
        if step > len(graph.length) + 1:  # pragma: no cover - every walk ends within q m
            raise AnalysisError("approach_speeds: could not trace an approach path back")
        d, e, r = cur[active], end[active], req[active]
        s0 = klass.start_q[d]
        p = e - (r - s0)
        done = (p >= -_EPS_M) | (ptr[d] < 0)
        lo = np.where(done, np.clip(p, 0.0, e), 0.0)
        pieces.append((active, step, d, lo, e))
        run_up[active] += e - lo
        start_q[active[done]] = s0[done]
        go = ~done
        nxt = ptr[d[go]]
        active = active[go]
        cur[active] = nxt
        end[active] = graph.length[nxt]
        req[active] = r[go] - e[go]
        step += 1
    return _Paths(
        speed_q=speed_q,
        start_q=start_q,
        run_up=run_up,
        target=np.concatenate([t for t, *_ in pieces]).astype(np.int64),
        step=np.concatenate([np.full(len(t), s) for t, s, *_ in pieces]).astype(np.int64),
        dedge=np.concatenate([d for _, _, d, _, _ in pieces]).astype(np.int64),
        lo=np.concatenate([lo for *_, lo, _ in pieces]),
        hi=np.concatenate([hi for *_, hi in pieces]),
    )
