"""Ingest orchestration on the real registry and on small cities made from the Brașov clip."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
import shapely

from geo_protect.cities import City, Source, get_city, load_cities
from geo_protect.citydata import CityData
from geo_protect.errors import ConfigError, DataSourceError
from geo_protect.osm.ingest import (
    DROP_DUPLICATE,
    DROP_UNCLASSIFIED,
    MISSING_CLASSES,
    ingest_city,
    missing_notes,
)
from geo_protect.osm.readers import read_source
from geo_protect.osm.readers.osm import DROP_WAY_NODES
from geo_protect.osm.study_area import DROP_OUTSIDE, study_area
from geo_protect.schema import SOURCE_LAYERS, WGS84
from geo_protect.store.base import Store
from geo_protect.store.geopackage import GeoPackageStore
from tests.overpass_server import Extract, OverpassServer, serving

DATA = Path(__file__).resolve().parent.parent / "data"
CLIP = DATA / "osm/brasov/brasov_centre.osm.bz2"
BRASOV_PBF = DATA / "osm/brasov/brasov.osm.pbf"
SFATULUI_BBOX = (25.586, 45.640, 25.592, 45.645)
CENTRE_BBOX = (25.575, 45.633, 25.605, 45.652)  # the box the clip was cut with


def _city(tmp_path: Path, *, bbox: tuple[float, float, float, float], **extra: object) -> City:
    """A Brașov city on the centre clip, in a scratch data folder."""
    fields: dict[str, object] = {
        "slug": "brasov",
        "name": "Brașov",
        "name_en": "Brasov",
        "country": "RO",
        "centre": (45.6427, 25.5887),
        "bbox": bbox,
        "crs": "EPSG:32635",
        "timezone": "Europe/Bucharest",
        "sources": (Source(kind="osm", path=CLIP, data_date="2024-08-21"),),
        "data_dir": tmp_path,
    }
    fields.update(extra)
    return City.model_validate(fields)


def _cut_ways(path: Path, key: str) -> int:
    """Ways tagged ``key`` with a node missing from the file: pyosmium, independently."""
    cut = 0
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if isinstance(obj, osmium.osm.Way) and key in obj.tags:
            cut += not all(n.location.valid() for n in obj.nodes)
    return cut


@pytest.fixture(scope="module")
def brasov() -> tuple[CityData, float]:
    """The registry's Brașov (municipal PBF cut by brasov.poly), ingested once."""
    start = time.perf_counter()
    data = ingest_city(get_city("brasov"))
    return data, time.perf_counter() - start


def test_brasov_municipal(brasov: tuple[CityData, float]) -> None:
    data, seconds = brasov
    report = data.report
    assert data.city == "brasov" and list(data.layers) == list(SOURCE_LAYERS)
    # the report counts what the layers hold, and every layer has data
    assert report.counts == {name: len(layer) for name, layer in data.layers.items()}
    assert all(report.counts.values()), report.counts
    # PROVENANCE (municipality column): entrance=* 1,155 nodes; building=* 29,375 ways,
    # 64 multipolygons, 5 nodes, of which the 60 ways cut at the boundary are dropped (below)
    assert report.counts["entrance"] == 1155
    assert 29_375 - 60 <= report.counts["building"] <= 29_375 - 60 + 64 + 5
    assert report.sources == [("brasov.osm.pbf", "2024-08-21")]
    # PROVENANCE: 171 walkable / 63 drivable ways reference missing nodes (osmnx filters);
    # 180 highway ways of any class do (counted with pyosmium in test_readers_osm.py).
    assert report.dropped[("street", DROP_WAY_NODES)] == 180
    assert report.dropped[("building", DROP_WAY_NODES)] == _cut_ways(BRASOV_PBF, "building")
    assert not any(reason == DROP_OUTSIDE for _, reason in report.dropped)  # cut by the same poly
    assert report.missing == []
    # PROVENANCE: entrance=* 1,155 nodes, barrier=* 405 nodes / 248 ways (one way cut).
    assert report.counts["barrier"] == 405 + 248 - 1
    assert (data["barrier"]["kind"] == "bollard").sum() == 13  # PROVENANCE: 13 in the city
    assert set(
        data["public_space"].loc[data["public_space"]["kind"] == "square", "name"].dropna()
    ) == {
        "Piața Sfatului",
        "Piața Unirii",
    }
    assert seconds < 20  # ~1.7 s here; osm2pgsql loads the same file in ~1 s


def test_study_areas() -> None:
    larissa = study_area(get_city("larissa"))
    # The OSM municipal boundary of Larissa: 335.98 km², the municipality's official area.
    km2 = gpd.GeoSeries([larissa], crs=WGS84).to_crs("EPSG:32634").area.iloc[0] / 1e6
    assert km2 == pytest.approx(335.98, abs=0.01)
    brasov = study_area(get_city("brasov"))
    assert gpd.GeoSeries([brasov], crs=WGS84).to_crs("EPSG:32635").area.iloc[0] / 1e6 == (
        pytest.approx(169.363, abs=0.001)  # brasov.poly (the cut polygon) within the bbox
    )
    eindhoven = get_city("eindhoven")  # no boundary: the bbox
    assert study_area(eindhoven).equals(shapely.box(*eindhoven.bbox))


def test_poly_with_hole_and_bad_boundaries(tmp_path: Path) -> None:
    poly = tmp_path / "area.poly"
    poly.write_text(
        "area\nouter\n  25.58 45.64\n  25.60 45.64\n  25.60 45.65\n  25.58 45.65\nEND\n"
        "!hole\n  25.585 45.642\n  25.59 45.642\n  25.59 45.645\n  25.585 45.645\nEND\nEND\n"
    )
    city = _city(tmp_path, bbox=CENTRE_BBOX, boundary=poly)
    assert study_area(city).area == pytest.approx(0.02 * 0.01 - 0.005 * 0.003)
    poly.write_text("area\nouter\n  25.58 45.64\n  oops\nEND\nEND\n")
    with pytest.raises(DataSourceError, match=r"area\.poly, line 4: expected 'lon lat'"):
        study_area(city)
    far = tmp_path / "far.geojson"
    far.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {},
                "geometry": shapely.geometry.mapping(shapely.box(0, 0, 1, 1)),
            }
        )
    )
    with pytest.raises(ConfigError, match=r"boundary far\.geojson does not overlap the bbox"):
        study_area(_city(tmp_path, bbox=CENTRE_BBOX, boundary=far))
    with pytest.raises(DataSourceError, match=r"none\.poly: boundary file not found"):
        study_area(_city(tmp_path, bbox=CENTRE_BBOX, boundary=tmp_path / "none.poly"))


def test_empty_bbox_is_a_config_error(tmp_path: Path) -> None:
    registry = (DATA / "cities.toml").read_text(encoding="utf-8")
    (tmp_path / "cities.toml").write_text(
        registry.replace(
            "bbox = [5.4689, 51.4296, 5.4866, 51.4438]", "bbox = [5.48, 51.43, 5.48, 51.44]"
        )
    )
    with pytest.raises(ConfigError, match=r"city 'eindhoven': bbox: .*is empty"):
        load_cities(tmp_path)
    # A City built without validation still cannot be ingested with an empty bbox.
    city = _city(tmp_path, bbox=CENTRE_BBOX).model_copy(update={"bbox": (25.6, 45.6, 25.6, 45.7)})
    with pytest.raises(
        ConfigError, match=r"city 'brasov': bbox \[25\.6, 45\.6, 25\.6, 45\.7\] is empty"
    ):
        ingest_city(city)


def test_clip_to_a_small_study_area_and_duplicates(tmp_path: Path) -> None:
    twice = (Source(kind="osm", path=CLIP), Source(kind="osm", path=CLIP))
    city = _city(tmp_path, bbox=SFATULUI_BBOX, sources=twice)
    messages: list[str] = []
    data = ingest_city(city, progress=messages.append)
    assert messages[:2] == ["reading brasov_centre.osm.bz2", "reading brasov_centre.osm.bz2"]
    report = data.report
    # the second copy, whole: every element of one read of the clip
    once, _ = read_source(CLIP, Source(kind="osm", path=CLIP))
    assert report.dropped[("elements", DROP_DUPLICATE)] == len(once)
    area = shapely.box(*SFATULUI_BBOX)
    for name, layer in data.layers.items():
        assert shapely.intersects(layer.geometry.to_numpy(), area).all(), name
        assert report.counts[name] == len(layer)
    # PROVENANCE (centre clip column): building=* 4,560 ways + 25 multipolygons
    assert report.counts["building"] + report.dropped[("building", DROP_OUTSIDE)] == 4560 + 25
    spaces = data["public_space"]
    assert {"relation/9620387", "way/313945482"} <= set(spaces.index)  # Sfatului, Republicii
    assert report.missing == [
        "Brasov: no surveillance cameras locally — run `geo-protect ingest brasov --source "
        "overpass` with network, or place an extract in data/osm/brasov/ and list it in "
        "data/cities.toml"
    ]


def test_register_overrides_and_adds(tmp_path: Path) -> None:
    city = _city(tmp_path, bbox=SFATULUI_BBOX)
    square = shapely.box(25.5885, 45.6418, 25.5895, 45.6426)
    market = shapely.box(25.5870, 45.6430, 25.5875, 45.6434)
    features = [
        {
            "type": "Feature",
            "properties": {
                "id": "sfatului",
                "name": "Piața Sfatului (register)",
                "kind": "square",
                "osm_type": "relation",
                "osm_id": 9620387,
            },
            "geometry": shapely.geometry.mapping(square),
        },
        {
            "type": "Feature",
            "properties": {"id": "xmas-market", "name": "Christmas market"},
            "geometry": shapely.geometry.mapping(market),
        },
    ]
    path = tmp_path / "spaces.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    plain = ingest_city(city)["public_space"]
    data = ingest_city(city, spaces=path)
    spaces = data["public_space"]
    assert spaces.loc["relation/9620387", "name"] == "Piața Sfatului (register)"
    assert spaces.loc["relation/9620387", "source"] == "spaces.geojson"
    assert spaces.loc["register/xmas-market", "kind"] == "register"
    assert len(spaces) == len(plain) + 1
    assert data.report.counts["public_space"] == len(spaces)


def test_missing_notes_for_larissa() -> None:
    """Larissa has OSM nodes only (POIs and cameras): every other class is named as missing."""
    data = ingest_city(get_city("larissa"))
    present = {name for name, layer in data.layers.items() if not layer.empty}
    assert present == {"poi", "surveillance"}
    assert data.report.sources == [("larissa_osm_poi_nodes_2019.geojson", "2019-09-11")]
    (note,) = data.report.missing
    assert note.startswith("Larissa: no public spaces (squares,")
    lacking = {k for k, what in MISSING_CLASSES.items() if what in note}
    assert lacking == set(MISSING_CLASSES) - {"POIs", "surveillance"}
    assert note.endswith(
        "building footprints locally — run `geo-protect ingest larissa --source overpass` "
        "with network, or place an extract in data/osm/larissa/ and list it in data/cities.toml"
    )
    empty = {name: layer.iloc[:0] for name, layer in data.layers.items()}
    (none,) = missing_notes(get_city("larissa"), empty)
    assert all(what in none for what in MISSING_CLASSES.values())
    (online,) = missing_notes(get_city("larissa"), empty, source="overpass")
    assert online.startswith("Larissa: OpenStreetMap has no public spaces") and "--spaces" in online


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ingest source must be 'local' or 'overpass'"):
        ingest_city(_city(tmp_path, bbox=SFATULUI_BBOX), source="ftp")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def overpass() -> Iterator[OverpassServer]:
    with serving(Extract(CLIP)) as server:
        yield server


def test_overpass_source(tmp_path: Path, overpass: OverpassServer) -> None:
    city = _city(tmp_path, bbox=SFATULUI_BBOX)
    local = ingest_city(city)
    online = ingest_city(city, source="overpass", overpass_url=overpass.url, timeout=10)
    assert [name for name, _ in online.report.sources] == ["overpass"]
    spaces = online["public_space"]
    assert spaces.loc["relation/9620387", "kind"] == "square"
    assert spaces.loc["way/313945482", "name"] == "Strada Republicii"
    # The same rules on the same data: the same squares and bollards as from the file.
    for name in ("public_space", "barrier", "entrance"):
        assert set(online[name].index) == set(local[name].index), name


@pytest.mark.parametrize(
    ("slug", "counts", "missing"),
    [
        # osmnx walk graph + Overpass accommodation POIs: no areas, entrances or barriers.
        ("eindhoven", {"public_space": 35, "street": 932, "poi": 18}, 4),  # classes missing
        # Drivable/service roads only (PROVENANCE: the pedestrian core is not in it).
        # + the dcapillae/sigma memorials (tests/test_ingest_new_data.py counts them).
        (
            "malaga",
            {"street": 5386, "entrance": 28, "barrier": 237, "poi": 240, "surveillance": 1},
            2,
        ),
        # GeoJSON layers; POI files cover the whole city, the study area is the Old Town.
        (
            "vilnius",
            {
                "public_space": 18,
                "street": 852,
                "barrier": 5,
                "poi": 514,
                "building": 47,
                "surveillance": 2,
            },
            1,
        ),
    ],
)
def test_registry_cities(slug: str, counts: dict[str, int], missing: int) -> None:
    data = ingest_city(get_city(slug))
    assert {k: v for k, v in data.report.counts.items() if v} == counts
    (note,) = data.report.missing  # one sentence, naming every missing class
    named = [what for what in MISSING_CLASSES.values() if what in note]
    assert len(named) == missing, note
    assert [name for name, _ in data.report.sources] == [
        get_city(slug).path(src).name for src in get_city(slug).sources
    ]
    if slug == "vilnius":  # pharmacies, artworks... are in the POI files but in no layer here
        # at least the 161 amenity=pharmacy of the health file (PROVENANCE), in no layer
        assert data.report.dropped[("poi", DROP_UNCLASSIFIED.format(layer="poi"))] >= 161


@pytest.mark.parametrize("backend", ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def test_stored_layers_are_wgs84(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    centre_data: CityData,
    centre_analysis: dict[str, gpd.GeoDataFrame],
) -> None:
    """Every layer written to a real store reads back in WGS84, one row per uid."""
    store: Store = (
        GeoPackageStore(tmp_path / "store")
        if backend == "gpkg"
        else request.getfixturevalue("postgis_store")
    )
    store.replace_city("brasov", centre_data.layers, centre_data.report)
    store.write_layers("brasov", centre_analysis)
    written = {**centre_data.layers, **centre_analysis}
    assert set(store.layers("brasov")) >= {n for n, layer in written.items() if len(layer)}
    for name in store.layers("brasov"):
        back = store.read_layer("brasov", name)
        assert back.crs is not None and back.crs.equals(WGS84), name
        assert back.index.is_unique, name
        assert len(back) == len(written[name]), name
