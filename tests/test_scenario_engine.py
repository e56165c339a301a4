"""Barrier scenarios applied to the Brașov centre clip (real OSM data, ODbL)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import ValidationError
from geo_protect.reference import parameter
from geo_protect.scenario.engine import apply_scenario, edited_data
from geo_protect.scenario.model import BarrierEdit
from tests.builders import line_across

SFATULUI = "relation/9620387"
REPUBLICII = SFATULUI + "#4"  # Strada Republicii meets the square: its fastest entry


@pytest.fixture(scope="module")
def baseline(centre_layers: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    return {k: centre_layers[k] for k in ("entry_point", "assessment", "approach")}


@pytest.mark.parametrize(("spacing", "closes"), [(1.3, True), (1.6, False)])
def test_a_bollard_row_closes_the_entry_only_if_its_gaps_are_within_the_limit(
    centre_city: City,
    centre_data: CityData,
    baseline: dict[str, gpd.GeoDataFrame],
    spacing: float,
    closes: bool,
) -> None:
    entry = baseline["entry_point"].loc[REPUBLICII]
    assert entry["entry_class"] == "vehicle_permeable"
    width = float(entry["width_m"])
    line = line_across(entry, centre_city.crs, back_m=1.0, length_m=width + 6.0)
    edit = BarrierEdit(kind="bollard_row", geometry=line, spacing_m=spacing)
    result = apply_scenario(centre_city, centre_data, [edit], baseline=baseline)
    # clear gap = spacing - post diameter: 1.1 m closes (<= 1.2 m), 1.4 m does not
    gap = spacing - parameter("bollard_diameter_m")
    assert (gap <= parameter("max_bollard_gap_m")) is closes
    changed = result.entries
    # the check per street the row crosses says the same as the re-analysis
    assert bool(result.checks["closes"].any()) == closes
    if closes:
        assert changed.loc[REPUBLICII, "entry_class_after"] == "blocked"
        assert SFATULUI in result.affected_spaces
    else:
        assert REPUBLICII not in changed.index
    # the posts stand spacing apart along the drawn line
    posts = result.barriers.to_crs(centre_city.crs).geometry.iloc[0]
    steps = np.hypot(*np.diff(shapely.get_coordinates(posts), axis=0).T)
    assert steps == pytest.approx(spacing, abs=1e-6)


def centre_layers_speed(baseline: dict[str, gpd.GeoDataFrame], entry: str) -> float:
    """The car's baseline speed at an entry."""
    return float(baseline["approach"].loc[f"{entry}|M1", "speed_kmh"])


def test_removing_a_barrier_the_city_lacks_is_refused(
    centre_city: City, centre_data: CityData
) -> None:
    with pytest.raises(ValidationError, match="no barrier 'node/1'"):
        edited_data(centre_city, centre_data, [BarrierEdit(action="remove", osm_id="node/1")])


def test_an_unrated_gate_stops_nothing_a_rated_one_closes(
    centre_city: City, centre_data: CityData, baseline: dict[str, gpd.GeoDataFrame]
) -> None:
    entry = baseline["entry_point"].loc[REPUBLICII]
    line = line_across(entry, centre_city.crs, back_m=1.0, length_m=float(entry["width_m"]) + 6.0)
    plain = apply_scenario(
        centre_city, centre_data, [BarrierEdit(kind="gate", geometry=line)], baseline=baseline
    )
    assert REPUBLICII not in plain.entries.index
    rated = BarrierEdit(kind="gate", geometry=line, rating="V/7200[N3C]/80/90:0.8")
    closed = apply_scenario(centre_city, centre_data, [rated], baseline=baseline)
    assert closed.entries.loc[REPUBLICII, "entry_class_after"] == "blocked"
    # 1 m before the entry a vehicle is as fast as at the entry: the car at its 110 km/h
    # top speed on the straight Strada Republicii; 110 x 1.1 is beyond the 80 km/h the
    # gate is rated for, while its 7,200 kg covers the car's 1,500 kg
    checks = closed.checks[closed.checks["closes"]].groupby("vehicle")
    car = checks.get_group("M1")
    approach = centre_layers_speed(baseline, REPUBLICII)
    assert car["speed_kmh"].max() == pytest.approx(approach, abs=1.0)
    assert not car["covers"].any()
    assert plain.checks["covers"].isna().all()  # no rating, nothing to cover
    # the baseline layers are not changed by a scenario
    assert baseline["entry_point"].loc[REPUBLICII, "entry_class"] == "vehicle_permeable"
    assert "plan/1" not in centre_data["barrier"].index


def test_an_edit_changes_nothing_beyond_the_longest_run_up(
    centre_city: City, centre_data: CityData, baseline: dict[str, gpd.GeoDataFrame]
) -> None:
    # a block on a street of the old town: a space whose every entry is farther than any
    # class's longest run-up (to its top speed from rest, in the slowest set) keeps its
    # entries; this also pins the analysis to the geometry, not to the order of its inputs
    from geo_protect.analysis.vehicles import SpeedCurve, parameter_sets

    reach = max(
        float(SpeedCurve.of(row).run_up(float(row["top_speed_kmh"]) / 3.6))
        for fleet in parameter_sets().values()
        for _, row in fleet.iterrows()
    )
    entry = baseline["entry_point"].loc[REPUBLICII]
    line = line_across(entry, centre_city.crs, back_m=40.0, length_m=float(entry["width_m"]) + 6.0)
    block = BarrierEdit(kind="wall", geometry=line)
    result = apply_scenario(centre_city, centre_data, [block], baseline=baseline)
    assert len(result.entries) > 0  # the wall does cut Strada Republicii
    entries = baseline["entry_point"].to_crs(centre_city.crs)
    far = entries.distance(gpd.GeoSeries([line], crs="EPSG:4326").to_crs(centre_city.crs).iloc[0])
    far_spaces = set(entries.loc[far > reach, "space_uid"]) - set(
        entries.loc[far <= reach, "space_uid"]
    )
    assert far_spaces  # the clip reaches beyond the run-up
    assert not far_spaces & set(result.entries["space_uid"])
