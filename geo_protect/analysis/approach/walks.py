"""The worst-case walks of each target, kept so that an edit knows whom it can slow.

When barriers are only added, no walk gets faster and none is created: a target's speeds
can fall only if an edit cuts one of the walks that set them (its worst-case walk under
each vehicle class and parameter set), and its new walks lie within the run-up of its old
speed. :func:`approach_walks` records both, once, on the baseline network.
"""

from __future__ import annotations

from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.analysis.approach import (
    _check_targets,
    _Model,
    _search_setup,
)
from geo_protect.analysis.approach.pieces import WholeNetwork
from geo_protect.analysis.approach.search import _solve, _vehicle_on
from geo_protect.analysis.network import StreetNetwork
from geo_protect.analysis.vehicles import parameter_sets, vehicle_classes

__all__ = ["Walks", "approach_walks"]


class Walks(NamedTuple):
    """What :func:`approach_walks` returns: the edges of the walks, and their reach."""

    edges: pd.DataFrame
    reach_m: pd.Series


def approach_walks(
    network: StreetNetwork,
    targets: pd.DataFrame,
    *,
    spaces: gpd.GeoDataFrame | None = None,
    whole: WholeNetwork | None = None,
) -> Walks:
    """The edges each target's worst-case walks use, over every class and parameter set.

    The walks are those :func:`approach_speeds` traces (with the reference vehicles and
    constants): from the run-up start to the target, one per class under the nominal,
    low and high sets. A target's speeds cannot fall when barriers are only added unless
    one of these walks is cut: each walk stays drivable with the same speed, and adding
    barriers only takes walks and flying starts away.

    Parameters
    ----------
    network : StreetNetwork
        As for :func:`approach_speeds`.
    targets : DataFrame
        As for :func:`approach_speeds`.
    spaces : GeoDataFrame, optional
        As for :func:`approach_speeds` (walks avoid their target's own space).
    whole : WholeNetwork, optional
        As for :func:`approach_speeds`.

    Returns
    -------
    Walks
        ``edges``: distinct ``entry_uid`` (str), ``edge`` (id in ``network.edges``)
        pairs, sorted by edge (none for a target off the vehicle network); ``reach_m``:
        per entry uid, the longest run-up from rest to its impact speed over the runs.
        Speed grows by at most its run-up per metre driven, so every walk that reaches
        the target no faster lies within that distance of it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from geo_protect.analysis.network import street_network
    >>> s = gpd.GeoDataFrame({"name": ["A"], "highway": ["residential"], "walk": [True],
    ...     "hostile_vehicle": [True], "width_m": [6.0], "lanes": [np.nan],
    ...     "maxspeed_kmh": [np.nan]}, geometry=[shapely.LineString([(0, 0), (300, 0)])],
    ...     index=["way/1"], crs="EPSG:32635")
    >>> net = street_network(s, crs="EPSG:32635")
    >>> t = pd.DataFrame({"space_uid": ["s"], "edge": [net.edges.index[0]], "at_m": [300.0],
    ...     "towards": ["v"], "impact_angle_deg": [90.0]}, index=["x"])
    >>> approach_walks(net, t).edges["edge"].tolist() == [net.edges.index[0]]
    True
    """
    model = _Model.resolve(None, None, None)
    sets = parameter_sets(vehicle_classes())
    edge_of, pos_of = _check_targets(network, targets)
    uid = targets.index.astype(str).to_numpy()
    if targets.empty:
        none = pd.DataFrame({"entry_uid": pd.Series(dtype=str), "edge": pd.Series(dtype=int)})
        return Walks(none, pd.Series(dtype=float))
    graph, tgt_dedge, tgt_x, space_edges = _search_setup(
        network, targets, spaces, whole, model, edge_of, pos_of
    )
    parts, reach = [], np.zeros(len(targets))
    for fleet in sets.values():
        for _, row in fleet.iterrows():
            klass = _vehicle_on(graph, row, gravity=model.gravity)
            q, *_, paths = _solve(graph, klass, tgt_dedge, tgt_x, space_edges, draw=False)
            reach = np.maximum(reach, q)
            edges = graph.edge_index.to_numpy()[graph.pieces.edge[paths.dedge // 2]]
            parts.append(pd.DataFrame({"entry_uid": uid[paths.target], "edge": edges}))
    out = pd.concat(parts, ignore_index=True).drop_duplicates()
    return Walks(
        out.sort_values(["edge", "entry_uid"], ignore_index=True),
        pd.Series(reach, index=pd.Index(uid, name="entry_uid"), name="reach_m"),
    )
