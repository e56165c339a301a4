"""Barrier scenarios drawn by planners: GeoJSON / GeoPackage in, a validated Scenario out.

The city is the Brașov centre clip (``centre_city``) and the barriers to remove or open
are real OSM barriers of it (``centre_data["barrier"]``). Every bad input gets its own
message naming the file, the feature and the field; nothing comes back half-built.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely import LineString, Point

from geo_protect.analysis.crash_ratings import parse_rating
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import ValidationError
from geo_protect.outputs.exports import export_city
from geo_protect.reference import parameter
from geo_protect.scenario import PLAN_FIELDS, BarrierEdit, Scenario, read_scenario
from tests.needs import ogrinfo

#: Piața Sfatului, inside the centre clip's bbox (25.575, 45.633, 25.605, 45.652).
SQUARE = (25.5887, 45.6419)
#: A row of posts across a street by the square (about 78 m long), and a short wall.
ROW = LineString([(25.5880, 45.6421), (25.5890, 45.6421)])
WALL = LineString([(25.5885, 45.6415), (25.5886, 45.6416)])
RATING = "V/7200[N2A]/48/90:0.0"  # the ISO 22343-1 example of the domain brief §2.3
#: Stereo 70, Romania's national projected CRS.
STEREO70 = "EPSG:3844"


def _geojson(path: Path, features: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"type": "FeatureCollection", **extra, "features": features}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    geom = None if geometry is None else shapely.geometry.mapping(geometry)
    return {"type": "Feature", "properties": properties, "geometry": geom}


@pytest.fixture(scope="module")
def barriers(centre_data: CityData) -> gpd.GeoDataFrame:
    return centre_data["barrier"]


@pytest.fixture(scope="module")
def gate(barriers: gpd.GeoDataFrame) -> str:
    return str(barriers.index[barriers["kind"] == "gate"][0])


@pytest.fixture(scope="module")
def bollard(barriers: gpd.GeoDataFrame) -> str:
    return str(barriers.index[barriers["kind"] == "bollard"][0])


def _read(path: Path, city: City, barriers: gpd.GeoDataFrame, **kw: Any) -> Scenario:
    return read_scenario(path, city=city, barriers=barriers, **kw)


# -- round trips -------------------------------------------------------------------------------


def test_geojson_reads_into_a_scenario(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame, gate: str, bollard: str
) -> None:
    path = _geojson(
        tmp_path / "market day.geojson",
        [
            _feature(ROW, type="bollard_row", spacing_m=1.5, rating=RATING, note="north side"),
            _feature(None, action="open", osm_id=gate, note="deliveries 6-10"),
            _feature(Point(SQUARE), action="remove", osm_id=bollard),  # a marker: ignored
            _feature(Point(SQUARE), type="block", action=""),  # blank action is add
        ],
    )
    created = dt.datetime(2026, 5, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    sc = _read(path, centre_city, barriers, author="planner", created=created)
    assert (sc.name, sc.city, sc.author) == ("market day", "brasov", "planner")
    assert sc.created == dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)  # UTC+3 -> UTC
    row, opened, removed, block = sc.edits
    assert (row.action, row.kind, row.spacing_m, row.rating) == ("add", "bollard_row", 1.5, RATING)
    assert row.geometry is not None and row.geometry.equals_exact(ROW, 1e-12)
    assert row.note == "north side"
    # 1.5 m centres with posts of bollard_diameter_m leave spacing - diameter clear
    assert row.clear_gap_m() == pytest.approx(1.5 - parameter("bollard_diameter_m"))
    assert (opened.action, opened.osm_id, opened.geometry) == ("open", gate, None)
    assert (removed.action, removed.osm_id, removed.geometry) == ("remove", bollard, None)
    assert (block.action, block.kind, block.spacing_m) == ("add", "block", None)
    assert Scenario.model_validate_json(sc.model_dump_json()) == sc


def test_geopackage_in_a_projected_crs_is_reprojected(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "plan.gpkg"
    lines = gpd.GeoDataFrame({"type": ["wall"]}, geometry=[WALL], crs=4326).to_crs(STEREO70)
    points = gpd.GeoDataFrame(
        {"type": ["planter", "temporary"], "note": ["", "water-filled"]},
        geometry=[Point(SQUARE), Point(25.5890, 45.6420)],
        crs=4326,
    ).to_crs(STEREO70)
    pyogrio.write_dataframe(points, path, layer="plan_barrier_point")
    pyogrio.write_dataframe(lines, path, layer="plan_barrier_line")
    sc = _read(path, centre_city, barriers)
    assert sc.name == "plan" and sc.author is None
    assert [e.kind for e in sc.edits] == ["planter", "temporary", "wall"]  # points, then lines
    assert sc.edits[1].note == "water-filled" and sc.edits[0].note == ""
    # projected there and back: the same place to well under a centimetre (1e-7 deg)
    for edit, original in zip(
        sc.edits, [Point(SQUARE), Point(25.5890, 45.6420), WALL], strict=True
    ):
        assert edit.geometry is not None and edit.geometry.equals_exact(original, 1e-7)


def test_geojson_with_a_crs_member_is_reprojected(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    """Old GeoJSON (2008) could name its CRS; RFC 7946 files without one are WGS84."""
    projected = gpd.GeoSeries([Point(SQUARE)], crs=4326).to_crs(STEREO70).iloc[0]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3844"}}
    path = _geojson(tmp_path / "old.geojson", [_feature(projected, type="block")], crs=crs)
    (edit,) = _read(path, centre_city, barriers).edits
    assert edit.geometry is not None and edit.geometry.equals_exact(Point(SQUARE), 1e-7)


# -- bad input: one message naming the file, the feature and the field -------------------------

GOOD = _feature(Point(SQUARE), type="block")
BOWTIE = LineString([(25.588, 45.641), (25.589, 45.642), (25.589, 45.641), (25.588, 45.642)])

BAD_FEATURES = {
    "outside the city": (
        _feature(Point(26.1025, 44.4268), type="block"),  # Bucharest
        "geometry",
        "outside brasov's bbox",
    ),
    "empty geometry": (_feature(None, type="wall"), "geometry", "empty"),
    "self-intersecting line": (
        _feature(BOWTIE, type="bollard_row"),
        "geometry",
        "the line intersects itself",
    ),
    "zero-length line": (
        _feature(LineString([SQUARE, SQUARE]), type="wall"),
        "geometry",
        "zero length",
    ),
    "point where a line is needed": (
        _feature(Point(SQUARE), type="bollard_row"),
        "geometry",
        "a bollard_row needs a line, got a point",
    ),
    "polygon": (
        _feature(shapely.box(25.588, 45.641, 25.589, 45.642), type="block"),
        "geometry",
        "a Polygon; a block is a point or a line",
    ),
    "projected coordinates without a crs": (
        _feature(Point(545000, 460000), type="block"),
        "geometry",
        "not WGS84 longitude/latitude",
    ),
    "unknown type": (
        _feature(Point(SQUARE), type="sandbag"),
        "type",
        "unknown barrier type 'sandbag' (known: bollard_row, block, planter, gate, wall, "
        "temporary, vehicle)",
    ),
    "no type": (_feature(Point(SQUARE)), "type", "unknown barrier type None"),
    "unknown action": (_feature(Point(SQUARE), type="block", action="close"), "action", "'add'"),
    "spacing of a wall": (
        _feature(WALL, type="wall", spacing_m=1.4),
        "spacing_m",
        "only a row of posts has a spacing",
    ),
    "posts touching": (
        _feature(ROW, type="bollard_row", spacing_m=0.2),
        "spacing_m",
        "leaves no gap between posts",
    ),
    "negative spacing": (
        _feature(ROW, type="bollard_row", spacing_m=-1.0),
        "spacing_m",
        "greater than 0",
    ),
    "remove without osm_id": (_feature(None, action="remove"), "osm_id", "needs the OSM id"),
    "osm_id not a uid": (_feature(None, action="open", osm_id="123"), "osm_id", "not an OSM id"),
    "remove a barrier that does not exist": (
        _feature(None, action="remove", osm_id="node/1"),
        "osm_id",
        "no barrier node/1 in brasov's barriers",
    ),
    "type on a removal": (
        _feature(None, action="open", osm_id="node/1", type="gate"),
        "type",
        "not used by open",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FEATURES))
def test_a_bad_feature_is_named_with_its_field(
    case: str, tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    feature, field, problem = BAD_FEATURES[case]
    assert "node/1" not in barriers.index  # the id the bad cases use does not exist
    path = _geojson(tmp_path / "plan.geojson", [GOOD, feature])
    osm_id = feature["properties"].get("osm_id")
    label = "feature 2" + (f" ({osm_id})" if osm_id else "")
    with pytest.raises(ValidationError) as err:
        _read(path, centre_city, barriers)
    message = str(err.value)
    assert message.startswith(f"{path}: {label}, field {field!r}: ")
    assert problem in message
    assert message.count("feature ") == 1  # the good feature is not blamed


def test_an_invalid_rating_gives_the_parsers_message(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    bad = "V/7200[N9Z]/48/90:0.0"
    with pytest.raises(ValidationError) as parsed:
        parse_rating(bad)
    path = _geojson(tmp_path / "plan.geojson", [_feature(ROW, type="bollard_row", rating=bad)])
    with pytest.raises(ValidationError) as err:
        _read(path, centre_city, barriers)
    reason = str(parsed.value).removeprefix("rating: ")
    assert str(err.value) == f"{path}: feature 1, field 'rating': {reason}"


def test_every_bad_feature_is_listed_at_once(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    path = _geojson(
        tmp_path / "plan.geojson",
        [
            _feature(Point(SQUARE), type="sandbag"),
            GOOD,
            _feature(None, action="remove", osm_id="node/1"),
        ],
    )
    with pytest.raises(ValidationError) as err:
        _read(path, centre_city, barriers)
    assert str(err.value).startswith(f"{path}: 2 problems:\n  - feature 1, field 'type': ")
    found = re.findall(r"^  - feature (\d+)[^,]*, field '(\w+)'", str(err.value), re.MULTILINE)
    assert found == [("1", "type"), ("3", "osm_id")]


def test_the_same_barrier_edited_twice_is_refused(
    tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame, gate: str
) -> None:
    path = _geojson(
        tmp_path / "plan.geojson",
        [_feature(None, action="open", osm_id=gate), _feature(None, action="remove", osm_id=gate)],
    )
    with pytest.raises(ValidationError, match=rf"edits\[1\]: {gate} is edited twice"):
        _read(path, centre_city, barriers)


@pytest.mark.parametrize(
    ("crs", "problem"),
    [
        (None, "missing CRS"),
        ('LOCAL_CS["site grid",UNIT["metre",1]]', "cannot be converted to EPSG:4326"),
    ],
)
def test_a_geopackage_without_a_usable_crs_is_refused(
    crs: str | None, problem: str, tmp_path: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "plan.gpkg"
    frame = gpd.GeoDataFrame({"type": ["block"]}, geometry=[Point(SQUARE)], crs=crs)
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: the point
        warnings.simplefilter("ignore", UserWarning)
        pyogrio.write_dataframe(frame, path, layer="plan_barrier_point")
    with pytest.raises(ValidationError, match=re.escape(f"{path}, layer plan_barrier_point: ")):
        _read(path, centre_city, barriers)
    with pytest.raises(ValidationError, match=problem):
        _read(path, centre_city, barriers)


@pytest.mark.parametrize(
    ("name", "features", "problem"),
    [
        ("plan.geojson", [], "no features"),
        ("plan.geojson", [_feature(Point(SQUARE), type="block", colour="red")], "colour"),
        ("plan.shp", [], "a scenario is a .geojson, .json, .gpkg file"),
    ],
)
def test_a_file_without_edits_is_refused(
    name: str,
    features: list[dict[str, Any]],
    problem: str,
    tmp_path: Path,
    centre_city: City,
    barriers: gpd.GeoDataFrame,
) -> None:
    path = _geojson(tmp_path / name, features)
    with pytest.raises(ValidationError, match=re.escape(problem)):
        _read(path, centre_city, barriers)


def test_an_edit_is_strict_on_its_own() -> None:
    with pytest.raises(ValueError, match="extra"):
        BarrierEdit.model_validate({"action": "open", "osm_id": "node/1", "colour": "red"})
    with pytest.raises(ValueError, match="osm_id: an added barrier is new"):
        BarrierEdit(kind="block", geometry=Point(SQUARE), osm_id="node/1")


# -- the plan layers of the export -------------------------------------------------------------


def _ogrinfo(*args: str) -> str:
    done = ogrinfo(*args)
    assert done.stderr == ""
    return done.stdout


@pytest.fixture
def exported(tmp_path: Path, centre_data: CityData) -> Path:
    layers = {"public_space": centre_data["public_space"], "barrier": centre_data["barrier"]}
    export_city("brasov", layers, tmp_path, formats=["gpkg"])
    return tmp_path / "brasov.gpkg"


#: What ogrinfo calls the field types of PLAN_FIELDS.
OGR_TYPES = {"string": "String", "float64": "Real"}


def test_the_export_has_empty_plan_layers(exported: Path) -> None:
    listing = _ogrinfo("-so", str(exported))
    tables = dict(re.findall(r"^\d+: (\S+) \((.+)\)$", listing, flags=re.MULTILINE))
    assert tables["plan_barrier_point"] == "Point"
    assert tables["plan_barrier_line"] == "Line String"
    assert tables["barrier_point"] == "Point"  # the baseline stays as it was
    for table, wanted in (("plan_barrier_point", "Point"), ("plan_barrier_line", "LineString")):
        info = _ogrinfo("-so", str(exported), table)
        assert "Feature Count: 0" in info
        fields = dict(re.findall(r"^(\w+): (\w+) \(", info, flags=re.MULTILINE))
        assert fields == {c: OGR_TYPES[t] for c, t in PLAN_FIELDS.items()}
        meta = pyogrio.read_info(exported, layer=table)
        assert meta["geometry_type"] == wanted and meta["features"] == 0
        assert meta["crs"] == "EPSG:4326"
        assert list(meta["fields"]) == ["type", "action", "rating", "spacing_m", "osm_id", "note"]


def test_a_filled_export_reads_back(
    exported: Path, centre_city: City, barriers: gpd.GeoDataFrame, gate: str
) -> None:
    """What a planner does in QGIS: add features to the empty layers, save, read back."""
    row = gpd.GeoDataFrame(
        {"type": ["bollard_row"], "spacing_m": [1.3], "rating": [RATING]},
        geometry=[ROW],
        crs=4326,
    )
    opened = gpd.GeoDataFrame(
        {"action": ["open"], "osm_id": [gate], "note": ["deliveries"]},
        geometry=[barriers.geometry[gate]],
        crs=4326,
    )
    pyogrio.write_dataframe(opened, exported, layer="plan_barrier_point", append=True)
    pyogrio.write_dataframe(row, exported, layer="plan_barrier_line", append=True)
    sc = _read(exported, centre_city, barriers, name="delivery window")
    assert sc.name == "delivery window"
    first, second = sc.edits
    assert (first.action, first.osm_id, first.note) == ("open", gate, "deliveries")
    assert (second.kind, second.spacing_m, second.rating) == ("bollard_row", 1.3, RATING)
    assert second.geometry is not None and second.geometry.equals_exact(ROW, 1e-12)


def test_the_empty_export_is_not_a_scenario(
    exported: Path, centre_city: City, barriers: gpd.GeoDataFrame
) -> None:
    with pytest.raises(ValidationError, match="no features"):
        _read(exported, centre_city, barriers)
