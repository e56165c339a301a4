"""VBIED stand-off (issue 9 part 2): reach, hazard distances, people within them, pre-fill.

Every expected value has an independent reason: hand-built geometry with a known distance
or a closed-form circle overlap, the figures printed on the public NCTC chart, and on the
Brașov centre clip a second computation (the distance from the stored point to the space).
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.network import street_network
from geo_protect.analysis.standoff import persons_within, standoff, standoff_chart
from geo_protect.analysis.vehicles import vehicle_classes
from geo_protect.assess.standoff_rules import standoff_consequence, standoff_vulnerability
from geo_protect.schema import LAYERS, WGS84

CRS = "EPSG:32635"
X0, Y0 = 409_000.0, 5_054_000.0

#: The vehicle rows of the NCTC "Bomb Threat Stand-Off Distances" chart as published
#: (nctc.gov/site/technical/bomb_threat.html; odni.gov/nctc): lbs, kg, mandatory ft, m,
#: preferred ft, m -- typed from the chart, not from the table under test.
PUBLISHED = {
    "sedan": (500, 227, 320, 98, 1900, 580),
    "SUV/van": (1000, 454, 400, 122, 2400, 732),
    "small delivery truck": (4000, 1814, 640, 195, 3800, 1159),
    "container/water truck": (10000, 4536, 860, 263, 5100, 1555),
    "semi-trailer": (60000, 27216, 1570, 479, 9300, 2835),
}


def _streets(lines: list[shapely.LineString], **columns: list[object]) -> gpd.GeoDataFrame:
    n = len(lines)
    data: dict[str, list[object]] = {
        "osm_type": ["way"] * n,
        "osm_id": list(range(1, n + 1)),
        "name": [None] * n,
        "kind": ["residential"] * n,
        "tags": ["{}"] * n,
        "source": ["t"] * n,
        "data_date": [None] * n,
        "highway": ["residential"] * n,
        "walk": [True] * n,
        "hostile_vehicle": [True] * n,
        "width_m": [np.nan] * n,
        "lanes": [np.nan] * n,
        "maxspeed_kmh": [np.nan] * n,
    }
    data.update(columns)
    index = [f"way/{i}" for i in range(1, n + 1)]
    return gpd.GeoDataFrame(data, geometry=lines, index=index, crs=CRS)


def _spaces(polys: list[shapely.Polygon]) -> gpd.GeoDataFrame:
    index = pd.Index([f"space/{i}" for i in range(1, len(polys) + 1)], name="uid")
    return gpd.GeoDataFrame(geometry=polys, index=index, crs=CRS)


def _line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in xy])


SQUARE = shapely.box(X0, Y0, X0 + 100, Y0 + 100)


# -- the chart ----------------------------------------------------------------------------


def test_chart_matches_the_published_figures_and_converts_feet_exactly() -> None:
    chart = standoff_chart()
    assert set(chart.index) == set(vehicle_classes(include_all=True).index)
    for vehicle, row in chart.iterrows():
        lbs, kg, m_ft, m_m, p_ft, p_m = PUBLISHED[row["chart_row"]]
        assert (row["explosive_lbs"], row["mandatory_ft"], row["preferred_ft"]) == (
            lbs,
            m_ft,
            p_ft,
        ), vehicle
        # the table's metres are the feet converted (0.3048 m/ft), within the chart's
        # own rounding to whole metres (it prints 263 m for 860 ft = 262.1 m)
        assert row["mandatory_m"] == pytest.approx(round(m_ft * 0.3048, 1), abs=1e-9)
        assert row["preferred_m"] == pytest.approx(round(p_ft * 0.3048, 1), abs=1e-9)
        assert abs(row["mandatory_m"] - m_m) < 1 and abs(row["preferred_m"] - p_m) < 1
        assert row["explosive_kg"] == pytest.approx(round(lbs * 0.45359237, 1), abs=1e-9)
        assert abs(row["explosive_kg"] - kg) <= 0.5  # the chart rounds to whole kg
    # the heavier the class, the larger its charge (M1 < N1G < N1 < N2 < N3)
    assert chart.loc[["M1", "N1G", "N1", "N2", "N3"], "explosive_lbs"].is_monotonic_increasing


# -- reach --------------------------------------------------------------------------------


def test_street_at_a_known_distance_gives_that_distance() -> None:
    net = street_network(_streets([_line((-50, -30), (150, -30))]), crs=CRS)
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1000.0}))
    assert len(layer) == 5 and set(layer["vehicle"]) == {"M1", "N1G", "N1", "N2", "N3"}
    assert (layer["reach"] == "street").all()
    assert layer["closest_m"].to_numpy() == pytest.approx(30.0)
    pts = layer.geometry.to_crs(CRS)
    assert (pts.y - Y0).to_numpy() == pytest.approx(-30.0)  # on the street
    assert ((pts.x >= X0) & (pts.x <= X0 + 100)).all()  # beside the square
    assert list(layer.columns[:-1]) == list(LAYERS["standoff"].columns)
    assert layer.crs == WGS84 and layer.index[0] == "space/1|M1"


def test_a_space_the_street_enters_gives_zero_at_the_centre_of_the_crowd() -> None:
    net = street_network(_streets([_line((50, -40), (50, 140))]), crs=CRS)
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1000.0}))
    assert (layer["reach"] == "inside").all() and (layer["closest_m"] == 0).all()
    pts = layer.geometry.to_crs(CRS)
    # on the street, at the height of the square's representative point (its middle)
    rep = SQUARE.representative_point()
    assert (pts.x - X0).to_numpy() == pytest.approx(50.0)
    assert pts.y.to_numpy() == pytest.approx(rep.y)


def test_barriers_keep_the_vehicle_out_and_parking_is_named() -> None:
    # a street through the square, closed by blocks 10 m outside either side: the part
    # between them is out of reach; the closest point is a block, 10 m from the outline
    street = _streets([_line((50, -60), (50, 160))])
    blocks = gpd.GeoDataFrame(
        {"kind": ["block", "block"], "name": [None, None], "tags": ["{}", "{}"]},
        geometry=[shapely.Point(X0 + 50, Y0 - 10), shapely.Point(X0 + 50, Y0 + 110)],
        index=["node/1", "node/2"],
        crs=CRS,
    )
    net = street_network(street, blocks, crs=CRS)
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1000.0}))
    assert (layer["reach"] == "street").all()
    assert layer["closest_m"].to_numpy() == pytest.approx(10.0, abs=0.01)
    parking = pd.Series({"way/1": True})
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1.0}), parking=parking)
    assert (layer["reach"] == "parking").all()


def test_a_vehicle_wider_than_a_street_stays_off_it() -> None:
    narrow = _line((-50, -10), (150, -10))  # 10 m away, 2.0 m wide
    wide = _line((-50, -50), (150, -50))  # 50 m away, width of its road class
    net = street_network(_streets([narrow, wide], width_m=[2.0, np.nan]), crs=CRS)
    fleet = vehicle_classes(include_all=True).assign(width_m=[1.8, 1.9, 2.0, 2.5, 2.55])
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1.0}), vehicles=fleet)
    closest = layer.set_index("vehicle")["closest_m"]
    assert closest[["M1", "N1G", "N1"]].to_numpy() == pytest.approx(10.0)  # 2.0 m fits
    assert closest[["N2", "N3"]].to_numpy() == pytest.approx(50.0)


def test_no_streets_no_rows() -> None:
    assert standoff(None, _spaces([SQUARE]), pd.Series({"space/1": 1.0})).empty


# -- people within the distances ----------------------------------------------------------


def test_persons_closed_forms() -> None:
    centre = shapely.Point(0, 0)
    # (1) a circle covering a rectangle wholly: all of its people
    rect = shapely.box(10, 10, 40, 30)  # farthest corner sqrt(40² + 30²) = 50 m
    got = persons_within(
        np.array([centre]), np.array([[50.0, 49.0]]), np.array([rect]), np.array([600.0])
    )
    assert got[0, 0] == pytest.approx(600.0)
    assert 0 < got[0, 1] < 600.0  # 1 m short of the corner: a sliver is outside
    # (2) a point on the edge of a large rectangle: half the circle, πr²/2 × density
    big = shapely.box(-1000, 0, 1000, 1000)
    density = 2.0
    got = persons_within(
        np.array([centre]), np.array([[100.0]]), np.array([big]), np.array([density * big.area])
    )
    assert got[0, 0] == pytest.approx(density * math.pi * 100**2 / 2, rel=1e-3)
    # (3) a point in the middle of a strip 2h wide: the circle between y = ±h,
    # 2 (h √(r² − h²) + r² asin(h / r)), from two neighbouring spaces (the strip's halves)
    r, h = 100.0, 30.0
    halves = np.array([shapely.box(-1000, -h, 1000, 0), shapely.box(-1000, 0, 1000, h)])
    people = np.array([1.0, 3.0]) * shapely.area(halves)  # 1 and 3 persons per m²
    got = persons_within(np.array([centre]), np.array([[r]]), halves, people)
    band = 2 * (h * math.sqrt(r**2 - h**2) + r**2 * math.asin(h / r))
    assert got[0, 0] == pytest.approx((1.0 + 3.0) * band / 2, rel=1e-3)
    # unknown capacity counts as nobody; a far space not at all
    far = shapely.box(5000, 5000, 5010, 5010)
    got = persons_within(
        np.array([centre]), np.array([[50.0]]), np.array([rect, far]), np.array([np.nan, 9.0])
    )
    assert got[0, 0] == 0.0


def test_standoff_counts_this_and_neighbouring_spaces() -> None:
    # street 30 m south of the square; a neighbour 10 m east of it. N3's 478.5 m covers
    # both (farthest corner of the neighbour: √(160² + 130²) ≈ 206 m from any street point
    # beside the square), so persons_mandatory = 1000 + 250; M1's 97.5 m cannot reach
    # the square's far corners.
    neighbour = shapely.box(X0 + 110, Y0, X0 + 160, Y0 + 50)
    net = street_network(_streets([_line((-50, -30), (150, -30))]), crs=CRS)
    spaces = _spaces([SQUARE, neighbour])
    layer = standoff(net, spaces, pd.Series({"space/1": 1000.0, "space/2": 250.0}))
    n3 = layer.loc["space/1|N3"]
    assert n3["persons_mandatory"] == pytest.approx(1250.0)
    assert n3["persons_preferred"] == pytest.approx(1250.0)
    assert layer.loc["space/1|M1", "persons_mandatory"] < 1250.0
    assert (layer["persons_preferred"] >= layer["persons_mandatory"] - 1e-9).all()


# -- pre-fill rules -----------------------------------------------------------------------


def _frame(closest: list[float], persons: list[float]) -> pd.DataFrame:
    chart = standoff_chart(["M1", "N3"])
    rows = []
    for i, (c, p) in enumerate(zip(closest, persons, strict=True)):
        for v in ("M1", "N3"):
            rows.append(
                {
                    "space_uid": f"s{i}",
                    "vehicle": v,
                    "reach": "inside" if c == 0 else "street",
                    "closest_m": c,
                    "mandatory_m": chart.loc[v, "mandatory_m"],
                    "persons_mandatory": p if v == "N3" else p / 10,
                    "persons_preferred": p * 2,
                }
            )
    return pd.DataFrame(rows)


def test_vulnerability_bands_the_stand_off_ratio_of_the_worst_class() -> None:
    # N3 (478.5 m) is the worst class at any distance: 0 → 5; 20 m → 0.042 → 4;
    # 100 m → 0.209 → 3; 300 m → 0.627 → 2; 500 m → 1.04 → 1 (beyond the mandatory)
    so = _frame([0, 20, 100, 300, 500], [10, 10, 10, 10, 10])
    v = standoff_vulnerability(so, pd.Index(["s0", "s1", "s2", "s3", "s4", "nobody"]))
    assert v["vulnerability"].tolist()[:5] == [5, 4, 3, 2, 1]
    assert pd.isna(v.loc["nobody", "vulnerability"])  # no reach: left to the assessors
    assert (v["vehicle"].iloc[:5] == "N3").all()
    assert v.loc["s1", "standoff_ratio"] == pytest.approx(20 / 478.5)
    rule = v.loc["s1", "rule"]
    assert "N3" in rule and "60,000 lb" in rule and "20 m from the outline" in rule
    assert "mandatory evacuation 478 m" in rule or "mandatory evacuation 479 m" in rule
    assert "vbied_standoff_ratio" in rule


def test_consequence_bands_the_people_within_the_mandatory_distance() -> None:
    so = _frame([5, 5, 5, 5, 5], [100, 500, 1500, 3000, 40000])
    c = standoff_consequence(so, pd.Index([f"s{i}" for i in range(5)]))
    assert c["consequence"].tolist() == [1, 2, 3, 4, 5]  # tiers 200 / 800 / 2000 / 5000
    assert "~40,000 people" in c.loc["s4", "rule"]


# -- the Brașov centre clip ---------------------------------------------------------------


def test_brasov_centre_vbied_differs_from_ramming_with_its_rule(
    centre_layers: dict[str, gpd.GeoDataFrame], centre_city: object
) -> None:
    layer = centre_layers["standoff"]
    spaces = centre_layers["public_space"]
    assert set(layer["space_uid"]) <= set(spaces.index)
    crs = centre_city.crs  # type: ignore[attr-defined]
    # a second computation of closest_m: distance from the stored point to the space
    pts = layer.geometry.to_crs(crs).to_numpy()
    polys = spaces.geometry.to_crs(crs).reindex(layer["space_uid"].to_numpy()).to_numpy()
    assert shapely.distance(pts, polys) == pytest.approx(layer["closest_m"].to_numpy(), abs=0.01)
    inside = (layer["reach"] == "inside").to_numpy()
    assert inside.any() and (layer["closest_m"].to_numpy()[inside] == 0).all()
    scores = centre_layers["assessment"]
    ram = scores[scores["threat"] == "VEHICLE_RAMMING"].set_index("space_uid")
    vb = scores[scores["threat"] == "VBIED"].set_index("space_uid").reindex(ram.index)
    differ = (ram["vulnerability"] != vb["vulnerability"]) | (
        ram["consequence"] != vb["consequence"]
    )
    assert differ.fillna(True).any()
    rated = vb[vb["vulnerability"].notna()]
    assert len(rated) > 0
    for evidence in rated["evidence"]:
        ev = json.loads(evidence)
        assert "vbied_standoff_ratio" in ev["vulnerability"]["rule"]
        assert "mandatory evacuation" in ev["vulnerability"]["rule"]
        assert "vbied_persons_mandatory" in ev["consequence"]["rule"]


def test_map_draws_the_rings_hidden_by_default() -> None:
    import folium

    from geo_protect.outputs.maps.display import DisplayOptions
    from geo_protect.outputs.maps.standoff_layer import standoff_layer

    net = street_network(_streets([_line((-50, -30), (150, -30))]), crs=CRS)
    layer = standoff(net, _spaces([SQUARE]), pd.Series({"space/1": 1000.0}))
    group = standoff_layer(layer, DisplayOptions(CRS, 1.0, 2.0, 6, 5, 10.0, 20.0))
    assert group is not None
    fmap = folium.Map(location=[45.64, 25.59])
    group.add_to(fmap)
    folium.LayerControl().add_to(fmap)
    html = fmap.get_root().render()
    assert '"VBIED stand-off rings" : ' + group.get_name() in html  # in the layer control
    assert f"{group.get_name()}.addTo({fmap.get_name()})" not in html  # off by default
    # one space: its worst class's two rings (circles around the closest point, radius in
    # metres) and the closest point itself
    assert html.count('"type": "Point"') == 3 and "L.circle(" in html
    worst = layer.sort_values("persons_mandatory").iloc[-1]
    for ring in ("mandatory_m", "preferred_m"):
        assert f'"radius": {float(worst[ring])}' in html


def test_prefill_gives_vbied_its_own_rules() -> None:
    from geo_protect.assess.evidence import prefill
    from tests import assessment_cases as cases

    # way/2 has no vehicle-permeable entry (ramming V 1) but an N3 can stop 10 m away:
    # 10 / 478.5 = 0.021 → V 4; 300 people within 478.5 m → C 2. way/3: no reach.
    so = pd.DataFrame(
        {
            "space_uid": ["way/2", "way/2"],
            "vehicle": ["M1", "N3"],
            "reach": ["street", "street"],
            "closest_m": [10.0, 10.0],
            "mandatory_m": [97.5, 478.5],
            "persons_mandatory": [40.0, 300.0],
            "persons_preferred": [300.0, 900.0],
        }
    )
    draft = prefill(
        cases.spaces(),
        city="brasov",
        crs=cases.CRS,
        space_metric=cases.space_metric(),
        standoff=so,
        reference_version="t",
    )
    ram = draft.site("way/2").scenario("VEHICLE_RAMMING")
    vb = draft.site("way/2").scenario("VBIED")
    assert (ram.vulnerability.value, vb.vulnerability.value) == (1, 4)
    assert vb.consequence.value == 2
    v_ev, c_ev = vb.vulnerability.evidence, vb.consequence.evidence
    assert v_ev is not None and c_ev is not None
    assert v_ev.rule.startswith("an N3 (NCTC semi-trailer, 60,000 lb TNT eq.) can stop 10 m")
    assert v_ev.inputs["closest_m"] == 10.0 and v_ev.inputs["vehicle"] == "N3"
    assert "~300 people" in c_ev.rule and "vbied_persons_mandatory" in c_ev.rule
    assert draft.site("way/3").scenario("VBIED").vulnerability.value is None
