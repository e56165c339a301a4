"""The control-room page in a real browser, against the live service (issue 11).

A seeded scratch PostGIS database with the Brașov centre clip, ``geo-protect serve``
(2 workers, MQTT on), the real broker (readings published with Debian's ``mosquitto_pub``)
and Debian's Chromium through Playwright (``GEO_PROTECT_CHROMIUM``, default
``/usr/bin/chromium``). An operator logs in (a session cookie); the page draws the city,
its dense layers (buildings, streets, entries) from the service's vector tiles, a
published reading shows on it within a second, the alert that reading opens is
acknowledged from the page's own dialog under the operator's name, and no request leaves
the service's origin. The expected figures come from the reference tables
and the stored layers, not from the page's code. A missing browser, client, broker or
database skips locally and fails under ``CI=true`` (:func:`tests.needs.unavailable`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import shapely
from playwright import sync_api as playwright
from sqlalchemy.engine import URL

from geo_protect.analysis.crowd import design_density
from geo_protect.citydata import CityData
from geo_protect.store.tiles import TILE_EXTENT, TILE_MARGIN
from tests.live_service import PASSWORD, REPO, Server, seeded_database
from tests.needs import unavailable
from tests.tile_grid import tile_bounds

pytestmark = [pytest.mark.browser, pytest.mark.postgis, pytest.mark.mqtt]

CHROMIUM = Path(os.environ.get("GEO_PROTECT_CHROMIUM") or "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]
REFERENCE = REPO / "data" / "reference"
SENSOR = "ctl-cam-1"
#: The operator who logs in to the page (an operator of Brașov: read, live, acknowledge).
OPERATOR = "ioana.popescu"
#: A sensor name with markup in it: the page must show it as text.
SENSOR_NAME = "Cam <b>nord</b> & Sfatului"
TOPIC = "geo_protect/brasov/readings"
SINCE = "2024-01-01T00:00:00+00:00"
#: The layers the page draws from vector tiles (static/control/basemap.js).
TILED = ("building", "street", "entry_point")
_MVT = re.compile(r"/tiles/brasov/(\w+)/(\d+)/(\d+)/(\d+)\.mvt$")


@dataclass
class Session:
    """The open page and what it did: requests made, console errors."""

    page: Any
    origin: str
    ready_ms: float
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tiles: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # layer z x y status


@dataclass(frozen=True)
class Target:
    """The space the test sensor watches."""

    uid: str
    usable_area_m2: float


def _reference(name: str) -> list[dict[str, str]]:
    with (REFERENCE / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def los_f_present(area_m2: float) -> int:
    """People present for LOS F on a standing (queuing) area: space ≤ row E's minimum."""
    e_min = next(float(r["space_min_m2"]) for r in _reference("los_queue") if r["los"] == "E")
    return math.ceil(area_m2 / e_min * 1.05)  # 5 % over the bound


def los_hold_s(density: float) -> float:
    """Hold of the highest standing ``los`` level ``density`` reaches (alert_rules.csv)."""
    levels = [
        r
        for r in _reference("alert_rules")
        if r["kind"] == "los" and r["area_type"] in ("standing", "*")
    ]
    reached = [r for r in levels if density >= float(r["enter"])]
    assert reached, f"{density} p/m² opens no los alert"
    return float(max(reached, key=lambda r: float(r["enter"]))["hold_s"])


def mosquitto_pub(message: dict[str, Any]) -> None:
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        unavailable("mosquitto_pub (Debian package mosquitto-clients) is not installed")
    args = [exe, "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", TOPIC]
    subprocess.run([*args, "-m", json.dumps(message)], check=True, timeout=20)


def reading(present: int) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    return {"sensor_id": SENSOR, "observed_at": at.isoformat(), "present": present}


@pytest.fixture(scope="module")
def target(centre_layers: dict[str, gpd.GeoDataFrame]) -> Target:
    """The roomiest standing square of the centre clip."""
    m = centre_layers["space_metric"]
    m = m[m["kind"].isin(["square", "pedestrian_area", "marketplace"])]
    standing = design_density(m["kind"].astype("string"), profile="event")["area_type"]
    m = m[(standing == "standing").to_numpy()].sort_values("usable_area_m2", ascending=False)
    assert len(m), "no standing square in the centre clip"
    return Target(str(m.index[0]), float(m["usable_area_m2"].iloc[0]))


@pytest.fixture(scope="module")
def server(
    pg_admin_url: URL,
    centre_data: CityData,
    centre_layers: dict[str, gpd.GeoDataFrame],
) -> Iterator[Server]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    if shutil.which("mosquitto_pub") is None:
        unavailable("mosquitto_pub (Debian package mosquitto-clients) is not installed")
    name = f"geo_protect_control_{os.getpid()}"
    with (  # Server gives itself an MQTT group of its own: no other session takes our readings
        seeded_database(pg_admin_url, name, centre_data, dict(centre_layers)) as url,
        Server(url, workers=2) as s,
    ):
        yield s


@pytest.fixture(scope="module")
def client(server: Server, target: Target) -> Iterator[httpx.Client]:
    """The module's one client (the service's admin); the test sensor registered."""
    with server.client(timeout=30) as c:
        sensor: dict[str, str | None] = {"sensor_id": SENSOR, "kind": "area_counter"}
        sensor |= {"space_uid": target.uid, "name": SENSOR_NAME, "installed_at": SINCE}
        body = [{**sensor, "area_m2": None, "exit_width_m": None}]  # the whole space
        r = c.post("/cities/brasov/sensors", json=body)
        assert r.status_code == 201, r.text
        yield c


@pytest.fixture(scope="module")
def session(server: Server, client: httpx.Client) -> Iterator[Session]:
    server.token_for(OPERATOR, ["operator@brasov"])  # the user, with the tests' password
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        # the operator logs in: a session cookie (and the CSRF token the page asks for)
        login = context.request.post(
            f"{server.url}/auth/login", data={"user": OPERATOR, "password": PASSWORD}
        )
        assert login.ok, login.text()
        page = context.new_page()
        s = Session(page, server.url, 0.0)
        page.on("request", lambda r: s.requests.append(r.url))
        page.on("response", lambda r: _tile_response(s, r.url, r.status))
        page.on("console", lambda m: s.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: s.errors.append(str(e)))
        for layer in ("spaces.geojson", "state"):  # a warm service, as a control room's is
            client.get(f"/cities/brasov/{layer}").raise_for_status()
        page.goto(f"{server.url}/control/brasov")
        s.ready_ms = float(page.evaluate("() => window.controlReady"))
        _settle(s)  # a page open for a while: its first view's tiles are in
        yield s
        browser.close()


def _settle(s: Session, timeout_s: float = 30.0) -> None:
    """Wait until every tile the page asked for has come back and been decoded, and no new
    one was asked for in the last half second."""
    deadline, seen = time.monotonic() + timeout_s, -1
    if not s.page.evaluate("() => !!window.controlMap"):
        return  # no tiled layers on the page
    while time.monotonic() < deadline:
        done = s.page.evaluate(
            "() => Object.values(window.controlTiles).reduce((a, c) => a + c.tiles + c.failed, 0)"
        )
        if done and done == len(s.tiles) == seen:
            return
        seen = len(s.tiles) if done == len(s.tiles) else -1
        s.page.wait_for_timeout(500)
    raise AssertionError(f"tiles still loading after {timeout_s} s: {len(s.tiles)} asked for")


def _tile_response(s: Session, url: str, status: int) -> None:
    found = _MVT.search(url)
    if found:
        layer, z, x, y = found.groups()
        s.tiles.append((layer, int(z), int(x), int(y), status))


def _offline_and_clean(s: Session) -> None:
    outside = [u for u in s.requests if not u.startswith(f"{s.origin}/")]
    assert outside == [], outside
    assert s.errors == []


def test_page_draws_the_city(session: Session, client: httpx.Client, target: Target) -> None:
    page = session.page
    # it got ready (how fast, on the whole municipality, is benchmarks/bench_live.py's)
    assert session.ready_ms > 0
    geo = client.get("/cities/brasov/spaces.geojson").json()
    drawn = page.evaluate("() => document.querySelectorAll('.leaflet-overlay-pane canvas').length")
    assert drawn == 1  # one canvas for every space (preferCanvas)
    assert page.locator("#summary").inner_text().count(f"of {len(geo['features'])} spaces") == 1
    attribution = page.locator(".leaflet-control-attribution")
    assert attribution.is_visible()
    assert "OpenStreetMap contributors, ODbL" in attribution.inner_text()
    assert page.locator("#legend").is_visible()
    row = page.locator(f'[data-sensor-id="{SENSOR}"]')
    assert SENSOR_NAME in row.locator(".sid").inner_text()  # shown as text, not markup
    assert row.locator("b").count() == 0
    assert row.get_attribute("data-stale") == "true"  # registered, no reading yet
    assert page.locator("#conn").get_attribute("data-state") == "live"
    _offline_and_clean(session)


def test_reading_shows_within_a_second_and_its_alert_is_acknowledged(
    session: Session, client: httpx.Client, target: Target
) -> None:
    page = session.page
    present = los_f_present(target.usable_area_m2)
    density = present / target.usable_area_m2
    space = page.locator(f'.space-row[data-space-uid="{target.uid}"]')
    mosquitto_pub(reading(present))
    published = time.monotonic()
    space.and_(page.locator('[data-los="F"]')).wait_for(timeout=10_000)
    latency = time.monotonic() - published
    print(f"reading on the page {latency * 1000:.0f} ms after mosquitto_pub returned")
    assert latency <= 1.0
    assert float(space.get_attribute("data-density") or "nan") == pytest.approx(density)
    assert space.get_attribute("id") == "space-" + re.sub(r"[^A-Za-z0-9_-]", "_", target.uid)
    assert f"{density:.2f} p/m²" in space.inner_text()
    live = page.evaluate("uid => window.controlState[uid]", target.uid)  # the map's copy
    assert live["los"] == "F" and live["stale"] is False
    hold = los_hold_s(density)
    if hold > 0:  # the rule holds before opening: a second reading after the hold
        time.sleep(hold)
        mosquitto_pub(reading(present))
    alert = page.locator(f'.alert[data-kind="los"][data-space-uid="{target.uid}"]')
    alert.wait_for(timeout=10_000 + hold * 1000)
    alert_id = int(alert.get_attribute("data-alert-id") or "0")
    assert alert.get_attribute("data-state") == "open"
    assert alert.locator(f'a[href="/alerts/{alert_id}.cap"]').count() == 1
    alert.locator('button[data-action="acknowledge"]').click()
    assert page.locator("#decide-known-name").inner_text() == OPERATOR  # who decides
    page.locator("#decide-note").fill("stewards sent to the square")
    page.locator("#decide-submit").click()
    page.locator(f'.alert[data-alert-id="{alert_id}"][data-state="acknowledged"]').wait_for(
        timeout=5000
    )
    assert not page.locator("#decide").is_visible()
    stored = client.get(f"/alerts/{alert_id}").json()
    assert stored["state"] == "acknowledged"
    assert stored["acknowledged_by"] == OPERATOR  # the logged-in user, not a typed name
    assert stored["acknowledged_note"] == "stewards sent to the square"
    # the change's audit row, read back by an admin: who, from where, before and after
    trail = client.get("/audit", params={"action": "alert.acknowledge", "actor": OPERATOR})
    (row,) = [r for r in trail.json() if r["target"] == f"alert:{alert_id}"]
    assert row["via"] == "service" and row["address"] == "127.0.0.1"
    assert row["before"]["state"] == "open" and row["after"]["state"] == "acknowledged"
    _offline_and_clean(session)


def _tile_features(layer: gpd.GeoDataFrame, z: int, x: int, y: int, margin: float) -> int:
    """The rows of ``layer`` meeting tile ``z/x/y`` grown by ``margin`` (tile units)."""
    box = shapely.box(*tile_bounds(z, x, y, margin=margin / TILE_EXTENT))
    return int(shapely.intersects(layer.geometry.values, box).sum())


def test_dense_layers_are_drawn_from_vector_tiles(
    session: Session, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    page = session.page
    zoom = page.evaluate("() => window.controlMap.getZoom()")
    assert zoom >= 15, zoom  # the centre clip's view: every tiled layer is asked for
    _settle(session)
    counts = page.evaluate("() => window.controlTiles")
    layers = {**centre_data.layers, **centre_layers}
    for name in TILED:
        mine = [t for t in session.tiles if t[0] == name]
        assert mine and all(status in (200, 204) for *_, status in mine), (name, mine)
        assert counts[name]["failed"] == 0 and counts[name]["tiles"] == len(mine), name
        # a tile holds the rows meeting it with its margin (test_tiles), except those that
        # PostGIS's clipping and snapping to the tile grid leave empty: an outline that only
        # grazes the margin. Every row reaching a unit into the tile itself is there.
        most = sum(_tile_features(layers[name], z, x, y, TILE_MARGIN) for _, z, x, y, _ in mine)
        least = sum(_tile_features(layers[name], z, x, y, -1) for _, z, x, y, _ in mine)
        assert 0 < least <= counts[name]["features"] <= most, (name, least, most)
        if name == "entry_point":  # points do not collapse
            assert counts[name]["features"] == most
    # drawn under the spaces, in the tile pane: canvases with pixels on them
    painted = page.evaluate(
        """() => [...document.querySelectorAll('.leaflet-tile-pane canvas')].filter((c) => {
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
             return false; }).length"""
    )
    assert painted > 0
    # the layers are not sent whole: no GeoJSON of them was fetched
    assert not [
        u
        for u in session.requests
        if re.search(r"(building|street|entry)", u) and not _MVT.search(u)
    ]
    _offline_and_clean(session)
