"""The storage contract (geo_protect.store.base.Store), run against both backends.

The layers are small hand-built features with real-looking values around Piața Sfatului
in Brașov; they are test data, not real OSM data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geo_protect.citydata import IngestReport
from geo_protect.errors import StoreError, UnknownCityError, ValidationError
from geo_protect.schema import (
    LAYERS,
    PROVENANCE_COLUMNS,
    SOURCE_LAYERS,
    WGS84,
    conform,
    empty_layer,
    tags_of,
)
from geo_protect.store import GeoPackageStore, PostGISStore
from geo_protect.store.base import Store as StoreProtocol

Store = GeoPackageStore | PostGISStore
BACKENDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A factory of store handles on one (empty) store: each call is a new connection."""
    opened: list[Store] = []
    if request.param == "gpkg":

        def make() -> Store:
            opened.append(GeoPackageStore(tmp_path / "store", reference_version="test"))
            return opened[-1]
    else:
        first = request.getfixturevalue("postgis_store")  # empties the database
        url = request.getfixturevalue("postgis_url")
        opened.append(first)

        def make() -> Store:
            opened.append(PostGISStore(url, reference_version="test"))
            return opened[-1]

    request.addfinalizer(lambda: [s.close() for s in opened])
    return make


@pytest.fixture
def store(backend: Callable[[], Store]) -> Store:
    return backend()


def _frame(layer: str, rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    columns = LAYERS[layer].columns
    data = {c: [r.get(c) for r in rows] for c in columns}
    index = pd.Index([r["uid"] for r in rows], name="uid")
    return conform(layer, gpd.GeoDataFrame(data, geometry=geoms, index=index, crs=WGS84))


def _prov(
    uid: str, name: str | None, kind: str, tags: dict[str, str] | None, **extra: Any
) -> dict[str, Any]:
    osm_type, _, osm_id = uid.partition("/")
    return {
        "uid": uid,
        "osm_type": osm_type if osm_type in ("node", "way", "relation") else None,
        "osm_id": int(osm_id) if osm_id.isdigit() else None,
        "name": name,
        "kind": kind,
        "tags": tags,
        "source": "hand-built test data",
        "data_date": "2024-08-21",
        **extra,
    }


SQUARE = shapely.Polygon(
    [(25.5880, 45.6420), (25.5895, 45.6420), (25.5895, 45.6432), (25.5880, 45.6432)]
)
HOLE = shapely.Polygon(
    [(25.5880, 45.6420), (25.5895, 45.6420), (25.5895, 45.6432), (25.5880, 45.6432)],
    holes=[[(25.5885, 45.6424), (25.5889, 45.6424), (25.5889, 45.6428), (25.5885, 45.6428)]],
)


def source_layers(suffix: str = "") -> dict[str, gpd.GeoDataFrame]:
    """One small layer per source layer (``suffix`` makes the uids of a second version)."""
    sfatului = {"place": "square", "name": "Piața Sfatului", "name:de": "Marktplatz"}
    layers = {
        "public_space": _frame(
            "public_space",
            [
                _prov(f"way/100{suffix}", "Piața Sfatului", "square", sfatului),
                _prov(f"register/market-1{suffix}", "Târgul de Crăciun", "marketplace", None),
            ],
            [SQUARE, shapely.MultiPolygon([HOLE, shapely.box(25.59, 45.64, 25.591, 45.641)])],
        ),
        "street": _frame(
            "street",
            [
                _prov(
                    f"way/200{suffix}",
                    "Strada Republicii",
                    "pedestrian",
                    {"highway": "pedestrian", "name": "Strada Republicii"},
                    highway="pedestrian",
                    walk=True,
                    hostile_vehicle=False,
                    width_m=8.5,
                    lanes=None,
                    maxspeed_kmh=None,
                ),
                _prov(
                    f"way/201{suffix}",
                    None,
                    "primary",
                    {"highway": "primary", "lanes": "2", "maxspeed": "50"},
                    highway="primary",
                    walk=None,
                    hostile_vehicle=True,
                    width_m=None,
                    lanes=2.0,
                    maxspeed_kmh=50.0,
                ),
                _prov(
                    f"way/9876543210{suffix}",
                    "",
                    "service",
                    {},
                    highway="service",
                    walk=False,
                    hostile_vehicle=None,
                    width_m=3.25,
                    lanes=1.0,
                    maxspeed_kmh=20.0,
                ),
            ],
            [
                shapely.LineString([(25.5887, 45.6427), (25.5901, 45.6441)]),
                shapely.LineString([(25.5850, 45.6400), (25.5860, 45.6410), (25.5871, 45.6411)]),
                shapely.LineString([(25.5910, 45.6450), (25.5911, 45.6452)]),
            ],
        ),
        "entrance": _frame(
            "entrance",
            [_prov(f"node/300{suffix}", None, "main", {"entrance": "main"})],
            [shapely.Point(25.58875, 45.64281)],
        ),
        "barrier": _frame(
            "barrier",
            [
                _prov(
                    f"node/400{suffix}", None, "bollard", {"barrier": "bollard"}, maxwidth_m=None
                ),
                _prov(f"way/401{suffix}", "Zidul", "wall", {"barrier": "wall"}, maxwidth_m=1.2),
            ],
            [
                shapely.Point(25.5881, 45.6421),
                shapely.LineString([(25.588, 45.642), (25.589, 45.642)]),
            ],
        ),
        "poi": _frame(
            "poi",
            [
                _prov(
                    f"way/500{suffix}",
                    "Biserica Neagră",
                    "worship",
                    {"amenity": "place_of_worship", "name": "Biserica Neagră"},
                    tag="amenity=place_of_worship",
                    capacity=None,
                ),
                _prov(
                    f"node/501{suffix}",
                    "Teatrul Sică Alexandrescu",
                    "culture",
                    {"amenity": "theatre"},
                    tag="amenity=theatre",
                    capacity=640.0,
                ),
            ],
            [shapely.Point(25.5880, 45.6413), shapely.Point(25.5930, 45.6450)],
        ),
        "building": _frame(
            "building",
            [_prov(f"way/600{suffix}", "Casa Sfatului", "yes", {"building": "yes"}, levels=3.0)],
            [shapely.box(25.5886, 45.6425, 25.5889, 45.6428)],
        ),
        "surveillance": _frame(
            "surveillance",
            [_prov(f"node/700{suffix}", None, "camera", {"surveillance:type": "camera"})],
            [shapely.Point(25.58801, 45.64299)],
        ),
        "landcover": empty_layer("landcover"),
    }
    assert list(layers) == list(SOURCE_LAYERS)
    return layers


REPORT = IngestReport(
    counts={"public_space": 2, "street": 3},
    dropped={("street", "way with nodes outside the extract"): 171, ("poi", "no name"): 2},
    missing=["No surveillance cameras are mapped: survey them or import the city register."],
    sources=[("brasov_centre.osm.bz2", "2024-08-21"), ("overpass", None)],
)


def assert_same_layer(got: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    """Same columns, dtypes, index (as a set, sorted), CRS, values and exact geometry."""
    expected = expected.sort_index()
    assert list(got.columns) == list(expected.columns)
    assert got.index.name == "uid"
    assert str(got.index.dtype) == "string"
    assert got.crs == WGS84
    assert got.geometry.name == "geometry"
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")), pd.DataFrame(expected.drop(columns="geometry"))
    )
    a, b = got.geometry.to_numpy(), expected.geometry.to_numpy()
    assert shapely.equals_exact(a, b, tolerance=0).all()
    assert (shapely.get_type_id(a) == shapely.get_type_id(b)).all()
    if "tags" in expected.columns:
        assert tags_of(got).tolist() == tags_of(expected).tolist()


def test_round_trip_every_source_layer(store: Store) -> None:
    layers = source_layers()
    store.replace_city("brasov", layers, REPORT)
    for name in SOURCE_LAYERS:
        assert_same_layer(store.read_layer("brasov", name), layers[name])
    street = store.read_layer("brasov", "street")
    # NA stays NA, empty text stays empty text, big OSM ids stay exact
    assert street.loc["way/201", "name"] is pd.NA
    assert street.loc["way/9876543210", "name"] == ""
    assert street.loc["way/9876543210", "osm_id"] == 9876543210
    assert street["walk"].isna().sum() == 1 and street["hostile_vehicle"].isna().sum() == 1
    assert street["width_m"].isna().sum() == 1
    space = store.read_layer("brasov", "public_space")
    assert space.loc["register/market-1", "osm_id"] is pd.NA
    assert tags_of(space)["way/100"]["name"] == "Piața Sfatului"
    assert space.loc["register/market-1", "tags"] == "{}"
    assert shapely.get_num_interior_rings(space.geometry["register/market-1"].geoms[0]) == 1
    barrier = store.read_layer("brasov", "barrier")
    assert barrier.geom_type.tolist() == ["Point", "LineString"]
    assert store.layers("brasov") == list(SOURCE_LAYERS)
    assert store.cities() == ["brasov"]


def test_report_and_record_round_trip(store: Store) -> None:
    before = datetime.now(UTC)
    store.replace_city("brasov", source_layers(), REPORT)
    after = datetime.now(UTC)
    assert store.report("brasov") == REPORT
    info = store.info("brasov")
    assert info.slug == "brasov"
    assert info.reference_version == "test"
    assert before <= info.ingested_at <= after
    assert info.layers == list(SOURCE_LAYERS)


def test_empty_layers_round_trip(store: Store) -> None:
    store.replace_city("vilnius", {n: empty_layer(n) for n in SOURCE_LAYERS}, IngestReport())
    for name in SOURCE_LAYERS:
        got = store.read_layer("vilnius", name)
        pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(empty_layer(name)))
        assert got.crs == WGS84 and got.index.name == "uid"
    assert store.layers("vilnius") == list(SOURCE_LAYERS)
    assert store.report("vilnius") == IngestReport()


def test_layer_not_stored_reads_empty(store: Store) -> None:
    store.replace_city("larissa", {"street": source_layers()["street"]}, REPORT)
    assert store.layers("larissa") == ["street"]
    got = store.read_layer("larissa", "poi")
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(empty_layer("poi")))


def test_second_replace_removes_features_of_the_first(store: Store) -> None:
    store.replace_city("brasov", source_layers(), REPORT)
    second = source_layers(suffix="0")
    del second["surveillance"]
    store.replace_city("brasov", second, IngestReport(counts={"street": 3}))
    for name, layer in second.items():
        assert_same_layer(store.read_layer("brasov", name), layer)
    assert store.read_layer("brasov", "street").index.tolist() == [
        "way/2000",
        "way/2010",
        "way/98765432100",
    ]
    assert len(store.read_layer("brasov", "surveillance")) == 0
    assert "surveillance" not in store.layers("brasov")
    assert store.report("brasov") == IngestReport(counts={"street": 3})


def test_write_layers_leaves_the_other_layers(store: Store) -> None:
    layers = source_layers()
    store.replace_city("brasov", {k: v for k, v in layers.items() if k != "surveillance"}, REPORT)
    ingested = store.info("brasov").ingested_at
    new_street = layers["street"].iloc[:1].copy()
    new_street["width_m"] = 9.0
    store.write_layers("brasov", {"street": new_street, "surveillance": layers["surveillance"]})
    assert_same_layer(store.read_layer("brasov", "street"), new_street)
    assert_same_layer(store.read_layer("brasov", "surveillance"), layers["surveillance"])
    for name in ("public_space", "entrance", "barrier", "poi", "building"):
        assert_same_layer(store.read_layer("brasov", name), layers[name])
    assert store.layers("brasov") == list(SOURCE_LAYERS)  # surveillance added, in order
    assert store.report("brasov") == REPORT
    assert store.info("brasov").ingested_at == ingested


def test_two_cities_side_by_side(store: Store) -> None:
    brasov, malaga = source_layers(), source_layers(suffix="9")
    store.replace_city("malaga", malaga, IngestReport(counts={"street": 3}))
    store.replace_city("brasov", brasov, REPORT)
    store.write_layers("brasov", {"street": brasov["street"].iloc[:1]})
    assert store.cities() == ["brasov", "malaga"]
    assert_same_layer(store.read_layer("malaga", "street"), malaga["street"])
    assert_same_layer(store.read_layer("brasov", "street"), brasov["street"].iloc[:1])
    assert_same_layer(store.read_layer("malaga", "poi"), malaga["poi"])
    # the same uid in two cities is two features
    same = source_layers()
    store.replace_city("malaga", same, REPORT)
    assert_same_layer(store.read_layer("malaga", "poi"), same["poi"])
    assert_same_layer(store.read_layer("brasov", "poi"), brasov["poi"])
    assert store.report("malaga") == REPORT


def test_unknown_city(store: Store) -> None:
    assert store.cities() == []
    with pytest.raises(UnknownCityError, match="'eindhoven' is not in the"):
        store.read_layer("eindhoven", "street")
    with pytest.raises(UnknownCityError, match="eindhoven"):
        store.report("eindhoven")
    with pytest.raises(UnknownCityError, match="eindhoven"):
        store.layers("eindhoven")
    with pytest.raises(UnknownCityError, match="ingest it first"):
        store.write_layers("eindhoven", {"street": source_layers()["street"]})
    assert store.cities() == []


def test_bad_names_are_store_errors(store: Store) -> None:
    with pytest.raises(StoreError, match=r"city slug '\.\./etc' is invalid"):
        store.replace_city("../etc", source_layers(), REPORT)
    store.replace_city("brasov", source_layers(), REPORT)
    with pytest.raises(StoreError, match="layer 'heatmap' is not registered"):
        store.read_layer("brasov", "heatmap")
    with pytest.raises(StoreError, match="layer 'heatmap' is not registered"):
        store.write_layers("brasov", {"heatmap": source_layers()["poi"]})
    assert store.cities() == ["brasov"]


class _Interrupting(Mapping[str, gpd.GeoDataFrame]):
    """Layers whose ``bad`` entry, when the store reaches it, first runs ``during``."""

    def __init__(self, layers: dict[str, gpd.GeoDataFrame], bad: str, during: Callable[[], None]):
        self._layers, self._bad, self._during = layers, bad, during

    def __getitem__(self, key: str) -> gpd.GeoDataFrame:
        if key == self._bad:
            self._during()
        return self._layers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)


@pytest.mark.parametrize("operation", ["replace_city", "write_layers"])
def test_failed_write_leaves_the_old_state(backend: Callable[[], Store], operation: str) -> None:
    writer, reader = backend(), backend()
    old = source_layers()
    writer.replace_city("brasov", old, REPORT)
    new = source_layers(suffix="1")
    broken = new["poi"].copy()
    broken.index = pd.Index(["node/1", "node/1"], name="uid")  # fails conform: uid not unique
    new["poi"] = broken
    seen: dict[str, gpd.GeoDataFrame] = {}

    def read_meanwhile() -> None:  # streets already rewritten by the writer, not committed
        seen["street"] = reader.read_layer("brasov", "street")

    layers = _Interrupting(new, "poi", read_meanwhile)
    with pytest.raises(ValidationError, match="uid 'node/1' is not unique"):
        if operation == "replace_city":
            writer.replace_city("brasov", layers, IngestReport())
        else:
            writer.write_layers("brasov", layers)
    assert_same_layer(seen["street"], old["street"])
    for handle in (reader, writer):
        for name in SOURCE_LAYERS:
            assert_same_layer(handle.read_layer("brasov", name), old[name])
        assert handle.report("brasov") == REPORT
    assert writer.cities() == ["brasov"]


def test_failed_first_ingest_leaves_no_city(store: Store) -> None:
    layers = source_layers()
    layers["entrance"] = layers["entrance"].set_crs("EPSG:32635", allow_override=True)
    with pytest.raises(ValidationError, match="CRS must be EPSG:4326"):
        store.replace_city("brasov", layers, REPORT)
    assert store.cities() == []


def test_reads_are_sorted_and_independent_of_write_order(store: Store) -> None:
    street = source_layers()["street"]
    store.replace_city("brasov", {"street": street.iloc[::-1]}, REPORT)
    got = store.read_layer("brasov", "street")
    assert got.index.tolist() == sorted(street.index.tolist())
    assert np.array_equal(got["lanes"].to_numpy(), np.array([np.nan, 2.0, 1.0]), equal_nan=True)
    assert set(PROVENANCE_COLUMNS) <= set(got.columns)


def test_concurrent_writers_of_one_city_do_not_lose_layers(backend: Callable[[], Store]) -> None:
    first = backend()
    assert isinstance(first, StoreProtocol)
    old, new = source_layers(), source_layers(suffix="5")
    names = ["street", "poi", "barrier", "building"]
    first.replace_city("brasov", {k: v for k, v in old.items() if k not in names}, REPORT)
    handles = [backend() for _ in names]
    with ThreadPoolExecutor(len(names)) as pool:
        jobs = zip(handles, names, strict=True)
        futures = [pool.submit(h.write_layers, "brasov", {n: new[n]}) for h, n in jobs]
        for future in futures:
            future.result()
    for name in SOURCE_LAYERS:
        expected = new[name] if name in names else old[name]
        assert_same_layer(first.read_layer("brasov", name), expected)
    assert first.layers("brasov") == list(SOURCE_LAYERS)


# -- GeoPackage specifics ------------------------------------------------------------------


def test_geopackage_file_layout(tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path, reference_version="test")
    layers = source_layers()
    store.replace_city("brasov", {**layers, "landcover": empty_layer("landcover")}, REPORT)
    store.write_layers("brasov", {"street": layers["street"].iloc[:2]})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".brasov.lock", "brasov.gpkg"]  # no temp
    listed = dict(pyogrio.list_layers(tmp_path / "brasov.gpkg").tolist())
    expected = {"Point", "LineString", "MultiPolygon"}
    assert {name: listed[name] for name in SOURCE_LAYERS} == {
        name: LAYERS[name].geometry if LAYERS[name].geometry in expected else "Unknown"
        for name in SOURCE_LAYERS
    }
    assert listed["geo_protect_city"] is None  # the non-spatial record table
    info = pyogrio.read_info(tmp_path / "brasov.gpkg", layer="landcover")
    assert info["features"] == 0 and info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "MultiPolygon"


def test_geopackage_failure_keeps_the_old_file(tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path, reference_version="test")
    store.replace_city("brasov", source_layers(), REPORT)
    before = (tmp_path / "brasov.gpkg").read_bytes()
    bad = source_layers(suffix="2")
    bad["building"] = bad["building"].set_geometry([shapely.Point(25.5, 45.6)], crs=WGS84)
    with pytest.raises(ValidationError, match="expected polygons"):
        store.replace_city("brasov", bad, IngestReport())
    with pytest.raises(ValidationError, match="expected polygons"):
        store.write_layers("brasov", {"street": bad["street"], "building": bad["building"]})
    assert (tmp_path / "brasov.gpkg").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".brasov.lock", "brasov.gpkg"]
