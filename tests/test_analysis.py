"""analyse_city on hand-built cities: layers, counts, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo_protect import get_city
from geo_protect.analysis.city import analyse_city, space_metrics, worst_per_entry
from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import street_network
from geo_protect.citydata import CityData
from geo_protect.errors import MissingDataError
from geo_protect.reference import version
from tests.entry_cases import CRS, box, layer, line, spaces, streets

CITY = get_city("brasov")  # EPSG:32635, the CRS of the hand-built layers
SQUARE = spaces(("sq", "square", box(0, 0, 40, 100)))
BUILDING = layer("building", [{"uid": "b", "kind": "yes", "levels": np.nan}], [box(0, 0, 20, 40)])


def test_no_spaces_is_a_clear_error():
    with pytest.raises(MissingDataError, match="brasov: no public spaces"):
        analyse_city(CITY, CityData(city="brasov", layers={}))


def test_city_without_streets_gets_density_capacity_and_a_note():
    data = CityData(city="brasov", layers={"public_space": SQUARE, "building": BUILDING})
    out = analyse_city(CITY, data)
    assert out["entry_point"].empty and out["approach"].empty
    m = out["space_metric"].loc["sq"]
    assert m["capacity_persons"] == pytest.approx(3_200 * 2.0)  # event profile, 2 p/m²
    assert m["capacity_ordinary"] == pytest.approx(3_200 * 0.45)
    assert m["capacity_peak"] == pytest.approx(3_200 * 0.7)
    assert np.isnan(m["capacity_egress"]) and m["limited_by"] == "density"
    assert m["n_entries"] == 0 and "no street data" in m["note"]
    assert m["reference_version"] == version()


def test_space_metric_counts_and_worst_entry():
    # a road through the square (2 open entries) and a footway (1 pedestrian entry)
    st = streets(
        ("r", "residential", line((-50, 50), (90, 50))),
        ("f", "footway", line((20, -30), (20, 20))),
        f={"width_m": 1.5, "hostile_vehicle": False},
    )
    net = street_network(st, crs=CRS)
    e = entry_points(SQUARE, net)
    assert e["entry_class"].value_counts().to_dict() == {
        "vehicle_permeable": 2,
        "pedestrian_only": 1,
    }
    open_ = e.index[e["entry_class"] == "vehicle_permeable"]
    approach = pd.DataFrame(
        {
            "entry_uid": [open_[0], open_[0], open_[1]],
            "vehicle": ["M1", "N3", "M1"],
            "speed_kmh": [52.0, 35.0, 31.0],
            "energy_kj": [156.5, 340.3, 55.6],
            "required_rating": ["V/1500[M1]/64/90", "V/7200[N3C]/48/90", "V/1500[M1]/32/90"],
        }
    )
    e = worst_per_entry(e, approach)
    assert e.loc[open_[0], ["worst_speed_kmh", "worst_vehicle"]].tolist() == [52.0, "M1"]
    m = space_metrics(SQUARE.to_crs(CRS), e, buildings=BUILDING).loc["sq"]
    assert (m["n_entries"], m["n_vehicle_permeable"], m["n_pedestrian_only"], m["n_blocked"]) == (
        3,
        2,
        1,
        0,
    )
    assert (m["n_entries_over_30"], m["n_entries_over_48"]) == (2, 1)
    assert m["worst_entry_uid"] == open_[0] and m["required_rating"] == "V/1500[M1]/64/90"
    # exits: 6 m + 6 m + 1.5 m, the largest discounted → 7.5 m × 82 × 8 = 4,920 < 6,400
    assert m["capacity_egress"] == pytest.approx(7.5 * 82 * 8)
    assert m["limited_by"] == "egress" and m["note"] == ""


def test_space_without_entries_keeps_density_capacity():
    st = streets(("r", "residential", line((-50, -60), (200, -60))))
    e = entry_points(SQUARE, street_network(st, crs=CRS))
    m = space_metrics(SQUARE.to_crs(CRS), e).loc["sq"]
    assert m["n_entries"] == 0 and m["capacity_persons"] == pytest.approx(8_000)
    assert m["note"].startswith("no entries found")
