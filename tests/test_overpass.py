"""Fetching through osmnx from a loopback Overpass server that answers from the Brașov clip."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import osmnx
import pytest
import shapely

from geo_protect.cities import City, get_city
from geo_protect.errors import DataSourceError
from geo_protect.osm.overpass import fetch_elements, taxonomy_tags
from tests.overpass_server import Extract, OverpassServer, serving

CLIP = Path(__file__).resolve().parent.parent / "data/osm/brasov/brasov_centre.osm.bz2"
SFATULUI_BBOX = (25.586, 45.640, 25.592, 45.645)


@pytest.fixture(scope="module")
def extract() -> Extract:
    return Extract(CLIP)


@pytest.fixture(scope="module")
def server(extract: Extract) -> Iterator[OverpassServer]:
    with serving(extract) as srv:
        yield srv


@pytest.fixture(scope="module")
def brasov() -> City:
    return get_city("brasov")


def _expected_uids(
    extract: Extract, bbox: tuple[float, float, float, float], tags: dict[str, object] | None = None
) -> set[str]:
    """Clip the extract locally: elements with a queried tag that meet the bbox."""
    tags = tags or dict(taxonomy_tags())
    area = shapely.box(*bbox)

    def wanted(t: dict[str, str]) -> bool:
        return any(
            k in t and (v is True or (isinstance(v, list) and t[k] in v)) for k, v in tags.items()
        )

    nodes, ways, _ = extract.in_area(area)
    out = {f"node/{n}" for n in nodes if wanted(extract.nodes[n]["tags"])}
    out |= {f"way/{w}" for w in ways if wanted(extract.ways[w]["tags"])}
    for r, d in extract.relations.items():
        members = [m["ref"] for m in d["members"] if m["type"] == "way"]
        complete = all(m in extract.ways for m in members)
        if complete and wanted(d["tags"]) and any(m in ways for m in members):
            out.add(f"relation/{r}")
    return out


def test_fetch_piata_sfatului(server: OverpassServer, extract: Extract, brasov: City) -> None:
    before = (
        osmnx.settings.overpass_url,
        osmnx.settings.use_cache,
        osmnx.settings.requests_timeout,
    )
    getaddrinfo = socket.getaddrinfo
    elements = fetch_elements(brasov, url=server.url, timeout=5, bbox=SFATULUI_BBOX)
    assert (
        osmnx.settings.overpass_url,
        osmnx.settings.use_cache,
        osmnx.settings.requests_timeout,
    ) == before
    assert socket.getaddrinfo is getaddrinfo
    assert len(server.queries) >= 1 and "poly:" in server.queries[-1]

    assert set(elements.index) == _expected_uids(extract, SFATULUI_BBOX)
    squares = {u for u, t in elements["tags"].items() if t.get("place") == "square"}
    assert squares == {"way/1020310740", "relation/9620387"}
    square = elements.loc["relation/9620387"]
    assert square["tags"]["name"] == "Piața Sfatului" and square.geometry.geom_type == "Polygon"
    assert len(square.geometry.interiors) == 2  # Casa Sfatului and the fountain
    bollards = {u for u, t in elements["tags"].items() if t.get("barrier") == "bollard"}
    expected_bollards = {
        f"node/{n}"
        for n, d in extract.nodes.items()
        if d["tags"].get("barrier") == "bollard"
        and shapely.contains_xy(shapely.box(*SFATULUI_BBOX), d["lon"], d["lat"])
    }
    assert bollards == expected_bollards and len(bollards) >= 1
    ways = elements[elements["osm_type"] == "way"]
    assert set(ways.geom_type) == {"LineString"}  # ways stay lines, closed ones closed
    assert ways.loc["way/1020310740"].geometry.is_closed
    assert set(elements["source"]) == {"overpass"} and set(elements["data_date"]) == {"2024-08-21"}


def test_fetch_same_geometry_as_local_clip(
    server: OverpassServer, extract: Extract, brasov: City
) -> None:
    elements = fetch_elements(
        brasov, url=server.url, timeout=5, bbox=SFATULUI_BBOX, tags={"highway": ["pedestrian"]}
    )
    assert set(elements.index) == _expected_uids(
        extract, SFATULUI_BBOX, {"highway": ["pedestrian"]}
    )
    assert "relation/9620387" in elements.index
    for uid in elements.index[elements["osm_type"] == "way"]:
        refs = extract.ways[int(uid.split("/")[1])]["nodes"]
        xy = [(extract.nodes[n]["lon"], extract.nodes[n]["lat"]) for n in refs]
        assert list(elements.loc[uid].geometry.coords) == xy


def test_server_error_is_not_retried(extract: Extract, brasov: City) -> None:
    with serving(extract, status=504) as failing:
        start = time.monotonic()
        with pytest.raises(DataSourceError, match=rf"{failing.url}: HTTP 504"):
            fetch_elements(brasov, url=failing.url, timeout=2, bbox=SFATULUI_BBOX)
        assert time.monotonic() - start < 3
        assert len(failing.queries) == 1  # no osmnx sleep-and-retry


def test_rate_limited_is_not_retried(extract: Extract, brasov: City) -> None:
    with serving(extract, status=429) as failing:
        with pytest.raises(DataSourceError, match="HTTP 429"):
            fetch_elements(brasov, url=failing.url, timeout=2, bbox=SFATULUI_BBOX)
        assert len(failing.queries) == 1


def test_closed_port(brasov: City) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/interpreter"
    start = time.monotonic()
    with pytest.raises(DataSourceError, match=rf"{url} cannot be reached"):
        fetch_elements(brasov, url=url, timeout=2, bbox=SFATULUI_BBOX)
    assert time.monotonic() - start < 3


def test_empty_area_gives_empty_frame(server: OverpassServer, brasov: City) -> None:
    empty = fetch_elements(brasov, url=server.url, timeout=5, bbox=(25.50, 45.53, 25.501, 45.531))
    assert empty.empty and list(empty.columns) == [
        "osm_type",
        "osm_id",
        "tags",
        "source",
        "data_date",
        "geometry",
    ]


def test_taxonomy_tags() -> None:
    tags = taxonomy_tags()
    assert tags["place"] == ["square"] and tags["barrier"] is True and tags["highway"] is True
    assert tags["leisure"] == ["park", "garden", "stadium", "sports_centre", "pitch", "playground"]
