"""Drawing on the planner page as a planner does, for the browser test and bench_planner."""

from __future__ import annotations

from typing import Any

import shapely


def draw_row(
    page: Any, line: shapely.LineString, *, spacing: float | None = None, settle: bool = False
) -> None:
    """Draw a bollard row along the two-point ``line`` with the mouse on the *after* map.

    ``spacing`` is typed into the tool's field first (None: the page's default);
    ``settle`` waits for the map's tiles before drawing (a benchmark's steady state).
    """
    (x0, y0), (x1, y1) = line.coords
    page.evaluate(
        "([x, y]) => { window.planner.after.setView([y, x], 19, {animate: false}); }",
        [(x0 + x1) / 2, (y0 + y1) / 2],
    )
    if settle:
        page.wait_for_function("() => window.planner.tilesIdle()", timeout=60_000)
    page.keyboard.press("b")
    if spacing is not None:
        page.locator("#spacing").fill(str(spacing))
    page.locator("#after").hover()
    box = page.locator("#after").bounding_box()
    for x, y in line.coords:
        p = page.evaluate(
            "([x, y]) => { const p = window.planner.after.latLngToContainerPoint([y, x]);"
            " return {x: p.x, y: p.y}; }",
            [x, y],
        )
        page.mouse.click(box["x"] + p["x"], box["y"] + p["y"])
    page.keyboard.press("Enter")
