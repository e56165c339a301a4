"""OGC API – Features, read by a real client: GDAL's OAPIF driver (``ogrinfo``,
``ogr2ogr``), on a running ``geo-protect serve``; counts checked against the layers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pyogrio
import pytest
import shapely
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.live_service import Server, seeded_server
from tests.needs import unavailable

pytestmark = [pytest.mark.postgis]


@pytest.fixture(scope="module")
def api(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    name = f"geo_protect_api_{os.getpid()}"
    data, layers = centre_data, dict(centre_layers)
    with seeded_server(pg_admin_url, name, data, layers, workers=1, mqtt=False) as server:
        yield server


def _gdal(tool: str, *args: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        unavailable(f"{tool} (Debian package gdal-bin) is not installed")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ogrinfo_lists_every_collection_and_counts_its_features(
    api: Server, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    listing = _gdal("ogrinfo", "-ro", "-q", f"OAPIF:{api.url}/ogc")
    names = set(re.findall(r"^\d+: (\S+)", listing, flags=re.MULTILINE))
    layers = {**centre_data.layers, **centre_layers}
    stored = {f"brasov.{k}" for k, v in layers.items() if len(v)}
    assert stored <= names
    for layer in ("public_space", "entry_point", "barrier"):
        summary = _gdal("ogrinfo", "-ro", "-so", f"OAPIF:{api.url}/ogc", f"brasov.{layer}")
        count = int(re.search(r"Feature Count: (\d+)", summary).group(1))  # type: ignore[union-attr]
        assert count == len(layers[layer]), layer


def test_ogr2ogr_copies_a_collection_page_by_page(
    api: Server, centre_data: CityData, tmp_path: Path
) -> None:
    out = tmp_path / "spaces.gpkg"
    _gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{api.url}/ogc", "brasov.public_space",
        "-oo", "PAGE_SIZE=7",
    )  # fmt: skip
    copied = pyogrio.read_dataframe(out)
    spaces = centre_data["public_space"]
    assert len(copied) == len(spaces)
    # the same outlines (coordinates to 7 decimals), whatever the page boundaries
    assert "id" in copied.columns  # GDAL keeps the feature id (the OSM uid) as a field
    mine = spaces.geometry.reindex(copied["id"])
    assert shapely.equals_exact(copied.geometry.values, mine.values, tolerance=1e-6).all()


def test_paging_bbox_filters_and_errors(api: Server, centre_data: CityData) -> None:
    items = f"{api.url}/ogc/collections/brasov.public_space/items"
    page = httpx.get(items, params={"limit": 5}, timeout=30).json()
    n = len(centre_data["public_space"])
    assert page["numberMatched"] == n and page["numberReturned"] == 5
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = httpx.get(nxt, timeout=30).json()
    assert {f["id"] for f in second["features"]}.isdisjoint(f["id"] for f in page["features"])
    spaces = centre_data["public_space"]
    w, s, e, nn = 25.586, 45.640, 25.592, 45.645
    inside = shapely.intersects(spaces.geometry.values, shapely.box(w, s, e, nn)).sum()
    boxed = httpx.get(items, params={"bbox": f"{w},{s},{e},{nn}", "limit": 1000}).json()
    assert boxed["numberMatched"] == inside
    kind = str(spaces["kind"].iloc[0])
    by_kind = httpx.get(items, params={"kind": kind, "limit": 1000}).json()
    assert by_kind["numberMatched"] == int((spaces["kind"] == kind).sum())
    one = httpx.get(f"{items}/{spaces.index[0]}", timeout=30)
    assert one.status_code == 200 and one.json()["id"] == spaces.index[0]
    for params, named in (
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "0,0,10,10"}, "bbox"),
        ({"colour": "red"}, "colour"),
    ):
        r = httpx.get(items, params=params, timeout=30)
        assert r.status_code == 400 and r.json()["description"].startswith(named), params
    assert httpx.get(f"{items}/way/0", timeout=30).status_code == 404
    assert httpx.get(f"{api.url}/ogc/collections/brasov.nothing").status_code == 404
