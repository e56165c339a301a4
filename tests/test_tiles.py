"""Vector tiles cut by PostGIS: the features of a tile are the rows that meet it.

The tile grid is recomputed here in closed form (Web Mercator, WebMercatorQuad) and the
expected features with shapely on the layer itself; tiles are decoded with the
mapbox-vector-tile package, a second implementation of the format.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import geopandas as gpd
import mapbox_vector_tile
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from geo_protect.errors import NotFoundError, ValidationError
from geo_protect.store.tiles import TILE_EXTENT, TILE_MARGIN, layer_tile
from tests.live_service import Server, seeded_database
from tests.tile_grid import tile_bounds as _bounds
from tests.tile_grid import tile_of as _tile_of

pytestmark = [pytest.mark.postgis]

SFATULUI = "relation/9620387"
Z = 16


@pytest.fixture(scope="module")
def tiles_db(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[str]:
    name = f"geo_protect_tiles_{os.getpid()}"
    with seeded_database(pg_admin_url, name, centre_data, dict(centre_layers)) as url:
        yield url


@pytest.fixture(scope="module")
def engine(tiles_db: str) -> Iterator[sa.Engine]:
    e = sa.create_engine(tiles_db)
    yield e
    e.dispose()


def _sfatului_tile(centre_data: CityData) -> tuple[int, int]:
    point = centre_data["public_space"].geometry[SFATULUI].representative_point()
    return _tile_of(point.x, point.y, Z)


def test_a_tile_holds_exactly_the_spaces_that_meet_it(
    engine: sa.Engine, centre_data: CityData
) -> None:
    x, y = _sfatului_tile(centre_data)
    spaces = centre_data["public_space"]
    box = shapely.box(*_bounds(Z, x, y, margin=TILE_MARGIN / TILE_EXTENT))
    expected = set(spaces.index[shapely.intersects(spaces.geometry.values, box)].astype(str))
    decoded = mapbox_vector_tile.decode(
        layer_tile(engine, "brasov", "public_space", Z, x, y, max_features=10_000)
    )
    got = {f["properties"]["uid"] for f in decoded["public_space"]["features"]}
    assert SFATULUI in got
    assert got == expected
    names = {
        f["properties"]["uid"]: f["properties"].get("name")
        for f in decoded["public_space"]["features"]
    }
    assert names[SFATULUI] == spaces.at[SFATULUI, "name"]


def test_features_per_tile_are_capped_and_far_tiles_are_empty(
    engine: sa.Engine, centre_data: CityData
) -> None:
    x, y = _sfatului_tile(centre_data)
    capped = mapbox_vector_tile.decode(
        layer_tile(engine, "brasov", "public_space", Z, x, y, max_features=1)
    )
    assert len(capped["public_space"]["features"]) == 1
    assert layer_tile(engine, "brasov", "public_space", Z, 0, 0, max_features=100) == b""


def test_bad_tiles_are_refused_naming_the_coordinate(engine: sa.Engine) -> None:
    with pytest.raises(ValidationError, match="z: 23"):
        layer_tile(engine, "brasov", "public_space", 23, 0, 0, max_features=1)
    with pytest.raises(ValidationError, match=r"x: 4 is outside 0\.\.3"):
        layer_tile(engine, "brasov", "public_space", 2, 4, 0, max_features=1)
    with pytest.raises(NotFoundError, match="'secret'"):
        layer_tile(engine, "brasov", "secret", 2, 0, 0, max_features=1)


def test_tiles_and_tilejson_over_http(tiles_db: str, centre_data: CityData) -> None:
    x, y = _sfatului_tile(centre_data)
    with (
        Server(tiles_db, workers=1, mqtt=False) as server,
        server.client(timeout=30) as c,
    ):
        r = c.get(f"/tiles/brasov/entry_point/{Z}/{x}/{y}.mvt")
        assert (
            r.status_code == 200
            and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        )
        features = mapbox_vector_tile.decode(r.content)["entry_point"]["features"]
        assert features and all("entry_class" in f["properties"] for f in features)
        empty = c.get(f"/tiles/brasov/public_space/{Z}/0/0.mvt")
        assert empty.status_code == 204
        bad = c.get("/tiles/brasov/public_space/2/9/0.mvt")
        assert bad.status_code == 400 and bad.json()["description"].startswith("x: 9")
        deep = c.get("/tiles/brasov/public_space/23/0/0.mvt")
        assert deep.status_code == 400 and deep.json()["description"].startswith("z: 23")
        assert c.get("/tiles/atlantis/public_space/2/0/0.mvt").status_code == 404
        anonymous = c.get(
            f"/tiles/brasov/entry_point/{Z}/{x}/{y}.mvt", headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401
        meta = c.get("/tiles/brasov/public_space.json").json()
    assert meta["tilejson"] == "3.0.0"
    assert meta["tiles"] == [f"{server.url}/tiles/brasov/public_space/{{z}}/{{x}}/{{y}}.mvt"]
    assert meta["vector_layers"][0]["id"] == "public_space"
    assert "ODbL" in meta["attribution"]
