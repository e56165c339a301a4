"""Hand-built networks and targets for approach-speed tests (closed-form answers).

The search tests use :data:`SEARCH_FLEET`: two classes with the constant-acceleration
model (no power limit, no rollover, a point-sized vehicle, μ = 1) so that every answer
is ``v² = v0² + 2·a·s`` capped at ``μ·g·R`` and the top speed. The realistic physics of
the reference classes has its own closed-form tests (``tests/test_vehicle_dynamics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.network import StreetNetwork

CRS = "EPSG:32635"


G, MU = 9.81, 1.0

#: M1: a = 3.0 m/s², top 110 km/h, turning radius 5 m; N3: a = 0.8, top 80, radius 9 m.
SEARCH_FLEET = pd.DataFrame(
    {
        "description": ["car", "heavy truck"],
        "rating_class": ["M1", "N3C"],
        "test_mass_kg": [1500.0, 7200.0],
        "acceleration_ms2": [3.0, 0.8],
        "top_speed_kmh": [110.0, 80.0],
        "turning_radius_m": [5.0, 9.0],
    },
    index=pd.Index(["M1", "N3"], name="vehicle"),
)

#: No low / high sets: both equal the nominal one.
NO_SENSITIVITY = pd.DataFrame({"set": pd.Series([], dtype=object), "vehicle": []})


def streets(
    lines: Sequence[Sequence[tuple[float, float]]],
    *,
    highway: str = "service",
    width: float = 6.0,
    maxspeed: float = np.nan,
) -> gpd.GeoDataFrame:
    n = len(lines)
    return gpd.GeoDataFrame(
        {
            "osm_type": ["way"] * n,
            "osm_id": range(1, n + 1),
            "name": [f"s{i}" for i in range(n)],
            "kind": [highway] * n,
            "tags": ["{}"] * n,
            "source": ["test"] * n,
            "data_date": [None] * n,
            "highway": [highway] * n,
            "walk": [True] * n,
            "hostile_vehicle": [True] * n,
            "width_m": [width] * n,
            "lanes": [np.nan] * n,
            "maxspeed_kmh": [maxspeed] * n,
        },
        geometry=[shapely.LineString(c) for c in lines],
        index=[f"way/{i + 1}" for i in range(n)],
        crs=CRS,
    )


def edge_between(net: StreetNetwork, a: tuple[float, float], b: tuple[float, float]) -> int:
    """Id of the edge from node at ``a`` to node at ``b`` (either way round)."""
    xy = shapely.get_coordinates(net.nodes.geometry.to_numpy())
    na = int(np.flatnonzero(np.hypot(*(xy - a).T) < 1e-6)[0])
    nb = int(np.flatnonzero(np.hypot(*(xy - b).T) < 1e-6)[0])
    e = net.edges
    hit = e.index[((e.u == na) & (e.v == nb)) | ((e.u == nb) & (e.v == na))]
    return int(hit[0])


def target(
    net: StreetNetwork,
    a: tuple[float, float],
    b: tuple[float, float],
    at_from_a: float,
    *,
    uid: str = "sq#1",
    space: str = "sq",
) -> pd.DataFrame:
    """A target on the edge a-b, ``at_from_a`` metres from a, driven from a towards b."""
    eid = edge_between(net, a, b)
    row = net.edges.loc[eid]
    a_is_u = shapely.Point(a).distance(net.nodes.geometry[row.u]) < 1e-6
    at = at_from_a if a_is_u else row.length_m - at_from_a
    return pd.DataFrame(
        {
            "space_uid": [space],
            "edge": [eid],
            "at_m": [at],
            "towards": ["v" if a_is_u else "u"],
            "impact_angle_deg": [90.0],
        },
        index=pd.Index([uid]),
    )


def run(net: StreetNetwork, tgt: pd.DataFrame, **kw: object) -> gpd.GeoDataFrame:
    kw = {"vehicles": SEARCH_FLEET, "friction": MU, "sensitivity": NO_SENSITIVITY, **kw}
    return approach_speeds(net, tgt, **kw)  # type: ignore[arg-type]


def kmh(e: float) -> float:
    return math.sqrt(e) * 3.6


def start_xy(layer: gpd.GeoDataFrame, uid: str) -> np.ndarray:
    line = layer.to_crs(CRS).geometry[uid]
    return np.asarray(shapely.get_coordinates(line)[0])
