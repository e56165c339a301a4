"""Street pieces of the approach search (private to :mod:`geo_protect.analysis.approach`).

The vehicle edges of the network are cut into *pieces* at

* every closing barrier (``StreetNetwork.barriers``): the two sides of the cut get two
  separate dead-end nodes, so no walk drives through a barrier, wherever it stands on
  the edge; an entry on a closed edge is reached over the barrier-free part between it
  and the nearest barrier on the approach side;
* every point where the edge meets the outline of a target's space: the two sides
  share one node, so driving on is straight on (no turn, no U-turn there), and each
  piece lies wholly inside or wholly outside the space.

Cuts closer than the network's noding snap (``SNAP_M``) are one cut; a barrier that
close to an edge end detaches that end from its junction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo_protect.analysis.network import SNAP_M, StreetNetwork
from geo_protect.errors import AnalysisError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Kinds of piece end: at a junction / way end of the network, at an outline, at a barrier.
END_NODE, END_OUTLINE, END_BARRIER = 0, 1, 2


@dataclass(frozen=True)
class _Pieces:
    """Undirected pieces, sorted by edge then position (piece ``p``: directed ``2p``, ``2p+1``)."""

    edge: IntArray  # undirected vehicle edge (position in the graph's edges)
    lo: FloatArray  # from ``lo`` to ``hi`` metres from the edge's u end
    hi: FloatArray
    tail: IntArray  # node at ``lo``
    head: IntArray  # node at ``hi``
    tail_kind: IntArray  # END_* at ``lo``
    head_kind: IntArray
    offset: FloatArray  # per edge: global coordinate of its u end (for searchsorted)


def _cut(
    geoms: npt.NDArray[np.object_],
    length: FloatArray,
    u: IntArray,
    v: IntArray,
    barrier_edge: IntArray,
    barrier_at: FloatArray,
    outlines: npt.NDArray[np.object_] | None,
) -> _Pieces:
    """Cut the edges at barrier positions and outline crossings."""
    n = len(length)
    o_edge, o_at = _outline_cuts(geoms, outlines)
    at = np.r_[barrier_at, o_at]
    edge = np.r_[barrier_edge, o_edge].astype(np.int64)
    bar = np.r_[np.ones(len(barrier_at), dtype=bool), np.zeros(len(o_at), dtype=bool)]
    bar_u = np.zeros(n, dtype=bool)
    bar_v = np.zeros(n, dtype=bool)
    bar_u[edge[bar & (at <= SNAP_M)]] = True
    bar_v[edge[bar & (at >= length[edge] - SNAP_M)]] = True
    inner = (at > SNAP_M) & (at < length[edge] - SNAP_M)
    cuts = pd.DataFrame({"edge": edge[inner], "at": at[inner], "bar": bar[inner]})
    cuts = cuts.sort_values(["edge", "at"], kind="stable")
    ce, ca = cuts["edge"].to_numpy(), cuts["at"].to_numpy()
    new = np.r_[True, (ce[1:] != ce[:-1]) | (np.diff(ca) > SNAP_M)] if len(ce) else ce > 0
    group = np.cumsum(new) - 1
    merged = cuts.groupby(group).agg(edge=("edge", "first"), at=("at", "mean"), bar=("bar", "any"))
    m_edge = merged["edge"].to_numpy(dtype=np.int64)
    m_at = merged["at"].to_numpy(dtype=float)
    m_bar = merged["bar"].to_numpy(dtype=bool)

    # per edge: ends plus interior cuts, in order
    k = len(m_edge)
    p_edge = np.r_[np.arange(n), m_edge]
    p_at = np.r_[np.zeros(n), m_at]  # piece starts: u end and every interior cut
    order = np.lexsort((p_at, p_edge))
    p_edge, p_at = p_edge[order], p_at[order]
    is_cut = np.r_[np.zeros(n, dtype=bool), np.ones(k, dtype=bool)][order]
    cut_bar = np.r_[np.zeros(n, dtype=bool), m_bar][order]
    nxt_same = np.r_[p_edge[1:] == p_edge[:-1], False]
    hi = np.where(nxt_same, np.r_[p_at[1:], 0.0], length[p_edge])

    # nodes: the network's, then one fresh node per outline cut, two per barrier cut
    n_nodes = int(max(u.max(initial=-1), v.max(initial=-1))) + 1
    count = np.where(is_cut, np.where(cut_bar, 2, 1), 0)
    fresh = np.cumsum(count) - count
    # the piece starting at a cut leaves from its "right" node
    right = n_nodes + fresh + np.where(cut_bar, 1, 0)
    left_of_next = n_nodes + fresh  # the piece ending at this cut arrives at its "left" node
    total_fresh = int(count.sum())
    extra_u = n_nodes + total_fresh + np.cumsum(bar_u) - 1
    extra_v = n_nodes + total_fresh + int(bar_u.sum()) + np.cumsum(bar_v) - 1
    tail = np.where(is_cut, right, np.where(bar_u[p_edge], extra_u[p_edge], u[p_edge]))
    head_cut = np.r_[left_of_next[1:], 0]
    head = np.where(nxt_same, head_cut, np.where(bar_v[p_edge], extra_v[p_edge], v[p_edge]))
    tail_kind = np.where(
        is_cut,
        np.where(cut_bar, END_BARRIER, END_OUTLINE),
        np.where(bar_u[p_edge], END_BARRIER, END_NODE),
    )
    nxt_bar = np.r_[cut_bar[1:], False]
    head_kind = np.where(
        nxt_same,
        np.where(nxt_bar, END_BARRIER, END_OUTLINE),
        np.where(bar_v[p_edge], END_BARRIER, END_NODE),
    )
    return _Pieces(
        edge=p_edge.astype(np.int64),
        lo=p_at,
        hi=hi,
        tail=tail.astype(np.int64),
        head=head.astype(np.int64),
        tail_kind=tail_kind.astype(np.int64),
        head_kind=head_kind.astype(np.int64),
        offset=np.r_[0.0, np.cumsum(length + 1.0)[:-1]],
    )


def _outline_cuts(
    geoms: npt.NDArray[np.object_], outlines: npt.NDArray[np.object_] | None
) -> tuple[IntArray, FloatArray]:
    """Edge and position of every point where an edge meets an outline."""
    if outlines is None or len(outlines) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    si, ei = shapely.STRtree(geoms).query(outlines, predicate="intersects")
    inter = shapely.intersection(geoms[ei], outlines[si])
    xy, pair = shapely.get_coordinates(inter, return_index=True)
    at = shapely.line_locate_point(geoms[ei[pair]], shapely.points(xy))
    return ei[pair].astype(np.int64), np.asarray(at, dtype=float)


def _locate(
    pieces: _Pieces, edge: IntArray, forward: BoolArray, pos: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Directed piece and distance from its tail of points ``pos`` (m from u) on edges.

    Driving towards v the point is on the piece that ends at or after it; towards u, on
    the piece that starts at or before it: the piece the vehicle arrives along.
    """
    g = pieces.offset[edge] + pos
    first = np.searchsorted(pieces.edge, edge, side="left")
    last = np.searchsorted(pieces.edge, edge, side="right") - 1
    fwd = np.searchsorted(pieces.offset[pieces.edge] + pieces.hi, g - SNAP_M, side="left")
    rev = np.searchsorted(pieces.offset[pieces.edge] + pieces.lo, g + SNAP_M, side="right") - 1
    p = np.clip(np.where(forward, fwd, rev), first, last)
    length = pieces.hi[p] - pieces.lo[p]
    x = np.where(forward, pos - pieces.lo[p], pieces.hi[p] - pos)
    return np.where(forward, 2 * p, 2 * p + 1).astype(np.int64), np.clip(x, 0.0, length)


def _through_length(pieces: _Pieces, through: BoolArray) -> FloatArray:
    """Per piece: total length of the connected through-road pieces it belongs to (0 if none)."""
    k = np.flatnonzero(through[pieces.edge])
    out = np.zeros(len(pieces.edge))
    if len(k) == 0:
        return out
    nodes, inv = np.unique(np.r_[pieces.tail[k], pieces.head[k]], return_inverse=True)
    a, b = inv[: len(k)], inv[len(k) :]
    m = len(nodes)
    graph = coo_matrix((np.ones(len(k)), (a, b)), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    comp = label[a]
    total = np.bincount(comp, weights=pieces.hi[k] - pieces.lo[k])
    out[k] = total[comp]
    return out


def _cut_edges(
    network: StreetNetwork,
    ve: pd.DataFrame,
    geoms: npt.NDArray[np.object_],
    length: FloatArray,
    outlines: npt.NDArray[np.object_] | None,
) -> _Pieces:
    """The vehicle edges ``ve`` of ``network`` cut at its closing barriers and ``outlines``."""
    closures = network.barriers
    b_edge = pd.Index(ve.index).get_indexer(closures["edge"].to_numpy(dtype=np.int64))
    on = b_edge >= 0
    return _cut(
        geoms,
        length,
        ve["u"].to_numpy(dtype=np.int64),
        ve["v"].to_numpy(dtype=np.int64),
        b_edge[on].astype(np.int64),
        closures["at_m"].to_numpy(dtype=float)[on],
        outlines,
    )


def through_lengths(network: StreetNetwork) -> pd.DataFrame:
    """The connected through-road length of every barrier-cut vehicle piece of a network.

    Rows ``edge`` (network edge id), ``lo``, ``hi`` (metres from its u end) and
    ``through_m``; for :func:`_prepare` on a part of the network (the flying-start rule
    needs the length of the whole through route, not of its part in a clip).
    """
    ve = network.edges[network.edges["hostile_vehicle"].to_numpy(dtype=bool, na_value=False)]
    geoms = ve.geometry.to_numpy()
    pieces = _cut_edges(network, ve, geoms, shapely.length(geoms), None)
    through = ve["through_road"].to_numpy(dtype=bool, na_value=False)
    return pd.DataFrame(
        {
            "edge": ve.index.to_numpy()[pieces.edge],
            "lo": pieces.lo,
            "hi": pieces.hi,
            "through_m": _through_length(pieces, through),
        }
    )


def _given_through(pieces: _Pieces, edge_ids: pd.Index, given: pd.DataFrame) -> FloatArray:
    """Per piece: the ``through_m`` of the given piece of the same edge that holds it."""
    key = np.asarray(edge_ids)[pieces.edge]
    known, rank = np.unique(given["edge"].to_numpy(), return_inverse=True)
    where = np.searchsorted(known, key)
    if (
        len(key)
        and ((where >= len(known)) | (known[np.minimum(where, len(known) - 1)] != key)).any()
    ):
        raise AnalysisError("approach_speeds: the through lengths lack an edge of the network")
    # one sorted axis: edge rank, then position along it (edges are shorter than 1e6 m)
    flat = rank * 1e6 + given["lo"].to_numpy(dtype=float)
    order = np.argsort(flat, kind="stable")
    mid = where * 1e6 + (pieces.lo + pieces.hi) / 2
    pos = np.searchsorted(flat[order], mid, side="right") - 1
    return np.asarray(given["through_m"].to_numpy(dtype=float)[order][pos], dtype=float)


class WholeNetwork(NamedTuple):
    """What a search on a part of a network needs from the whole network.

    ``through_m``: :func:`through_lengths` of the whole network (the flying-start rule
    measures whole through routes); ``cut_spaces``: the spaces whose outlines cut the
    whole network's pieces (every space with a target there), so the part is cut where
    the whole is and targets land on the same pieces.
    """

    through_m: pd.DataFrame
    cut_spaces: tuple[str, ...]
