"""The offline data added in issue 9 (Larissa, Málaga, Vilnius), checked against the raw files.

Every expected count is made here from the raw file with the ``json``/``csv`` modules and
a hand-written rule (the crowded-place tags of brief §6.2 as listed below, a bbox test),
not through geo_protect's readers or taxonomy; where PROVENANCE.md states a figure, the
raw count is checked against it too.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from geo_protect.cities import City, get_city
from geo_protect.citydata import CityData
from geo_protect.osm.ingest import MISSING_CLASSES, ingest_city
from geo_protect.outputs.maps.context_map import no_spaces_notice, write_context_map
from geo_protect.pipeline.steps import draw_maps
from geo_protect.pipeline.store_io import CityOutcome

#: Crowded-place tags of brief §6.2 (and §6.1 venues), written out by hand for these tests.
CROWDED: dict[str, set[str]] = {
    "amenity": {
        "place_of_worship", "theatre", "cinema", "arts_centre", "library", "concert_hall",
        "nightclub", "bar", "pub", "events_venue", "exhibition_centre", "conference_centre",
        "townhall", "courthouse", "university", "college", "school", "kindergarten",
        "hospital", "clinic", "bus_station", "ferry_terminal",
    },
    "shop": {"mall", "department_store", "supermarket"},
    "leisure": {"stadium", "sports_centre"},
    "tourism": {"museum", "gallery", "attraction", "theme_park", "zoo", "hotel", "hostel",
                "guest_house"},
    "historic": {"monument", "memorial", "castle", "city_gate", "church"},
    "railway": {"station", "subway_entrance"},
    "public_transport": {"station"},
}  # fmt: skip


def _features(path: Path) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["features"]
    return features


def _in_bbox(lon: float, lat: float, city: City) -> bool:
    west, south, east, north = city.bbox
    return west <= lon <= east and south <= lat <= north


def _source_path(city: City, name: str) -> Path:
    return next(city.path(s) for s in city.sources if city.path(s).name == name)


@pytest.fixture(scope="module")
def larissa() -> tuple[City, CityData]:
    city = get_city("larissa")
    return city, ingest_city(city)


def test_larissa_cameras_and_crowded_places_match_the_raw_nodes(
    larissa: tuple[City, CityData],
) -> None:
    city, data = larissa
    raw = _features(_source_path(city, "larissa_osm_poi_nodes_2019.geojson"))
    assert len(raw) == 2390  # PROVENANCE: 2,390 nodes
    pairs = [(f["properties"]["tag_key"], f["properties"]["tag_value"]) for f in raw]
    cameras = {
        f["id"] for f, kv in zip(raw, pairs, strict=True) if kv == ("man_made", "surveillance")
    }
    assert len(cameras) == 221  # PROVENANCE: man_made=surveillance 221
    # The nodes were selected inside the municipal boundary, which is the study area.
    assert set(data["surveillance"].index) == cameras
    crowded = {f["id"] for f, (k, v) in zip(raw, pairs, strict=True) if v in CROWDED.get(k, ())}
    assert set(data["poi"].index) == crowded
    by_tag = Counter(kv for kv in pairs if kv[1] in CROWDED.get(kv[0], ()))
    assert by_tag[("amenity", "bar")] == 27 and by_tag[("amenity", "townhall")] == 1  # PROVENANCE
    # No ways at all: nothing to build streets or spaces from, and the report says so.
    assert data["public_space"].empty and data["street"].empty
    (note,) = data.report.missing
    assert MISSING_CLASSES["public spaces"] in note and MISSING_CLASSES["walk network"] in note
    assert MISSING_CLASSES["POIs"] not in note and MISSING_CLASSES["surveillance"] not in note


def test_vilnius_csv_and_2019_nodes() -> None:
    city = get_city("vilnius")
    data = ingest_city(city)
    path = _source_path(city, "vilnius_pois_hospitality_shops_osm.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8228  # PROVENANCE: 8,228 objects
    assert Counter(r["osm_type"] for r in rows) == {"node": 4057, "way": 3932, "relation": 239}
    inside = [r for r in rows if _in_bbox(float(r["lon"]), float(r["lat"]), city)]
    crowded = {
        f"{r['osm_type']}/{r['osm_id']}"
        for r in inside
        if any(r.get(k, "") in values for k, values in CROWDED.items())
    }
    # The files listed before the CSV win for the same OSM id (first source wins): one
    # museum, node/3629146556, lies outside the Old Town in the 2025 culture file and
    # inside it in the 2026 CSV, so it is not in the study area's POIs.
    earlier = {
        f"{f['properties']['element']}/{f['properties']['id']}"
        for name in ("culture", "health", "education")
        for f in _features(_source_path(city, f"vilnius_{name}_osm_pois.geojson"))
    }
    assert "node/3629146556" in crowded & earlier
    poi = data["poi"]
    from_csv = set(poi.index[(poi["source"] == path.name).to_numpy(dtype=bool)])
    assert from_csv == crowded - earlier and len(from_csv) == 268
    nodes = _features(_source_path(city, "vilnius_osm_poi_nodes_2019.geojson"))
    assert len(nodes) == 6988  # PROVENANCE: 6,988 nodes
    cameras = [
        f
        for f in nodes
        if (f["properties"]["tag_key"], f["properties"]["tag_value"])
        == ("man_made", "surveillance")
    ]
    assert len(cameras) == 7  # PROVENANCE: man_made=surveillance 7
    located = {f["id"] for f in cameras if _in_bbox(*f["geometry"]["coordinates"], city)}
    assert set(data["surveillance"].index) == located


def test_malaga_memorials_are_landmark_pois() -> None:
    city = get_city("malaga")
    data = ingest_city(city)
    raw = _features(_source_path(city, "malaga_osm_memorials.geojson"))
    assert len(raw) == 321  # PROVENANCE: 321 (320 nodes, 1 way)
    assert all("memorial" in f["properties"] for f in raw)
    inside = {f["properties"]["id"] for f in raw if _in_bbox(*f["geometry"]["coordinates"], city)}
    # The drive network file holds no POIs, so the POI layer is the memorials in the area.
    assert set(data["poi"].index) == inside
    assert set(data["poi"]["kind"]) == {"landmark"}
    assert data.report.counts["public_space"] == 0  # still no pedestrian core offline


def test_larissa_map_shows_what_exists_and_says_no_risk(
    larissa: tuple[City, CityData], tmp_path: Path
) -> None:
    city, data = larissa
    path = write_context_map(city, data.layers, tmp_path, assets="inline")
    html = path.read_text(encoding="utf-8")
    notice = (
        "No streets or public spaces are available offline for Larissa, so no risk is computed."
    )
    assert no_spaces_notice(city) == notice and notice in html
    assert len(data["surveillance"]) == 221 and "221 cameras" in html
    assert html.count('"name": "Surveillance"') + html.count("Surveillance") >= 1  # camera layer
    assert "Crowded places (POI)" in html and "Study area (boundary)" in html
    assert "OpenStreetMap contributors" in html and "ODbL" in html


def test_main_job_draws_larissa_and_lists_it_without_risk(
    larissa: tuple[City, CityData], tmp_path: Path
) -> None:
    city, data = larissa
    outcome = CityOutcome(city, data.report, dict(data.layers))
    index = draw_maps({"larissa": outcome}, tmp_path).read_text(encoding="utf-8")
    assert 'href="larissa.html"' in index and "no risk computed" in index
    assert no_spaces_notice(city) in (tmp_path / "larissa.html").read_text(encoding="utf-8")


def test_malaga_map_does_not_deny_its_streets(tmp_path: Path) -> None:
    """Málaga has drivable roads but no public spaces: the notice names only what is missing."""
    city = get_city("malaga")
    html = write_context_map(city, ingest_city(city).layers, tmp_path).read_text(encoding="utf-8")
    assert "No public spaces are available offline for Malaga, so no risk is computed." in html
    assert "No streets" not in html
