"""Exports: RFC 7946 GeoJSON, GeoPackage, CSV (each replaced atomically), site reports."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo_protect import ValidationError
from geo_protect.assess.questionnaire import CityAssessment, override
from geo_protect.assess.scores import score
from geo_protect.errors import StoreError
from geo_protect.outputs.exports import (
    export_city,
    exportable_layers,
    write_csv,
    write_geojson,
    write_geopackage,
)
from geo_protect.outputs.site_reports import site_report
from geo_protect.store import GeoPackageStore
from tests import assessment_cases as cases
from tests.needs import ogrinfo
from tests.store_cases import REPORT, assert_same_layer, source_layers


@pytest.fixture(scope="module")
def draft() -> CityAssessment:
    return cases.draft()


def test_geojson_is_rfc7946(draft: CityAssessment, tmp_path: Path) -> None:
    scores = score(draft)
    path = write_geojson(scores, tmp_path / "scores.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    feature = next(f for f in doc["features"] if f["properties"]["uid"] == "way/1|VEHICLE_RAMMING")
    lon, lat = feature["geometry"]["coordinates"]
    point = scores.geometry["way/1|VEHICLE_RAMMING"]
    assert (lon, lat) == pytest.approx((point.x, point.y), abs=1e-7)
    assert 25 < lon < 26 and 45 < lat < 46  # lon/lat order for Brașov
    assert (
        feature["properties"]["risk_100"] == pytest.approx(100 * 19 / 24)
        and feature["properties"]["band"] == "very high"
    )
    with pytest.raises(ValidationError, match="CRS must be EPSG:4326"):
        write_geojson(scores.to_crs(cases.CRS), tmp_path / "bad.geojson")


def test_export_city_writes_every_format(draft: CityAssessment, tmp_path: Path) -> None:
    layers = {"public_space": cases.spaces(), "assessment": score(draft)}
    files = export_city("brasov", layers, tmp_path)
    assert sorted(p.name for p in files) == [
        "brasov.gpkg",
        "brasov_assessment.csv",
        "brasov_assessment.geojson",
        "brasov_public_space.csv",
        "brasov_public_space.geojson",
    ]
    assert sorted(pyogrio.list_layers(tmp_path / "brasov.gpkg")[:, 0]) == [
        "assessment",
        "plan_barrier_line",  # the empty barrier-scenario template (tests/test_scenario_files)
        "plan_barrier_point",
        "public_space",
    ]
    back = gpd.read_file(tmp_path / "brasov.gpkg", layer="assessment").set_index("uid")
    assert len(back) == 30 and back.loc["way/2|VEHICLE_RAMMING", "band"] == "low"
    with pytest.raises(ValidationError, match="unknown pdf"):
        export_city("brasov", layers, tmp_path, formats=["pdf"])


def test_csv_geometry_round_trips(tmp_path: Path) -> None:
    spaces = cases.spaces()
    frame = pd.read_csv(write_csv(spaces, tmp_path / "s.csv")).set_index("uid")
    geoms = shapely.from_wkt(frame["wkt"].to_numpy())
    assert shapely.equals_exact(geoms, spaces.geometry.to_numpy(), tolerance=1e-7).all()
    inside = shapely.contains(
        spaces.geometry.to_numpy(), shapely.points(frame[["lon", "lat"]].to_numpy())
    )
    assert inside.all() and frame.loc["way/1", "name"] == "Piața A"


def test_site_report_shows_evidence_overrides_and_gaps(
    draft: CityAssessment, tmp_path: Path
) -> None:
    edited = override(
        draft, "way/1", "VEHICLE_RAMMING", "vulnerability", 3, by="M. Field", reason="new bollards",
        at=dt.date(2026, 11, 21),
    )  # fmt: skip
    path = site_report(
        edited,
        "way/1",
        score(edited),
        tmp_path / "a.html",
        city_label="Brașov",
        generated=dt.date(2026, 11, 26),
    )
    html = path.read_text(encoding="utf-8")
    assert "<h1>Piața A</h1>" in html and "@media print" in html
    assert "overridden 5 → 3 by M. Field on 2026-11-21: new bollards" in html
    assert "48 ≤ worst_speed_kmh &lt; ∞" in html  # evidence, HTML-escaped
    assert "not assessed" in html and "node/9" in html  # empty ratings and the OSM bollard
    assert "R_100 = 100 × (L·C − 1²)/(5² − 1²) = 100 × (3·5 − 1)/24 = 58.3" in html
    for external in ("<script", "<link", 'src="http'):
        assert external not in html


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_export_leaves_the_previous_export_byte_identical(
    draft: CityAssessment, tmp_path: Path
) -> None:
    """A GeoPackage table GDAL refuses, after a good one, fails the export without a trace.

    Fails at HEAD: ``export_city`` rewrote the GeoJSON and CSV of each layer in turn and
    ``write_geopackage`` deleted ``brasov.gpkg`` before writing table by table, so the
    failure left new GeoJSON/CSV files and a GeoPackage with only ``public_space``.
    """
    good = {"public_space": cases.spaces(), "assessment": score(draft)}
    export_city("brasov", good, tmp_path)
    before = _files(tmp_path)
    spaces = cases.spaces()
    spaces["name"] = "renamed"  # a new export that would differ in every file
    broken = score(draft).assign(fid="not an integer")  # GeoPackage keeps 'fid' for the key
    with pytest.raises(StoreError, match=r"brasov\.gpkg: export failed, the previous file is"):
        export_city("brasov", {"public_space": spaces, "assessment": broken}, tmp_path)
    assert _files(tmp_path) == before  # same names (no temporary file), same bytes


def test_failed_geopackage_export_keeps_the_old_file(draft: CityAssessment, tmp_path: Path) -> None:
    """A layer that fails validation after a good one: nothing is deleted or written.

    Fails at HEAD: ``write_geopackage`` deleted the old file first, then wrote
    ``public_space`` before reaching the layer in the wrong CRS.
    """
    path = write_geopackage({"assessment": score(draft)}, tmp_path / "brasov.gpkg")
    before = _files(tmp_path)
    layers = {"public_space": cases.spaces(), "assessment": score(draft).to_crs(cases.CRS)}
    with pytest.raises(ValidationError, match="layer 'assessment': CRS must be EPSG:4326"):
        write_geopackage(layers, path)
    assert _files(tmp_path) == before
    assert pyogrio.list_layers(path)[:, 0].tolist() == ["assessment"]
    with pytest.raises(ValidationError, match="no layers to write"):
        write_geopackage({}, path)  # at HEAD: deleted the file and wrote nothing
    assert _files(tmp_path) == before


def test_single_file_writes_replace_atomically(tmp_path: Path) -> None:
    """GeoJSON and CSV replace the previous file; a write that fails leaves it as it was.

    Fails at HEAD: the failed CSV write (over a folder) raised a bare ``IsADirectoryError``
    instead of a :class:`StoreError` naming the file.
    """
    spaces = cases.spaces()
    geojson = write_geojson(spaces, tmp_path / "s.geojson")
    first = geojson.read_bytes()
    assert write_geojson(spaces.iloc[:1], geojson) == geojson and geojson.read_bytes() != first
    (tmp_path / "s.csv" / "inside").mkdir(parents=True)  # a folder where the CSV should go
    with pytest.raises(StoreError, match=r"s\.csv: cannot move \.s\..*\.tmp\.csv over it"):
        write_csv(spaces, tmp_path / "s.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.geojson"]


def test_exportable_layers_reads_the_stored_city_at_once(tmp_path: Path) -> None:
    """The exported layers come from one ``read_layers`` of the store, in export order.

    Passes at HEAD too (a regression check): for a store nobody writes to, the old
    ``layers()``-then-``read_layer`` code gave the same result; the snapshot property
    itself is tested in tests/test_store_contract.py.
    """
    store = GeoPackageStore(tmp_path, reference_version="test")
    layers = source_layers()
    store.replace_city("brasov", layers, REPORT)
    got = exportable_layers(store, "brasov")
    # the exported layers that are stored (street, poi, building... are not exported)
    assert list(got) == ["public_space", "barrier", "surveillance"]
    for name in got:
        assert_same_layer(got[name], layers[name])


#: "GPKG" in ASCII, the application_id of every GeoPackage (OGC 12-128r18 §1.1.1.1.1).
GPKG_APPLICATION_ID = int.from_bytes(b"GPKG", "big")


def test_exported_geopackage_opens_in_the_system_gdal_without_warning(tmp_path: Path) -> None:
    """The GIS export is GeoPackage 1.2 and every table declares its geometry type.

    Fails at HEAD: pyogrio's GDAL 3.12 wrote GeoPackage 1.4 (user_version 10400), which
    Debian 12's GDAL 3.6 opens with "Warning 1: This version of GeoPackage
    user_version=0x000028A0 (10400, v1.4.0) ... may only be partially supported", and the
    barrier layer (bollard nodes and wall ways) was one table of type GEOMETRY.
    """
    layers = source_layers()
    barriers = layers["barrier"]
    kinds = barriers.geometry.geom_type
    path = write_geopackage(
        {"public_space": cases.spaces(), "barrier": barriers}, tmp_path / "brasov.gpkg"
    )
    listing = ogrinfo("-so", str(path))
    assert listing.stderr == ""  # no "may only be partially supported"
    tables = dict(re.findall(r"^\d+: (\S+) \((.+)\)$", listing.stdout, flags=re.MULTILINE))
    assert tables == {
        "public_space": "Multi Polygon",
        "barrier_point": "Point",
        "barrier_line": "Line String",
    }
    for table, wanted in (("barrier_point", "Point"), ("barrier_line", "LineString")):
        info = ogrinfo("-so", str(path), table)
        assert info.stderr == ""
        n = int((kinds == wanted).sum())  # 1 bollard node, 1 wall way in the fixture
        assert n == 1 and f"Feature Count: {n}" in info.stdout
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == GPKG_APPLICATION_ID
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2
        declared = dict(
            con.execute("SELECT table_name, geometry_type_name FROM gpkg_geometry_columns")
        )
    assert declared == {
        "public_space": "MULTIPOLYGON",
        "barrier_point": "POINT",
        "barrier_line": "LINESTRING",
    }
    back = gpd.read_file(path, layer="barrier_point").set_index("uid")
    assert back.index.tolist() == barriers.index[kinds == "Point"].tolist()


def test_mixed_layer_outside_the_model_is_split_only_when_mixed(tmp_path: Path) -> None:
    """A layer the data model does not know keeps one table when all its rows are alike."""
    pts = cases.spaces().assign(geometry=lambda g: g.geometry.representative_point())
    path = write_geopackage({"notes": pts}, tmp_path / "n.gpkg")
    assert pyogrio.list_layers(path).tolist() == [["notes", "Point"]]
    mixed = pd.concat([pts.iloc[:1], cases.spaces().iloc[1:]])
    path = write_geopackage({"notes": gpd.GeoDataFrame(mixed, crs=4326)}, tmp_path / "m.gpkg")
    assert pyogrio.list_layers(path).tolist() == [
        ["notes_point", "Point"],
        ["notes_polygon", "MultiPolygon"],
    ]


def test_embedded_store_is_geopackage_1_2_with_one_table_per_layer(tmp_path: Path) -> None:
    """The store's files open in GDAL 3.6 too; its barrier table stays whole (its contract)."""
    store = GeoPackageStore(tmp_path, reference_version="test")
    store.replace_city("brasov", source_layers(), REPORT)
    path = tmp_path / "brasov.gpkg"
    assert ogrinfo("-so", str(path)).stderr == ""
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
    assert "barrier" in pyogrio.list_layers(path)[:, 0]
