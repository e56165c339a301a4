"""Own-space exclusion on pieces of edges, through-road flying starts, barriers by position.

Closed forms only: from rest ``v = sqrt(2·a·L)`` over a straight run-up ``L``, capped at
the top speed; defaults M1 a = 3.0 m/s², top 110 km/h; N3 a = 0.8 m/s², top 80 km/h;
μ = 1, g = 9.81. Every scenario is a straight street, so no bend or turn binds unless
said.
"""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.network import street_network
from tests.approach_cases import CRS, MU, G, edge_between, kmh, run, start_xy, streets, target

ACCEL = {"M1": 3.0, "N3": 0.8}
TOP = {"M1": 110.0, "N3": 80.0}


def expected(code: str, run_up: float, start_e: float = 0.0) -> float:
    """min(top, sqrt(v0² + 2·a·L)) in km/h."""
    return min(TOP[code], kmh(start_e + 2 * ACCEL[code] * run_up))


def space(*parts: shapely.Polygon) -> gpd.GeoDataFrame:
    geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return gpd.GeoDataFrame(geometry=[geom], index=pd.Index(["sq"]), crs=CRS)


def test_run_up_through_the_space_on_the_target_edge_is_not_counted() -> None:
    """Old code too high: one way (a single edge, 0 to 300 m) crosses a two-part space,
    part A at x 100-120, part B at x 200-260; the entry is into B at x = 200, eastbound.
    The old exclusion looked only at edges *before* the target's edge, so the run-up
    from x = 0 through part A counted: N3 sqrt(2·0.8·200) = 64.4 km/h. Outside the
    space the run-up is x 120 to 200: L = 80 m."""
    net = street_network(streets([[(0, 0), (300, 0)]]), crs=CRS)
    sq = space(shapely.box(100, -10, 120, 10), shapely.box(200, -10, 260, 10))
    out = run(net, target(net, (0, 0), (300, 0), 200.0), spaces=sq)
    for code in ("M1", "N3"):
        row = out.loc[f"sq#1|{code}"]
        assert row.speed_kmh == pytest.approx(expected(code, 80.0)), code
        assert row.run_up_m == pytest.approx(80.0)
    assert start_xy(out, "sq#1|N3") == pytest.approx([120.0, 0.0], abs=1e-6)
    inside = out.to_crs(CRS).geometry.intersection(sq.geometry.iloc[0].buffer(-0.5))
    assert inside.length.max() == pytest.approx(0.0, abs=1e-6)
    # without the spaces: the whole 200 m (N3 below its top speed)
    free = run(net, target(net, (0, 0), (300, 0), 200.0))
    assert free.loc["sq#1|N3", "speed_kmh"] == pytest.approx(expected("N3", 200.0))


def test_run_up_outside_the_space_on_an_edge_that_also_enters_it_counts() -> None:
    """Old code too low: edge E1 (x 0 to 300) enters part A of the space (x 0-20) at its
    start; the entry is into part B (x 320-360) on the next edge E2, eastbound. The old
    exclusion removed all of E1 because its interior meets the space, leaving 20 m of
    E2: N3 sqrt(2·0.8·20) = 20.4 km/h. Outside the space the run-up is x 20 to 320:
    L = 300 m."""
    net = street_network(streets([[(0, 0), (300, 0)], [(300, 0), (400, 0)]]), crs=CRS)
    sq = space(shapely.box(-10, -10, 20, 10), shapely.box(320, -10, 360, 10))
    out = run(net, target(net, (300, 0), (400, 0), 20.0), spaces=sq)
    n3 = out.loc["sq#1|N3"]
    assert n3.speed_kmh == pytest.approx(expected("N3", 300.0))  # 78.9 km/h, below top
    assert n3.run_up_m == pytest.approx(300.0)
    assert start_xy(out, "sq#1|N3") == pytest.approx([20.0, 0.0], abs=1e-6)
    m1 = out.loc["sq#1|M1"]  # reaches 110 km/h after (110/3.6)²/6 = 155.6 m
    assert m1.speed_kmh == pytest.approx(110.0)
    assert m1.run_up_m == pytest.approx((110 / 3.6) ** 2 / 6.0)


def test_u_shaped_space_keeps_the_street_between_its_arms() -> None:
    """A straight street crosses the two arms of a U (x 0-20 and 60-80); the entry is
    the second arm at x = 60, eastbound, on the same edge as the first arm. Only the
    40 m between the arms count (old code: all 160 m from the street's start at
    x = -100, through the first arm, as the target's own edge was never checked)."""
    net = street_network(streets([[(-100, 0), (200, 0)]]), crs=CRS)
    u_shape = shapely.Polygon(
        [(0, -10), (20, -10), (20, 10), (60, 10), (60, -10), (80, -10), (80, 30), (0, 30)]
    )
    out = run(net, target(net, (-100, 0), (200, 0), 160.0), spaces=space(u_shape))
    for code in ("M1", "N3"):
        assert out.loc[f"sq#1|{code}", "speed_kmh"] == pytest.approx(expected(code, 40.0))


def test_flying_start_only_on_a_through_route_long_enough_to_reach_it() -> None:
    """Primary roads: 50 km/h × 1.2 = 60 km/h flying start, v0² = (60/3.6)² = 277.8.

    A 30 m primary stub off nothing: no vehicle can arrive at 60 km/h on it (that needs
    v0²/(2a) = 46.3 m for M1, 173.6 m for N3 of through road): from rest,
    sqrt(2·a·30). The old code granted the start on any edge of the class: M1
    sqrt(277.8 + 180) = 77.0 km/h.

    The same stub as the end of a 430 m primary route (400 m coming in from the south,
    a 90° turn at the junction): the route is long enough, the flying start holds on
    the stub: v = sqrt(v0² + 2·a·30) (the turn caps at μ·g·15 = 147 < v0², so coming
    round the corner is slower)."""
    v0_e = (60 / 3.6) ** 2
    stub = streets([[(0, 0), (30, 0)]], highway="primary")
    net = street_network(stub, crs=CRS)
    out = run(net, target(net, (0, 0), (30, 0), 30.0))
    for code in ("M1", "N3"):
        row = out.loc[f"sq#1|{code}"]
        assert row.start_speed_kmh == 0.0
        assert row.speed_kmh == pytest.approx(expected(code, 30.0)), code

    route = streets([[(0, -400), (0, 0)], [(0, 0), (30, 0)]], highway="primary")
    net = street_network(route, crs=CRS)
    out = run(net, target(net, (0, 0), (30, 0), 30.0))
    corner = MU * G * 15.0  # R = legs min(400, 30)/2 / tan 45° = 15 m (racing line 20.5)
    for code in ("M1", "N3"):
        row = out.loc[f"sq#1|{code}"]
        assert row.start_speed_kmh == pytest.approx(60.0)
        assert row.speed_kmh == pytest.approx(expected(code, 30.0, v0_e)), code
        assert row.speed_kmh > expected(code, 30.0, corner)


def test_approach_never_drives_through_a_second_barrier_on_the_edge() -> None:
    """One edge x 0-100 closed twice: a block at x = 80 and a row of bollards (0.8 m
    gaps) at x = 40. The old code kept only the first barrier (the block) and reached
    a target on the closed edge along it from its u end, through the bollards: M1
    sqrt(2·3·70). The target at x = 70 (eastbound) lies between the two barriers: the
    run-up is the 30 m from the bollards (a 6 m wide U-turn at the block, R = 3 m,
    is below every turning radius)."""
    s = streets([[(0, 0), (100, 0)]])
    posts = shapely.MultiPoint([(40, y) for y in (-2.0, -1.0, 0.0, 1.0, 2.0)])
    bars = gpd.GeoDataFrame(
        {"kind": ["block", "bollard"]},
        geometry=[shapely.Point(80, 0), shapely.LineString(posts.geoms)],
        index=["node/1", "way/2"],
        crs=CRS,
    )
    net = street_network(s, bars, crs=CRS)
    out = run(net, target(net, (0, 0), (100, 0), 70.0))
    for code in ("M1", "N3"):
        assert out.loc[f"sq#1|{code}", "speed_kmh"] == pytest.approx(expected(code, 30.0))
    assert net.barriers["at_m"].tolist() == pytest.approx([40.0, 80.0])
    assert net.barriers["barrier_uid"].tolist() == ["way/2", "node/1"]
    assert start_xy(out, "sq#1|M1") == pytest.approx([40.0, 0.0], abs=1e-6)
    # a target beyond the block (x = 95, eastbound): 15 m from the block
    beyond = run(net, target(net, (0, 0), (100, 0), 95.0))
    assert beyond.loc["sq#1|M1", "speed_kmh"] == pytest.approx(expected("M1", 15.0))
    assert edge_between(net, (0, 0), (100, 0)) == 0
    assert math.isfinite(beyond.loc["sq#1|N3", "speed_kmh"])
