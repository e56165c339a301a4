"""The OSM XML/PBF reader on the real Brașov files (ODbL, see data/osm/brasov/PROVENANCE.md).

Golden counts were computed with the reader and checked, where PROVENANCE.md counts the
same thing, against its pyosmium feature counts of the centre clip.
"""

from __future__ import annotations

import bz2
import gzip
import shutil
import time
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
import shapely

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import ELEMENT_COLUMNS
from geo_protect.osm.readers import read_source
from geo_protect.osm.readers.osm import DROP_WAY_NODES, _tags, read_osm
from geo_protect.schema import WGS84

BRASOV = Path(__file__).resolve().parent.parent / "data" / "osm" / "brasov"
CITY_PBF = BRASOV / "brasov.osm.pbf"


CityPbf = tuple[gpd.GeoDataFrame, dict[str, int], float]


def _src(path: Path, data_date: str | None = None) -> Source:
    return Source(kind="osm", path=path, data_date=data_date)


@pytest.fixture(scope="module")
def clip() -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """The centre clip, read once for the module (no data_date: taken from the file)."""
    path = BRASOV / "brasov_centre.osm.bz2"
    return read_osm(path, source=_src(path))


@pytest.fixture(scope="module")
def city_pbf() -> CityPbf:
    start = time.perf_counter()
    elements, drops = read_osm(CITY_PBF, source=_src(CITY_PBF))
    return elements, drops, time.perf_counter() - start


def _with(elements: gpd.GeoDataFrame, key: str, value: str | None = None) -> gpd.GeoDataFrame:
    hit = elements["tags"].map(lambda t: key in t and (value is None or t[key] == value))
    return elements[hit.to_numpy(dtype=bool)]


def test_clip_elements_contract(clip: tuple[gpd.GeoDataFrame, dict[str, int]]) -> None:
    elements, drops = clip
    assert tuple(elements.columns.drop("geometry")) == ELEMENT_COLUMNS
    assert elements.crs.equals(WGS84)
    assert elements.index.is_unique and elements.index.name == "uid"
    # Only objects with a taxonomy key reach Python: 1,561 of the 48,839 nodes.
    assert elements["osm_type"].value_counts().to_dict() == {
        "way": 5911,
        "node": 1561,
        "relation": 31,
    }
    assert elements.loc["way/1020310740", "osm_id"] == 1020310740
    assert elements.loc["relation/9620387", "osm_type"] == "relation"
    assert set(elements["source"]) == {"brasov_centre.osm.bz2"}
    # Two multipolygons of the clip have members beyond the clip (kept whole, but their
    # other members were not); no way lacks a node.
    assert drops == {
        "landcover: multipolygon with members outside the extract or rings that do not close": 2
    }


def test_clip_geometries(clip: tuple[gpd.GeoDataFrame, dict[str, int]]) -> None:
    elements, _ = clip
    geoms = elements.geometry.to_numpy()
    kind = elements["osm_type"].to_numpy()
    assert set(shapely.get_type_id(geoms[kind == "node"])) == {0}
    assert set(shapely.get_type_id(geoms[kind == "way"])) == {1}
    assert set(shapely.get_type_id(geoms[kind == "relation"])) == {6}
    # The Piața Sfatului multipolygon is ~1.06 ha in UTM 35N (classify gives 10,623 m²).
    sfatului = gpd.GeoSeries([elements.geometry["relation/9620387"]], crs=WGS84).to_crs(32635)
    assert sfatului.area.iloc[0] == pytest.approx(10_623, abs=1)
    # A closed way stays a closed LineString: the taxonomy decides whether it is an area.
    unirii = elements.geometry["way/222143955"]
    assert unirii.geom_type == "LineString" and unirii.is_closed


def by_type(frame: gpd.GeoDataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["osm_type"].value_counts().items()}


def test_clip_counts_match_provenance(clip: tuple[gpd.GeoDataFrame, dict[str, int]]) -> None:
    elements, _ = clip
    # PROVENANCE.md, centre clip column: the same figures.
    assert by_type(_with(elements, "barrier", "bollard")) == {"node": 11}
    assert by_type(_with(elements, "entrance")) == {"node": 56}
    assert by_type(_with(elements, "amenity")) == {"node": 745, "way": 107, "relation": 2}
    assert by_type(_with(elements, "shop")) == {"node": 232, "way": 5}
    assert by_type(_with(elements, "building")) == {"way": 4560, "relation": 25, "node": 1}
    assert len(_with(elements, "place", "square")) == 5
    # PROVENANCE says 12 + 1 highway=pedestrian area=yes ways + multipolygons; a direct
    # pyosmium scan of the file finds 11 such ways (+ 1 multipolygon), as here.
    ped_area = _with(_with(elements, "highway", "pedestrian"), "area", "yes")
    assert by_type(ped_area) == {"way": 11, "relation": 1}


def test_data_date(clip: tuple[gpd.GeoDataFrame, dict[str, int]], city_pbf: CityPbf) -> None:
    # XML without a header timestamp: the newest timestamp of the objects read.
    assert set(clip[0]["data_date"]) == {"2024-08-17"}
    # PBF header osmosis_replication_timestamp=2024-08-21T20:21:36Z (PROVENANCE.md).
    assert set(city_pbf[0]["data_date"]) == {"2024-08-21"}
    # The registry's date wins.
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, _ = read_osm(small, source=_src(small, "2020-01-01"), keys=["place"])
    assert set(elements["data_date"]) == {"2020-01-01"}
    # Only place=* objects: 13, of which the 5 squares (the cut suburb outline is not drawn).
    assert len(elements) == 13 and all("place" in t for t in elements["tags"])
    assert len(_with(elements, "place", "square")) == 5


def test_keys_filter_what_is_read() -> None:
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, drops = read_osm(small, source=_src(small), keys=["barrier"])
    assert len(elements) == 87  # 52 nodes + 35 ways (PROVENANCE: barrier=* 52 / 35)
    assert drops == {}


def test_municipal_pbf_drops_cut_ways(city_pbf: CityPbf) -> None:
    elements, drops, seconds = city_pbf
    assert len(elements) == 55_675
    # Independent count: highway ways of the PBF with at least one node missing.
    cut = 0
    for way in osmium.FileProcessor(
        str(CITY_PBF), osmium.osm.NODE | osmium.osm.WAY
    ).with_locations():
        if isinstance(way, osmium.osm.Way) and "highway" in way.tags:
            cut += not all(n.location.valid() for n in way.nodes)
    assert cut == 180
    # PROVENANCE: 171 walkable / 63 drivable ways (osmnx filters, subsets of all highways).
    assert drops[f"street: {DROP_WAY_NODES}"] == cut
    assert drops[f"building: {DROP_WAY_NODES}"] == 60
    assert drops[f"landcover: {DROP_WAY_NODES}"] == 30
    assert not any(shapely.is_empty(elements.geometry.to_numpy()))
    assert seconds < 10  # ~1 s on the reference machine (osm2pgsql: ~1 s)


def test_read_source_dispatch() -> None:
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, _ = read_source(small, _src(small))
    assert len(elements) == 7503


def test_fast_tags_equal_public_api() -> None:
    small = BRASOV / "brasov_centre.osm.bz2"
    seen = 0
    for obj in osmium.FileProcessor(str(small), osmium.osm.WAY):
        if isinstance(obj, osmium.osm.Way) and len(obj.tags) > 3:
            assert _tags(obj) == {t.k: t.v for t in obj.tags}
            seen += 1
        if seen == 50:
            break
    assert seen == 50


# -- broken files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Broken files made from the real Brașov extracts."""
    folder = tmp_path_factory.mktemp("broken_osm")
    data = CITY_PBF.read_bytes()
    (folder / "half.osm.pbf").write_bytes(data[: len(data) // 2])
    (folder / "junk.osm.pbf").write_bytes(b"this is not a protocol buffer\n" * 10)
    (folder / "empty.osm.pbf").write_bytes(b"")
    (folder / "empty.osm").write_bytes(b"")
    xml = bz2.decompress((BRASOV / "brasov_centre.osm.bz2").read_bytes())
    (folder / "half.osm").write_bytes(xml[: len(xml) // 2])
    (folder / "clip.osm.gz").write_bytes(gzip.compress(xml, compresslevel=1))
    (folder / "half.osm.bz2").write_bytes((BRASOV / "brasov_centre.osm.bz2").read_bytes()[:200_000])
    (folder / "track.osm").write_text(
        '<?xml version="1.0"?>\n<gpx version="1.1"><trk><name>x</name></trk></gpx>\n'
    )
    (folder / "no_objects.osm").write_text('<?xml version="1.0"?>\n<osm version="0.6"></osm>\n')
    shutil.copy(BRASOV / "brasov.poly", folder / "brasov.poly")
    return folder


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.osm.pbf", r"missing\.osm\.pbf: OSM file not found"),
        ("half.osm.pbf", r"half\.osm\.pbf: not readable as OSM data \(PBF error"),
        ("junk.osm.pbf", r"junk\.osm\.pbf: not readable as OSM data \(PBF error"),
        ("empty.osm.pbf", r"empty\.osm\.pbf: the file is empty"),
        ("empty.osm", r"empty\.osm: the file is empty"),
        ("half.osm", r"half\.osm: not readable as OSM data \(XML parsing error"),
        ("half.osm.bz2", r"half\.osm\.bz2: not readable as OSM data \(bzip2 error"),
        ("track.osm", r"track\.osm: not readable as OSM data \(Unknown top-level element: gpx"),
        ("no_objects.osm", r"no_objects\.osm: holds no OSM objects"),
        ("brasov.poly", r"brasov\.poly: not an OSM file name"),
    ],
)
def test_broken_files(broken: Path, name: str, message: str) -> None:
    path = broken / name
    with pytest.raises(DataSourceError, match=message):
        read_osm(path, source=_src(path))


def test_gzipped_xml(broken: Path) -> None:
    path = broken / "clip.osm.gz"
    elements, drops = read_osm(path, source=_src(path))
    assert len(drops) == 1
    assert len(elements) == 7503 and set(elements["source"]) == {"clip.osm.gz"}
