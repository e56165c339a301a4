"""Street network noding and physical blocking, on hand-built geometry with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo_protect.analysis.barriers import clear_gaps
from geo_protect.analysis.network import street_network
from geo_protect.errors import AnalysisError
from tests.builders import barriers, streets

CRS = "EPSG:32635"


def test_ways_split_at_shared_vertices_only() -> None:
    # A T junction (shared vertex at x=50) and a way that crosses without a shared vertex
    # (a bridge): only the shared vertex becomes a junction.
    net = street_network(
        streets(
            [
                shapely.LineString([(0, 0), (50, 0), (100, 0)]),
                shapely.LineString([(50, 0), (50, 80)]),
                shapely.LineString([(75, -20), (75, 20)]),
            ]
        ),
        crs=CRS,
    )
    assert len(net.nodes) == 6
    assert len(net.edges) == 4
    assert sorted(net.edges["length_m"].round(6)) == [40.0, 50.0, 50.0, 80.0]
    junction = net.nodes.index[net.nodes["degree"] == 3]
    assert len(junction) == 1
    assert net.nodes.geometry[junction[0]].distance(shapely.Point(50, 0)) < 1e-6


def test_edges_keep_way_attributes_and_direction() -> None:
    net = street_network(
        streets([shapely.LineString([(0, 0), (30, 0), (30, 40)])], highway="pedestrian"), crs=CRS
    )
    (edge,) = net.edges.itertuples()
    assert edge.length_m == pytest.approx(70.0)
    assert edge.street_uid == "way/0"
    assert edge.width_source == "road_class"
    assert net.nodes.geometry[edge.u].distance(shapely.Point(0, 0)) < 1e-6
    assert net.nodes.geometry[edge.v].distance(shapely.Point(30, 40)) < 1e-6


def test_width_from_mapped_width_then_lanes_then_class() -> None:
    lines = [shapely.LineString([(0, y), (10, y)]) for y in (0, 100, 200)]
    s = streets(lines, highway="residential")
    s["width_m"] = [4.5, np.nan, np.nan]
    s["lanes"] = [np.nan, 3.0, np.nan]
    net = street_network(s, crs=CRS, lane_width_m=3.0)
    assert net.edges["width_m"].tolist() == [4.5, 9.0, 6.0]
    assert net.edges["width_source"].tolist() == ["width", "lanes", "road_class"]


@pytest.mark.parametrize(("spacing", "blocked"), [(1.3, True), (1.7, False)])
def test_bollard_row_closes_a_road_only_when_gaps_are_small(spacing: float, blocked: bool) -> None:
    # A 6 m road; posts of 0.2 m diameter across it every `spacing` m: clear gaps of
    # spacing - 0.2 m between posts, i.e. 1.1 m (closed) or 1.5 m (open to a car).
    road = streets([shapely.LineString([(0, 0), (100, 0)])], width=6.0)
    ys = np.arange(-3 + spacing / 2, 3, spacing)
    net = street_network(road, barriers([shapely.Point(50, y) for y in ys]), crs=CRS)
    gap = net.edges["clear_gap_m"].iloc[0]
    assert gap == pytest.approx(spacing - 0.2, abs=1e-9)
    assert net.edges["blocked_by"].notna().iloc[0] is np.bool_(blocked)
    assert len(net.vehicle_edges) == (0 if blocked else 1)


def test_single_bollard_closes_a_footway_but_not_a_road() -> None:
    post = barriers([shapely.Point(50, 0)])
    footway = street_network(
        streets([shapely.LineString([(0, 0), (100, 0)])], highway="footway"), post, crs=CRS
    )
    road = street_network(
        streets([shapely.LineString([(0, 0), (100, 0)])], highway="residential"), post, crs=CRS
    )
    # footway default 2.5 m: (2.5 - 0.2) / 2 = 1.15 m each side; road 6 m: 2.9 m
    assert footway.edges["clear_gap_m"].iloc[0] == pytest.approx(1.15)
    assert footway.edges["blocked_by"].iloc[0] == "node/0"
    assert road.edges["clear_gap_m"].iloc[0] == pytest.approx(2.9)
    assert road.edges["blocked_by"].isna().iloc[0]


def test_solid_barriers_block_and_gates_do_not() -> None:
    road = streets([shapely.LineString([(0, 0), (100, 0)])])
    assert (
        street_network(road, barriers([shapely.Point(50, 0)], "block"), crs=CRS)
        .edges["blocked_by"]
        .iloc[0]
        == "node/0"
    )
    assert (
        street_network(road, barriers([shapely.Point(50, 0)], "lift_gate"), crs=CRS)
        .edges["blocked_by"]
        .isna()
        .iloc[0]
    )
    wall = barriers([shapely.LineString([(50, -5), (50, 5)])], "wall")
    assert street_network(road, wall, crs=CRS).edges["blocked_by"].iloc[0] == "node/0"


def test_wall_with_a_gate_at_the_crossing_leaves_the_way_open() -> None:
    road = streets([shapely.LineString([(0, 0), (100, 0)])])
    b = barriers([shapely.LineString([(50, -5), (50, 5)]), shapely.Point(50, 0)], "wall")
    b.loc["node/1", "kind"] = "gate"
    assert street_network(road, b, crs=CRS).edges["blocked_by"].isna().iloc[0]


def test_clear_gaps_ignores_posts_far_from_the_street() -> None:
    net = street_network(streets([shapely.LineString([(0, 0), (100, 0)])], width=6.0), crs=CRS)
    far = barriers([shapely.Point(50, 10)]).to_crs(CRS)
    assert clear_gaps(net.edges, far).empty


def test_empty_street_layer_is_a_clear_error() -> None:
    with pytest.raises(AnalysisError, match="no line geometry"):
        street_network(streets([]), crs=CRS)


# -- a bollard gap at the 1.2 m limit: mapping tolerance (closed within 2 cm) ------------


def _row_at(gap: float, shift: float = 0.0) -> list[shapely.Point]:
    """Posts (0.2 m) across a 6 m road at x = 50 with clear gaps of ``gap``; the second
    post moved by ``shift`` across the road (its gaps become gap ± shift)."""
    ys = [-3 + 0.1 + gap + k * (gap + 0.2) for k in range(4)]
    ys = [y for y in ys if y + 0.1 <= 3 + 1e-9]
    ys[1] += shift
    return [shapely.Point(50, y) for y in ys]


@pytest.mark.parametrize(
    ("gap", "shift", "closed"),
    [
        (1.20, 0.0, True),
        (1.20, 0.01, True),  # mapped 1 cm off: widest gap 1.21 m
        (1.20, -0.01, True),
        (1.19, 0.0, True),
        (1.21, 0.0, True),
        (1.30, 0.0, False),
    ],
)
def test_bollard_gap_at_the_limit_is_closed_within_the_mapping_tolerance(
    gap: float, shift: float, closed: bool
) -> None:
    """max_bollard_gap_m = 1.2 m, bollard_gap_mapping_tolerance_m = 0.02 m: a row whose
    widest gap is within 2 cm of the limit closes the road (the old ``gap <= 1.2`` left
    1.21 m and a 1.20 m row mapped 1 cm off open)."""
    road = streets([shapely.LineString([(0, 0), (100, 0)])], width=6.0)
    net = street_network(road, barriers(_row_at(gap, shift)), crs=CRS)
    assert net.edges["clear_gap_m"].iloc[0] == pytest.approx(gap + abs(shift), abs=1e-6)
    assert net.edges["blocked_by"].notna().iloc[0] is np.bool_(closed)
    assert len(net.barriers) == int(closed)
    if closed:
        assert net.barriers["at_m"].iloc[0] == pytest.approx(50.0, abs=1e-6)
        assert net.barriers["reason"].iloc[0] == "posts"


def test_gap_tolerance_is_a_parameter() -> None:
    road = streets([shapely.LineString([(0, 0), (100, 0)])], width=6.0)
    strict = street_network(road, barriers(_row_at(1.21)), crs=CRS, bollard_gap_tolerance_m=0.0)
    assert strict.edges["blocked_by"].isna().iloc[0]


def test_every_closing_barrier_is_kept_with_its_position() -> None:
    """A block at x = 70 and a wall across at x = 20 on one 100 m way: both closures,
    in order along the way; ``blocked_by`` names the one nearest u."""
    road = streets([shapely.LineString([(0, 0), (100, 0)])])
    b = barriers([shapely.Point(70, 0), shapely.LineString([(20, -5), (20, 5)])], "block")
    b.loc["node/1", "kind"] = "wall"
    net = street_network(road, b, crs=CRS)
    assert net.barriers["at_m"].tolist() == pytest.approx([20.0, 70.0], abs=1e-6)
    assert net.barriers["barrier_uid"].tolist() == ["node/1", "node/0"]
    assert net.barriers["reason"].tolist() == ["line", "solid"]
    assert net.edges["blocked_by"].iloc[0] == "node/1"
