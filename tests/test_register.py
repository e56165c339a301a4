"""A city's register of public spaces: a good file and each validation error."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import pytest
import shapely

from geo_protect.cities import City, get_city
from geo_protect.errors import DataSourceError, ValidationError
from geo_protect.osm.register import read_spaces
from geo_protect.schema import LAYERS, tags_of

CLIP = Path(__file__).resolve().parent.parent / "data/osm/brasov/brasov_centre.osm.bz2"
SFATULUI = 9620387  # relation Piața Sfatului (multipolygon)
SFATULUI_OUTER = 314820619  # its outer way


@pytest.fixture(scope="module")
def brasov() -> City:
    return get_city("brasov")


@pytest.fixture(scope="module")
def sfatului() -> shapely.Polygon:
    """The outline of Piața Sfatului (outer way of relation 9620387) from the Brașov clip."""
    refs: list[int] = []
    coords: dict[int, tuple[float, float]] = {}
    for obj in osmium.FileProcessor(str(CLIP)):
        if isinstance(obj, osmium.osm.Node):
            coords[obj.id] = (obj.location.lon, obj.location.lat)
        elif isinstance(obj, osmium.osm.Way) and obj.id == SFATULUI_OUTER:
            refs = [n.ref for n in obj.nodes]
            break
    return shapely.Polygon([coords[r] for r in refs])


def _feature(geom: Any, **props: Any) -> dict[str, Any]:
    geometry = json.loads(shapely.to_geojson(geom)) if geom is not None else None
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _write(tmp_path: Path, features: list[dict[str, Any]], name: str = "spaces.geojson") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    return path


def test_good_register(tmp_path: Path, brasov: City, sfatului: shapely.Polygon) -> None:
    market = shapely.box(25.5890, 45.6440, 25.5900, 45.6446)
    path = _write(
        tmp_path,
        [
            _feature(
                sfatului,
                id="sq-1",
                name="Piața Sfatului",
                kind="square",
                osm_type="relation",
                osm_id=SFATULUI,
                operator="Primăria",
            ),
            _feature(market, id=7, name="Christmas market"),
        ],
    )
    layer = read_spaces(path, city=brasov)
    assert list(layer.index) == [f"relation/{SFATULUI}", "register/7"]
    assert list(layer.columns[:-1]) == list(LAYERS["public_space"].columns)
    assert list(layer["kind"]) == ["square", "register"]
    assert list(layer["source"]) == ["spaces.geojson"] * 2
    assert layer.loc[f"relation/{SFATULUI}", "osm_id"] == SFATULUI
    assert tags_of(layer).iloc[0] == {"operator": "Primăria"}
    assert set(layer.geom_type) == {"MultiPolygon"}
    area = layer.to_crs(brasov.crs).area
    assert area.iloc[1] == pytest.approx(
        gpd.GeoSeries([market], crs="EPSG:4326").to_crs(brasov.crs).area.iloc[0], rel=1e-9
    )
    assert 5_000 < area.iloc[0] < 20_000  # Piața Sfatului is about 1.2 ha


def test_gpkg_in_another_crs_is_reprojected(
    tmp_path: Path, brasov: City, sfatului: shapely.Polygon
) -> None:
    utm = gpd.GeoDataFrame(
        {"id": ["a"], "name": ["Sfatului"]}, geometry=[sfatului], crs="EPSG:4326"
    )
    path = tmp_path / "spaces.gpkg"
    utm.to_crs(brasov.crs).to_file(path)
    layer = read_spaces(path, city=brasov)
    assert layer.crs.equals("EPSG:4326")
    assert shapely.equals_exact(layer.geometry.iloc[0].geoms[0], sfatului, tolerance=1e-7)


def test_gpkg_without_crs(tmp_path: Path, brasov: City, sfatului: shapely.Polygon) -> None:
    path = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gpd.GeoDataFrame({"id": ["a"], "name": ["x"]}, geometry=[sfatului]).to_file(path)
    with pytest.raises(ValidationError, match=r"nocrs\.gpkg: no CRS"):
        read_spaces(path, city=brasov)


def test_invalid_geometry_is_made_valid_and_said(
    tmp_path: Path, brasov: City, caplog: pytest.LogCaptureFixture
) -> None:
    bowtie = shapely.Polygon(
        [(25.589, 45.644), (25.590, 45.645), (25.590, 45.644), (25.589, 45.645)]
    )
    path = _write(tmp_path, [_feature(bowtie, id="bow", name="Bow tie")])
    with caplog.at_level(logging.WARNING, logger="geo_protect.osm.register"):
        layer = read_spaces(path, city=brasov)
    assert layer.attrs["repaired"] == ["feature id='bow'"]
    assert "Self-intersection" in caplog.text and "feature id='bow'" in caplog.text
    assert layer.geometry.iloc[0].is_valid
    assert len(layer.geometry.iloc[0].geoms) == 2  # the two triangles


SQUARE = shapely.box(25.5890, 45.6440, 25.5900, 45.6446)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([_feature(SQUARE, name="x")], r"spaces\.geojson: required field 'id' is missing"),
        ([_feature(SQUARE, id="a")], r"required field 'name' is missing"),
        (
            [_feature(SQUARE, id="a", name="x"), _feature(SQUARE, id=None, name="y")],
            r"spaces\.geojson: feature 1: required field 'id' is empty",
        ),
        ([_feature(SQUARE, id="a", name="")], r"feature id='a': required field 'name' is empty"),
        (
            [_feature(SQUARE, id="a", name="x"), _feature(SQUARE, id="a", name="y")],
            r"field 'id': 'a' is not unique",
        ),
        (
            [_feature(SQUARE, id="a", name="x", kind="car_park")],
            r"feature id='a': field 'kind': 'car_park' is not a public-space kind",
        ),
        (
            [_feature(SQUARE, id="a", name="x", osm_type="way")],
            r"give both 'osm_type' and 'osm_id'",
        ),
        (
            [_feature(SQUARE, id="a", name="x", osm_type="area", osm_id=3)],
            r"field 'osm_type': 'area' is not node, way or relation",
        ),
        (
            [_feature(SQUARE, id="a", name="x", osm_type="way", osm_id="12a")],
            r"field 'osm_id': '12a' is not a positive whole number",
        ),
        (
            [
                _feature(SQUARE, id="a", name="x", osm_type="way", osm_id=5),
                _feature(SQUARE, id="b", name="y", osm_type="way", osm_id=5),
            ],
            r"way/5 is replaced by more than one feature",
        ),
        ([_feature(None, id="a", name="x")], r"feature id='a': geometry is missing or empty"),
        (
            [_feature(shapely.Point(25.589, 45.644), id="p", name="x")],
            r"feature id='p': geometry is .*Point.*expected Polygon or MultiPolygon",
        ),
        (
            [
                _feature(SQUARE, id="in", name="x"),
                _feature(shapely.box(26.0, 45.0, 26.1, 45.1), id="far", name="y"),
            ],
            r"feature id='far' outside the bbox of Brasov",
        ),
    ],
)
def test_register_errors(
    tmp_path: Path, brasov: City, features: list[dict[str, Any]], message: str
) -> None:
    path = _write(tmp_path, features)
    with pytest.raises(ValidationError, match=message):
        read_spaces(path, city=brasov)


def test_missing_and_wrong_files(tmp_path: Path, brasov: City) -> None:
    with pytest.raises(DataSourceError, match="register file not found"):
        read_spaces(tmp_path / "none.geojson", city=brasov)
    csv = tmp_path / "spaces.csv"
    csv.write_text("id,name\n1,x\n")
    with pytest.raises(DataSourceError, match=r"spaces\.csv: a register must be one of"):
        read_spaces(csv, city=brasov)
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(DataSourceError, match=r"broken\.geojson: cannot read"):
        read_spaces(broken, city=brasov)
