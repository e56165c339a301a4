"""The speed each vehicle class can reach at any point of a network, kept for reuse.

:func:`approach_speeds` searches the network and reads the labels at its targets. A
:class:`SpeedField` keeps those labels — one search per vehicle class and parameter
set over the whole network — so that the speed at any other point (a planned barrier,
say) is a lookup, not a new search. The answer is the one
:func:`~geo_protect.analysis.approach.approach_speeds` gives for a target there with no
space around it (no walk is excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_protect.analysis.approach.geometry import _KMH, _Graph, _prepare
from geo_protect.analysis.approach.pieces import _locate
from geo_protect.analysis.approach.search import _Class, _search, _speed_at, _vehicle_on
from geo_protect.analysis.network import StreetNetwork
from geo_protect.analysis.vehicles import parameter_sets, vehicle_classes
from geo_protect.errors import AnalysisError
from geo_protect.reference import parameter

__all__ = ["SpeedField", "speed_field"]

_SETS = ("nominal", "low", "high")


@dataclass(frozen=True)
class SpeedField:
    """Search labels of every vehicle class under each parameter set, on one network."""

    network: StreetNetwork
    graph: _Graph
    labels: dict[tuple[str, str], tuple[_Class, np.ndarray]]  # (set, class) -> labels
    vehicles: tuple[str, ...]

    def at(self, edge: np.ndarray, at_m: np.ndarray, towards: np.ndarray) -> pd.DataFrame:
        """Speeds at points on edges, driven towards the ``u`` or ``v`` end.

        Parameters
        ----------
        edge : ndarray
            Edge ids of ``network.edges``.
        at_m : ndarray
            Distance of each point from its edge's ``u`` end, m.
        towards : ndarray
            ``"u"`` or ``"v"`` per point: the end the vehicle drives towards.

        Returns
        -------
        DataFrame
            One row per point and class: ``point`` (position in the inputs), ``vehicle``,
            ``speed_kmh`` (nominal set) and ``speed_low_kmh`` / ``speed_high_kmh`` (the
            envelope with the low and high sets). 0 where no vehicle of the class
            reaches the point (off the vehicle network, or a street too narrow for it).

        Raises
        ------
        AnalysisError
            If an edge is not in the network.
        """
        edge = np.asarray(edge, dtype=np.int64)
        unknown = ~np.isin(edge, self.network.edges.index.to_numpy())
        if unknown.any():
            raise AnalysisError(f"SpeedField.at: edge {edge[unknown][0]} is not in the network")
        loc = self.graph.edge_index.get_indexer(edge)
        drivable = loc >= 0
        dedge = np.full(len(edge), -1, dtype=np.int64)
        x = np.zeros(len(edge))
        forward = np.asarray(towards, dtype=object)[drivable] == "v"
        d, xx = _locate(self.graph.pieces, loc[drivable], forward, np.asarray(at_m)[drivable])
        dedge[drivable], x[drivable] = d, xx
        frames = []
        for code in self.vehicles:
            kmh = {name: self._kmh(name, code, dedge, x) for name in _SETS}
            frames.append(
                pd.DataFrame(
                    {
                        "point": np.arange(len(edge)),
                        "vehicle": code,
                        "speed_kmh": kmh["nominal"],
                        "speed_low_kmh": np.minimum(kmh["low"], kmh["nominal"]),
                        "speed_high_kmh": np.maximum(kmh["high"], kmh["nominal"]),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _kmh(self, name: str, code: str, dedge: np.ndarray, x: np.ndarray) -> np.ndarray:
        klass, q_in = self.labels[(name, code)]
        ok = np.flatnonzero(dedge >= 0)
        ok = ok[klass.fits[dedge[ok]]]
        q = np.zeros(len(dedge))
        q[ok] = _speed_at(self.graph, klass, q_in, dedge[ok], x[ok])
        return np.asarray(klass.curve.speed(q) * _KMH, dtype=float)


def speed_field(network: StreetNetwork, *, through_m: pd.DataFrame | None = None) -> SpeedField:
    """Search ``network`` once per vehicle class and parameter set, and keep the labels.

    Parameters
    ----------
    network : StreetNetwork
        The street network (metric CRS).
    through_m : DataFrame, optional
        :func:`~geo_protect.analysis.approach.through_lengths` of the network (measured
        here when not given).

    Returns
    -------
    SpeedField
        Call :meth:`SpeedField.at` for the speeds at any points.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from geo_protect.analysis.network import street_network
    >>> s = gpd.GeoDataFrame({"name": ["A"], "highway": ["residential"], "walk": [True],
    ...     "hostile_vehicle": [True], "width_m": [6.0], "lanes": [np.nan],
    ...     "maxspeed_kmh": [np.nan]}, geometry=[shapely.LineString([(0, 0), (100, 0)])],
    ...     index=["way/1"], crs="EPSG:32635")
    >>> field = speed_field(street_network(s, crs="EPSG:32635"))
    >>> at = field.at(np.array([0]), np.array([100.0]), np.array(["v"]))
    >>> bool((at["speed_kmh"] > 0).all())
    True
    """
    graph = _prepare(
        network, default_width_m=parameter("lane_width_m"), outlines=None, through_m=through_m
    )
    sets = parameter_sets(vehicle_classes())
    gravity = parameter("gravity_ms2")
    labels = {}
    for name in _SETS:
        for code, row in sets[name].iterrows():
            klass = _vehicle_on(graph, row, gravity=gravity)
            q_in, _ = _search(graph, klass, transit=klass.transit)
            labels[(name, str(code))] = (klass, q_in)
    return SpeedField(network, graph, labels, tuple(str(c) for c in sets["nominal"].index))
