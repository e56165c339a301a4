"""Entry points on hand-built geometries (closed-form) and on the real Brașov centre clip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import street_network
from tests.entry_cases import (
    CRS,
    at,
    barriers,
    box,
    layer,
    line,
    spaces,
    streets,
)

# -- hand-built layers (metric CRS near the UTM 35N central meridian) ---------------------


# -- tests -------------------------------------------------------------------------------

SQUARE = spaces(("sq", "square", box(0, 0, 100, 100)))
AREA = spaces(("pa", "pedestrian_area", box(0, 0, 100, 100)))


def _entries(space, *ways, bars=None, **extra):
    net = street_network(streets(*ways, **extra), bars, crs=CRS)
    return entry_points(space, net, barriers=bars)


def test_square_crossed_by_one_road_has_two_entries_facing_inwards():
    e = _entries(SQUARE, ("r", "residential", line((-50, 50), (150, 50))))
    assert len(e) == 2
    west = e[np.isclose(e["at_m"], 50)].iloc[0]
    east = e[np.isclose(e["at_m"], 150)].iloc[0]
    # the road runs west→east (u at x=-50): the west entry is reached driving towards v
    assert west["bearing_deg"] == pytest.approx(90, abs=0.5) and west["towards"] == "v"
    assert east["bearing_deg"] == pytest.approx(270, abs=0.5) and east["towards"] == "u"
    assert set(e["entry_class"]) == {"vehicle_permeable"}
    assert set(e["networks"]) == {"walk+vehicle"}
    assert e["impact_angle_deg"].tolist() == [90.0, 90.0]
    assert e["width_m"].tolist() == [6.0, 6.0] and set(e["width_source"]) == {"road_class"}
    assert list(e.index) == ["sq#1", "sq#2"] and e.crs.to_epsg() == 4326


def test_road_ending_on_a_pedestrian_area_outline_is_one_entry():
    e = _entries(AREA, ("r", "residential", line((50, -60), (50, 0))))
    assert len(e) == 1
    row = e.iloc[0]
    assert row["kind"] == "crossing" and row["entry_class"] == "vehicle_permeable"
    assert row["bearing_deg"] == pytest.approx(0, abs=0.5)
    assert (row["at_m"], row["towards"]) == (pytest.approx(60), "v")
    # its position is the end of the road, on the outline
    assert shapely.Point(*at(50, 0)).distance(e.to_crs(CRS).geometry.iloc[0]) < 0.01


def test_ways_meeting_at_one_point_of_the_outline_are_one_entry():
    e = _entries(
        AREA,
        ("r", "residential", line((50, -60), (50, 0))),
        ("f", "footway", line((20, -40), (50, 0))),
        f={"width_m": 1.5, "hostile_vehicle": False},
    )
    assert len(e) == 1 and e["networks"].iloc[0] == "walk+vehicle"


def _bollard_row(gap: float) -> list[tuple[str, str, shapely.Point]]:
    """Posts 0.2 m wide across a 6 m road at y = -1 leaving clear gaps of ``gap`` metres."""
    xs, x = [], 47 + gap + 0.1
    while x < 53:
        xs.append(x)
        x += gap + 0.2
    return [(f"b{i}", "bollard", shapely.Point(*at(px, -1))) for i, px in enumerate(xs)]


@pytest.mark.parametrize(("gap", "klass"), [(1.1, "blocked"), (1.5, "vehicle_permeable")])
def test_bollard_row_closes_the_entry_only_below_the_max_gap(gap, klass):
    bars = barriers(*_bollard_row(gap))
    e = _entries(AREA, ("r", "residential", line((50, -60), (50, 0))), bars=bars)
    assert len(e) == 1
    row = e.iloc[0]
    assert row["entry_class"] == klass
    assert row["width_source"] == "bollard_spacing" and row["width_m"] == pytest.approx(
        gap, abs=0.01
    )
    assert pd.notna(row["edge"]) == (klass == "vehicle_permeable")


def test_footway_only_crossing_is_pedestrian_only():
    e = _entries(
        AREA,
        ("f", "footway", line((50, -60), (50, 50))),
        f={"width_m": 1.5, "hostile_vehicle": False},
    )
    assert len(e) == 1
    assert (e["entry_class"].iloc[0], e["networks"].iloc[0]) == ("pedestrian_only", "walk")
    assert e["edge"].isna().all() and e["width_m"].iloc[0] == 1.5


def test_space_with_no_entries_gives_no_rows():
    e = _entries(AREA, ("r", "residential", line((-50, -60), (200, -60))))
    assert e.empty and list(e.columns)[:3] == ["space_uid", "kind", "networks"]


def test_road_along_the_outline_is_a_frontage_breach_unless_a_wall_shields_it():
    road = ("r", "residential", line((-50, -3), (200, -3)))
    open_ = _entries(AREA, road)
    assert open_["kind"].tolist() == ["frontage"]
    # the south side (100 m) plus 3 m... of each side within the 5 m offset of the road
    assert open_["width_m"].iloc[0] == pytest.approx(104.0)
    assert open_["entry_class"].iloc[0] == "vehicle_permeable"
    assert open_["bearing_deg"].iloc[0] == pytest.approx(0, abs=0.5)
    wall = barriers(("w", "wall", line((-10, -1.5), (110, -1.5))))
    assert _entries(AREA, road, bars=wall).empty


def test_pedestrian_street_counts_open_ends_and_side_junctions():
    corridor = spaces(("c", "pedestrian_street", shapely.buffer(line((0, 0), (200, 0)), 5)))
    e = _entries(
        corridor,
        ("p", "pedestrian", line((0, 0), (200, 0))),
        ("a", "residential", line((-100, 0), (0, 0))),
        ("b", "residential", line((100, -50), (100, 0), (100, 50))),
        ("z", "residential", line((200, 0), (300, 0))),
    )
    assert sorted(e["kind"]) == ["junction", "junction", "street_end", "street_end"]
    ends = e[e["kind"] == "street_end"].sort_values("bearing_deg")["bearing_deg"].tolist()
    assert ends == [pytest.approx(90, abs=0.5), pytest.approx(270, abs=0.5)]


def test_mapped_entrance_on_the_outline_is_an_entry():
    ent = layer("entrance", [{"uid": "n1", "kind": "main"}], [shapely.Point(*at(0, 40))])
    net = street_network(streets(("r", "residential", line((-50, -60), (200, -60)))), crs=CRS)
    e = entry_points(AREA, net, entrances=ent)
    assert e["kind"].tolist() == ["entrance"] and e["entry_class"].tolist() == ["pedestrian_only"]
    assert e["width_m"].tolist() == [1.05]  # Purple Guide minimum exit width, the default
    assert e["bearing_deg"].iloc[0] == pytest.approx(
        90, abs=0.5
    )  # into the space from its west side


# -- real data: the Brașov centre clip (ODbL) -------------------------------------------


@pytest.fixture(scope="module")
def brasov_clip(brasov_centre):
    from geo_protect import get_city
    from geo_protect.cities import Source
    from geo_protect.osm.ingest import ingest_city

    city = get_city("brasov")
    clip = city.model_copy(
        update={"sources": (Source(kind="osm", path=brasov_centre, data_date="2024-08-21"),)}
    )
    return city, ingest_city(clip)


def test_piata_sfatului_entries_and_capacity_golden(brasov_clip):
    from geo_protect.analysis.crowd import capacity

    city, data = brasov_clip
    net = street_network(data["street"], data["barrier"], crs=city.crs)
    e = entry_points(
        data["public_space"],
        net,
        entrances=data["entrance"],
        barriers=data["barrier"],
        buildings=data["building"],
        crs=city.crs,
    )
    sfatului = "relation/9620387"  # the square's multipolygon (the Council House is its hole)
    mine = e[e["space_uid"] == sfatului]
    # 8 streets reach the outline (Honterus, Republicii, Hirscher, Enescu... all open to
    # vehicles in OSM: no mapped bollard rows), 2 open frontages along the service road,
    # 9 mapped doors on the façade line: pedestrian only.
    assert mine["kind"].value_counts().to_dict() == {"entrance": 9, "crossing": 8, "frontage": 2}
    assert mine["entry_class"].value_counts().to_dict() == {
        "vehicle_permeable": 10,
        "pedestrian_only": 9,
    }
    cap = capacity(
        data["public_space"].loc[[sfatului]], e, buildings=data["building"], crs=city.crs
    )
    row = cap.loc[sfatului]
    # ≈ 1.06 ha (the square is about 100 m × 110 m without the Council House): event
    # capacity at 2 p/m² ≈ 21,000, well under its egress capacity (≈ 91 m of exits × 82 × 8)
    assert row["usable_area_m2"] == pytest.approx(10_620.4, abs=1)
    assert row["capacity_persons"] == pytest.approx(21_240.8, abs=2)
    assert row["capacity_egress"] == pytest.approx(59_566.5, abs=5)
    assert row["limited_by"] == "density" and row["los"] == "D"


def test_every_barrier_on_the_way_counts_wherever_it_stands():
    """A road runs 60 m north into the pedestrian area (outline at y = 0) and on to
    y = 50. A bollard row (1.1 m gaps) closes it outside at y = -1, a block stands on it
    inside at y = 30. The old code kept one barrier per edge (the block: solid points
    were read first), found it inside the area, beyond the 3 m tolerance, and called
    the entry vehicle-permeable: the approach then ran through the bollards."""
    row = _bollard_row(1.1)
    bars = barriers(*row, ("blk", "block", shapely.Point(*at(50, 30))))
    e = _entries(AREA, ("r", "residential", line((50, -60), (50, 50))), bars=bars)
    assert len(e) == 1
    assert e["entry_class"].iloc[0] == "blocked"
    assert e["edge"].isna().all()
    # the block alone, 30 m inside, leaves the entry open
    alone = _entries(
        AREA,
        ("r", "residential", line((50, -60), (50, 50))),
        bars=barriers(("blk", "block", shapely.Point(*at(50, 30)))),
    )
    assert alone["entry_class"].tolist() == ["vehicle_permeable"]
