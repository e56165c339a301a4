"""Risk maps in a real browser: Debian's Chromium through Playwright, with no network.

Chromium is ``GEO_PROTECT_CHROMIUM`` (default ``/usr/bin/chromium``). Playwright is a test
dependency and is imported plainly (missing, the module fails to collect). Without Chromium
every test skips locally and fails under ``CI=true`` (:func:`tests.needs.unavailable`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from playwright import sync_api as playwright

from geo_protect.cities import get_city
from geo_protect.outputs.maps.city_map import write_city_map
from tests.needs import unavailable

Session = tuple[Any, list[str], list[str]]  # page, console errors, external requests
CHROMIUM = Path(os.environ.get("GEO_PROTECT_CHROMIUM") or "/usr/bin/chromium")
CITY = get_city("brasov")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def layers(centre_layers: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    return centre_layers


@pytest.fixture(scope="module")
def map_file(layers: dict[str, gpd.GeoDataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_city_map(CITY, layers, tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def page(map_file: Path) -> Iterator[Session]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        remote: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))

        def offline(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if url.startswith(("http://", "https://")):
                remote.append(url)
                route.abort()  # type: ignore[attr-defined]
            else:
                route.continue_()  # type: ignore[attr-defined]

        pg.route("**/*", offline)
        pg.goto(map_file.as_uri(), wait_until="load")
        pg.wait_for_function("() => document.querySelector('.leaflet-control-layers') !== null")
        pg.wait_for_timeout(300)
        yield pg, errors, remote
        browser.close()


def _var(map_file: Path, pattern: str) -> str:
    found = re.search(pattern, map_file.read_text(encoding="utf-8"))
    assert found, pattern
    return found.group(1)


def test_draws_offline_without_errors(page: Session, map_file: Path, tmp_path: Path) -> None:
    pg, errors, remote = page
    shot = tmp_path / "brasov.png"
    pg.screenshot(path=str(shot))
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    assert len(colours) > 500  # basemap, spaces, legend: far from a blank page
    assert errors == []
    assert remote == []  # nothing even tried the network
    assert pg.evaluate("typeof L.markerClusterGroup") == "function"


def test_toggle_layer_hides_it(page: Session, map_file: Path) -> None:
    pg, errors, _ = page
    map_var = _var(map_file, r"var (map_\w+) = L\.map\(")
    entries = _var(map_file, r'"Entry points" : (geo_json_\w+)')
    label = pg.locator(".leaflet-control-layers-overlays label", has_text="Entry points")
    assert pg.evaluate(f"{map_var}.hasLayer({entries})") is True
    label.locator("input").click()
    assert pg.evaluate(f"{map_var}.hasLayer({entries})") is False
    label.locator("input").click()
    assert pg.evaluate(f"{map_var}.hasLayer({entries})") is True
    assert errors == []


def test_click_space_opens_popup(
    page: Session, map_file: Path, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    pg, errors, _ = page
    map_var = _var(map_file, r"var (map_\w+) = L\.map\(")
    spaces = layers["public_space"]
    metric = spaces.to_crs(CITY.crs)
    uid = metric.area.idxmax()
    inside = spaces.loc[[uid]].to_crs(CITY.crs).representative_point().to_crs(4326).iloc[0]
    w, s, e, n = spaces.loc[[uid]].total_bounds
    pg.evaluate(f"() => {{ {map_var}.fitBounds([[{s}, {w}], [{n}, {e}]], {{animate: false}}); }}")
    pg.wait_for_timeout(200)
    x, y = pg.evaluate(
        f"(() => {{ var p = {map_var}.latLngToContainerPoint([{inside.y}, {inside.x}]);"
        " return [p.x, p.y]; })()"
    )
    box = pg.locator(".folium-map").bounding_box()
    # hide point layers that may sit on top of the interior point
    for name in (
        "Entry points",
        "Worst approach per space",
        "Approach paths (every entry)",
        "Barriers (existing)",
        "Crowded places (POI)",
    ):
        toggle = pg.locator(".leaflet-control-layers-overlays label", has_text=name).locator(
            "input"
        )
        if toggle.is_checked():
            toggle.click()
    pg.mouse.click(box["x"] + x, box["y"] + y)
    popup = pg.locator(".leaflet-popup-content")
    popup.wait_for(timeout=3000)
    text = popup.inner_text()
    name = spaces.at[uid, "name"]
    assert (name if isinstance(name, str) else "Unnamed") in text
    assert "Risk band" in text and "Area" in text
    assert errors == []


def test_space_list_zooms_and_opens_popup(
    page: Session, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    pg, errors, _ = page
    pg.keyboard.press("Escape")
    first = pg.locator(".gp-list li").first
    name = first.locator(".gp-name").inner_text()
    first.click()
    pg.wait_for_timeout(400)
    assert name in pg.locator(".leaflet-popup-content").inner_text()
    assert pg.locator(".gp-list li").count() == len(layers["public_space"])
    assert errors == []


def test_site_report_shows_its_site_plan_offline(
    page: Session, layers: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    from geo_protect.assess.scores import assessment_from_layer
    from geo_protect.outputs.site_reports import site_report

    approach = layers["approach"]
    fast = approach[approach["speed_kmh"].notna()]
    uid = fast.groupby("space_uid")["vehicle"].nunique().idxmax()  # a space with approaches
    n_vehicles = int(fast.loc[fast["space_uid"] == uid, "vehicle"].nunique())
    assessment = assessment_from_layer(layers["assessment"], city=CITY.slug)
    report = site_report(
        assessment, uid, layers["assessment"], tmp_path / "site.html", layers=layers, crs=CITY.crs
    )
    context = page[0].context.browser.new_context()  # the module's browser: one Playwright
    pg = context.new_page()
    errors: list[str] = []
    remote: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def offline(route: Any) -> None:
        if route.request.url.startswith(("http://", "https://")):
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    pg.route("**/*", offline)
    pg.goto(report.as_uri(), wait_until="load")
    svg = pg.locator("figure#site-plan svg")
    box = svg.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 300
    assert svg.locator("path.approach").count() == n_vehicles
    drawn = pg.evaluate(
        "() => Array.from(document.querySelectorAll('figure#site-plan path.approach'))"
        ".map(p => p.getTotalLength())"
    )
    assert len(drawn) == n_vehicles and min(drawn) > 0
    assert (svg.locator("title").first.text_content() or "").startswith("Site plan")
    context.close()
    assert errors == []
    assert remote == []
