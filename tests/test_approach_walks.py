"""The worst-case walks of each target: which streets set its speeds, and how far they reach.

A straight street of two 300 m edges with a 40 m dead-end side street at the middle: a
vehicle heading for the far end gets its longest run-up straight along the main street
(the side street is shorter and adds a right-angle turn), so the walks use the main
street only — both edges for the classes whose run-up to top speed is over 300 m, the
last edge alone for the others.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.approach.walks import approach_walks
from geo_protect.analysis.network import StreetNetwork, street_network
from geo_protect.analysis.vehicles import SpeedCurve, parameter_sets

CRS = "EPSG:32635"


def _streets(names: tuple[str, ...] = ("A", "B", "D")) -> gpd.GeoDataFrame:
    lines = {
        "A": shapely.LineString([(0, 0), (300, 0)]),
        "B": shapely.LineString([(300, 0), (600, 0)]),
        "D": shapely.LineString([(300, 0), (300, -40)]),
    }
    return gpd.GeoDataFrame(
        {
            "name": list(names),
            "highway": ["residential"] * len(names),
            "walk": [True] * len(names),
            "hostile_vehicle": [True] * len(names),
            "width_m": [7.0] * len(names),
            "lanes": [np.nan] * len(names),
            "maxspeed_kmh": [np.nan] * len(names),
        },
        geometry=[lines[n] for n in names],
        index=[f"way/{n}" for n in names],
        crs=CRS,
    )


def _target(net: StreetNetwork) -> pd.DataFrame:
    edges = net.edges
    b = int(edges.index[edges["street_uid"] == "way/B"][0])
    far_is_v = shapely.get_point(edges.at[b, "geometry"], -1).x > 599
    return pd.DataFrame(
        {
            "space_uid": ["s"],
            "edge": [b],
            "at_m": [float(edges.at[b, "length_m"]) if far_is_v else 0.0],
            "towards": ["v" if far_is_v else "u"],
            "impact_angle_deg": [90.0],
        },
        index=["far-end"],
    )


def _run_ups_to_top() -> dict[tuple[str, str], float]:
    return {
        (name, str(code)): float(SpeedCurve.of(row).run_up(float(row["top_speed_kmh"]) / 3.6))
        for name, fleet in parameter_sets().items()
        for code, row in fleet.iterrows()
    }


def test_walks_use_the_main_street_and_never_the_side_street() -> None:
    net = street_network(_streets(), crs=CRS)
    walks = approach_walks(net, _target(net))
    street_of = net.edges["street_uid"]
    used = set(street_of.loc[walks.edges["edge"]].astype(str))
    # some class needs more than 300 m to reach its top speed (the reference table's N3
    # does), so its walk starts on A; nobody's walk runs through the side street
    assert max(_run_ups_to_top().values()) > 300
    assert used == {"way/A", "way/B"}
    assert set(walks.edges["entry_uid"]) == {"far-end"}


def test_reach_is_the_longest_run_up_to_the_impact_speed() -> None:
    net = street_network(_streets(), crs=CRS)
    target = _target(net)
    reach = float(approach_walks(net, target).reach_m["far-end"])
    tops = _run_ups_to_top()
    # 600 m of straight street: every class reaches min(its run-up to top speed, 600 m)
    # at least; the slowest to accelerate needs more than that, so the reach is >= 600 m,
    # and no speed is past a top speed
    assert reach >= min(600.0, max(tops.values())) - 1e-6
    assert reach <= max(tops.values()) + 1e-6
    # a second derivation: the nominal speeds of approach_speeds as run-ups
    found = approach_speeds(net, target)
    nominal = parameter_sets()["nominal"]
    for _, row in found.iterrows():
        q = float(SpeedCurve.of(nominal.loc[row["vehicle"]]).run_up(row["speed_kmh"] / 3.6))
        assert q <= reach + 1e-6


def test_closing_a_street_off_every_walk_changes_no_speed() -> None:
    """The property the incremental re-analysis relies on, checked by a fresh search."""
    full = street_network(_streets(), crs=CRS)
    before = approach_speeds(full, _target(full)).set_index("vehicle")
    without_side = street_network(_streets(("A", "B")), crs=CRS)
    after = approach_speeds(without_side, _target(without_side)).set_index("vehicle")
    for col in ("speed_kmh", "speed_low_kmh", "speed_high_kmh"):
        np.testing.assert_allclose(after[col], before.loc[after.index, col], atol=1e-9)
    # closing a street the walks use slows the classes whose walk started on it
    without_a = street_network(_streets(("B", "D")), crs=CRS)
    slower = approach_speeds(without_a, _target(without_a)).set_index("vehicle")
    assert (slower["speed_low_kmh"] < before.loc[slower.index, "speed_low_kmh"] - 1e-6).any()
