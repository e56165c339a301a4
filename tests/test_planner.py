"""The planner workspace (issue 14) against a real server: routes, then the page in Chromium.

A seeded scratch PostGIS database with the Brașov centre clip (real OSM data, ODbL) and
``geo-protect serve`` (2 workers, no MQTT) in a subprocess. Every HTTP call goes through
the ``planner`` / ``viewer`` httpx clients and every page through the ``browser_context``
fixture, so credentials live in one place each (API tokens of a planner and a viewer of
Brașov).

The expected results do not come from the routes: the entry is chosen by hand (Strada
Republicii enters Piața Sfatului, its fastest vehicle-permeable entry; a row of posts
1.4 m apart, 0.2 m posts, leaves 1.2 m gaps, at the CPNI limit), and what the row changes
is computed again in the test process by the library's full re-analysis
(:func:`~geo_protect.scenario.engine.apply_scenario`) of the same edits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import shapely
from playwright import sync_api as playwright
from sqlalchemy.engine import URL

from geo_protect.cities import get_city
from geo_protect.citydata import CityData
from geo_protect.reference import parameter
from geo_protect.scenario.engine import ScenarioResult, apply_scenario
from geo_protect.scenario.model import BarrierEdit
from tests.builders import line_across
from tests.live_service import Server, seeded_server
from tests.needs import unavailable
from tests.planner_page import draw_row

pytestmark = [pytest.mark.postgis, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("GEO_PROTECT_CHROMIUM") or "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]
SFATULUI = "relation/9620387"
REPUBLICII = SFATULUI + "#4"
BASE = "/cities/brasov/scenarios"


@pytest.fixture(scope="module")
def server(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    name = f"geo_protect_planner_{os.getpid()}"
    with seeded_server(
        pg_admin_url, name, centre_data, dict(centre_layers), workers=2, mqtt=False
    ) as s:
        yield s


@pytest.fixture(scope="module")
def planner(server: Server) -> Iterator[httpx.Client]:
    """The planner's client: every planner request of these tests goes through it."""
    token = server.token_for("ana-planner", ["planner@brasov"])
    with server.client(token, timeout=180) as c:
        yield c


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    """A viewer of Brașov: reads, never saves."""
    token = server.token_for("vio-viewer", ["viewer@brasov"])
    with server.client(token, timeout=60) as c:
        yield c


def row_across(entry: Any, *, spacing: float) -> dict[str, Any]:
    """A bollard row 1 m outside ``entry``, 6 m wider than it, as the page sends it."""
    line = line_across(
        entry, get_city("brasov").crs, back_m=1.0, length_m=float(entry["width_m"]) + 6
    )
    return {
        "id": "f1",
        "kind": "bollard_row",
        "spacing_m": spacing,
        "geometry": shapely.geometry.mapping(line),
    }


@pytest.fixture(scope="module")
def entry(centre_layers: dict[str, gpd.GeoDataFrame]) -> Any:
    found = centre_layers["entry_point"].loc[REPUBLICII]
    assert found["entry_class"] == "vehicle_permeable"  # the hand-chosen entry is open today
    return found


@pytest.fixture(scope="module")
def full(centre_data: CityData, entry: Any) -> ScenarioResult:
    """The library's full re-analysis of the 1.4 m row, in the test process."""
    item = row_across(entry, spacing=1.4)
    edit = BarrierEdit.model_validate({k: v for k, v in item.items() if k != "id"})
    return apply_scenario(get_city("brasov"), centre_data, [edit])


def preview(client: httpx.Client, edits: list[dict[str, Any]]) -> httpx.Response:
    return client.post(f"{BASE}/preview", json={"edits": edits, "scheme": "total_exclusion"})


def test_preview_closes_the_entry_as_the_full_reanalysis_does(
    planner: httpx.Client, entry: Any, full: ScenarioResult
) -> None:
    r = preview(planner, [row_across(entry, spacing=1.4)])
    assert r.status_code == 200, r.text
    body = r.json()
    got = {e["uid"]: e for e in body["entries"]}
    assert got[REPUBLICII]["class_after"] == "blocked" and got[REPUBLICII]["turns_blocked"]
    expected = full.entries
    assert set(got) == set(expected.index.astype(str))
    for uid, row in expected.iterrows():
        assert got[str(uid)]["class_after"] == (
            None
            if row["entry_class_after"] is None or str(row["entry_class_after"]) == "<NA>"
            else str(row["entry_class_after"])
        )
    # blocked: no class reaches it any more (residual speed None for every class)
    residual = [s for s in body["speeds"] if s["entry_uid"] == REPUBLICII]
    assert residual and all(s["after"] is None and s["before"] > 0 for s in residual)
    scores = {s["uid"]: s for s in body["scores"]}
    assert set(scores) == set(full.scores.index.astype(str))
    index_after = full.layers["assessment"]["risk_index"]
    for uid, row in full.scores.iterrows():
        assert scores[str(uid)]["risk_100_after"] == pytest.approx(
            float(row["risk_100_after"]), abs=0.01
        )
        assert scores[str(uid)]["index_after"] == pytest.approx(float(index_after[uid]), abs=1)
    assert any(s["space_uid"] == SFATULUI and s["falls"] for s in body["scores"])
    (barrier,) = body["barriers"]
    assert barrier["clear_gap_m"] == pytest.approx(1.4 - parameter("bollard_diameter_m"))
    assert not barrier["gap_over_limit"] and barrier["open_streets"] == []
    assert body["flags"] == []


def test_a_gap_over_the_limit_is_flagged_and_closes_nothing(
    planner: httpx.Client, entry: Any
) -> None:
    spacing = 1.6  # 1.4 m clear between 0.2 m posts: over the 1.2 m limit
    assert spacing - parameter("bollard_diameter_m") > parameter("max_bollard_gap_m")
    r = preview(planner, [row_across(entry, spacing=spacing)])
    assert r.status_code == 200, r.text
    body = r.json()
    assert REPUBLICII not in {e["uid"] for e in body["entries"]}
    (flag,) = [f for f in body["flags"] if f["kind"] == "gap"]
    assert flag["feature"] == "f1" and flag["lon"] is not None
    assert body["barriers"][0]["gap_over_limit"]


def test_an_under_rated_barrier_is_flagged(planner: httpx.Client, entry: Any) -> None:
    # a gate rated for a car at 32 km/h where cars arrive at 110 km/h (the entry's worst speed)
    item = row_across(entry, spacing=1.4) | {"kind": "gate", "spacing_m": None}
    item["rating"] = "V/1500[M1]/32/90:0.0"
    item = {k: v for k, v in item.items() if v is not None}
    body = preview(planner, [item]).json()
    assert float(entry["worst_speed_kmh"]) * parameter("hvm_safety_factor") > 32
    assert [f["kind"] for f in body["flags"]] == ["rating"]
    assert body["barriers"][0]["under_rated"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"geometry": {"type": "Point", "coordinates": [2.35, 48.85]}, "kind": "block"},
            "geometry",
        ),
        (
            {"geometry": {"type": "LineString", "coordinates": [[25.59, 45.64], [25.59, 45.64]]}},
            "geometry",
        ),
        ({"kind": "moat"}, "kind"),
        ({"rating": "V/fast[M1]"}, "rating"),
        ({"spacing_m": -1}, "spacing_m"),
    ],
)
def test_bad_input_names_the_feature_and_field_and_stores_nothing(
    planner: httpx.Client, entry: Any, change: dict[str, Any], field: str
) -> None:
    good = row_across(entry, spacing=1.4)
    bad = {**good, "id": "bad-1", **change}
    if change.get("kind") == "block":
        bad.pop("spacing_m")
    r = preview(planner, [good | {"id": "ok"}, bad])
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]["problems"]
    assert (problem["index"], problem["field"], problem["sensor_id"]) == (1, field, "bad-1")
    assert "edits[1] (feature bad-1)" in r.json()["detail"]["message"]
    before = planner.get(BASE).json()
    s = planner.post(BASE, json={"name": f"bad {field}", "edits": [good, bad]})
    assert s.status_code == 422
    assert planner.get(BASE).json() == before


def test_save_reload_overwrite_only_by_put_export_report_delete(
    planner: httpx.Client, viewer: httpx.Client, entry: Any
) -> None:
    name = "market day"
    first = {"name": name, "scheme": "total_exclusion", "edits": [row_across(entry, spacing=1.4)]}
    r = planner.post(BASE, json=first)
    assert r.status_code == 201, r.text
    assert r.json()["preview"]["summary"]["turned_blocked"] >= 1
    # a second POST of the name is refused and changes nothing
    other = {**first, "scheme": "do_nothing", "edits": [row_across(entry, spacing=1.6)]}
    assert planner.post(BASE, json=other).status_code == 409
    doc = planner.get(f"{BASE}/{name}").json()
    assert doc["scheme"] == "total_exclusion" and doc["edits"][0]["spacing_m"] == 1.4
    assert doc["author"] == "ana-planner"
    # PUT saves over it, keeping its first save time
    r = planner.put(f"{BASE}/{name}", json=other)
    assert r.status_code == 200, r.text
    again = planner.get(f"{BASE}/{name}").json()
    assert again["scheme"] == "do_nothing" and again["edits"][0]["spacing_m"] == 1.6
    assert again["created"] == doc["created"] and again["updated"] > doc["updated"]
    listed = {s["name"]: s for s in viewer.get(BASE).json()}  # viewers read
    assert listed[name]["n_edits"] == 1 and listed[name]["scheme"] == "do_nothing"
    geo = viewer.get(f"{BASE}/{name}.geojson")
    assert geo.status_code == 200 and geo.headers["content-type"].startswith("application/geo+json")
    assert geo.json()["features"][0]["geometry"]["type"] == "LineString"
    assert planner.put(f"{BASE}/{name}", json=first).status_code == 200
    report = viewer.get(f"{BASE}/{name}/report")
    assert report.status_code == 200
    assert report.text.count("<svg") >= 2 and "Before" in report.text and "After" in report.text
    assert "OpenStreetMap contributors, ODbL" in report.text
    # viewers may not save, preview or delete (server-side)
    assert viewer.post(BASE, json={**first, "name": "viewer's"}).status_code == 403
    assert viewer.put(f"{BASE}/{name}", json=first).status_code == 403
    assert preview(viewer, first["edits"]).status_code == 403
    assert viewer.delete(f"{BASE}/{name}").status_code == 403
    assert planner.delete(f"{BASE}/{name}").status_code == 204
    assert planner.get(f"{BASE}/{name}").status_code == 404
    assert planner.delete(f"{BASE}/{name}").status_code == 404


def test_unknown_scheme_and_bad_names_are_refused(planner: httpx.Client, entry: Any) -> None:
    edits = [row_across(entry, spacing=1.4)]
    r = planner.post(BASE, json={"name": "x", "scheme": "moat", "edits": edits})
    assert r.status_code == 422 and "scheme" in r.text
    r = planner.post(BASE, json={"name": "a/b", "edits": edits})
    assert r.status_code == 422 and "name" in r.text
    r = planner.put(f"{BASE}/one", json={"name": "two", "edits": edits})
    assert r.status_code == 422
    r = planner.post(BASE, json={"name": "nul", "description": "a\x00b", "edits": edits})
    assert r.status_code == 422 and "NUL" in r.text
    assert planner.get(BASE).json() == []


# -- the page, in Chromium -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_context(server: Server) -> Iterator[Any]:
    """Opens the page as ``"planner"`` or ``"viewer"``: every browser request of these
    tests goes through a context made here (the credentials: an Authorization header)."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    tokens = {
        "planner": server.token_for("ana-planner", ["planner@brasov"]),
        "viewer": server.token_for("vio-viewer", ["viewer@brasov"]),
    }
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        opened: list[Any] = []

        def open_page(role: str) -> Any:
            ctx = browser.new_context(
                viewport={"width": 1366, "height": 768},
                extra_http_headers={"Authorization": f"Bearer {tokens[role]}"},
            )
            opened.append(ctx)
            page = ctx.new_page()
            page.requests, page.errors = [], []  # type: ignore[attr-defined]
            page.on("request", lambda r: page.requests.append(r.url))
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.goto(f"{server.url}/planner/brasov")
            assert page.evaluate("() => window.planner.ready") > 0
            return page

        yield open_page
        for ctx in opened:
            ctx.close()
        browser.close()


def _seq(page: Any) -> int:
    return int(page.evaluate("() => window.planner.seq"))


def _wait_preview(page: Any, after: int) -> None:
    page.wait_for_function(f"() => window.planner.seq > {after}", timeout=60_000)


def _blocked_and_falls(page: Any) -> None:
    row = page.locator(f'tr.entry-change[data-entry-uid="{REPUBLICII}"]')
    assert row.get_attribute("data-class-after") == "blocked"
    assert (
        page.evaluate(f"() => window.planner.afterEntries['{REPUBLICII}'].entry_class") == "blocked"
    )
    falls = page.locator(f'tr.score-change[data-space-uid="{SFATULUI}"][data-falls="true"]')
    assert falls.count() >= 1
    assert float(falls.first.get_attribute("data-index-after")) < float(
        falls.first.get_attribute("data-index-before")
    )


def test_planner_draws_a_row_sees_the_entry_blocked_saves_and_reopens(
    browser_context: Any, server: Server, entry: Any, full: ScenarioResult
) -> None:
    page = browser_context("planner")
    for map_id in ("#before", "#after"):  # ODbL on every map, both maps on screen at 1366x768
        assert (
            "OpenStreetMap contributors, ODbL"
            in page.locator(f"{map_id} .leaflet-control-attribution").inner_text()
        )
        box = page.locator(map_id).bounding_box()
        assert box["width"] > 300 and box["height"] > 250 and box["y"] + box["height"] <= 768
    assert page.locator("#entry-table").is_visible() and page.locator("#save").is_visible()
    line = line_across(
        entry, get_city("brasov").crs, back_m=1.0, length_m=float(entry["width_m"]) + 6
    )
    seq = _seq(page)
    draw_row(page, line, spacing=1.4)
    _wait_preview(page, seq)
    assert page.evaluate("() => window.planner.state.edits.length") == 1
    _blocked_and_falls(page)
    # the same entries change as in the library's full re-analysis
    shown = set(
        page.locator("tr.entry-change").evaluate_all("rs => rs.map(r => r.dataset.entryUid)")
    )
    assert shown == set(full.entries.index.astype(str))
    # undo / redo with the keyboard
    seq = _seq(page)
    page.locator("#after").click(position={"x": 5, "y": 300}, modifiers=[])  # focus the page
    page.keyboard.press("Escape")
    page.keyboard.press("Control+z")
    _wait_preview(page, seq)
    assert page.evaluate("() => window.planner.state.edits.length") == 0
    seq = _seq(page)
    page.keyboard.press("Control+y")
    _wait_preview(page, seq)
    _blocked_and_falls(page)
    page.locator("#name").fill("sfatului rows")
    page.locator("#scheme").select_option("total_exclusion")
    page.locator("#save").click()
    page.wait_for_function("() => document.body.dataset.saved === 'sfatului rows'", timeout=60_000)
    page.reload()
    assert page.evaluate("() => window.planner.ready") > 0
    seq = _seq(page)
    page.locator("#saved").select_option("sfatului rows")
    page.locator("#open").click()
    _wait_preview(page, seq)
    assert page.locator("#scheme").input_value() == "total_exclusion"
    _blocked_and_falls(page)
    # a second row with gaps over the limit is flagged on the map
    other = shapely.affinity.translate(line, xoff=0.0004)
    seq = _seq(page)
    draw_row(page, other, spacing=1.6)
    _wait_preview(page, seq)
    page.locator('#after .flag[data-kind="gap"]').wait_for(timeout=10_000)
    assert page.locator('#flags .flag-row[data-kind="gap"]').count() == 1
    outside = [u for u in page.requests if not u.startswith(f"{server.url}/")]
    assert outside == [] and page.errors == []


def test_a_viewer_sees_no_save(browser_context: Any) -> None:
    page = browser_context("viewer")
    assert not page.locator("#save").is_visible()
    assert not page.locator(".tools").is_visible()
    assert page.locator("#open").is_visible()
    assert page.errors == []
