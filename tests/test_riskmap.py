"""Risk maps: rendered HTML of the Brașov centre clip, offline assets, styling.

The maps are drawn from the real pipeline on the committed clip (ingest, analysis, scores
pre-filled from evidence: ``pipeline.evaluate``). One unit test of the colour precedence
uses analysis layers built deterministically from the clip's spaces (read with GDAL's OSM
driver), so that every styling rule has a known input.
"""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.cities import get_city
from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.analysis_layers import arrowheads
from geo_protect.outputs.maps.city_map import (
    risk_map,
    space_risk,
    write_city_map,
)
from geo_protect.outputs.maps.compact import encode
from geo_protect.outputs.maps.exposure import exposure_band
from geo_protect.outputs.maps.index_page import summarise, write_index
from geo_protect.schema import conform
from geo_protect.settings import REPO_ROOT

CLIP = REPO_ROOT / "data" / "osm" / "brasov" / "brasov_centre.osm.bz2"
CITY = get_city("brasov")

_POI_KINDS = {
    "place_of_worship": "worship",
    "theatre": "culture",
    "cinema": "culture",
    "arts_centre": "culture",
    "bar": "nightlife",
    "pub": "nightlife",
    "nightclub": "nightlife",
    "townhall": "civic",
    "school": "education",
    "university": "education",
    "hospital": "health",
    "marketplace": "retail",
}


def _tag(frame: pd.DataFrame, key: str) -> pd.Series:
    if key in frame:
        return frame[key].astype("string")
    return frame["other_tags"].astype("string").str.extract(rf'"{key}"=>"([^"]*)"')[0]


def _layer(
    name: str, gdf: gpd.GeoDataFrame, kind: pd.Series, osm_type: str | pd.Series, **extra: Any
) -> gpd.GeoDataFrame:
    osm_id = gdf["osm_id"] if "osm_way_id" not in gdf else gdf["osm_id"].fillna(gdf["osm_way_id"])
    types = osm_type if isinstance(osm_type, pd.Series) else pd.Series(osm_type, index=gdf.index)
    frame = gpd.GeoDataFrame(
        {
            "osm_type": types,
            "osm_id": pd.to_numeric(osm_id).astype("Int64"),
            "name": gdf["name"],
            "kind": kind,
            "tags": "{}",
            "source": CLIP.name,
            "data_date": "2024-08-21",
            **extra,
        },
        geometry=gdf.geometry.values,
        crs="EPSG:4326",
    )
    frame.index = pd.Index(types.astype(str) + "/" + frame["osm_id"].astype(str), name="uid")
    frame = frame[~frame.index.duplicated()]
    return conform(name, frame)


def osm_layers(path: Path = CLIP, tmp: Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The source layers of an OSM file via GDAL (a stand-in for geo_protect.osm.ingest)."""
    if path.suffix == ".bz2":
        target = (tmp or Path("/tmp")) / f"riskmap_{path.stem}"
        if not target.exists():
            target.write_bytes(bz2.decompress(path.read_bytes()))
        path = target
    read = {
        layer: gpd.read_file(path, layer=layer, on_invalid="ignore")
        for layer in ("points", "lines", "multipolygons")
    }
    pts, lines, polys = read["points"], read["lines"], read["multipolygons"]
    polys = polys[polys.geometry.notna() & ~polys.geometry.is_empty].copy()
    poly_type = pd.Series(
        np.where(polys["osm_way_id"].notna(), "way", "relation"), index=polys.index
    )
    out: dict[str, gpd.GeoDataFrame] = {}
    place, amenity, leisure = polys["place"], _tag(polys, "amenity"), polys["leisure"]
    highway = _tag(polys, "highway")
    kind = pd.Series(pd.NA, index=polys.index, dtype="string")
    kind[leisure == "park"] = "park"
    kind[highway == "pedestrian"] = "pedestrian_area"
    kind[amenity == "marketplace"] = "marketplace"
    kind[place == "square"] = "square"
    sel = kind.notna()
    out["public_space"] = _layer("public_space", polys[sel], kind[sel], poly_type[sel])
    sel = polys["building"].notna().to_numpy()
    out["building"] = _layer(
        "building", polys[sel], polys["building"][sel], poly_type[sel], levels=np.nan
    )
    natural, landuse = polys["natural"], polys["landuse"]
    cover = pd.Series(pd.NA, index=polys.index, dtype="string")
    cover[
        landuse.isin(["grass", "forest", "meadow", "recreation_ground"]) | (leisure == "park")
    ] = "green"
    cover[natural == "wood"] = "green"
    cover[(natural == "water") | (landuse == "reservoir")] = "water"
    sel = cover.notna()
    out["landcover"] = _layer("landcover", polys[sel], cover[sel], poly_type[sel])
    streets = lines[lines["highway"].notna()]
    out["street"] = _layer(
        "street",
        streets,
        streets["highway"],
        "way",
        highway=streets["highway"],
        walk=True,
        hostile_vehicle=False,
        width_m=np.nan,
        lanes=np.nan,
        maxspeed_kmh=np.nan,
    )
    entrance = _tag(pts, "entrance")
    out["entrance"] = _layer("entrance", pts[entrance.notna()], entrance[entrance.notna()], "node")
    bar_pts, bar_lines = pts[pts["barrier"].notna()], lines[lines["barrier"].notna()]
    barriers = pd.concat([bar_pts, bar_lines])
    types = pd.Series(["node"] * len(bar_pts) + ["way"] * len(bar_lines), index=barriers.index)
    barriers = barriers.reset_index(drop=True)
    types.index = barriers.index
    out["barrier"] = _layer(
        "barrier",
        gpd.GeoDataFrame(barriers, crs="EPSG:4326"),
        barriers["barrier"],
        types,
        maxwidth_m=np.nan,
    )
    poi_kind = _tag(pts, "amenity").map(_POI_KINDS)
    sel = poi_kind.notna()
    out["poi"] = _layer(
        "poi",
        pts[sel],
        poi_kind[sel],
        "node",
        tag="amenity=" + _tag(pts, "amenity")[sel],
        capacity=np.nan,
    )
    cams = _tag(pts, "surveillance:type")
    sel = (pts["man_made"] == "surveillance").to_numpy()
    out["surveillance"] = _layer("surveillance", pts[sel], cams[sel].fillna("camera"), "node")
    return out


_CLASSES = ("vehicle_permeable", "pedestrian_only", "blocked")
_LOS = ("A", "B", "C", "D", "E", "F")


def analysis_layers(spaces: gpd.GeoDataFrame, crs: str) -> dict[str, gpd.GeoDataFrame]:
    """Deterministic analysis layers on real spaces: 3 entries each, speeds (7 i) mod 80 km/h."""
    spaces = spaces.sort_index()
    metric = np.asarray(spaces.geometry.to_crs(crs).values)
    n = len(spaces)
    rims = shapely.boundary(metric)
    entries_xy, rows = [], []
    for j, frac in enumerate((0.0, 1 / 3, 2 / 3)):
        pts = shapely.line_interpolate_point(rims, frac, normalized=True)
        entries_xy.append(pts)
        for i, uid in enumerate(spaces.index):
            cls = _CLASSES[(i + j) % 3]
            speed = float((7 * i + 11 * j) % 80) if cls == "vehicle_permeable" else 0.0
            rows.append(
                {
                    "uid": f"{uid}#{j}",
                    "space_uid": uid,
                    "kind": "street_end",
                    "entry_class": cls,
                    "worst_speed_kmh": speed,
                    "worst_vehicle": "N1" if speed else None,
                    "required_rating": f"V/3500[N1]/{speed:.0f}/90" if speed else None,
                    "width_m": 6.0,
                }
            )
    points = np.concatenate([p for p in entries_xy])
    entry = gpd.GeoDataFrame(rows, geometry=points, crs=crs).set_index("uid").to_crs(4326)
    centre = np.tile(shapely.centroid(metric), 3)
    vehicle = (entry["entry_class"] == "vehicle_permeable").to_numpy()
    ex, ey = shapely.get_x(points), shapely.get_y(points)
    cx, cy = shapely.get_x(centre), shapely.get_y(centre)
    d = np.hypot(ex - cx, ey - cy) + 1e-9
    sx, sy = ex + (ex - cx) / d * 120.0, ey + (ey - cy) / d * 120.0
    lines = shapely.linestrings(np.stack([np.c_[sx, sy], np.c_[ex, ey]], axis=1))
    ent = entry[vehicle]
    approach = gpd.GeoDataFrame(
        {
            "entry_uid": ent.index,
            "space_uid": ent["space_uid"].to_numpy(),
            "vehicle": "N1",
            "speed_kmh": ent["worst_speed_kmh"].to_numpy(),
            "run_up_m": 120.0,
            "impact_angle_deg": 90.0,
            "energy_kj": 0.5 * 3500 * (ent["worst_speed_kmh"].to_numpy() / 3.6) ** 2 / 1000,
            "required_rating": ent["required_rating"].to_numpy(),
        },
        geometry=lines[vehicle],
        crs=crs,
        index=pd.Index(ent.index + "|N1", name="uid"),
    ).to_crs(4326)
    worst = entry.groupby("space_uid")["worst_speed_kmh"].max().reindex(spaces.index)
    area = shapely.area(metric)
    space_metric = gpd.GeoDataFrame(
        {
            "name": spaces["name"],
            "kind": spaces["kind"],
            "area_m2": area,
            "design_density": 2.0,
            "capacity_persons": np.floor(area * 2.0),
            "los": [_LOS[i % 6] for i in range(n)],
            "limited_by": "density",
            "worst_speed_kmh": worst.to_numpy(),
            "worst_vehicle": "N1",
            "required_rating": "V/3500[N1]/48/90",
        },
        geometry=gpd.GeoSeries(shapely.point_on_surface(metric), crs=crs).to_crs(4326).values,
        crs=4326,
        index=spaces.index,
    )
    scored = spaces.index[::2]
    arows = []
    for k, uid in enumerate(scored):
        for t, threat in enumerate(("vehicle_as_weapon", "marauding_attack")):
            risk = float((13 * k + 29 * t) % 100)
            band = style.BAND_ORDER[min(int(risk // 25), 3)]
            arows.append(
                {
                    "uid": f"{uid}|{threat}",
                    "risk_100": risk,
                    "band": band.upper(),
                    "why": f"{threat}: L={1 + k % 5}, C={1 + t}",
                }
            )
    assessment_points = space_metric.geometry.loc[[str(r["uid"]).split("|")[0] for r in arows]]
    assessment = gpd.GeoDataFrame(arows, geometry=assessment_points.to_numpy(), crs=4326).set_index(
        "uid"
    )
    return {
        "entry_point": entry,
        "approach": approach,
        "space_metric": space_metric,
        "assessment": assessment,
    }


@pytest.fixture(scope="module")
def layers(centre_layers: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """Real layers of the centre clip: ingest, analysis and scores pre-filled from evidence."""
    return centre_layers


@pytest.fixture(scope="module")
def html(layers: dict[str, gpd.GeoDataFrame]) -> str:
    return risk_map(CITY, layers).get_root().render()


ASSET_URL = re.compile(
    r"""<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["']?(https?:)?//""", re.I
)


def test_no_remote_assets_inline(html: str) -> None:
    assert not ASSET_URL.search(html)
    assert "cdn.jsdelivr" not in html and "cdnjs" not in html and "code.jquery" not in html
    assert "L.markerClusterGroup" in html and "window.L" in html  # leaflet + plugin inlined


def test_relative_assets_written_next_to_map(
    layers: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    path = write_city_map(CITY, layers, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert not ASSET_URL.search(text)
    links = re.findall(r'(?:src|href)="(static/vendor/[^"]+)"', text)
    assert len(links) == 5
    assert all((tmp_path / link).is_file() for link in links)
    assert (tmp_path / "static/vendor/leaflet/LICENSE").is_file()


def test_layers_in_control_and_attribution(html: str, layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name in (
        "Basemap: buildings",
        "Basemap: streets",
        "Basemap: water and green",
        "Public spaces (risk band)",
        "Entry points",
        "Worst approach per space",
        "Approach paths (every entry)",
        "Barriers (existing)",
        "Crowded places (POI)",
        "Crowd capacity (static)",
    ):
        assert f'"{name}"' in html, name
    assert "Surveillance" not in html  # the clip has no cameras: no empty layer
    assert "OpenStreetMap contributors" in html and "ODbL" in html
    assert "L.control.scale" in html and "preferCanvas" in html


def test_legend_has_every_colour_scale(html: str) -> None:
    for title in (
        "Risk band (worst threat)",
        "Entry points (size: impact speed)",
        "Approach path impact speed",
        "Crowd: level of service",
        "Barriers",
    ):
        assert title in html, title
    for colour in [
        *style.BAND_COLOURS.values(),
        *style.ENTRY_COLOURS.values(),
        *style.LOS_COLOURS.values(),
    ]:
        assert f"background:{colour}" in html or f"border-top-color:{colour}" in html


def test_every_space_drawn_with_its_popup_fields(
    html: str, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    spaces = layers["public_space"]
    features = _features(html, "Public spaces (risk band)")
    assert sorted(f["id"] for f in features) == sorted(spaces.index)
    props = features[0]["properties"]
    assert set(props) == {
        "name",
        "type",
        "area",
        "capacity",
        "los",
        "risk",
        "threat",
        "speed",
        "rating",
        "why",
        "_band",
    }
    assert "Level of service" in html and "Worst entry speed" in html and '"Why"' in html


def test_space_risk_prefers_assessment_then_exposure() -> None:
    # synthetic analysis layers with closed-form values on the real clip's spaces
    layers = {**osm_layers(), **analysis_layers(osm_layers()["public_space"], CITY.crs)}
    spaces = layers["public_space"]
    risk = space_risk(
        spaces,
        space_metric=layers["space_metric"],
        assessment=layers["assessment"],
        entry_point=layers["entry_point"],
    )
    ordered = spaces.sort_index().index
    scored, unscored = ordered[::2], ordered[1::2]
    assert (risk.loc[scored, "basis"] == "assessment").all()
    assert (risk.loc[unscored, "basis"] == "vehicle exposure").all()
    # space k (even rank): worst of risk (13k) % 100 and (13k + 29) % 100, band by quarter
    k = 3
    worst = max((13 * k) % 100, (13 * k + 29) % 100)
    assert risk.at[scored[k], "risk_100"] == worst == 68
    assert risk.at[scored[k], "band"] == "high"  # 68 // 25 = 2
    assert risk.at[scored[k], "worst_threat"] == "marauding_attack"
    # unscored space i: worst speed over its 3 entries (only vehicle_permeable ones count)
    i = 1
    speeds = [float((7 * i + 11 * j) % 80) for j in range(3) if (i + j) % 3 == 0]
    assert risk.at[ordered[i], "worst_speed_kmh"] == max(speeds) == 29.0
    assert risk.at[ordered[i], "band"] == "low"
    bare = space_risk(spaces)
    assert bare["band"].isna().all() and (bare["basis"] == "none").all()  # neutral, not "low"


def test_exposure_band_bounds() -> None:
    speeds = pd.Series([0.0, 29.9, 30.0, 47.9, 48.0, 64.0, np.nan])
    assert exposure_band(speeds).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "very high",
        pd.NA,
    ]
    assert exposure_band(pd.Series([40.0]), medium_kmh=10, high_kmh=20, critical_kmh=40)[0] == (
        "very high"
    )


def test_arrowheads_point_at_entry() -> None:
    lines = np.array(
        [shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 0), (0, 10)])]
    )
    heads = arrowheads(lines, 14.0)
    assert shapely.get_coordinates(heads[0]).tolist() == [[100, 0], [86, 6.3], [86, -6.3], [100, 0]]
    assert shapely.area(heads[1]) == pytest.approx(0.5 * 6 * 5.4)  # short line: 0.6 of its length


def test_encoding_round_trip() -> None:
    square = shapely.Polygon([(25.5, 45.6), (25.501, 45.6), (25.501, 45.601), (25.5, 45.601)])
    line = shapely.LineString([(25.5, 45.6), (25.50012, 45.60034)])
    poly = encode(np.array([square]), decimals=5)
    assert poly == {
        "s": 100000,
        "n": [4],
        "p": [1],
        "d": [2550000, 4560000, 100, 0, 0, 100, -100, 0],
    }
    assert encode(np.array([line]), decimals=5)["d"] == [2550000, 4560000, 12, 34]


def test_html_size_and_property_diet(html: str, layers: dict[str, gpd.GeoDataFrame]) -> None:
    entries = _features(html, "Entry points")
    assert len(entries) == len(layers["entry_point"]) > 100
    want = {"entry", "cls", "speed", "range", "vehicle", "rating", "width"}
    assert set(entries[0]["properties"]) == want
    coords = re.findall(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]", html)
    assert coords and max(len(x.split(".")[1]) for pair in coords for x in pair) <= 6
    assert len(html) < 1_500_000


def test_graceful_without_analysis(layers: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    source = {
        k: v
        for k, v in layers.items()
        if k not in {"entry_point", "approach", "space_metric", "assessment"}
    }
    html = risk_map(CITY, source).get_root().render()
    assert "not assessed" in html and "Risk band (worst threat)" not in html
    exposure_only = {k: v for k, v in layers.items() if k != "assessment"}
    exposure_html = risk_map(CITY, exposure_only).get_root().render()
    assert "Vehicle exposure (worst entry speed)" in exposure_html
    assert '"Entry points"' not in html and "Approach paths" not in html
    only_spaces = risk_map(CITY, {"public_space": layers["public_space"]}).get_root().render()
    assert "Public spaces (risk band)" in only_spaces and "Basemap" not in only_spaces


def test_tile_url_option(layers: dict[str, gpd.GeoDataFrame]) -> None:
    html = (
        risk_map(
            CITY,
            {"public_space": layers["public_space"]},
            tile_url="tiles/{z}/{x}/{y}.png",
            tile_attribution="local tiles",
        )
        .get_root()
        .render()
    )
    assert "tiles/{z}/{x}/{y}.png" in html and "local tiles" in html
    assert "OpenStreetMap contributors" in html


def test_index_lists_cities_without_data(
    layers: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    larissa = get_city("larissa")
    rows = [
        summarise(CITY, layers, map_file="brasov.html"),
        summarise(larissa, {}, missing=["only the municipal boundary is available offline"]),
    ]
    n = len(layers["public_space"])
    assert rows[0].n_spaces == n and sum(rows[0].bands.values()) == n
    assert rows[1].map_file is None and rows[1].n_spaces == 0
    page = write_index(rows, tmp_path).read_text(encoding="utf-8")
    assert 'href="brasov.html"' in page
    assert "no data offline" in page and "only the municipal boundary" in page
    assert "Larissa" in page and not ASSET_URL.search(page)


def _features(html: str, layer_name: str) -> list[dict[str, Any]]:
    """The GeoJSON features of the folium layer shown as ``layer_name`` in the control."""
    var = re.search(rf'"{re.escape(layer_name)}" : (geo_json_\w+)', html)
    assert var, layer_name
    data = re.search(rf"{var.group(1)}_add\((\{{.*?\}})\);\n", html, re.S)
    assert data
    features: list[dict[str, Any]] = json.loads(data.group(1))["features"]
    return features
