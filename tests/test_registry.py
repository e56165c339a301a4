"""City registry, reference tables and the layer schema: validation at the boundary."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.cities import get_city, load_cities
from geo_protect.errors import ConfigError, UnknownCityError, ValidationError
from geo_protect.reference import CONFIDENCE, parameter, table, version
from geo_protect.schema import LAYERS, SOURCE_LAYERS, conform, empty_layer

DATA = Path(__file__).resolve().parent.parent / "data"


def test_registry_has_the_five_cities_with_metric_crs() -> None:
    cities = load_cities(DATA)
    assert list(cities) == ["brasov", "eindhoven", "larissa", "malaga", "vilnius"]
    assert {c.crs for c in cities.values()} == {
        "EPSG:32635",
        "EPSG:32631",
        "EPSG:32634",
        "EPSG:32630",
    }
    for city in cities.values():
        for source in city.sources:
            assert city.path(source).is_file(), source.path
        lat, lon = city.centre
        w, s, e, n = city.bbox
        assert w < lon < e and s < lat < n, city.slug


@pytest.mark.parametrize("name", ["Brașov", "brasov", "BRASOV", "Málaga", "malaga", "Larissa"])
def test_city_lookup_ignores_case_and_accents(name: str) -> None:
    assert get_city(name, DATA).slug in {"brasov", "malaga", "larissa"}


def test_unknown_city_lists_the_known_ones() -> None:
    with pytest.raises(UnknownCityError, match="known cities: brasov, eindhoven"):
        get_city("atlantis", DATA)


def _registry_with(tmp_path: Path, entry: str) -> Path:
    (tmp_path / "reference").mkdir()
    (tmp_path / "cities.toml").write_text(entry, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            '[cities.x]\nname="X"\nname_en="X"\ncountry="RO"\ncentre=[45.6,25.6]\n'
            'bbox=[25.7,45.5,25.5,45.7]\ncrs="EPSG:32635"\ntimezone="UTC"\n',
            r"city 'x': bbox: .*empty",
        ),
        (
            '[cities.x]\nname="X"\nname_en="X"\ncountry="RO"\ncentre=[45.6,25.6]\n'
            'bbox=[25.5,45.5,25.7,45.7]\ncrs="EPSG:4326"\ntimezone="UTC"\n',
            "not a projected CRS in metres",
        ),
        (
            '[cities.x]\nname="X"\nname_en="X"\ncountry="RO"\ncentre=[45.6,25.6]\n'
            'bbox=[25.5,45.5,25.7,45.7]\ncrs="EPSG:32635"\ntimezone="UTC"\n'
            '[[cities.x.sources]]\nkind="geojson"\npath="a.geojson"\n',
            "needs `layer`",
        ),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_registry_entries_name_the_city_and_field(
    tmp_path: Path, entry: str, message: str
) -> None:
    folder = _registry_with(tmp_path, entry)
    with pytest.raises(ConfigError, match=message):
        load_cities(folder)


def test_every_reference_table_carries_provenance() -> None:
    for path in sorted((DATA / "reference").glob("*.csv")):
        frame = table(path.stem, DATA)
        assert set(frame["confidence"]) <= set(CONFIDENCE), path.name
        assert frame["source"].notna().all(), path.name
    assert version(DATA)
    assert parameter("max_bollard_gap_m", DATA) == 1.2


def test_reference_table_without_provenance_is_rejected(tmp_path: Path) -> None:
    shutil.copy(DATA / "cities.toml", tmp_path / "cities.toml")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "parameters.csv").write_text("name,value\nx,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks the 'confidence' column"):
        table("parameters", tmp_path)
    (tmp_path / "reference" / "parameters.csv").write_text(
        "name,value,confidence,source\nx,1,Q,somewhere\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="line 2: confidence must be one of"):
        table("parameters", tmp_path)


def test_empty_layers_have_the_declared_columns() -> None:
    for name in SOURCE_LAYERS:
        layer = empty_layer(name)
        assert list(layer.columns[:-1]) == list(LAYERS[name].columns)
        assert layer.crs == "EPSG:4326"
        assert layer.index.name == "uid"


def _space(geom: shapely.Geometry, crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "osm_type": ["way"],
            "osm_id": [1],
            "name": ["Piața Sfatului"],
            "kind": ["square"],
            "tags": [{"place": "square"}],
            "source": ["test"],
            "data_date": [None],
        },
        geometry=[geom],
        index=["way/1"],
        crs=crs,
    )


def test_conform_promotes_polygons_and_serialises_tags() -> None:
    out = conform("public_space", _space(shapely.box(25.58, 45.64, 25.59, 45.65)))
    assert out.geometry.iloc[0].geom_type == "MultiPolygon"
    assert out["tags"].iloc[0] == '{"place":"square"}'
    assert out["osm_id"].dtype == "Int64"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_space(shapely.box(0, 0, 1, 1), crs="EPSG:32635"), "CRS must be EPSG:4326"),
        (_space(shapely.Point(25.58, 45.64)), "expected polygons"),
        (_space(shapely.Polygon()), "empty or missing geometries"),
        (_space(shapely.box(0, 0, 1, 1)).drop(columns="kind"), "missing column"),
        (pd.concat([_space(shapely.box(0, 0, 1, 1))] * 2), "is not unique"),
    ],
)
def test_conform_rejects_bad_layers(frame: gpd.GeoDataFrame, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        conform("public_space", frame)


def test_numeric_columns_keep_missing_values() -> None:
    frame = _space(shapely.box(0, 0, 1, 1))
    frame["osm_id"] = [np.nan]
    assert conform("public_space", frame)["osm_id"].isna().all()
