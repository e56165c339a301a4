"""Exports: RFC 7946 GeoJSON, GeoPackage, CSV and the printable per-site report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo_protect import ValidationError
from geo_protect.assess.questionnaire import CityAssessment, override
from geo_protect.assess.scores import score
from geo_protect.outputs.exports import export_city, write_csv, write_geojson
from geo_protect.outputs.site_reports import site_report
from tests import assessment_cases as cases


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
        "public_space",
    ]
    back = gpd.read_file(tmp_path / "brasov.gpkg", layer="assessment").set_index("uid")
    assert len(back) == 30 and back.loc["way/2|VBIED", "band"] == "low"
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
