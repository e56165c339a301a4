"""The main job's steps on the real Brașov centre clip, through both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from geopandas.testing import assert_geodataframe_equal

from geo_protect import pipeline
from geo_protect.cities import City, get_city
from geo_protect.citydata import CityData
from geo_protect.errors import MissingDataError
from geo_protect.store.audit import Actor
from geo_protect.store.base import Store
from geo_protect.store.geopackage import GeoPackageStore

SFATULUI = "relation/9620387"  # Piața Sfatului, the square (multipolygon)


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "gpkg":
        return GeoPackageStore(tmp_path / "store")
    result: Store = request.getfixturevalue("postgis_store")
    return result


def test_each_step_round_trips_through_the_store(
    store: Store, centre_city: City, centre_data: CityData
) -> None:
    store.replace_city(centre_city.slug, centre_data.layers, centre_data.report)
    results = pipeline.analyse(store, centre_city)
    assessment, scores = pipeline.assess(store, centre_city, actor=Actor("assessor", None, "test"))

    for name, layer in {**results, "assessment": scores}.items():
        back = store.read_layer(centre_city.slug, name)
        assert_geodataframe_equal(back, layer.sort_index(), check_less_precise=True)
    assert set(store.layers(centre_city.slug)) >= {"entry_point", "approach", "space_metric"}

    # Golden summary numbers (computed by the code on the 2024-08-21 clip, checked by hand:
    # 19 entries around Piața Sfatului, of which the 10 vehicle-permeable ones are the street
    # crossings and frontages; the 9 others are shop doors on the square's outline).
    metric = results["space_metric"].loc[SFATULUI]
    assert metric["n_entries"] == 19
    assert metric["n_vehicle_permeable"] == 10
    # Strada Republicii is straight for ~309 m into the square: a car reaches its 110 km/h cap.
    assert metric["worst_speed_kmh"] == pytest.approx(110.0)
    assert metric["required_rating"].startswith(">")  # beyond the highest standard test speed
    assert scores.loc[f"{SFATULUI}|VEHICLE_RAMMING", "band"] == "very high"
    assert len(assessment.sites) == len(centre_data["public_space"])  # type: ignore[attr-defined]


def test_a_city_without_spaces_cannot_be_analysed_or_assessed(tmp_path: Path) -> None:
    larissa = get_city("larissa")
    store = GeoPackageStore(tmp_path)
    data = pipeline.ingest(store, larissa)
    assert data["public_space"].empty
    with pytest.raises(MissingDataError, match="no analysis stored"):
        pipeline.assess(store, larissa)


def test_maps_and_comparison_say_no_data_for_cities_without_it(
    tmp_path: Path, centre_city: City, centre_data: CityData
) -> None:
    store = GeoPackageStore(tmp_path / "store")
    store.replace_city(centre_city.slug, centre_data.layers, centre_data.report)
    results = pipeline.analyse(store, centre_city, data=centre_data)
    _, scores = pipeline.assess(store, centre_city, data=centre_data)
    larissa = get_city("larissa")
    pipeline.ingest(store, larissa)

    brasov = pipeline.CityOutcome(centre_city, centre_data.report, dict(centre_data.layers))
    brasov.layers.update({**results, "assessment": scores})
    empty = pipeline.CityOutcome(larissa, store.report("larissa"), {})
    index = pipeline.draw_maps({"brasov": brasov, "larissa": empty}, tmp_path / "maps")
    html = index.read_text(encoding="utf-8")
    assert "brasov.html" in html
    assert "no data offline" in html and "Larissa" in html
    assert (tmp_path / "maps" / "brasov.html").stat().st_size > 100_000
    assert not (tmp_path / "maps" / "larissa.html").exists()

    report = pipeline.compare_cities(store, [centre_city, larissa], tmp_path / "comparison")
    text = report.read_text(encoding="utf-8")
    assert "no data" in text.lower()
    assert "Piața Sfatului" in text
    assert "https://" not in text.split("<body", 1)[0]  # nothing loaded from a CDN
