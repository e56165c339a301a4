"""The speed field: speeds read from kept search labels equal a fresh search there."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.approach.field import speed_field
from geo_protect.analysis.network import street_network
from geo_protect.analysis.vehicles import SpeedCurve, parameter_sets
from geo_protect.errors import AnalysisError

CRS = "EPSG:32635"


def _streets() -> gpd.GeoDataFrame:
    """An L of two residential streets and a narrow lane off the corner."""
    lines = [
        shapely.LineString([(0, 0), (300, 0)]),
        shapely.LineString([(300, 0), (300, 200)]),
        shapely.LineString([(300, 0), (400, 0)]),
    ]
    return gpd.GeoDataFrame(
        {
            "name": ["A", "B", "C"],
            "highway": ["residential", "residential", "service"],
            "walk": [True, True, True],
            "hostile_vehicle": [True, True, True],
            "width_m": [7.0, 7.0, 2.2],
            "lanes": [np.nan] * 3,
            "maxspeed_kmh": [np.nan] * 3,
        },
        geometry=lines,
        index=["way/1", "way/2", "way/3"],
        crs=CRS,
    )


def test_field_equals_a_search_at_the_same_points() -> None:
    net = street_network(_streets(), crs=CRS)
    field = speed_field(net)
    edges = net.edges
    rng = np.random.default_rng(7)
    pick = rng.integers(len(edges), size=12)
    edge = edges.index.to_numpy()[pick]
    at = rng.uniform(0, 1, size=12) * edges["length_m"].to_numpy()[pick]
    towards = np.where(rng.uniform(size=12) < 0.5, "u", "v")
    targets = pd.DataFrame(
        {"space_uid": "s", "edge": edge, "at_m": at, "towards": towards, "impact_angle_deg": 90.0},
        index=[f"t{i}" for i in range(12)],
    )
    searched = approach_speeds(net, targets)
    read = field.at(edge, at, towards)
    read.index = [f"t{p}|{v}" for p, v in zip(read["point"], read["vehicle"], strict=True)]
    for col in ("speed_kmh", "speed_low_kmh", "speed_high_kmh"):
        np.testing.assert_allclose(
            read[col].to_numpy(), searched.loc[read.index, col].to_numpy(), atol=1e-9
        )


def test_straight_run_from_rest_matches_the_speed_curve() -> None:
    """300 m of straight street from a dead end: the speed the curve reaches in 300 m."""
    net = street_network(_streets().iloc[:1], crs=CRS)
    read = speed_field(net).at(net.edges.index.to_numpy(), np.array([300.0]), np.array(["v"]))
    row = parameter_sets()["nominal"].loc["M1"]
    expected = float(SpeedCurve.of(row).speed(300.0)) * 3.6
    got = float(read.set_index("vehicle").at["M1", "speed_kmh"])
    assert got == pytest.approx(expected, abs=1e-6)


def test_unknown_edge_is_an_error() -> None:
    net = street_network(_streets(), crs=CRS)
    with pytest.raises(AnalysisError, match="edge 999"):
        speed_field(net).at(np.array([999]), np.array([0.0]), np.array(["v"]))
