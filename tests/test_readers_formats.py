"""Overpass JSON, osmnx GraphML and OSM GeoJSON readers on the real city files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import osmnx
import pytest
import shapely

from geo_protect.cities import City, Source, get_city
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import ELEMENT_COLUMNS
from geo_protect.osm.readers import read_source
from geo_protect.osm.readers.csv_points import read_csv_points
from geo_protect.osm.readers.geojson import read_geojson
from geo_protect.osm.readers.graphml import read_graphml
from geo_protect.osm.readers.osm import read_osm
from geo_protect.osm.readers.overpass_json import read_overpass_json


@pytest.fixture(scope="module")
def malaga() -> City:
    return get_city("malaga")


def _src(kind: str, path: str, **kw: str) -> Source:
    return Source(kind=kind, path=Path(path), **kw)  # type: ignore[arg-type]


def _check_frame(frame: object) -> None:
    import geopandas as gpd

    assert isinstance(frame, gpd.GeoDataFrame)
    assert frame.crs.equals("EPSG:4326")
    assert frame.index.name == "uid" and frame.index.is_unique
    assert [c for c in frame.columns if c != "geometry"] == list(ELEMENT_COLUMNS)
    assert not frame.geometry.is_empty.any() and frame.geometry.is_valid.all()


# -- Overpass JSON -------------------------------------------------------------------------
MALAGA_JSON = "osm/malaga/malaga_centre_drive_service_overpass.json"


def test_overpass_json_malaga(malaga: City) -> None:
    src = _src("overpass_json", MALAGA_JSON)
    elements, drops = read_overpass_json(malaga.path(src), source=src)
    _check_frame(elements)
    assert drops == {}
    raw = json.loads(malaga.path(src).read_text())["elements"]  # the independent side
    raw_ways = [e for e in raw if e["type"] == "way"]
    raw_nodes = [e for e in raw if e["type"] == "node" and e.get("tags")]
    ways = elements[elements["osm_type"] == "way"]
    assert len(ways) == len(raw_ways) == 5386  # PROVENANCE.md: 5,386 ways
    assert set(ways.geom_type) == {"LineString"}
    highway = Counter(t["highway"] for t in ways["tags"])
    assert highway == Counter(e["tags"]["highway"] for e in raw_ways)
    # PROVENANCE.md: residential 2,211, service 1,005, secondary 777, primary 609
    assert highway["residential"] == 2211 and highway["service"] == 1005
    assert highway["secondary"] == 777 and highway["primary"] == 609
    nodes = elements[elements["osm_type"] == "node"]
    node_tags = Counter(t.get("highway") for t in nodes["tags"])
    assert node_tags == Counter(e["tags"].get("highway") for e in raw_nodes)
    # PROVENANCE.md: crossing 3,105, traffic_signals 501, 1 bollard
    assert node_tags["crossing"] == 3105 and node_tags["traffic_signals"] == 501
    assert sum(t.get("barrier") == "bollard" for t in nodes["tags"]) == 1
    assert set(elements["data_date"]) == {"2026-07-28"}  # timestamp_osm_base
    assert set(elements["source"]) == {"malaga_centre_drive_service_overpass.json"}
    # first way of the file, drawn from its six node refs
    way = ways.loc["way/23042401"]
    assert way["tags"]["name"] == "Calle Pacífico"
    assert shapely.get_num_coordinates(way.geometry) == 6
    first = next(e for e in raw if e["type"] == "node" and e["id"] == 248741684)  # its first node
    assert way.geometry.coords[0] == (first["lon"], first["lat"])


def test_overpass_json_same_ways_as_osm_xml(malaga: City) -> None:
    src = malaga.sources[0]
    xml, _ = read_osm(malaga.path(src), source=src)
    js, _ = read_overpass_json(
        malaga.path(Path(MALAGA_JSON)), source=_src("overpass_json", MALAGA_JSON)
    )
    a = xml[xml["osm_type"] == "way"].sort_index()
    b = js[js["osm_type"] == "way"].sort_index()
    assert list(a.index) == list(b.index) and len(a) == 5386
    assert (a["tags"] == b["tags"]).all()
    assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=0).all()


def test_overpass_json_eindhoven_ways_without_nodes_are_dropped() -> None:
    city = get_city("eindhoven")
    src = city.sources[1]
    elements, drops = read_source(city.path(src), src)
    _check_frame(elements)
    # A plain json load: ways whose node refs are not in the answer, and the nodes.
    raw = json.loads(city.path(src).read_text())["elements"]
    node_ids = {e["id"] for e in raw if e["type"] == "node"}
    broken = [e for e in raw if e["type"] == "way" and not set(e["nodes"]) <= node_ids]
    tagged = [e for e in raw if e["type"] == "node" and e.get("tags")]
    assert drops == {"way with nodes missing from the answer": len(broken)}
    # PROVENANCE.md: 35 objects, 33 nodes + 2 ways (hotel 29 counts one of the ways)
    assert (len(tagged), len(broken)) == (33, 2)
    assert set(elements.index) == {f"node/{e['id']}" for e in tagged}
    assert set(elements["osm_type"]) == {"node"}
    assert Counter(t["tourism"] for t in elements["tags"]) == Counter(
        e["tags"]["tourism"] for e in tagged
    )
    assert elements.loc["node/61101641", "tags"]["name"] == "Pullman Eindhoven Cocagne"


def test_overpass_json_geometry_and_relations(tmp_path: Path) -> None:
    """``out geom`` ways, a multipolygon with a hole, a route relation, a broken way."""
    ring = [(0, 0), (0, 4), (4, 4), (4, 0), (0, 0)]
    hole = [(1, 1), (1, 2), (2, 2), (2, 1), (1, 1)]
    answer = {
        "elements": [
            {"type": "node", "id": 1, "lat": 0.0, "lon": 0.0, "tags": {"barrier": "bollard"}},
            {"type": "node", "id": 2, "lat": 1.0, "lon": 0.0},
            {
                "type": "way",
                "id": 10,
                "geometry": [{"lat": y, "lon": x} for x, y in ring[:3]],
                "tags": {"highway": "pedestrian"},
            },
            {"type": "way", "id": 11, "geometry": [{"lat": y, "lon": x} for x, y in ring[2:]]},
            {"type": "way", "id": 12, "geometry": [{"lat": y, "lon": x} for x, y in hole]},
            {"type": "way", "id": 13, "nodes": [1, 2, 99], "tags": {"highway": "service"}},
            {
                "type": "relation",
                "id": 20,
                "tags": {"type": "multipolygon", "place": "square"},
                "members": [
                    {"type": "way", "ref": 10, "role": "outer"},
                    {"type": "way", "ref": 11, "role": "outer"},
                    {"type": "way", "ref": 12, "role": "inner"},
                ],
            },
            {"type": "relation", "id": 21, "tags": {"type": "route"}, "members": []},
        ]
    }
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    elements, drops = read_overpass_json(path, source=_src("overpass_json", "answer.json"))
    assert sorted(elements.index) == ["node/1", "relation/20", "way/10"]
    assert elements.loc["relation/20"].geometry.area == pytest.approx(16 - 1)
    assert elements.loc["way/10"].geometry.geom_type == "LineString"
    assert drops == {
        "way with nodes missing from the answer": 1,
        "relation that is not a multipolygon or boundary": 1,
    }
    assert elements["data_date"].isna().all()


def test_overpass_json_bad_files(tmp_path: Path) -> None:
    src = _src("overpass_json", "x.json")
    with pytest.raises(DataSourceError, match="not found"):
        read_overpass_json(tmp_path / "x.json", source=src)
    (tmp_path / "x.json").write_text('{"elements": [')
    with pytest.raises(DataSourceError, match=r"x\.json: not readable as JSON"):
        read_overpass_json(tmp_path / "x.json", source=src)
    (tmp_path / "x.json").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(DataSourceError, match="not an Overpass API answer"):
        read_overpass_json(tmp_path / "x.json", source=src)


# -- GraphML -------------------------------------------------------------------------------
def test_graphml_eindhoven_walk() -> None:
    city = get_city("eindhoven")
    src = city.sources[0]
    path = city.path(src)
    elements, drops = read_graphml(path, source=src)
    _check_frame(elements)
    assert drops == {}
    graph = osmnx.load_graphml(path)
    assert (len(graph), graph.number_of_edges()) == (720, 1864)
    ways = elements[elements["osm_type"] == "way"]
    assert len(ways) == 1864 // 2  # a walk graph holds every piece twice (u->v, v->u)
    assert set(ways.geom_type) == {"LineString"}
    # every directed edge is represented by exactly one piece, in one of its directions
    pieces = {tuple(sorted(map(int, u.split("/")[2].split("-")))) for u in ways.index}
    assert pieces == {tuple(sorted((u, v))) for u, v in graph.edges()}
    tags = list(ways["tags"])
    assert all("oneway" not in t for t in tags)  # walk graphs say nothing about oneway
    names = {t.get("name") for t in tags}
    assert {"Markt", "Stratumseind", "18 Septemberplein", "Rechtestraat"} <= names
    highway = Counter(t["highway"] for t in tags)
    assert set(highway) == {
        "footway", "service", "residential", "tertiary", "pedestrian", "unclassified",
        "living_street", "steps", "busway", "secondary", "path", "tertiary_link", "road",
    }  # fmt: skip
    # PROVENANCE.md: 204 tertiary directed edges, each piece stored twice → 204 / 2
    assert highway["tertiary"] == 204 // 2 and highway["pedestrian"] == 92
    assert sum(highway.values()) == 1864 // 2
    merged = [t for t in tags if ";" in t["osm_ids"]]
    assert len(merged) == 318 // 2  # simplified edges made of several ways
    nodes = elements[elements["osm_type"] == "node"]
    assert Counter(t["highway"] for t in nodes["tags"]) == {
        "crossing": 19,
        "elevator": 3,
        "traffic_signals": 1,
    }
    assert all("District" not in t and "node_population" not in t for t in nodes["tags"])
    assert set(elements["data_date"]) == {"2024-11-01"}
    # the lengths osmnx measured agree with the geometries kept
    one = graph.edges[25243566, 1931472275, 0]
    uid = next(
        u
        for u in ways.index
        if u.endswith("/25243566-1931472275") or u.endswith("/1931472275-25243566")
    )
    length = ways.loc[[uid]].to_crs(city.crs).length.iloc[0]
    assert length == pytest.approx(one["length"], rel=0.01)


def test_graphml_malaga_soho_drive(malaga: City) -> None:
    src = _src("graphml", "osm/malaga/malaga_soho_drive_osmnx.graphml", network="drive")
    elements, _ = read_graphml(malaga.path(src), source=src)
    ways = elements[elements["osm_type"] == "way"]
    assert len(ways) == 131 - 12  # 12 two-way pieces are stored in both directions
    tags = list(ways["tags"])
    assert Counter(t["oneway"] for t in tags) == {"yes": 107, "no": 12}
    assert len({t["name"] for t in tags}) >= 32
    assert "Alameda Principal;Plaza de la Marina" in {t["name"] for t in tags}
    marina = ways.loc["way/35901833/248606020-303275904"]
    assert marina["osm_id"] == 35901833
    assert marina["tags"]["osm_ids"] == "35901833;627718562;838607006"
    assert marina["tags"]["lanes"] == "6"  # largest of ['5', '6']
    tertiary_secondary = [t for t in tags if "secondary" in t["highway"] and ";" in t["osm_ids"]]
    assert tertiary_secondary  # ['tertiary', 'secondary'] kept as the faster class
    nodes = elements[elements["osm_type"] == "node"]
    assert Counter(t["highway"] for t in nodes["tags"]) == {"crossing": 4, "traffic_signals": 1}
    assert set(elements["data_date"]) == {"2025-03-03"}


def test_graphml_bad_file(tmp_path: Path) -> None:
    src = _src("graphml", "g.graphml", network="walk")
    with pytest.raises(DataSourceError, match="GraphML file not found"):
        read_graphml(tmp_path / "g.graphml", source=src)
    (tmp_path / "g.graphml").write_text("<graphml><oops")
    with pytest.raises(DataSourceError, match=r"g\.graphml: not an osmnx GraphML graph"):
        read_graphml(tmp_path / "g.graphml", source=src)


# -- GeoJSON -------------------------------------------------------------------------------
def test_geojson_vilnius_streets() -> None:
    city = get_city("vilnius")
    src = next(s for s in city.sources if s.layer == "street")
    elements, drops = read_source(city.path(src), src)
    _check_frame(elements)
    features = json.loads(city.path(src).read_text(encoding="utf-8"))["features"]
    # PROVENANCE.md: 852 features, 708 with OSM way ids, service 286
    assert drops == {} and len(elements) == len(features) == 852
    with_id = [f for f in features if f["properties"].get("osm_way_id") is not None]
    assert (elements["osm_type"] == "way").sum() == len(with_id) == 708
    stem = "vilnius_oldtown_streets_osm/"
    unnamed = [u for u in elements.index if u.startswith(stem)]
    assert len(unnamed) == 144 and elements.loc[unnamed, "osm_id"].isna().all()
    assert Counter(t["highway"] for t in elements["tags"])["service"] == 286
    assert all(set(t) <= {"highway", "name", "tunnel"} for t in elements["tags"])
    assert elements.loc["way/8021097", "tags"] == {
        "highway": "residential",
        "name": "Šv. Stepono g.",
    }
    length_km = elements.to_crs(city.crs).length.sum() / 1000
    assert length_km == pytest.approx(39.4, abs=0.1)


def test_geojson_vilnius_areas_and_pois() -> None:
    city = get_city("vilnius")
    areas_src = next(s for s in city.sources if s.layer == "public_space")
    areas, _ = read_geojson(city.path(areas_src), source=areas_src)
    assert len(areas) == 8 and set(areas.geom_type) == {"Polygon"}
    assert areas.loc["way/54055201", "tags"] == {
        "highway": "pedestrian",
        "area": "yes",
        "name": "Rotušės a.",
    }
    assert sum(u.startswith("vilnius_oldtown_pedestrian_areas_osm/") for u in areas.index) == 3
    counts = {}
    for src in (s for s in city.sources if s.layer == "poi" and s.kind == "geojson"):
        pois, drops = read_geojson(city.path(src), source=src)
        _check_frame(pois)
        assert drops == {}
        assert not any(v is None for t in pois["tags"] for v in t.values())
        counts[src.path.name.split("_")[1]] = Counter(pois["osm_type"])
    assert counts["culture"] == {"node": 307, "way": 53, "relation": 2}  # PROVENANCE.md
    assert counts["health"] == {"node": 248, "way": 35, "relation": 12}
    assert counts["education"] == {"node": 67, "way": 305, "relation": 36}
    assert counts["osm"] == {"node": 6988}  # vilnius_osm_poi_nodes_2019: nodes only


def test_geojson_primary_tag_pairs_become_tags() -> None:
    """``tag_key``/``tag_value`` (one primary tag per node) is read as that one OSM tag."""
    city = get_city("larissa")
    (src,) = city.sources
    nodes, drops = read_geojson(city.path(src), source=src)
    assert drops == {} and len(nodes) == 2390
    assert nodes.loc["node/57549546", "tags"] == {
        "place": "city",
        "name": "Λάρισα",
        "name:en": "Larissa",
        "name:de": "Larisa",
        "population": "144651",
    }  # the first feature of the file, as written there
    assert not any("tag_key" in t or "tag_value" in t for t in nodes["tags"])


def test_csv_points_reader(tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    path.write_text(
        "osm_type,osm_id,lat,lon,name,amenity,shop\n"
        "node,1,54.68,25.28,Cafe A,cafe,\n"
        "way,2,54.69,25.29,,,supermarket\n"
        "way,2,54.69,25.29,,,supermarket\n"
        "node,3,,25.29,No position,bar,\n",
        encoding="utf-8",
    )
    src = _src("csv", str(path), layer="poi")
    pois, drops = read_csv_points(path, source=src)
    assert list(pois.index) == ["node/1", "way/2"]
    assert pois.loc["node/1", "tags"] == {"name": "Cafe A", "amenity": "cafe"}
    assert pois.loc["way/2", "tags"] == {"shop": "supermarket"}
    assert (pois.geometry.x.tolist(), pois.geometry.y.tolist()) == ([25.28, 25.29], [54.68, 54.69])
    assert drops == {"row without a valid lat/lon": 1, "row repeating an OSM id already read": 1}
    bad = tmp_path / "bad.csv"
    bad.write_text("osm_type,osm_id,lat,lon\narea,1,1,1\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"bad\.csv: line 2: osm_type 'area'"):
        read_csv_points(bad, source=src)
    bad.write_text("id,lat,lon\n1,1,1\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"lacks the column\(s\) osm_type, osm_id"):
        read_csv_points(bad, source=src)


def test_geojson_larissa_boundary() -> None:
    city = get_city("larissa")
    path = city.boundary_path
    assert path is not None
    src = _src("geojson", str(city.boundary), layer="public_space")
    elements, _ = read_geojson(path, source=src)
    assert list(elements.index) == ["relation/2246178"]
    tags = elements.iloc[0]["tags"]
    assert tags["type"] == "boundary" and tags["name:en"] == "Municipality of Larissa"
    assert tags["population"] == "162591"
    area_km2 = elements.to_crs("EPSG:2100").area.iloc[0] / 1e6
    assert area_km2 == pytest.approx(336.05, abs=0.01)  # PROVENANCE.md


def test_geojson_crs_member_and_errors(tmp_path: Path) -> None:
    src = _src("geojson", "x.geojson", layer="poi")
    legacy = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:32635"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"@id": "node/5", "amenity": "theatre", "seats": 300},
                "geometry": {"type": "Point", "coordinates": [500000.0, 5000000.0]},
            },
            {"type": "Feature", "properties": {"amenity": "bar"}, "geometry": None},
        ],
    }
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(legacy))
    elements, drops = read_geojson(path, source=src)
    assert drops == {"feature without geometry": 1}
    assert elements.loc["node/5", "tags"] == {"amenity": "theatre", "seats": "300"}
    lon, lat = elements.geometry.iloc[0].coords[0]
    assert (lon, lat) == pytest.approx((27.0, 45.15348), abs=1e-5)  # central meridian of zone 35
    path.write_text('{"type": "Feature"}')
    with pytest.raises(DataSourceError, match=r"x\.geojson: not a GeoJSON FeatureCollection"):
        read_geojson(path, source=src)
