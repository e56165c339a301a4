"""The taxonomy: golden counts on the real Brașov clip, closed-form cases on small frames.

The small frames are drawn in metres (UTM 35N, around Piața Sfatului) so that areas,
widths and distances have exact expected values.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import Source
from geo_protect.citydata import IngestReport
from geo_protect.errors import ConfigError
from geo_protect.osm.derived_spaces import DROP_MERGED_SURFACE
from geo_protect.osm.elements import elements_frame
from geo_protect.osm.readers.osm import read_osm
from geo_protect.osm.tags import parse_length, parse_maxspeed, parse_number
from geo_protect.osm.taxonomy import (
    DROP_INVALID_AREA,
    DROP_SHORT_STREET,
    classify,
    layers_of,
    osm_keys,
)
from geo_protect.reference import table
from geo_protect.schema import SOURCE_LAYERS, WGS84, conform
from tests.osm_scan import OsmXml, scan_osm_xml

CLIP = Path(__file__).resolve().parent.parent / "data/osm/brasov/brasov_centre.osm.bz2"
UTM = "EPSG:32635"
X0, Y0 = 411_000.0, 5_054_000.0  # near Piața Sfatului, in UTM 35N


@pytest.fixture(scope="module")
def clip_layers() -> tuple[dict[str, gpd.GeoDataFrame], IngestReport]:
    elements, _ = read_osm(CLIP, source=Source(kind="osm", path=CLIP))
    report = IngestReport()
    return classify(elements, crs=UTM, report=report), report


@pytest.fixture(scope="module")
def xml() -> OsmXml:
    """The clip parsed by ElementTree: the independent side of the golden counts."""
    return scan_osm_xml(CLIP)


def _xml_streets(xml: OsmXml) -> dict[int, dict[str, str]]:
    """Drawable highway=* ways that are lines (closed ways with area=yes are areas)."""
    out = {}
    for i, (tags, refs, _) in xml.ways.items():
        area = len(refs) >= 4 and refs[0] == refs[-1] and tags.get("area") == "yes"
        if "highway" in tags and not area and xml.way_complete(i):
            out[i] = tags
    return out


def _metres(value: str | None) -> float | None:
    """A plain ``<number>[ m]`` width (the only form in the clip), else None."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*m?\s*", value or "")
    return float(m.group(1)) if m else None


def _geo(geom: BaseGeometry) -> BaseGeometry:
    """A geometry drawn in UTM metres (offset from X0, Y0), in WGS84."""
    moved = shapely.transform(geom, lambda xy: xy + np.array([X0, Y0]))
    return gpd.GeoSeries([moved], crs=UTM).to_crs(WGS84).iloc[0]


def _frame(*rows: tuple[str, Mapping[str, str], BaseGeometry]) -> gpd.GeoDataFrame:
    elements = []
    for uid, tags, geom in rows:
        osm_type, osm_id = uid.split("/")
        elements.append((uid, osm_type, int(osm_id), dict(tags), _geo(geom)))
    return elements_frame(elements, source="test", data_date="2024-08-21")


def _classify(
    *rows: tuple[str, Mapping[str, str], BaseGeometry], **options: Any
) -> tuple[dict[str, gpd.GeoDataFrame], IngestReport]:
    report = IngestReport()
    return classify(_frame(*rows), crs=UTM, report=report, **options), report


def _area(layer: gpd.GeoDataFrame, uid: str) -> float:
    return float(gpd.GeoSeries([layer.geometry[uid]], crs=WGS84).to_crs(UTM).area.iloc[0])


def _line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString(xy)


def _ring(w: float, h: float, x: float = 0.0, y: float = 0.0) -> shapely.LineString:
    return _line((x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y))


# -- the real clip -----------------------------------------------------------------------


def test_clip_layer_counts(
    clip_layers: tuple[dict[str, gpd.GeoDataFrame], IngestReport], xml: OsmXml
) -> None:
    layers, report = clip_layers
    assert list(layers) == list(SOURCE_LAYERS)
    counts = {name: len(layer) for name, layer in layers.items()}
    # PROVENANCE.md (centre clip): barrier 52 nodes + 35 ways = 87; entrance nodes 56;
    # building ways + multipolygons 4,560 + 25 = 4,585 (the one building node is no footprint).
    # The ElementTree pass gives the same barrier / entrance / building / street counts.
    drawn = xml.drawn()
    of_key = Counter(k for u, t in drawn.items() for k in t)
    assert counts["barrier"] == of_key["barrier"]
    assert counts["entrance"] == of_key["entrance"]
    assert counts["building"] == sum("building" in t for u, t in drawn.items() if u[0] != "n")
    assert counts["street"] == len(_xml_streets(xml))
    assert counts == {
        "public_space": 49,  # 52 candidates less a 2 m² test square, a nested corridor and
        # the second mapped piece of Strada Republicii (merged into the first)
        "street": 1146,
        "entrance": 56,
        "barrier": 87,
        "poi": 190,
        "building": 4585,
        "surveillance": 0,
        "landcover": 70,
    }
    # One unnamed linear pedestrian way shorter than 30 m is no street of interest; way
    # 1020310740 is a 2 m² "Piața Sfatului" test polygon; the Strada Republicii corridor
    # lies inside the pedestrian areas mapped for that street.
    assert report.dropped == {
        ("public_space", DROP_SHORT_STREET): 1,
        ("public_space", "area under min_public_space_area_m2 (20 m²)"): 1,
        ("public_space", "pedestrian street drawn inside a mapped square or area"): 1,
        ("public_space", DROP_MERGED_SURFACE): 1,
    }
    for name, layer in layers.items():  # already conformed: conform is the identity
        pd.testing.assert_frame_equal(conform(name, layer), layer)


def test_clip_public_spaces(clip_layers: tuple[dict[str, gpd.GeoDataFrame], IngestReport]) -> None:
    spaces = clip_layers[0]["public_space"]
    squares = spaces[spaces["kind"] == "square"]
    # PROVENANCE: ways 1020310740 + relation 9620387 (Piața Sfatului), ways 222143955,
    # 222143959 (Piața Unirii) and one unnamed square; way 1020310740 (2 m²) is dropped.
    assert sorted(squares.index) == [
        "relation/9620387",
        "way/1235472488",
        "way/222143955",
        "way/222143959",
    ]
    assert set(squares["name"].dropna()) == {"Piața Sfatului", "Piața Unirii"}
    assert _area(spaces, "relation/9620387") == pytest.approx(10_623, abs=1)
    # Strada Republicii: mapped as two pedestrian areas bearing its name; the corridor drawn
    # from its linear ways lies inside them, so the areas become the pedestrian street, one
    # space (the two adjoining pieces merged).
    assert "corridor/23235073" not in spaces.index
    republicii = spaces[spaces["name"] == "Strada Republicii"]
    assert list(republicii.index) == ["way/313945482"]
    assert republicii["kind"].iloc[0] == "pedestrian_street"
    assert _area(spaces, "way/313945482") == pytest.approx(7726, abs=1)
    assert spaces["kind"].value_counts().to_dict() == {
        "pedestrian_street": 22,
        "park": 15,
        "pedestrian_area": 5,
        "square": 4,
        "marketplace": 1,
        "venue": 1,
        "station_forecourt": 1,
    }
    # The pedestrian area next to the Livada Poștei public_transport=station node.
    assert spaces.loc["way/1294726376", "kind"] == "station_forecourt"
    assert set(shapely.get_type_id(spaces.geometry.to_numpy())) == {6}


def test_clip_points(
    clip_layers: tuple[dict[str, gpd.GeoDataFrame], IngestReport], xml: OsmXml
) -> None:
    layers = clip_layers[0]
    barrier = layers["barrier"]
    assert (barrier["kind"] == "bollard").sum() == 11  # PROVENANCE: 11 bollard nodes
    # PROVENANCE: barrier=* 52 nodes / 35 ways
    assert barrier.geom_type.value_counts().to_dict() == {"Point": 52, "LineString": 35}
    # entrance=<kind> on the raw node tags (ElementTree)
    entrances = Counter(t["entrance"] for t, *_ in xml.nodes.values() if "entrance" in t)
    assert layers["entrance"]["kind"].value_counts().to_dict() == dict(entrances)
    poi = layers["poi"]
    assert set(poi.geom_type) == {"Point"}
    assert poi["kind"].value_counts().head(4).to_dict() == {
        "accommodation": 53,
        "education": 24,
        "culture": 24,
        "worship": 21,
    }
    assert poi.loc["node/251387677", "tag"] == "public_transport=station"
    church = poi[poi["name"] == "Biserica Evanghelică Sf. Martin"]
    assert church["tag"].tolist() == ["amenity=place_of_worship"]


def test_clip_street_flags(
    clip_layers: tuple[dict[str, gpd.GeoDataFrame], IngestReport], xml: OsmXml
) -> None:
    street = clip_layers[0]["street"]
    streets = _xml_streets(xml)
    assert set(street.index) == {f"way/{i}" for i in streets}
    # PROVENANCE (centre clip): footway 364, steps 67, path 51, living_street 10 ways;
    # 34 linear highway=pedestrian ways. The ElementTree count agrees.
    counts = street["highway"].value_counts()
    xml_counts = Counter(t["highway"] for t in streets.values())
    assert counts.to_dict() == dict(xml_counts)
    assert [xml_counts[k] for k in ("footway", "steps", "path", "living_street", "pedestrian")] == [
        364,
        67,
        51,
        10,
        34,
    ]
    # The flags re-derived from highway_classes.csv (read with csv) and the tags: walk if the
    # class walks and foot != no; hostile if the class admits vehicles and no mapped width
    # is under min_vehicle_width_m (parameters.csv).
    reference = Path(__file__).resolve().parent.parent / "data" / "reference"
    with (reference / "highway_classes.csv").open(encoding="utf-8") as f:
        classes = {r["highway"]: r for r in csv.DictReader(f)}
    with (reference / "parameters.csv").open(encoding="utf-8") as f:
        min_width = next(
            float(r["value"]) for r in csv.DictReader(f) if r["name"] == "min_vehicle_width_m"
        )
    want: Counter[tuple[bool, bool]] = Counter()
    for tags in streets.values():
        cls = classes.get(tags["highway"], {})
        width = _metres(tags.get("width"))
        walk = cls.get("walk") == "true" and tags.get("foot") != "no"
        hostile = cls.get("hostile_vehicle") == "true" and not (
            width is not None and width < min_width
        )
        want[(walk, hostile)] += 1
    flags = street.groupby(["walk", "hostile_vehicle"]).size().to_dict()
    assert flags == dict(want)
    steps = street[street["highway"] == "steps"]
    assert steps["walk"].all() and not steps["hostile_vehicle"].any()
    # Plain numeric maxspeed / lanes tags, counted on the raw tags.
    speeds = Counter(
        float(t["maxspeed"]) for t in streets.values() if t.get("maxspeed", "").isdigit()
    )
    got = street["maxspeed_kmh"].value_counts().head(2).to_dict()
    assert got == dict(speeds.most_common(2)) and set(got) == {50.0, 30.0}
    lanes = sum(t.get("lanes", "").strip().isdigit() for t in streets.values())
    assert street["lanes"].notna().sum() == lanes
    assert street.loc["way/23235073", ["walk", "hostile_vehicle"]].tolist() == [True, True]


# -- rules on small frames ---------------------------------------------------------------


def test_closed_ways_and_area_tags() -> None:
    ring = _ring(40, 25)
    layers, _ = _classify(
        ("way/1", {"highway": "pedestrian", "area": "yes", "name": "Plaza"}, ring),
        ("way/2", {"highway": "pedestrian", "name": "Loop"}, _ring(40, 25, 100)),
        ("way/3", {"leisure": "park", "area": "no"}, _ring(40, 25, 200)),
        ("way/4", {"leisure": "park"}, _ring(40, 25, 300)),
        ("way/5", {"building": "no"}, _ring(10, 10, 400)),
        ("way/6", {"place": "square"}, _line((0, 100), (50, 100))),
    )
    spaces, street = layers["public_space"], layers["street"]
    assert spaces.loc["way/1", "kind"] == "pedestrian_area"
    assert _area(spaces, "way/1") == pytest.approx(1000, rel=1e-6)
    assert "way/1" not in street.index  # an area, not a street
    assert street.loc["way/2", "highway"] == "pedestrian"  # closed without area=yes: a line
    assert "way/2" not in spaces.index
    assert "way/3" not in spaces.index and "way/3" not in layers["landcover"].index
    # A park is a public space and basemap landcover.
    assert (
        spaces.loc["way/4", "kind"] == "park"
        and layers["landcover"].loc["way/4", "kind"] == "green"
    )
    assert layers["building"].empty  # building=no
    assert "way/6" not in spaces.index  # an open way is no square


def test_polygons_from_any_reader_and_json_tags() -> None:
    rows = (
        ("way/1", {"place": "square", "name": "S"}, shapely.Polygon(_ring(30, 30).coords)),
        (
            "way/2",
            {"amenity": "theatre", "capacity": "450"},
            shapely.Polygon(_ring(20, 10, 50).coords),
        ),
    )
    frame = _frame(*rows)
    frame["tags"] = frame["tags"].map(json.dumps)  # as a store gives them back
    report = IngestReport()
    layers = classify(frame, crs=UTM, report=report)
    assert layers["public_space"].loc["way/1", "kind"] == "square"
    assert _area(layers["public_space"], "way/1") == pytest.approx(900, rel=1e-6)
    theatre = layers["poi"].loc["way/2"]
    assert (theatre["kind"], theatre["tag"], theatre["capacity"]) == (
        "culture",
        "amenity=theatre",
        450,
    )
    assert shapely.within(theatre.geometry, _geo(shapely.Polygon(_ring(20, 10, 50).coords)))


def test_invalid_areas_are_repaired_or_dropped() -> None:
    bowtie = _line((0, 0), (20, 20), (20, 0), (0, 20), (0, 0))
    flat = _line((0, 50), (20, 50), (20, 50), (0, 50))  # there and back: no surface
    layers, report = _classify(
        ("way/1", {"building": "yes"}, bowtie), ("way/2", {"building": "yes"}, flat)
    )
    assert list(layers["building"].index) == ["way/1"]
    assert _area(layers["building"], "way/1") == pytest.approx(200, rel=1e-6)
    assert report.dropped == {("building", DROP_INVALID_AREA): 1}


def test_street_flags_and_values() -> None:
    seg = _line((0, 0), (50, 0))
    layers, _ = _classify(
        ("way/1", {"highway": "footway", "width": "1.2"}, seg),
        ("way/2", {"highway": "footway", "width": "3"}, seg),
        (
            "way/3",
            {"highway": "residential", "foot": "no", "maxspeed": "30 mph", "lanes": "2"},
            seg,
        ),
        ("way/4", {"highway": "steps"}, seg),
        ("way/5", {"highway": "raceway", "maxspeed": "RO:urban"}, seg),
        ("way/6", {"highway": "primary", "access": "no", "oneway": "yes", "width": "7'6\""}, seg),
    )
    street = layers["street"]
    assert street["walk"].tolist() == [True, True, False, True, False, True]
    assert street["hostile_vehicle"].tolist() == [False, True, True, False, False, True]
    assert street.loc["way/3", "maxspeed_kmh"] == pytest.approx(48.28032)
    assert street.loc["way/3", "lanes"] == 2
    assert np.isnan(street.loc["way/5", "maxspeed_kmh"])
    assert street.loc["way/6", "width_m"] == pytest.approx(2.286)
    # The threshold is a parameter: at 1.0 m the 1.2 m footway is vehicle-passable.
    wide, _ = _classify(
        ("way/1", {"highway": "footway", "width": "1.2"}, seg), min_vehicle_width_m=1.0
    )
    assert wide["street"]["hostile_vehicle"].tolist() == [True]


def test_pedestrian_corridors() -> None:
    layers, report = _classify(
        ("way/20", {"highway": "pedestrian", "name": "Strada A"}, _line((0, 0), (20, 0))),
        ("way/10", {"highway": "pedestrian", "name": "Strada A"}, _line((20, 0), (40, 0))),
        ("way/30", {"highway": "pedestrian", "name": "Strada B"}, _line((40, 0), (80, 0))),
        ("way/40", {"highway": "pedestrian", "width": "4"}, _line((0, 100), (50, 100))),
        ("way/50", {"highway": "pedestrian"}, _line((0, 200), (20, 200))),
        ("way/60", {"highway": "pedestrian", "name": "Strada A"}, _line((0, 300), (35, 300))),
    )
    spaces = layers["public_space"]
    assert sorted(spaces.index) == ["corridor/10", "corridor/30", "corridor/40", "corridor/60"]
    assert set(spaces["kind"]) == {"pedestrian_street"}
    # Two touching 20 m ways of Strada A: one corridor 40 m x 6 m (class default) with
    # round ends: 40·6 + π·3².
    assert _area(spaces, "corridor/10") == pytest.approx(240 + math.pi * 9, rel=1e-3)
    assert spaces.loc["corridor/10", "name"] == "Strada A"
    # Strada B touches Strada A but is another street.
    assert _area(spaces, "corridor/30") == pytest.approx(240 + math.pi * 9, rel=1e-3)
    # A mapped width of 4 m: 50·4 + π·2².
    assert _area(spaces, "corridor/40") == pytest.approx(200 + math.pi * 4, rel=1e-3)
    # Same name, not touching: a separate corridor.
    assert spaces.loc["corridor/60", "name"] == "Strada A"
    assert report.dropped == {("public_space", DROP_SHORT_STREET): 1}  # way/50, 20 m
    assert len(layers["street"]) == 6  # every way stays in the street layer
    longer, report = _classify(
        ("way/60", {"highway": "pedestrian"}, _line((0, 0), (35, 0))),
        min_pedestrian_street_length_m=40,
    )
    assert longer["public_space"].empty and report.dropped == {
        ("public_space", DROP_SHORT_STREET): 1
    }


def test_station_forecourts() -> None:
    station = ("node/1", {"railway": "station", "name": "Gara"}, shapely.Point(0, 0))
    near = ("way/2", {"place": "square"}, _ring(20, 20, 80, -10))  # 80 m away
    far = ("way/3", {"highway": "pedestrian", "area": "yes"}, _ring(20, 20, -170, -10))  # 150 m
    park = ("way/4", {"leisure": "park"}, _ring(20, 20, -10, 50))  # 50 m, not a square
    layers, _ = _classify(station, near, far, park)
    kinds = layers["public_space"]["kind"].to_dict()
    assert kinds == {"way/2": "station_forecourt", "way/3": "pedestrian_area", "way/4": "park"}
    assert layers["poi"].loc["node/1", "tag"] == "railway=station"
    wider, _ = _classify(station, near, far, station_forecourt_distance_m=160)
    assert wider["public_space"].loc["way/3", "kind"] == "station_forecourt"


def test_surveillance_kind_and_empty_input() -> None:
    layers, _ = _classify(
        (
            "node/1",
            {"man_made": "surveillance", "surveillance:type": "camera"},
            shapely.Point(0, 0),
        ),
        ("node/2", {"man_made": "surveillance"}, shapely.Point(5, 0)),
        ("node/3", {"entrance": "main"}, shapely.Point(9, 0)),
    )
    assert layers["surveillance"]["kind"].tolist() == ["camera", "surveillance"]
    assert layers["entrance"]["kind"].tolist() == ["main"]
    empty = classify(elements_frame([], source="x", data_date=None), crs=UTM, report=IngestReport())
    assert all(layer.empty for layer in empty.values()) and list(empty) == list(SOURCE_LAYERS)


def test_layers_of_and_keys() -> None:
    assert layers_of(
        [{"building": "yes", "amenity": "townhall"}, {"highway": "primary"}, {"place": "suburb"}],
        shapes=["closed_line", "line", "closed_line"],
    ) == [["poi", "building"], ["street"], []]
    assert {"place", "highway", "barrier", "entrance", "man_made"} <= set(osm_keys())


def test_bad_rules_are_config_errors() -> None:
    rules = table("osm_taxonomy")
    rules.loc[0, "geometry"] = "blob"
    with pytest.raises(ConfigError, match=r"osm_taxonomy\.csv, line 2: geometry must be"):
        osm_keys(rules)
    rules = table("osm_taxonomy")
    rules.loc[3, "layer"] = "plaza"
    with pytest.raises(ConfigError, match=r"line 5: unknown layer 'plaza'"):
        osm_keys(rules)


@pytest.mark.parametrize(
    ("parse", "values", "expected"),
    [
        (
            parse_number,
            ["3", " 2.5 ", "4,5", "2;3", "many", None, ""],
            [3, 2.5, 4.5, None, None, None, None],
        ),
        (
            parse_length,
            ["2 m", "2.5m", "6 metres", "12 ft", "3'", "x", None],
            [2, 2.5, 6, 3.6576, 0.9144, None, None],
        ),
        (
            parse_maxspeed,
            ["50", "50 km/h", "20 knots", "none", "walk", "50;30", None],
            [50, 50, 37.04, None, None, None, None],
        ),
    ],
)
def test_parsers(parse: Any, values: list[str | None], expected: list[float | None]) -> None:
    got = parse(pd.Series(values, index=list("abcdefg")[: len(values)], dtype="object"))
    assert list(got.index) == list("abcdefg")[: len(values)]
    want = np.array([np.nan if e is None else e for e in expected], dtype=float)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-9)
