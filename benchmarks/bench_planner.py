"""Planner benchmark: preview round trip from the browser, drawn edit → map updated.

Run with ``.venv/bin/python benchmarks/bench_planner.py [N]`` (N edits, default 30). It
ingests the Brașov municipality, seeds a throwaway PostGIS database with its source
layers, starts ``geo-protect serve --workers 1 --no-mqtt`` on it and opens
``/planner/brasov`` in headless Chromium (Playwright, 1366×768) as a planner. For each of
N vehicle-permeable entries (a fixed random draw), it draws a bollard row across the entry
with the mouse (Geoman's line tool, finished with Enter) and measures, in the page, the
time from the finished shape to the preview drawn on the map (the next animation frame
after the response is applied). The previous row is undone first, so every preview holds
one new edit and none is answered from the kept previews.

Reference, measured in the same run: the bare library call the route makes,
:func:`geo_protect.scenario.incremental.rescore` of the same edits on a context built in
this process, interleaved with the page's edits (one library call, then one drawn edit), so
both see the same machine load. The ratios say what the service and the page add around
the engine.

Target (issue 14): p95 ≤ 300 ms (aim ≤ 100 ms). Last line, for scripts:
``planner p95_ms=… p50_ms=… rescore_p50_ms=… rescore_p95_ms=…``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from _common import console, scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.builders import line_across
from tests.live_service import Server, seed
from tests.planner_page import draw_row

CHROMIUM = os.environ.get("GEO_PROTECT_CHROMIUM") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _lines(data: Any, n: int) -> tuple[Any, list[shapely.LineString]]:
    """The city's scenario context (this process) and rows across ``n`` open entries."""
    from geo_protect.cities import get_city
    from geo_protect.scenario.incremental import rescore, scenario_context
    from geo_protect.scenario.model import BarrierEdit

    city = get_city("brasov")
    t0 = time.perf_counter()
    ctx = scenario_context(city, data)
    console.print(f"context built in this process in {time.perf_counter() - t0:.1f} s")
    entries = ctx.layers["entry_point"]
    open_ = entries[(entries["entry_class"] == "vehicle_permeable") & (entries["width_m"] < 30)]
    rng = np.random.default_rng(14)
    picked = open_.iloc[rng.choice(len(open_), size=min(n, len(open_)), replace=False)]
    rescore(ctx, [BarrierEdit(kind="block", geometry=picked.geometry.iloc[0])])  # warm
    lines = [
        line_across(e, city.crs, back_m=1.0, length_m=float(e["width_m"]) + 6)
        for _, e in picked.iterrows()
    ]
    return ctx, lines


def _library_ms(ctx: Any, line: shapely.LineString) -> float:
    """The reference: the bare library call the route makes, for the same edit."""
    from geo_protect.scenario.incremental import rescore
    from geo_protect.scenario.model import BarrierEdit

    edit = BarrierEdit(kind="bollard_row", geometry=line, spacing_m=1.4)
    t = time.perf_counter()
    rescore(ctx, [edit])
    return (time.perf_counter() - t) * 1000


def _browser(
    server: Server, token: str, ctx: Any, lines: list[shapely.LineString]
) -> dict[str, Any]:
    from playwright import sync_api as playwright

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        session = browser.new_context(
            viewport={"width": 1366, "height": 768},
            extra_http_headers={"Authorization": f"Bearer {token}"},
        )
        page = session.new_page()
        t0 = time.perf_counter()
        page.goto(f"{server.url}/planner/brasov", timeout=600_000)
        page.wait_for_function("() => window.planner.baseline", timeout=600_000)
        ready_s = time.perf_counter() - t0
        timings, server_ms, engine_ms, library = [], [], [], []
        for line in lines:  # the reference interleaved with the page: the same machine load
            library.append(_library_ms(ctx, line))
            if page.evaluate("() => window.planner.state.edits.length"):
                seq = page.evaluate("() => window.planner.seq")
                page.keyboard.press("Escape")
                page.keyboard.press("Control+z")
                page.wait_for_function(f"() => window.planner.seq > {seq}")
            seq = page.evaluate("() => window.planner.seq")
            n = page.evaluate("() => window.planner.timings.length")
            draw_row(page, line, settle=True)
            page.wait_for_function(f"() => window.planner.seq > {seq}", timeout=60_000)
            page.wait_for_function(f"() => window.planner.timings.length > {n}")
            timings.append(float(page.evaluate("() => window.planner.timings.at(-1)")))
            last = page.evaluate("() => window.planner.last")
            server_ms.append(float(last["elapsed_ms"]))
            engine_ms.append(float(last["engine_ms"]))
            page.wait_for_function(f"() => window.planner.phases.length >= {len(timings)}")
        phases = page.evaluate("() => window.planner.phases")
        browser.close()
    return {
        "ready_s": ready_s,
        "ms": timings,
        "server_ms": server_ms,
        "engine_ms": engine_ms,
        "library": library,
        "phases": phases,
    }


def main(n: int) -> None:
    from geo_protect.cities import get_city
    from geo_protect.osm.ingest import ingest_city

    t0 = time.perf_counter()
    data = ingest_city(get_city("brasov"))
    console.print(f"Brașov municipality ingested in {time.perf_counter() - t0:.1f} s")
    ctx, lines = _lines(data, n)
    with scratch_database(f"geo_protect_bench_planner_{os.getpid()}") as dsn:
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        seed(url, data, {})
        with Server(url, workers=1, mqtt=False) as server:
            token = server.token_for("bench-planner", ["planner@brasov"])
            got = _browser(server, token, ctx, lines)
    ms, server_ms, engine_ms, library = (
        got[k] for k in ("ms", "server_ms", "engine_ms", "library")
    )
    console.print(
        f"page ready (first baseline, context built by the worker) {got['ready_s']:.1f} s"
    )
    rows = [
        ("browser: drawn edit → map updated", ms),
        ("service: preview route (validation + engine + payload)", server_ms),
        ("service: engine only (rescore in the worker)", engine_ms),
        ("reference: bare library rescore, this process", library),
    ]
    for label, values in rows:
        console.print(
            f"{label:58s} p50 {statistics.median(values):7.1f} ms  p95 {_p(values, 95):7.1f} ms"
        )
    phases = got["phases"][-len(ms) :]
    for key in ("queued_ms", "service_ms", "apply_ms", "frame_ms"):
        values = [float(p[key]) for p in phases]
        console.print(f"  page phase {key:10s} p50 {statistics.median(values):7.1f} ms")
    ref = statistics.median(library)
    ratios = [statistics.median(v) / ref for v in (ms, server_ms, engine_ms)]
    console.print(
        "ratios to the bare rescore (p50): browser {:.2f}x, route {:.2f}x, engine {:.2f}x".format(
            *ratios
        )
    )
    print(
        f"planner p95_ms={_p(ms, 95):.0f} p50_ms={statistics.median(ms):.0f} "
        f"rescore_p50_ms={ref:.0f} rescore_p95_ms={_p(library, 95):.0f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
