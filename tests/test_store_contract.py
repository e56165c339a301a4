"""The storage contract (geo_protect.store.base.Store), run against both backends.

The layers (tests/store_cases.py) are small hand-built features with real-looking values
around Piața Sfatului in Brașov; they are test data, not real OSM data.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
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
from geo_protect.errors import MissingDataError, StoreError, UnknownCityError, ValidationError
from geo_protect.scenario.model import BarrierEdit, Scenario
from geo_protect.schema import (
    LAYERS,
    PROVENANCE_COLUMNS,
    SOURCE_LAYERS,
    WGS84,
    empty_layer,
    tags_of,
)
from geo_protect.store import GeoPackageStore, PostGISStore
from geo_protect.store.audit import Actor
from geo_protect.store.base import Store as StoreProtocol
from tests.store_cases import REPORT, assert_same_layer, source_layers

Store = GeoPackageStore | PostGISStore
ACTOR = Actor("planner", None, "test")
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


def test_read_layers_reads_like_read_layer(store: Store) -> None:
    """``read_layers`` returns what ``read_layer`` returns, for many layers at once.

    Fails at HEAD: the Store contract had no ``read_layers`` (AttributeError on both stores).
    """
    layers = source_layers()
    del layers["surveillance"]
    store.replace_city("brasov", layers, REPORT)
    everything = store.read_layers("brasov")
    assert list(everything) == store.layers("brasov") == [n for n in SOURCE_LAYERS if n in layers]
    for name, layer in layers.items():
        assert_same_layer(everything[name], layer)
    some = store.read_layers("brasov", ["poi", "surveillance", "street"])
    assert list(some) == ["poi", "surveillance", "street"]  # the order asked for
    assert_same_layer(some["poi"], layers["poi"])
    assert_same_layer(some["street"], layers["street"])
    pd.testing.assert_frame_equal(
        pd.DataFrame(some["surveillance"]), pd.DataFrame(empty_layer("surveillance"))
    )  # not stored: an empty layer, as read_layer gives
    assert store.read_layers("brasov", []) == {}
    with pytest.raises(UnknownCityError, match="'eindhoven' is not in the"):
        store.read_layers("eindhoven")
    with pytest.raises(StoreError, match="layer 'heatmap' is not registered"):
        store.read_layers("brasov", ["street", "heatmap"])


def _version_b() -> dict[str, gpd.GeoDataFrame]:
    """A second version of the city: other uids, one feature per layer, no surveillance."""
    layers = {name: layer.iloc[:1] for name, layer in source_layers(suffix="7").items()}
    del layers["surveillance"]
    return layers


def _version_of(got: Mapping[str, gpd.GeoDataFrame], versions: dict[str, Any]) -> str:
    """Which version ``got`` is entirely from; fails when its layers mix versions."""
    for label, layers in versions.items():
        if list(got) == list(layers) and all(
            got[n].index.tolist() == sorted(layers[n].index.tolist()) for n in layers
        ):
            return label
    counts = {name: len(layer) for name, layer in got.items()}
    pytest.fail(f"read_layers mixed two versions of the city: feature counts {counts}")


MIN_SNAPSHOT_READS = 60


def test_read_layers_never_sees_a_half_replaced_city(backend: Callable[[], Store]) -> None:
    """A reader calling ``read_layers`` while a writer replaces the city sees one version.

    A thread replaces the city with version A (``source_layers()``: 8 layers, 2/3/1/2/2/1/1/0
    features) and version B (other uids, 1 feature per layer, no surveillance) in turn,
    as fast as it can, while this thread reads every stored layer at least
    ``MIN_SNAPSHOT_READS`` times and until it has seen both versions at least 5 times;
    every read must be all A or all B.

    Fails at HEAD: the contract had no ``read_layers``; and the way the pipeline read a
    city there (``layers()`` then one ``read_layer`` per layer, each in its own PostGIS
    transaction or GeoPackage open) mixes versions under this writer: while developing
    this test 95 of 150 such reads mixed A and B on PostGIS and 28 of 60 on GeoPackage.
    One PostGIS transaction at the default READ COMMITTED level is not enough either
    (42 of 100 mixed): each statement has its own snapshot, hence REPEATABLE READ.
    """
    writer, reader = backend(), backend()
    a, b = source_layers(), _version_b()
    versions = {"A": a, "B": b}
    writer.replace_city("brasov", a, REPORT)
    stop = threading.Event()

    def write() -> int:
        done = 0
        while not stop.is_set():
            writer.replace_city("brasov", (b, a)[done % 2], IngestReport(counts={"n": done}))
            done += 1
        return done

    seen: Counter[str] = Counter()
    with ThreadPoolExecutor(1) as pool:
        writes = pool.submit(write)
        try:
            deadline = time.monotonic() + 120
            while sum(seen.values()) < MIN_SNAPSHOT_READS or min(seen["A"], seen["B"]) < 5:
                assert time.monotonic() < deadline, f"only {dict(seen)} reads in 120 s"
                seen[_version_of(reader.read_layers("brasov"), versions)] += 1
        finally:
            stop.set()
        assert writes.result() >= 2
    assert sum(seen.values()) >= MIN_SNAPSHOT_READS


# -- barrier scenarios ---------------------------------------------------------------------


def _scenario(name: str, *edits: BarrierEdit, author: str | None = "planner") -> Scenario:
    """A scenario made in Bucharest time (UTC+3 in summer), to see it stored in UTC."""
    created = datetime.fromisoformat("2026-06-01T12:30:00.123456+03:00")
    return Scenario(name=name, city="brasov", author=author, created=created, edits=list(edits))


ROW = BarrierEdit(
    kind="bollard_row",
    geometry=shapely.LineString([(25.58851, 45.64231), (25.58862, 45.64229)]),
    spacing_m=1.3,
    rating="V/7200[N2A]/48/90:0.0",
    note="Strada Republicii – Piața Sfatului",
)
OPEN = BarrierEdit(action="open", osm_id="node/268625049", note="deliveries 6-10")


def test_scenario_round_trip_and_replace(store: Store) -> None:
    store.replace_city("brasov", source_layers(), REPORT)
    assert store.scenarios("brasov") == []
    first = _scenario("market day", ROW, OPEN)
    store.save_scenario("brasov", first, actor=ACTOR)
    assert store.scenarios("brasov") == ["market day"]
    got = store.read_scenario("brasov", "market day")
    assert Scenario.model_validate_json(got.document) == first  # geometry and rating exact
    assert (got.city, got.name, got.author, got.n_edits) == ("brasov", "market day", "planner", 2)
    assert got.created == datetime(2026, 6, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert got.created.utcoffset() is not None and not got.created.utcoffset()
    # same name: replaced, not added
    second = _scenario("market day", OPEN, author=None)
    store.save_scenario("brasov", second, actor=ACTOR)
    assert store.scenarios("brasov") == ["market day"]
    again = store.read_scenario("brasov", "market day")
    assert Scenario.model_validate_json(again.document) == second
    assert (again.author, again.n_edits) == (None, 1)
    store.save_scenario("brasov", _scenario("Zebra", ROW), actor=ACTOR)
    store.save_scenario("brasov", _scenario("after", ROW), actor=ACTOR)
    assert store.scenarios("brasov") == ["Zebra", "after", "market day"]  # byte order


def test_missing_scenarios_are_named(store: Store) -> None:
    store.replace_city("brasov", source_layers(), REPORT)
    store.save_scenario("brasov", _scenario("rows", ROW), actor=ACTOR)
    named = r"city 'brasov' has no scenario 'gates'.*\(stored: rows\)"
    with pytest.raises(MissingDataError, match=named):
        store.read_scenario("brasov", "gates")
    store.replace_city("malaga", source_layers(), REPORT)
    assert store.scenarios("malaga") == []  # scenarios belong to one city
    with pytest.raises(MissingDataError, match="'malaga' has no scenario 'rows'"):
        store.read_scenario("malaga", "rows")
    with pytest.raises(UnknownCityError, match="eindhoven"):
        store.save_scenario("eindhoven", _scenario("rows", ROW), actor=ACTOR)
    with pytest.raises(UnknownCityError, match="eindhoven"):
        store.scenarios("eindhoven")
    assert store.cities() == ["brasov", "malaga"]


def test_scenarios_leave_the_layers_and_outlive_a_reingest(store: Store) -> None:
    layers = source_layers()
    store.replace_city("brasov", layers, REPORT)
    ingested = store.info("brasov").ingested_at
    store.save_scenario("brasov", _scenario("rows", ROW), actor=ACTOR)
    for name, layer in layers.items():
        assert_same_layer(store.read_layer("brasov", name), layer)
    assert store.layers("brasov") == list(SOURCE_LAYERS)  # a scenario is not a layer
    assert (store.report("brasov"), store.info("brasov").ingested_at) == (REPORT, ingested)
    store.write_layers("brasov", {"street": layers["street"].iloc[:1]})
    store.replace_city("brasov", source_layers(suffix="0"), IngestReport())
    assert store.scenarios("brasov") == ["rows"]
    assert Scenario.model_validate_json(store.read_scenario("brasov", "rows").document).edits == [
        ROW
    ]


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


def test_geopackage_scenario_table_leaves_the_layer_tables_as_they_were(tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path, reference_version="test")
    store.replace_city("brasov", source_layers(), REPORT)
    path = tmp_path / "brasov.gpkg"

    def tables() -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(path) as con:
            return {n: con.execute(f'SELECT * FROM "{n}"').fetchall() for n in SOURCE_LAYERS}

    before = tables()
    store.save_scenario("brasov", _scenario("rows", ROW), actor=ACTOR)
    store.save_scenario("brasov", _scenario("rows", ROW, OPEN), actor=ACTOR)
    assert tables() == before  # the same rows, geometry blobs byte for byte
    listed = dict(pyogrio.list_layers(path).tolist())
    assert listed["scenario"] is None  # non-spatial, as QGIS sees it
    kept = pyogrio.read_dataframe(path, layer="scenario")
    assert kept[["name", "author", "n_edits"]].values.tolist() == [["rows", "planner", 2]]
    assert kept["created"].tolist() == ["2026-06-01T09:30:00.123456+00:00"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".brasov.lock", "brasov.gpkg"]
