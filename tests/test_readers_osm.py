"""The OSM XML/PBF reader on the real Brașov files (ODbL, see data/osm/brasov/PROVENANCE.md).

Expected counts come from a second implementation that shares no code with the reader:
a plain ``xml.etree.ElementTree`` pass over the centre clip (:func:`scan_osm_xml`) and a
pyosmium pass without key filter, WKB factory or area assembler over the municipal PBF
(:func:`pbf_counts`). Both select objects by the keys of ``osm_taxonomy.csv`` read with
:mod:`csv`. Figures PROVENANCE.md states are cited next to them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import osmium
import pyproj
import pytest
import shapely

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import ELEMENT_COLUMNS
from geo_protect.osm.readers import read_source
from geo_protect.osm.readers.osm import DROP_WAY_NODES, _tags, read_osm
from geo_protect.schema import WGS84
from tests.osm_scan import AREA_RELATIONS, TAXONOMY_KEYS, OsmXml, scan_osm_xml

ROOT = Path(__file__).resolve().parent.parent
BRASOV = ROOT / "data" / "osm" / "brasov"
CITY_PBF = BRASOV / "brasov.osm.pbf"
CENTRE = BRASOV / "brasov_centre.osm.bz2"


@pytest.fixture(scope="module")
def xml() -> OsmXml:
    """The centre clip parsed once by ElementTree."""
    return scan_osm_xml(CENTRE)


def _by_type(uids: dict[str, dict[str, str]]) -> dict[str, int]:
    return dict(Counter(u.split("/")[0] for u in uids))


def _xml_with(
    uids: dict[str, dict[str, str]], key: str, value: str | None = None
) -> dict[str, dict[str, str]]:
    return {u: t for u, t in uids.items() if key in t and (value is None or t[key] == value)}


CityPbf = tuple[gpd.GeoDataFrame, dict[str, int], float]


def _src(path: Path, data_date: str | None = None) -> Source:
    return Source(kind="osm", path=path, data_date=data_date)


@pytest.fixture(scope="module")
def clip() -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """The centre clip, read once for the module (no data_date: taken from the file)."""
    path = BRASOV / "brasov_centre.osm.bz2"
    return read_osm(path, source=_src(path))


@dataclass
class PbfCounts:
    """Counts of the municipal PBF by a plain pyosmium pass (no key filter or assembler)."""

    n_nodes: int = 0
    n_ways: int = 0
    n_relations: int = 0
    keyed_nodes: int = 0
    kept_ways: int = 0
    kept_relations: int = 0
    #: keyed ways with a node outside the extract, by the layer their tags name
    cut: Counter[str] = field(default_factory=Counter)


def _landcover(tags: dict[str, str]) -> bool:
    """A landcover rule of osm_taxonomy.csv (key + value list) matches the tags."""
    return any(tags.get(key) in values for key, values in LANDCOVER_RULES)


with (ROOT / "data" / "reference" / "osm_taxonomy.csv").open(encoding="utf-8") as _f:
    LANDCOVER_RULES = [
        (row["key"], frozenset(row["values"].split("|")))
        for row in csv.DictReader(_f)
        if row["layer"] == "landcover"
    ]


@pytest.fixture(scope="module")
def pbf() -> PbfCounts:
    """One pass over the municipal PBF: every way's completeness, keyed objects."""
    out = PbfCounts()
    complete: dict[int, bool] = {}
    keyed_ways: dict[int, dict[str, str]] = {}
    area_members: list[list[int]] = []
    for obj in osmium.FileProcessor(str(CITY_PBF)).with_locations():
        if isinstance(obj, osmium.osm.Node):
            out.n_nodes += 1
            if len(obj.tags):  # most nodes carry no tags
                out.keyed_nodes += not TAXONOMY_KEYS.isdisjoint(t.k for t in obj.tags)
        elif isinstance(obj, osmium.osm.Way):
            out.n_ways += 1
            complete[obj.id] = all(n.location.valid() for n in obj.nodes)
            if len(obj.tags):
                tags = {t.k: t.v for t in obj.tags}
                if not TAXONOMY_KEYS.isdisjoint(tags):
                    keyed_ways[obj.id] = tags
        elif isinstance(obj, osmium.osm.Relation):
            out.n_relations += 1
            tags = {t.k: t.v for t in obj.tags}
            if tags.get("type") in AREA_RELATIONS and not TAXONOMY_KEYS.isdisjoint(tags):
                area_members.append([m.ref for m in obj.members if m.type == "w"])
    out.kept_ways = sum(complete[i] for i in keyed_ways)
    out.kept_relations = sum(all(complete.get(r, False) for r in refs) for refs in area_members)
    for i, tags in keyed_ways.items():
        if not complete[i]:
            out.cut["street"] += "highway" in tags
            out.cut["building"] += "building" in tags
            out.cut["landcover"] += _landcover(tags)
    return out


@pytest.fixture(scope="module")
def city_pbf() -> CityPbf:
    start = time.perf_counter()
    elements, drops = read_osm(CITY_PBF, source=_src(CITY_PBF))
    return elements, drops, time.perf_counter() - start


def _with(elements: gpd.GeoDataFrame, key: str, value: str | None = None) -> gpd.GeoDataFrame:
    hit = elements["tags"].map(lambda t: key in t and (value is None or t[key] == value))
    return elements[hit.to_numpy(dtype=bool)]


def test_clip_elements_contract(clip: tuple[gpd.GeoDataFrame, dict[str, int]], xml: OsmXml) -> None:
    elements, drops = clip
    assert tuple(elements.columns.drop("geometry")) == ELEMENT_COLUMNS
    assert elements.crs.equals(WGS84)
    assert elements.index.is_unique and elements.index.name == "uid"
    # Only objects with a taxonomy key reach Python: of the 48,839 / 6,010 / 33 objects
    # (PROVENANCE.md), the ElementTree pass finds 1,561 such nodes, 5,911 drawable ways and
    # 31 area relations with every member.
    assert (len(xml.nodes), len(xml.ways), len(xml.relations)) == (48_839, 6_010, 33)
    expected = xml.drawn()
    assert set(elements.index) == set(expected)
    assert by_type(elements) == _by_type(expected)
    # Tags unchanged, but for the type=multipolygon of an assembled area.
    for uid, tags in expected.items():
        want = {k: v for k, v in tags.items() if not (uid[0] == "r" and k == "type")}
        assert elements.loc[uid, "tags"] == want, uid
    assert elements.loc["way/1020310740", "osm_id"] == 1020310740
    assert elements.loc["relation/9620387", "osm_type"] == "relation"
    assert set(elements["source"]) == {"brasov_centre.osm.bz2"}
    # Multipolygons of the clip with members beyond the clip (kept whole, but their other
    # members were not) are dropped; all are landuse=* (landcover). The one keyed way that
    # lacks nodes is the place=suburb outline, which no layer wants (not counted).
    cut_relations = [
        t
        for i, (t, *_) in xml.relations.items()
        if not TAXONOMY_KEYS.isdisjoint(t) and not xml.relation_complete(i)
    ]
    assert cut_relations and all("landuse" in t for t in cut_relations)
    cut_ways = [
        t
        for i, (t, *_) in xml.ways.items()
        if not TAXONOMY_KEYS.isdisjoint(t) and not xml.way_complete(i)
    ]
    assert [t.get("place") for t in cut_ways] == ["suburb"]
    assert drops == {
        "landcover: multipolygon with members outside the extract or rings that do not close": len(
            cut_relations
        )
    }


def test_clip_geometries(clip: tuple[gpd.GeoDataFrame, dict[str, int]], xml: OsmXml) -> None:
    elements, _ = clip
    geoms = elements.geometry.to_numpy()
    kind = elements["osm_type"].to_numpy()
    assert set(shapely.get_type_id(geoms[kind == "node"])) == {0}
    assert set(shapely.get_type_id(geoms[kind == "way"])) == {1}
    assert set(shapely.get_type_id(geoms[kind == "relation"])) == {6}
    # The Piața Sfatului multipolygon (~1.06 ha in UTM 35N): its area equals the outer ring
    # less the inner rings, drawn here from the member ways' node coordinates (each member
    # is a closed way) and projected with pyproj.
    to_utm = pyproj.Transformer.from_crs(4326, 32635, always_xy=True)
    rings: dict[str, float] = {"outer": 0.0, "inner": 0.0}
    for kind, ref, role in xml.relations[9620387][1]:
        refs = xml.ways[ref][1]
        assert kind == "way" and refs[0] == refs[-1]
        lon, lat = zip(*((xml.nodes[n][1], xml.nodes[n][2]) for n in refs), strict=True)
        rings[role] += shapely.Polygon(zip(*to_utm.transform(lon, lat), strict=True)).area
    sfatului = gpd.GeoSeries([elements.geometry["relation/9620387"]], crs=WGS84).to_crs(32635)
    assert sfatului.area.iloc[0] == pytest.approx(rings["outer"] - rings["inner"], rel=1e-9)
    assert 10_000 < sfatului.area.iloc[0] < 11_000
    # A closed way stays a closed LineString: the taxonomy decides whether it is an area.
    unirii = elements.geometry["way/222143955"]
    assert unirii.geom_type == "LineString" and unirii.is_closed


def by_type(frame: gpd.GeoDataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["osm_type"].value_counts().items()}


def test_clip_counts_match_provenance(
    clip: tuple[gpd.GeoDataFrame, dict[str, int]], xml: OsmXml
) -> None:
    elements, _ = clip
    drawn = xml.drawn()
    # Each count is the ElementTree count; PROVENANCE.md (centre clip column) gives the
    # same figures.
    published: list[tuple[str, str | None, dict[str, int]]] = [
        ("barrier", "bollard", {"node": 11}),
        ("entrance", None, {"node": 56}),
        ("amenity", None, {"node": 745, "way": 107, "relation": 2}),
        ("shop", None, {"node": 232, "way": 5}),
        ("building", None, {"way": 4560, "relation": 25, "node": 1}),
        ("place", "square", {"way": 4, "relation": 1}),  # PROVENANCE: 5 place=square
    ]
    for key, value, figure in published:
        assert by_type(_with(elements, key, value)) == _by_type(_xml_with(drawn, key, value))
        assert _by_type(_xml_with(drawn, key, value)) == figure, (key, value)
    # PROVENANCE says 12 + 1 highway=pedestrian area=yes ways + multipolygons; the
    # ElementTree pass (like a direct pyosmium scan) finds 11 such ways (+ 1 multipolygon).
    ped_area = _with(_with(elements, "highway", "pedestrian"), "area", "yes")
    xml_ped_area = _xml_with(_xml_with(drawn, "highway", "pedestrian"), "area", "yes")
    assert by_type(ped_area) == _by_type(xml_ped_area) == {"way": 11, "relation": 1}


def test_data_date(
    clip: tuple[gpd.GeoDataFrame, dict[str, int]], city_pbf: CityPbf, xml: OsmXml
) -> None:
    # XML without a header timestamp: the newest timestamp of the objects read.
    assert set(clip[0]["data_date"]) == {xml.newest_date()} == {"2024-08-17"}
    # PBF header osmosis_replication_timestamp=2024-08-21T20:21:36Z (PROVENANCE.md).
    assert set(city_pbf[0]["data_date"]) == {"2024-08-21"}
    # The registry's date wins.
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, _ = read_osm(small, source=_src(small, "2020-01-01"), keys=["place"])
    assert set(elements["data_date"]) == {"2020-01-01"}
    # Only place=* objects, of which the 5 squares (the cut suburb outline is not drawn).
    places = xml.drawn(frozenset({"place"}))
    assert set(elements.index) == set(places) and all("place" in t for t in elements["tags"])
    assert len(_with(elements, "place", "square")) == len(_xml_with(places, "place", "square"))
    assert len(_xml_with(places, "place", "square")) == 5  # PROVENANCE: 5 place=square


def test_keys_filter_what_is_read(xml: OsmXml) -> None:
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, drops = read_osm(small, source=_src(small), keys=["barrier"])
    barriers = xml.drawn(frozenset({"barrier"}))
    assert set(elements.index) == set(barriers)
    assert _by_type(barriers) == {"node": 52, "way": 35}  # PROVENANCE: barrier=* 52 / 35
    assert drops == {}


def test_municipal_pbf_drops_cut_ways(city_pbf: CityPbf, pbf: PbfCounts) -> None:
    elements, drops, seconds = city_pbf
    # PROVENANCE: 309,775 nodes / 46,551 ways / 1,818 relations in the whole PBF.
    assert (pbf.n_nodes, pbf.n_ways, pbf.n_relations) == (309_775, 46_551, 1_818)
    assert by_type(elements) == {
        "node": pbf.keyed_nodes,
        "way": pbf.kept_ways,
        "relation": pbf.kept_relations,
    }
    # PROVENANCE: 171 walkable / 63 drivable ways are cut (osmnx filters, subsets of all
    # highway ways, so fewer than every cut highway way counted here).
    assert pbf.cut["street"] > 171
    assert drops[f"street: {DROP_WAY_NODES}"] == pbf.cut["street"]
    assert drops[f"building: {DROP_WAY_NODES}"] == pbf.cut["building"]
    assert drops[f"landcover: {DROP_WAY_NODES}"] == pbf.cut["landcover"]
    assert not any(shapely.is_empty(elements.geometry.to_numpy()))
    assert seconds < 10  # ~1 s on the reference machine (osm2pgsql: ~1 s)


def test_read_source_dispatch(xml: OsmXml) -> None:
    small = BRASOV / "brasov_centre.osm.bz2"
    elements, _ = read_source(small, _src(small))
    assert set(elements.index) == set(xml.drawn())


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


def test_gzipped_xml(broken: Path, xml: OsmXml) -> None:
    path = broken / "clip.osm.gz"
    elements, drops = read_osm(path, source=_src(path))
    assert len(drops) == 1
    assert set(elements.index) == set(xml.drawn()) and set(elements["source"]) == {"clip.osm.gz"}
