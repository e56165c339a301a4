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
    _KMH,
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
)
from geo_protect.errors import AnalysisError

_EPS_E = 1e-9  # numerical tolerance on v² (m²/s²): smaller changes are not improvements


@dataclass(frozen=True)
class _Class:
    """A vehicle class on a graph: its caps in v² units."""

    accel: float
    top_e: float
    start_e: FloatArray  # per directed edge, capped at top_e
    k: FloatArray  # per directed edge: E_out = min(k, E_in + 2·a·L)
    bend_cap: FloatArray
    turn_cap: FloatArray


def _vehicle_on(graph: _Graph, row: pd.Series, *, friction: float, gravity: float) -> _Class:
    accel = float(row["acceleration_ms2"])
    top_e = (float(row["top_speed_kmh"]) / _KMH) ** 2
    # a flying start only where this vehicle could have reached that speed from rest on
    # the connected through-roads it is on: their length covers the run-up v0²/(2a)
    start_e = np.minimum(graph.start_e, top_e)
    start_e = np.where(graph.through_m >= start_e / (2 * accel) - _EPS_M, start_e, 0.0)
    r_min = float(row["turning_radius_m"])
    skid = friction * gravity
    bend_cap = np.where(graph.bend_radius >= r_min, skid * graph.bend_radius, 0.0)
    k = np.full(len(graph.length), top_e)
    relaxed = bend_cap + 2 * accel * (graph.length[graph.bend_dedge] - graph.bend_pos)
    np.minimum.at(k, graph.bend_dedge, relaxed)
    return _Class(
        accel=accel,
        top_e=top_e,
        start_e=start_e,
        k=k,
        bend_cap=bend_cap,
        turn_cap=np.where(graph.turn_radius >= r_min, skid * graph.turn_radius, 0.0),
    )


def _search(
    graph: _Graph,
    klass: _Class,
    *,
    e_in: FloatArray | None = None,
    ptr: IntArray | None = None,
    frontier: IntArray | None = None,
    transit: BoolArray | None = None,
) -> tuple[FloatArray, IntArray]:
    """Label-correcting value iteration over directed edges; returns (E_in, predecessor)."""
    n = len(graph.length)
    e_in = klass.start_e.copy() if e_in is None else e_in
    ptr = np.full(n, -1, dtype=np.int64) if ptr is None else ptr
    front = np.arange(n) if frontier is None else frontier
    if transit is not None:
        front = front[transit[front]]
    gain = 2 * klass.accel * graph.length
    best = np.full(n, -np.inf)
    for _ in range(4 * n + 10):  # far above any real number of rounds
        if len(front) == 0:
            return e_in, ptr
        idx, _owner = _ranges(graph.turn_start[front], np.diff(graph.turn_start)[front])
        pred = graph.turn_pred[idx]
        succ = graph.turn_succ[idx]
        cand = np.minimum(klass.turn_cap[idx], np.minimum(klass.k[pred], e_in[pred] + gain[pred]))
        np.maximum.at(best, succ, cand)
        won = cand >= best[succ]
        improved = best > e_in + _EPS_E
        sel = won & improved[succ]
        ptr[succ[sel]] = pred[sel]
        changed = np.flatnonzero(improved)
        e_in[changed] = best[changed]
        best[succ] = -np.inf
        front = changed if transit is None else changed[transit[changed]]
    raise AnalysisError("approach_speeds: the speed search did not converge")  # pragma: no cover


def _solve(
    graph: _Graph,
    klass: _Class,
    tgt_dedge: IntArray,
    tgt_x: FloatArray,
    spaces: _SpaceEdges | None,
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.object_]]:
    """Search once, evaluate every target, redo those whose path crosses their own space.

    ``tgt_dedge`` / ``tgt_x``: each target's directed piece (-1 off the vehicle network)
    and its distance from that piece's tail.
    """
    m = len(tgt_dedge)
    ok = np.flatnonzero(tgt_dedge >= 0)
    e_in, ptr = _search(graph, klass, transit=graph.transit)
    paths = _trace(graph, klass, e_in, ptr, tgt_dedge[ok], tgt_x[ok])
    paths.target = ok[paths.target]
    speed_e, start_e, run_up = np.zeros(m), np.zeros(m), np.zeros(m)
    speed_e[ok], start_e[ok], run_up[ok] = paths.speed_e, paths.start_e, paths.run_up

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
            e_r, p_r = _restricted(graph, klass, e_in, ptr, removed, children)
            again = _trace(graph, klass, e_r, p_r, tgt_dedge[sub], tgt_x[sub])
            again.target = sub[again.target]
            speed_e[sub], start_e[sub], run_up[sub] = again.speed_e, again.start_e, again.run_up
            parts.append(again)
        paths = _concat(parts)

    lines = np.full(m, None, dtype=object)
    if len(paths.target):
        drawn, geoms = _draw(graph, paths)
        lines[drawn] = geoms
    return speed_e, start_e, run_up, lines


def _restricted(
    graph: _Graph,
    klass: _Class,
    e_in: FloatArray,
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
    transit = graph.transit.copy()
    transit[2 * removed] = False
    transit[2 * removed + 1] = False
    bad = ~transit
    below = _descendants(children or _children(ptr), np.r_[2 * removed, 2 * removed + 1])
    bad[below] = True
    e0 = np.where(bad, klass.start_e, e_in)
    p0 = np.where(bad, -1, ptr)
    frontier = np.unique(graph.turn_pred[bad[graph.turn_succ]])
    return _search(graph, klass, e_in=e0, ptr=p0, frontier=frontier, transit=transit)


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
    graph: _Graph, klass: _Class, e_in: FloatArray, dedge: IntArray, x: FloatArray
) -> FloatArray:
    """v² at distance ``x`` along directed edge ``dedge``, entering it with ``e_in``."""
    out = np.minimum(e_in[dedge] + 2 * klass.accel * x, klass.top_e)
    idx, own = _ranges(graph.bend_start[dedge], np.diff(graph.bend_start)[dedge])
    # a bend at the entry itself does not slow the impact: the vehicle need not turn there
    before = graph.bend_pos[idx] < x[own] - _EPS_M
    relaxed = np.where(
        before, klass.bend_cap[idx] + 2 * klass.accel * (x[own] - graph.bend_pos[idx]), np.inf
    )
    np.minimum.at(out, own, relaxed)
    return out


def _trace(
    graph: _Graph, klass: _Class, e_in: FloatArray, ptr: IntArray, dedge0: IntArray, x0: FloatArray
) -> _Paths:
    """Speed at each target and its worst-case path, traced back to the run-up start.

    The speed ``v`` reached at the target is also reached starting where the required
    ``v²`` (``v_target² − 2·a·distance to go``) falls to the start value: 0 anywhere (at
    rest) or the road-speed start on a through-road.
    """
    m = len(dedge0)
    speed_e = _speed_at(graph, klass, e_in, dedge0, x0)
    two_a = 2 * klass.accel
    cur, end, req = dedge0.copy(), x0.copy(), speed_e.copy()
    run_up, start_e = np.zeros(m), np.zeros(m)
    active = np.arange(m)
    pieces: list[tuple[IntArray, int, IntArray, FloatArray, FloatArray]] = []
    step = 0
    pieces.append((active[:0], 0, cur[:0], x0[:0], x0[:0]))  # no target: empty arrays
    while len(active):
        if step > len(graph.length) + 1:  # pragma: no cover - every walk ends within v²/(2a) m
            raise AnalysisError("approach_speeds: could not trace an approach path back")
        d, e, r = cur[active], end[active], req[active]
        s0 = klass.start_e[d]
        p = e - (r - s0) / two_a
        done = (p >= -_EPS_M) | (ptr[d] < 0)
        lo = np.where(done, np.clip(p, 0.0, e), 0.0)
        pieces.append((active, step, d, lo, e))
        run_up[active] += e - lo
        start_e[active[done]] = s0[done]
        go = ~done
        nxt = ptr[d[go]]
        active = active[go]
        cur[active] = nxt
        end[active] = graph.length[nxt]
        req[active] = r[go] - two_a * e[go]
        step += 1
    return _Paths(
        speed_e=speed_e,
        start_e=start_e,
        run_up=run_up,
        target=np.concatenate([t for t, *_ in pieces]).astype(np.int64),
        step=np.concatenate([np.full(len(t), s) for t, s, *_ in pieces]).astype(np.int64),
        dedge=np.concatenate([d for _, _, d, _, _ in pieces]).astype(np.int64),
        lo=np.concatenate([lo for *_, lo, _ in pieces]),
        hi=np.concatenate([hi for *_, hi in pieces]),
    )
