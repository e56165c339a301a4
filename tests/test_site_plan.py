"""Site plans on a hand-built space: what is drawn, where, at which scale, and escaped.

The layer set is one 100 m × 100 m square in UTM 35N (the Brașov CRS), one street through
it, one entry on its west side, the approach to that entry, one bollard and one camera.
With the 60 m margin of ``site_plan.csv`` the window is 220 m × 220 m, so every expected
position follows from the plan width (2000 units) / 220 m.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect import reference
from geo_protect.errors import ValidationError
from geo_protect.outputs.plan_style import ATTRIBUTION, WIDTH
from geo_protect.outputs.site_plan import plan_layers, site_plan

CRS = "EPSG:32635"
X0, Y0 = 400_000.0, 5_055_000.0  # south-west corner of the space (UTM 35N, near Brașov)
NAME = 'Piața <&> "Mică"'
SVG = "{http://www.w3.org/2000/svg}"


def _layer(
    rows: list[dict[str, object]], geoms: list[shapely.Geometry], uids: list[str]
) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, index=pd.Index(uids, name="uid")), geometry=geoms, crs=CRS
    )
    return frame.to_crs(4326)


def _layers(**extra: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    entry = shapely.Point(X0, Y0 + 50)
    layers = {
        "public_space": _layer(
            [{"name": NAME, "kind": "square", "data_date": "2024-08-21"}],
            [shapely.box(X0, Y0, X0 + 100, Y0 + 100)],
            ["way/1"],
        ),
        "street": _layer(
            [{"name": "Strada <b>", "highway": "residential"}],
            [shapely.LineString([(X0 - 200, Y0 + 50), (X0 + 300, Y0 + 50)])],
            ["way/2"],
        ),
        "entry_point": _layer(
            [
                {
                    "space_uid": "way/1",
                    "kind": "junction",
                    "entry_class": "vehicle_permeable",
                    "worst_speed_kmh": 64.0,
                    "worst_vehicle": "M1",
                }
            ],
            [entry],
            ["way/1#1"],
        ),
        "approach": _layer(
            [  # two runs of one class: only the faster is the worst approach
                {
                    "entry_uid": "way/1#1",
                    "space_uid": "way/1",
                    "vehicle": "M1",
                    "speed_kmh": 64.0,
                    "run_up_m": 40.0,
                },
                {
                    "entry_uid": "way/1#1",
                    "space_uid": "way/1",
                    "vehicle": "M1",
                    "speed_kmh": 30.0,
                    "run_up_m": 10.0,
                },
            ],
            [
                shapely.LineString([(X0 - 40, Y0 + 50), (X0, Y0 + 50)]),
                shapely.LineString([(X0 - 10, Y0 + 50), (X0, Y0 + 50)]),
            ],
            ["way/1#1|M1", "way/1#1|M1b"],
        ),
        "barrier": _layer([{"kind": "bollard"}], [shapely.Point(X0 + 50, Y0)], ["node/3"]),
        "surveillance": _layer(
            [{"kind": "camera", "name": "cam <&>"}], [shapely.Point(X0 + 50, Y0 + 100)], ["node/4"]
        ),
    }
    layers.update(extra)
    return layers


def _plan(**extra: gpd.GeoDataFrame) -> tuple[str, ET.Element]:
    svg = site_plan("way/1", _layers(**extra), crs=CRS)
    return svg, ET.fromstring(svg)  # parses as XML


def _all(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if cls in (e.get("class") or "").split()]


def _scale(root: ET.Element) -> float:
    """Plan units per metre, from the viewBox: its width over the 220 m window."""
    _, _, width, _ = map(float, (root.get("viewBox") or "").split())
    assert width == WIDTH
    margin = float(reference.table("site_plan").set_index("name").at["window_margin_m", "value"])
    assert margin == 60.0  # the window below is 100 m + 2 × 60 m
    return width / (100 + 2 * margin)


def test_draws_one_entry_one_approach_and_no_ring_without_a_standoff_layer() -> None:
    _, root = _plan()
    assert len(_all(root, "circle", "entry")) == 1
    assert len(_all(root, "circle", "entry-vehicle_permeable")) == 1
    assert len(_all(root, "path", "approach")) == 1  # one vehicle class, its worst run only
    assert len(_all(root, "circle", "standoff")) == 0
    assert len(_all(root, "rect", "barrier")) == 1  # the bollard, a point
    assert len(_all(root, "path", "camera")) == 1
    assert len(_all(root, "path", "space")) == 1


def test_the_worst_run_of_a_class_is_drawn_with_its_speed() -> None:
    _, root = _plan()
    scale = _scale(root)
    (path,) = _all(root, "path", "approach")
    d = [int(v) for v in re.findall(r"-?\d+", path.get("d") or "")]
    # the 40 m run, from x0 - 40 m to the entry at x0 (window from x0 - 60 m), y = middle
    assert d == [round(20 * scale), round(110 * scale), round(60 * scale), round(110 * scale)]
    (label,) = _all(root, "text", "approach-label")
    assert label.text == "M1 64 km/h"


def test_a_speed_range_is_shown_when_the_columns_hold_numbers() -> None:
    layers = _layers()
    approach = layers["approach"].copy()
    approach["speed_low_kmh"] = [52.0, 20.0]
    approach["speed_high_kmh"] = [71.0, 35.0]
    (label,) = _all(
        ET.fromstring(site_plan("way/1", {**layers, "approach": approach}, crs=CRS)),
        "text",
        "approach-label",
    )
    assert label.text == "M1 52–71 km/h"
    approach["speed_low_kmh"] = approach["speed_high_kmh"] = [64.2, 30.0]  # capped: one value
    (label,) = _all(
        ET.fromstring(site_plan("way/1", {**layers, "approach": approach}, crs=CRS)),
        "text",
        "approach-label",
    )
    assert label.text == "M1 64 km/h"
    approach["speed_low_kmh"] = np.nan  # the columns exist but hold no range
    (label,) = _all(
        ET.fromstring(site_plan("way/1", {**layers, "approach": approach}, crs=CRS)),
        "text",
        "approach-label",
    )
    assert label.text == "M1 64 km/h"


def test_the_space_is_drawn_where_the_window_puts_it() -> None:
    _, root = _plan()
    scale = _scale(root)
    (space,) = _all(root, "path", "space")
    xy = np.array([int(v) for v in re.findall(r"-?\d+", space.get("d") or "")]).reshape(-1, 2)
    # corners at 60 m and 160 m from the west edge and from the north edge of the window
    assert set(xy[:, 0].tolist()) == {round(60 * scale), round(160 * scale)}
    assert set(xy[:, 1].tolist()) == {round(60 * scale), round(160 * scale)}


def test_scale_bar_length_matches_its_label() -> None:
    _, root = _plan()
    scale = _scale(root)
    (bar,) = _all(root, "line", "scale-bar")
    (label,) = _all(root, "text", "scale-label")
    metres = float((label.text or "").removesuffix(" m"))
    assert metres == 50  # 1-2-5 series, at most a quarter of 220 m (55 m)
    drawn = float(bar.get("x2") or 0) - float(bar.get("x1") or 0)
    assert drawn == pytest.approx(metres * scale, abs=0.01)


def test_north_arrow_attribution_and_date() -> None:
    svg, root = _plan()
    assert _all(root, "g", "north-arrow")
    (attribution,) = _all(root, "text", "attribution")
    text = attribution.text or ""
    assert ATTRIBUTION in text and "2024-08-21" in text and "grid north" in text
    assert "EPSG:32635" in text
    assert svg.count("http") == 1  # only the xmlns: no tiles, no links, nothing to fetch


def test_names_from_osm_are_escaped() -> None:
    svg, root = _plan()
    assert NAME not in svg and "cam <&>" not in svg  # never raw
    assert "Piața &lt;&amp;&gt; &quot;Mică&quot;" in svg
    title = root.find(SVG + "title")
    assert title is not None and title.text == f"Site plan – {NAME}"
    cams = _all(root, "path", "camera")
    assert cams[0].find(SVG + "title").text == "camera cam <&>"  # type: ignore[union-attr]


def test_standoff_rings_of_the_largest_class() -> None:
    centre = shapely.Point(X0 + 50, Y0 + 50)
    standoff = _layer(
        [
            {"space_uid": "way/1", "vehicle": "M1", "mandatory_m": 20.0, "preferred_m": 30.0},
            {"space_uid": "way/1", "vehicle": "N3", "mandatory_m": 25.0, "preferred_m": 40.0},
        ],
        [centre, centre],
        ["way/1|M1", "way/1|N3"],
    )
    _, root = _plan(standoff=standoff)
    scale = _scale(root)  # rings never widen the window
    rings = _all(root, "circle", "standoff")
    assert len(rings) == 2
    radii = sorted(float(r.get("r") or 0) for r in rings)
    assert radii == pytest.approx([25 * scale, 40 * scale], abs=0.01)
    assert all(math.isclose(float(r.get("cx") or 0), 110 * scale, abs_tol=0.1) for r in rings)


def test_a_ring_larger_than_the_plan_keeps_the_window_and_says_so() -> None:
    centre = shapely.Point(X0 + 50, Y0 + 50)
    standoff = _layer(  # NCTC semi-trailer distances are of this order (478 m / 2835 m)
        [{"space_uid": "way/1", "vehicle": "N3", "mandatory_m": 100.0, "preferred_m": 2835.0}],
        [centre],
        ["way/1|N3"],
    )
    _, root = _plan(standoff=standoff)
    scale = _scale(root)  # still the 220 m window
    (preferred,) = _all(root, "circle", "standoff-preferred")
    assert float(preferred.get("r") or 0) == pytest.approx(2835 * scale, abs=0.01)
    legend = [t.text or "" for t in root.iter(SVG + "text")]
    # the 100 m ring lies in the window (its centre 110 m from each edge), the other is outside
    assert "stand-off N3, mandatory 100 m" in legend
    assert "stand-off N3, preferred 2835 m, beyond the plan" in legend


def test_an_empty_standoff_layer_and_missing_layers_are_tolerated() -> None:
    empty = _layers()["approach"].iloc[:0]
    _, root = _plan(standoff=empty)
    assert not _all(root, "circle", "standoff")
    only_space = {"public_space": _layers()["public_space"]}
    root = ET.fromstring(site_plan("way/1", only_space, crs=CRS))
    assert not _all(root, "path", "approach") and _all(root, "g", "north-arrow")


def test_unknown_space_and_wrong_crs_are_errors() -> None:
    plan = plan_layers(_layers(), crs=CRS)
    with pytest.raises(ValidationError, match="no space 'way/9'"):
        site_plan("way/9", plan, crs=CRS)
    with pytest.raises(ValidationError, match="indexed for EPSG:32635"):
        site_plan("way/1", plan, crs="EPSG:32634")
