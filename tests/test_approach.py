"""Hostile-vehicle approach speeds on hand-built networks with closed-form answers.

Defaults used by the closed forms: g = 9.81 m/s², μ = 1.0; M1 a = 3.0 m/s², top 110 km/h,
turning radius 5 m; N3 a = 0.8 m/s², top 80 km/h, turning radius 9 m. Dead ends on
6 m wide streets allow no useful U-turn (radius w/2 = 3 m is below both turning radii).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect import AnalysisError
from geo_protect.analysis.approach import approach_speeds, turn_radius
from geo_protect.analysis.network import street_network
from geo_protect.analysis.vehicles import (
    SpeedCurve,
    parameter_sets,
    required_test_speed,
    vehicle_classes,
)
from geo_protect.reference import parameter
from geo_protect.schema import LAYERS
from tests.approach_cases import (
    CRS,
    MU,
    G,
    edge_between,
    kmh,
    run,
    start_xy,
    streets,
    target,
)


def test_straight_run_up_from_rest() -> None:
    net = street_network(streets([[(0, 0), (50, 0)]]), crs=CRS)
    out = run(net, target(net, (0, 0), (50, 0), 50.0))
    m1 = out.loc["sq#1|M1"]
    assert m1.speed_kmh == pytest.approx(kmh(2 * 3.0 * 50), rel=1e-9)  # 62.35 km/h
    assert m1.speed_kmh == pytest.approx(62.35, abs=0.01)
    assert m1.start_speed_kmh == 0.0
    assert m1.run_up_m == pytest.approx(50.0)
    assert out.loc["sq#1|N3"].speed_kmh == pytest.approx(kmh(2 * 0.8 * 50))  # 32.2 km/h
    assert out.to_crs(CRS).geometry.length.to_numpy() == pytest.approx([50.0, 50.0])
    assert start_xy(out, "sq#1|M1") == pytest.approx([0.0, 0.0], abs=1e-6)
    assert m1.energy_kj == pytest.approx(0.5 * 1500 * (m1.speed_kmh / 3.6) ** 2 / 1000)
    # 62.35 x 1.1 = 68.6 km/h -> beyond 64, next standard test speed 80
    assert m1.test_speed_kmh == 80.0
    assert m1.required_rating == "V/1500[M1]/80/90"
    assert set(out.columns) - {"geometry"} == set(LAYERS["approach"].columns)
    assert out.crs.equals("EPSG:4326")


@pytest.mark.parametrize("one_way", [False, True], ids=["junction", "bend-inside-edge"])
def test_corner_caps_speed_then_accelerates_again(one_way: bool) -> None:
    # 40 m east, 90° left, 60 m north; width 4 m. R = min(racing 4/(1-cos45°) = 13.66,
    # legs min(40, 60)/2 / tan45° = 20) = 13.66 m (above the 2.83 m chord floor)
    pts = [(0, 0), (40, 0), (40, 60)]
    lines = [pts] if one_way else [pts[:2], pts[1:]]
    net = street_network(streets(lines, width=4.0), crs=CRS)
    tgt = target(net, (0, 0), (40, 60), 100.0) if one_way else target(net, (40, 0), (40, 60), 60.0)
    out = run(net, tgt)
    radius = 4.0 / (1 - math.cos(math.pi / 4))
    assert turn_radius(math.pi / 2, 4.0, 20.0) == pytest.approx(radius)
    cap = MU * G * radius  # 134.0 m²/s²: the M1 would reach 2·3·40 = 240 at the corner
    m1 = out.loc["sq#1|M1"]
    assert m1.speed_kmh == pytest.approx(kmh(cap + 2 * 3.0 * 60))  # 80.0 km/h
    # the run-up starts where the corner speed is just reached: cap/(2a) before the corner
    assert m1.run_up_m == pytest.approx(60 + cap / 6.0)
    assert start_xy(out, "sq#1|M1") == pytest.approx([40 - cap / 6.0, 0.0], abs=1e-6)
    # N3 reaches only 2·0.8·40 = 64 < cap at the corner: the corner does not bind
    assert out.loc["sq#1|N3"].speed_kmh == pytest.approx(kmh(2 * 0.8 * 100))


def test_longer_straight_beats_shorter_path_with_sharp_corner() -> None:
    # target 20 m east of P; from the north (100 m) a 90° turn at P; from the west a
    # 150 m straight. The turn at P: legs min(100, 20)/2 = 10 m -> R = 10 m (>= 9 m N3)
    p = (0, 0)
    net = street_network(
        streets([[(0, 100), p], [(-150, 0), p], [p, (20, 0)]]),
        crs=CRS,
    )
    out = run(net, target(net, p, (20, 0), 20.0))
    n3 = out.loc["sq#1|N3"]
    via_corner = kmh(min(MU * G * 10.0, 2 * 0.8 * 100) + 2 * 0.8 * 20)  # 41.1 km/h
    straight = kmh(2 * 0.8 * 170)  # 59.4 km/h
    assert straight > via_corner
    assert n3.speed_kmh == pytest.approx(straight)
    assert n3.run_up_m == pytest.approx(170.0)
    assert start_xy(out, "sq#1|N3") == pytest.approx([-150.0, 0.0], abs=1e-6)


def test_top_speed_caps_and_trims_the_run_up() -> None:
    net = street_network(streets([[(0, 0), (500, 0)]]), crs=CRS)
    m1 = run(net, target(net, (0, 0), (500, 0), 500.0))
    top = 110 / 3.6
    assert m1.loc["sq#1|M1", "speed_kmh"] == pytest.approx(110.0)
    # the path starts where the car, from rest, first reaches its top speed
    assert m1.loc["sq#1|M1", "run_up_m"] == pytest.approx(top**2 / 6.0)  # 155.6 m
    assert m1.loc["sq#1|M1", "required_rating"] == "> V/1500[M1]/80/90"
    assert np.isnan(m1.loc["sq#1|M1", "test_speed_kmh"])


def test_through_road_start_at_road_speed() -> None:
    # residential: through road, default 30 km/h -> start at 36 km/h = 10 m/s
    net = street_network(streets([[(0, 0), (50, 0)]], highway="residential"), crs=CRS)
    out = run(net, target(net, (0, 0), (50, 0), 50.0))
    m1 = out.loc["sq#1|M1"]
    assert m1.start_speed_kmh == pytest.approx(36.0)
    assert m1.speed_kmh == pytest.approx(kmh(10.0**2 + 2 * 3.0 * 50))  # 72 km/h
    assert m1.run_up_m == pytest.approx(50.0)
    slow = run(net, target(net, (0, 0), (50, 0), 50.0), road_speed_factor=0.0)
    assert slow.loc["sq#1|M1", "speed_kmh"] == pytest.approx(kmh(2 * 3.0 * 50))


def test_bollard_row_closes_the_access_edge() -> None:
    # A: (0,0)-(60,0) closed by a row of bollards at x = 30, 1 m apart (0.8 m clear
    # gaps); B: (60,-40)-(60,0) open; target edge T: (60,0)-(80,0); C: steps.
    s = pd.concat(
        [
            streets([[(0, 0), (60, 0)], [(60, -40), (60, 0)], [(60, 0), (80, 0)]]),
            streets([[(80, 0), (80, 30)]], highway="steps").rename(index={"way/1": "way/9"}),
        ]
    )
    s.loc["way/9", "hostile_vehicle"] = False  # as the taxonomy marks steps
    row = shapely.LineString([(30, y) for y in np.arange(-3.0, 3.01, 1.0)])
    barriers = gpd.GeoDataFrame({"kind": ["bollard"]}, geometry=[row], index=["way/99"], crs=CRS)
    net = street_network(s, barriers, crs=CRS)
    assert net.edges.loc[edge_between(net, (0, 0), (60, 0)), "blocked_by"] == "way/99"
    tgt = pd.concat(
        [
            target(net, (60, 0), (80, 0), 20.0, uid="sq#1"),
            target(net, (0, 0), (60, 0), 20.0, uid="sq#2"),
            target(net, (80, 30), (80, 0), 10.0, uid="sq#3"),
        ]
    )
    out = run(net, tgt)
    # sq#1: not through the row any more. A is closed *at x = 30*: its 30 m east of the
    # row are still street (a car can stand right at the posts), so the best run-up is
    # from rest at the row, 30 m + 20 m straight on (better than from B: a 90° turn with
    # legs min(40, 20)/2 = 10 -> R = 10 m, then 20 m)
    assert out.loc["sq#1|M1", "speed_kmh"] == pytest.approx(kmh(2 * 3.0 * 50))
    assert kmh(2 * 3.0 * 50) > kmh(MU * G * 10.0 + 2 * 3.0 * 20)
    assert out.loc["sq#1|M1", "run_up_m"] == pytest.approx(50.0)
    assert start_xy(out, "sq#1|M1") == pytest.approx([30.0, 0.0], abs=1e-6)
    unblocked = run(street_network(s, crs=CRS), tgt.iloc[:1])
    assert unblocked.loc["sq#1|M1", "speed_kmh"] == pytest.approx(kmh(2 * 3.0 * 80))
    # sq#2 lies on A before the row (the entry-point contract: no barrier between the
    # street's outer end and a vehicle-permeable entry): reached from (0,0) only
    assert out.loc["sq#2|M1", "speed_kmh"] == pytest.approx(kmh(2 * 3.0 * 20))
    # sq#3 is on steps: no vehicle approach
    none = out.loc["sq#3|M1"]
    assert none.speed_kmh == 0.0
    assert none.energy_kj == 0.0
    assert pd.isna(none.required_rating)
    assert none.geometry.length == 0.0


def test_approach_never_runs_through_the_same_space() -> None:
    # A straight street crosses a U-shaped square twice (x 0-20 and 60-80); a side street
    # joins at x = 40 between the two crossings. The entry is the second crossing (x 60),
    # eastbound.
    s = streets([[(-200, 0), (40, 0)], [(40, 0), (100, 0)], [(40, -50), (40, 0)]])
    net = street_network(s, crs=CRS)
    square = shapely.Polygon(
        [(0, -10), (20, -10), (20, 10), (60, 10), (60, -10), (80, -10), (80, 30), (0, 30)]
    )
    spaces = gpd.GeoDataFrame(geometry=[square], index=pd.Index(["sq"]), crs=CRS)
    tgt = target(net, (40, 0), (100, 0), 20.0)
    free = run(net, tgt)
    assert free.loc["sq#1|N3", "speed_kmh"] == pytest.approx(kmh(2 * 0.8 * 260))  # through sq
    assert free.to_crs(CRS).geometry["sq#1|N3"].intersects(square.buffer(-1))
    out = run(net, tgt, spaces=spaces)
    # without the square: 50 m north on the side street, an unbinding 90° turn
    # (R = 20.5 m), 20 m east: 70 m of acceleration
    n3 = out.loc["sq#1|N3"]
    assert n3.speed_kmh == pytest.approx(kmh(2 * 0.8 * 70))  # 38.1 km/h
    assert n3.run_up_m == pytest.approx(70.0)
    path = out.to_crs(CRS).geometry["sq#1|N3"]
    assert not path.intersects(square.buffer(-1))
    assert start_xy(out, "sq#1|N3") == pytest.approx([40.0, -50.0], abs=1e-6)
    # an entry of another space is not affected by this square
    other = run(net, tgt.assign(space_uid="elsewhere"), spaces=spaces)
    assert other.loc["sq#1|N3", "speed_kmh"] == pytest.approx(kmh(2 * 0.8 * 260))


def test_circling_a_block_is_found() -> None:
    # A block 40 m a side (6 m streets) with a 30 m spur east of its south-east corner.
    # The fastest approach to the spur's end circles the block: at every corner the speed
    # is capped (R = min(racing 20.5, legs 20/tan45°) = 20 m), and the straight after it
    # accelerates again; so the vehicle enters the south street at the corner cap, then
    # 40 m + 30 m straight on. The traced walk runs round the block (a loop).
    block = [(0, 0), (40, 0), (40, 40), (0, 40), (0, 0)]
    s = streets([block[i : i + 2] for i in range(4)] + [[(40, 0), (70, 0)]])
    net = street_network(s, crs=CRS)
    out = run(net, target(net, (40, 0), (70, 0), 30.0))
    cap = MU * G * 20.0
    assert float(turn_radius(math.pi / 2, 6.0, 20.0)) == pytest.approx(20.0)
    for code, a in (("M1", 3.0), ("N3", 0.8)):
        row = out.loc[f"sq#1|{code}"]
        assert row.speed_kmh == pytest.approx(kmh(cap + 2 * a * 70))
        assert row.speed_kmh > kmh(2 * a * 70)  # more than a straight run from (0, 0)
        assert row.run_up_m == pytest.approx((cap + 2 * a * 70) / (2 * a))
    path = out.to_crs(CRS).geometry["sq#1|N3"]
    assert path.length == pytest.approx(out.loc["sq#1|N3", "run_up_m"])
    assert path.length > 160  # more than one lap of the block


def test_turn_radius_closed_forms() -> None:
    w = 6.0
    # U-turn: a circle of diameter w
    assert turn_radius(math.pi, w, 100.0) == pytest.approx(w / 2)
    # long legs: racing line w / (1 - cos(Δ/2))
    assert turn_radius(math.pi / 3, w, 1e6) == pytest.approx(w / (1 - math.cos(math.pi / 6)))
    # a circle of radius 30 digitised with 3 m chords on a 2 m lane: leg-limited, gives
    # the radius back (the chord floor 2 / (2 sin(Δ/2)) = 20 m is below it)
    delta = 2 * math.asin(1.5 / 30)
    assert turn_radius(delta, 2.0, 1.5) == pytest.approx(1.5 / math.tan(delta / 2))
    assert turn_radius(delta, 2.0, 1.5) == pytest.approx(30.0, rel=0.01)
    # very short legs fall back to the brief's chord estimate w / (2 sin(Δ/2))
    assert turn_radius(math.pi / 2, w, 0.1) == pytest.approx(w / (2 * math.sin(math.pi / 4)))


def test_friction_is_a_parameter() -> None:
    pts = [(0, 0), (40, 0), (40, 60)]
    net = street_network(streets([pts], width=4.0), crs=CRS)
    tgt = target(net, (0, 0), (40, 60), 100.0)
    radius = 4.0 / (1 - math.cos(math.pi / 4))
    for mu in (0.7, 1.0):
        out = run(net, tgt, friction=mu)
        assert out.loc["sq#1|M1", "speed_kmh"] == pytest.approx(kmh(mu * G * radius + 360))


def test_no_targets_or_no_drivable_target() -> None:
    s = streets([[(0, 0), (50, 0)], [(50, 0), (50, 20)]])
    s.loc["way/2", ["highway", "hostile_vehicle"]] = ["steps", False]
    net = street_network(s, crs=CRS)
    tgt = target(net, (0, 0), (50, 0), 50.0)
    empty = run(net, tgt.iloc[:0])
    assert empty.empty and list(empty.columns) == [*LAYERS["approach"].columns, "geometry"]
    steps = run(net, target(net, (50, 20), (50, 0), 10.0))
    assert steps["speed_kmh"].tolist() == [0.0, 0.0]


def test_bad_targets_are_named() -> None:
    net = street_network(streets([[(0, 0), (50, 0)]]), crs=CRS)
    tgt = target(net, (0, 0), (50, 0), 50.0)
    with pytest.raises(AnalysisError, match=r"sq#1.*edge 7"):
        run(net, tgt.assign(edge=7))
    with pytest.raises(AnalysisError, match=r"sq#1.*at_m=80"):
        run(net, tgt.assign(at_m=80.0))
    with pytest.raises(AnalysisError, match=r"towards='x'"):
        run(net, tgt.assign(towards="x"))
    with pytest.raises(AnalysisError, match="lack column"):
        run(net, tgt.drop(columns="towards"))


# -- real data: Piața Sfatului in the Brașov centre clip (ODbL) -------------------------

SFATULUI = "relation/9620387"


@pytest.fixture(scope="module")
def sfatului(brasov_centre):  # type: ignore[no-untyped-def]
    from geo_protect import get_city
    from geo_protect.analysis.city import network_and_entries
    from geo_protect.cities import Source
    from geo_protect.osm.ingest import ingest_city

    city = get_city("brasov")
    clip = city.model_copy(
        update={"sources": (Source(kind="osm", path=brasov_centre, data_date="2024-08-21"),)}
    )
    data = ingest_city(clip)
    net, spaces, entries = network_and_entries(clip, data)
    assert net is not None
    mine = entries[
        (entries["space_uid"] == SFATULUI) & (entries["entry_class"] == "vehicle_permeable")
    ]
    tgt = pd.DataFrame(mine[["space_uid", "edge", "at_m", "towards", "impact_angle_deg"]])
    out = approach_speeds(net, tgt, spaces=spaces).to_crs(city.crs)
    return out, mine.to_crs(city.crs), spaces.geometry[SFATULUI], net


def test_piata_sfatului_speed_ranges(sfatului) -> None:  # type: ignore[no-untyped-def]
    out, *_ = sfatului
    # Strada Republicii (#4) is an almost straight pedestrian street of ~450 m: every
    # class reaches its top speed there (nominal and high sets), and the N3's
    # required rating is beyond the highest standard test (90 x 1.1 > 80 km/h)
    top = vehicle_classes()["top_speed_kmh"]
    rep = out[out["entry_uid"] == SFATULUI + "#4"].set_index("vehicle")
    for col in ("speed_kmh", "speed_high_kmh"):
        assert rep[col].to_numpy() == pytest.approx(top.reindex(rep.index).to_numpy())
    assert out.loc[f"{SFATULUI}#4|N3", "required_rating"] == "> V/7200[N3C]/80/90"
    republicii = out.geometry[f"{SFATULUI}#4|N3"]
    xy = shapely.get_coordinates(republicii)
    assert np.hypot(*(xy[-1] - xy[0])) == pytest.approx(republicii.length, rel=0.01)  # straight
    # the range brackets the nominal speed; the rating follows the high end
    assert (out["speed_low_kmh"] <= out["speed_kmh"] + 1e-9).all()
    assert (out["speed_kmh"] <= out["speed_high_kmh"] + 1e-9).all()
    assert (out["speed_high_kmh"] > out["speed_low_kmh"] + 1.0).sum() >= len(out) // 2
    want = required_test_speed(out["speed_high_kmh"].to_numpy())
    assert out["test_speed_kmh"].to_numpy() == pytest.approx(want, nan_ok=True)


def test_piata_sfatului_paths_are_consistent(sfatului) -> None:  # type: ignore[no-untyped-def]
    out, entries, square, _net = sfatului
    fleet = vehicle_classes()
    length = out.geometry.length.to_numpy()
    # each path, measured on its drawn geometry, is the run-up; from rest it is exactly
    # as long as straight-line kinematics need, s = q(v) (corners only cost speed that
    # the run-up before them had to supply); from road speed q(v) <= q(v0) + s
    assert length == pytest.approx(out["run_up_m"].to_numpy(), abs=0.01)
    rest = (out["start_speed_kmh"] == 0).to_numpy()
    assert rest.sum() >= 30 and (~rest).sum() >= 1
    for code, rows in out.groupby("vehicle"):
        curve = SpeedCurve.of(fleet.loc[code])
        q = curve.run_up(rows["speed_kmh"].to_numpy() / 3.6)
        q0 = curve.run_up(rows["start_speed_kmh"].to_numpy() / 3.6)
        mine = rows.geometry.length.to_numpy()
        still = (rows["start_speed_kmh"] == 0).to_numpy()
        assert q[still] == pytest.approx(mine[still], abs=1e-3)
        assert (q <= q0 + mine + 1e-6).all()
    # ...ends at its entry, and never runs through the square before it
    ends = shapely.points(np.array([shapely.get_coordinates(g)[-1] for g in out.geometry]))
    at = entries.geometry.reindex(out["entry_uid"]).to_numpy()
    # (entry points closer than entry_merge_m are merged into one at their middle)
    assert shapely.distance(ends, at).max() <= parameter("entry_merge_m")
    inside = shapely.intersection(out.geometry.to_numpy(), square.buffer(-1.0))
    assert shapely.length(inside).max() == pytest.approx(0.0, abs=1e-6)


def test_warm_started_exclusion_equals_a_cold_search(sfatului) -> None:  # type: ignore[no-untyped-def]
    # The own-space redo reuses the global labels whose walks avoid the space; it must
    # give exactly what a search from scratch without the square's edges gives.
    from geo_protect.analysis.approach.geometry import _piece_midpoints, _prepare
    from geo_protect.analysis.approach.search import _restricted, _search, _vehicle_on

    *_, square, net = sfatului
    outline = np.asarray([square.boundary], dtype=object)
    graph = _prepare(net, default_width_m=3.0, outlines=outline)
    # the pieces are cut at the outline: exactly those whose middle is inside are removed
    removed = np.flatnonzero(shapely.contains(square, _piece_midpoints(graph)))
    assert 10 <= len(removed) < len(graph.pieces.edge) // 10
    mattered = 0
    for _, row in parameter_sets()["nominal"].iterrows():
        klass = _vehicle_on(graph, row, gravity=G)
        e_in, ptr = _search(graph, klass, transit=klass.transit)
        warm, _ = _restricted(graph, klass, e_in, ptr, removed)
        transit = klass.transit.copy()
        transit[2 * removed] = transit[2 * removed + 1] = False
        cold, _ = _search(graph, klass, transit=transit)
        assert warm == pytest.approx(cold, abs=1e-6)
        assert (warm <= e_in + 1e-9).all()
        mattered += int((warm < e_in - 1.0).sum())
    assert mattered > 0  # the square mattered somewhere
