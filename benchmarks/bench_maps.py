"""Risk map vs GeoDataFrame.explore() on the Brașov municipality: HTML size and draw time.

    .venv/bin/python benchmarks/bench_maps.py [--runs 3] [--out benchmarks/results]

Both maps are opened from disk in headless Debian Chromium (Playwright) with every
external request blocked. explore() links Leaflet from CDNs, which cannot load here: for
a fair comparison its Leaflet/markercluster URLs are answered with the same vendored files
the risk map inlines, and every other external request (tiles, jQuery, Bootstrap, fonts)
is aborted. "Draw time" is performance.now() after the load event and two animation
frames: script parsing, GeoJSON decoding and the first full paint.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import folium
import geopandas as gpd
from playwright.sync_api import Browser, ConsoleMessage, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from geo_protect.cities import get_city
from geo_protect.outputs.maps.assets import VENDOR_DIR
from geo_protect.outputs.maps.city_map import risk_map
from geo_protect.pipeline import evaluate
from geo_protect.settings import REPO_ROOT

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_CDN = {  # explore()'s CDN assets answered from the vendored copies
    "leaflet.js": VENDOR_DIR / "leaflet/leaflet.js",
    "leaflet.css": VENDOR_DIR / "leaflet/leaflet.css",
    "leaflet.markercluster.js": VENDOR_DIR / "leaflet.markercluster/leaflet.markercluster.js",
    "MarkerCluster.css": VENDOR_DIR / "leaflet.markercluster/MarkerCluster.css",
    "MarkerCluster.Default.css": VENDOR_DIR / "leaflet.markercluster/MarkerCluster.Default.css",
}
_DRAWN = (
    "() => new Promise(r => requestAnimationFrame("
    "() => requestAnimationFrame(() => r(performance.now()))))"
)


def load_layers() -> tuple[dict[str, gpd.GeoDataFrame], str]:
    """Brașov municipality: every layer of the main job (ingest, analysis, scores)."""
    return evaluate(
        get_city("brasov")
    ), "geo_protect.pipeline.evaluate (ingest + analysis + scores)"


def explore_map(layers: dict[str, gpd.GeoDataFrame]) -> folium.Map:
    """The same layers through GeoDataFrame.explore(), one call per layer, defaults."""
    fmap = None
    for name in (
        "landcover",
        "building",
        "street",
        "public_space",
        "barrier",
        "entrance",
        "poi",
        "surveillance",
        "space_metric",
        "entry_point",
        "approach",
    ):
        layer = layers.get(name)
        if layer is None or not len(layer):
            continue
        fmap = layer.explore(m=fmap, name=name)
    assert isinstance(fmap, folium.Map)
    folium.LayerControl().add_to(fmap)
    return fmap


def _draw_once(browser: Browser, html: Path, timeout_s: float) -> tuple[float, int, int]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    counts = {"err": 0, "abort": 0}

    def console(msg: ConsoleMessage) -> None:
        counts["err"] += msg.type == "error"

    def route(r: Route) -> None:
        url = r.request.url
        if not url.startswith(("http://", "https://")):
            r.continue_()
            return
        local = _CDN.get(url.rsplit("/", 1)[-1])
        if local is not None:
            r.fulfill(path=str(local))
        else:
            counts["abort"] += 1
            r.abort()

    page.on("console", console)
    page.route("**/*", route)
    try:
        page.goto(html.as_uri(), wait_until="load", timeout=timeout_s * 1000)
        ms = float(page.evaluate(_DRAWN))
    except PlaywrightTimeout:  # never drawn within the budget
        ms = float("inf")
    page.close()
    return ms, counts["err"], counts["abort"]


def draw_ms(html: Path, runs: int, timeout_s: float) -> tuple[float, int, int]:
    """Median draw time (ms), console errors and aborted external requests."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        results = [_draw_once(browser, html, timeout_s) for _ in range(runs)]
        browser.close()
    return statistics.median(r[0] for r in results), results[-1][1], results[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per page load")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    city = get_city("brasov")
    t0 = time.perf_counter()
    layers, how = load_layers()
    print(f"layers: {how} in {time.perf_counter() - t0:.1f} s")
    print("  " + ", ".join(f"{k} {len(v)}" for k, v in layers.items()))

    rows = []
    for label in ("risk_map", "explore"):
        t0 = time.perf_counter()
        fmap = risk_map(city, layers) if label == "risk_map" else explore_map(layers)
        path = args.out / f"brasov_{label}.html"
        fmap.save(str(path))
        build_s = time.perf_counter() - t0
        ms, errors, aborted = draw_ms(path, args.runs, args.timeout)
        rows.append((label, path.stat().st_size / 1e6, build_s, ms, errors, aborted))

    print(
        "\nexternal requests blocked for both maps; explore()'s Leaflet CDN URLs answered "
        "with the vendored files, its other CDN assets and tiles aborted"
    )
    print(f"{'map':<10}{'HTML MB':>9}{'build s':>9}{'draw ms':>10}{'errors':>8}{'aborted':>9}")
    for label, mb, build_s, ms, errors, aborted in rows:
        print(f"{label:<10}{mb:>9.2f}{build_s:>9.1f}{ms:>10.0f}{errors:>8}{aborted:>9}")
    (_, mb_r, _, ms_r, _, _), (_, mb_e, _, ms_e, _, _) = rows
    if ms_e == float("inf"):
        print(
            f"explore() did not finish drawing within {args.timeout:.0f} s: ratio is an upper bound"
        )
        ms_e = args.timeout * 1000
    print(
        f"\nratio risk_map/explore: size {mb_r / mb_e:.2f}, draw time {ms_r / ms_e:.2f} "
        f"(targets: < 5 MB, <= 0.50)"
    )
    print(
        f"maps size_mb={mb_r:.2f} size_ratio={mb_r / mb_e:.3f} draw_ms={ms_r:.0f} "
        f"draw_ratio={ms_r / ms_e:.3f}"
    )


if __name__ == "__main__":
    main()
