"""The folium layers of a risk map, one builder per map layer (used by :mod:`.city_map`).

Each builder takes WGS84 layers, simplifies and rounds geometries for display in the
city's metric CRS, keeps only the properties its popup or tooltip shows and returns a
folium layer (or None when it has nothing to draw).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import FastMarkerCluster

from geo_protect.errors import ValidationError
from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.compact import CompactLayer, encode
from geo_protect.outputs.maps.exposure import exposure_band
from geo_protect.schema import WGS84

__all__ = [
    "DisplayOptions",
    "approach_layer",
    "barrier_layer",
    "basemap_layers",
    "crowd_layer",
    "entry_layer",
    "optional_layer",
    "poi_layer",
    "space_layer",
    "surveillance_layer",
]


@dataclass(frozen=True)
class DisplayOptions:
    """Generalisation of a map: tolerances (m), decimals, arrow size, smallest building."""

    crs: str
    tolerance_m: float
    basemap_tolerance_m: float
    decimals: int
    basemap_decimals: int
    arrow_length_m: float
    min_building_area_m2: float


def optional_layer(layers: Mapping[str, gpd.GeoDataFrame], name: str) -> gpd.GeoDataFrame | None:
    """Layer ``name`` if present and not empty (checked to be WGS84), else None."""
    layer = layers.get(name)
    if layer is None or len(layer) == 0:
        return None
    if layer.crs is None or not layer.crs.equals(WGS84):
        raise ValidationError(
            f"layer {name!r}: CRS must be {WGS84} for a risk map, got {layer.crs}"
        )
    return layer


def _display(geoms: np.ndarray, crs: str, tolerance_m: float, decimals: int) -> gpd.GeoSeries:
    """Simplify in the metric CRS, reproject to WGS84 and round the coordinates."""
    simple = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    wgs = gpd.GeoSeries(simple, crs=crs).to_crs(WGS84)
    rounded = shapely.transform(np.asarray(wgs.values), lambda c: np.round(c, decimals))
    return gpd.GeoSeries(rounded, crs=WGS84)


def _metric(layer: gpd.GeoDataFrame, crs: str) -> np.ndarray:
    return np.asarray(layer.geometry.to_crs(crs).values)


def _geojson(props: pd.DataFrame, geoms: gpd.GeoSeries) -> dict[str, Any]:
    frame = gpd.GeoDataFrame(props.reset_index(drop=True), geometry=geoms.reset_index(drop=True))
    frame.index = pd.Index(props.index.astype(str))
    data: dict[str, Any] = json.loads(frame.to_json(drop_id=False, na="null"))
    return data


def _fmt(values: Any, pattern: str, index: pd.Index) -> pd.Series:
    numbers = pd.to_numeric(pd.Series(values, index=index), errors="coerce").astype("float64")
    return numbers.map(lambda v: "" if np.isnan(v) else pattern.format(v)).astype(object)


def _text(values: Any, index: pd.Index) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(values, index=index)
    return series.astype("string").fillna("").astype(object)


def _col(layer: pd.DataFrame | None, col: str, index: pd.Index) -> pd.Series:
    if layer is None or col not in layer:
        return pd.Series(pd.NA, index=index, dtype=object)
    return layer[col].reindex(index)


def _styled(
    data: dict[str, Any], styles: Mapping[str, dict[str, Any]], **kwargs: Any
) -> folium.GeoJson:
    default = next(iter(styles.values()), {})
    return folium.GeoJson(
        data,
        style_function=lambda f: styles.get(str(f.get("id")), default),
        **kwargs,
    )


def basemap_layers(
    layers: Mapping[str, gpd.GeoDataFrame], opts: DisplayOptions
) -> list[CompactLayer]:
    """Water and green, buildings and streets by class, each one light non-interactive layer."""
    out = []
    tol, dec = opts.basemap_tolerance_m, opts.basemap_decimals
    landcover = optional_layer(layers, "landcover")
    if landcover is not None:
        parts = []
        for kind in ("green", "water"):
            sel = landcover[landcover["kind"] == kind]
            if len(sel):
                geoms = _display(_metric(sel, opts.crs), opts.crs, tol, dec)
                parts.append((encode(np.asarray(geoms.values), decimals=dec), style.BASEMAP[kind]))
        if parts:
            out.append(CompactLayer(parts, name="Basemap: water and green", pane="gp-landcover"))
    building = optional_layer(layers, "building")
    if building is not None:
        metric = _metric(building, opts.crs)
        metric = metric[shapely.area(metric) >= opts.min_building_area_m2]
        geoms = _display(metric, opts.crs, tol, dec)
        data = encode(np.asarray(geoms.values), decimals=dec)
        out.append(
            CompactLayer(
                [(data, style.BASEMAP["building"])], name="Basemap: buildings", pane="gp-building"
            )
        )
    street = optional_layer(layers, "street")
    if street is not None:
        parts = []
        highway = street["highway"] if "highway" in street else street["kind"]
        for values, line_style in style.STREET_CLASSES.values():
            sel = street[highway.isin(values).to_numpy()]
            if len(sel):
                geoms = _display(_metric(sel, opts.crs), opts.crs, tol, dec)
                parts.append((encode(np.asarray(geoms.values), decimals=dec), line_style))
        if parts:
            out.append(CompactLayer(parts, name="Basemap: streets", pane="gp-street"))
    return out


def _popup(
    props: pd.DataFrame, aliases: Mapping[str, str], always: tuple[str, ...]
) -> folium.GeoJsonPopup:
    fields = [c for c in aliases if c in always or (props[c].astype(str) != "").any()]
    return folium.GeoJsonPopup(fields=fields, aliases=[aliases[c] for c in fields], max_width=340)


_SPACE_FIELDS = {
    "name": "Name",
    "type": "Type",
    "area": "Area",
    "capacity": "Capacity",
    "los": "Level of service",
    "risk": "Risk band",
    "threat": "Worst threat",
    "speed": "Worst entry speed",
    "rating": "Required barrier",
    "why": "Why",
}


def space_layer(
    spaces: gpd.GeoDataFrame,
    risk: pd.DataFrame,
    metric: pd.DataFrame | None,
    opts: DisplayOptions,
) -> folium.GeoJson:
    """Public spaces filled by band, with a popup of their figures and the why of the score."""
    idx = spaces.index
    geoms = _metric(spaces, opts.crs)
    area = pd.to_numeric(_col(metric, "area_m2", idx), errors="coerce").astype("float64")
    area = area.fillna(pd.Series(shapely.area(geoms), index=idx))
    kind = _text(spaces["kind"], idx)
    name = _text(spaces["name"], idx)
    unnamed = name == ""
    name[unnamed] = "Unnamed " + kind[unnamed].str.replace("_", " ")
    band = _text(risk["band"], idx)
    basis = risk["basis"].astype(str)
    risk_text = np.where(band == "", "not assessed", band + " (" + basis + ")")
    vehicle = _text(_col(metric, "worst_vehicle", idx), idx)
    speed = _fmt(risk["worst_speed_kmh"], "{:.0f} km/h", idx)
    speed = speed.where((vehicle == "") | (speed == ""), speed + " (" + vehicle + ")")
    props = pd.DataFrame(
        {
            "name": name,
            "type": kind.str.replace("_", " "),
            "area": _fmt(area, "{:,.0f} m²", idx),
            "capacity": _fmt(_col(metric, "capacity_persons", idx), "{:,.0f} persons", idx),
            "los": _text(_col(metric, "los", idx), idx),
            "risk": risk_text,
            "threat": _text(risk["worst_threat"], idx),
            "speed": speed,
            "rating": _text(_col(metric, "required_rating", idx), idx),
            "why": _text(risk["why"], idx),
            "_band": band,
        },
        index=idx,
    )
    colours = band.map(style.BAND_COLOURS).fillna(style.NEUTRAL)
    styles = {
        str(uid): {"fillColor": c, "color": c, "weight": 1.6, "fillOpacity": 0.42, "opacity": 0.95}
        for uid, c in zip(idx, colours, strict=True)
    }
    data = _geojson(props, _display(geoms, opts.crs, opts.tolerance_m, opts.decimals))
    return _styled(
        data,
        styles,
        name="Public spaces (risk band)",
        highlight_function=lambda f: {"weight": 3.2, "fillOpacity": 0.62},
        popup=_popup(props, _SPACE_FIELDS, ("name", "type", "area", "risk")),
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    )


def crowd_layer(metric: gpd.GeoDataFrame, opts: DisplayOptions) -> folium.GeoJson | None:
    """Static crowd capacity: a circle per space sized by persons, coloured by level of service."""
    if "capacity_persons" not in metric:
        return None
    idx = metric.index
    persons = pd.to_numeric(metric["capacity_persons"], errors="coerce").astype("float64")
    radius = np.clip(
        np.sqrt(persons.fillna(0.0).to_numpy()) * style.CROWD_RADIUS["per_sqrt_person"],
        style.CROWD_RADIUS["min"],
        style.CROWD_RADIUS["max"],
    )
    los = _text(_col(metric, "los", idx), idx)
    props = pd.DataFrame(
        {
            "name": _text(_col(metric, "name", idx), idx),
            "capacity": _fmt(persons, "{:,.0f} persons", idx),
            "density": _fmt(_col(metric, "design_density", idx), "{:.2f} p/m²", idx),
            "los": los,
            "limited_by": _text(_col(metric, "limited_by", idx), idx),
        },
        index=idx,
    )
    colours = los.map(style.LOS_COLOURS).fillna(style.NEUTRAL)
    styles = _circle_styles(idx, radius, colours, weight=1, fill_opacity=0.8)
    data = _geojson(props, _display(_metric(metric, opts.crs), opts.crs, 0.0, opts.decimals))
    aliases = {
        "name": "Space",
        "capacity": "Capacity",
        "density": "Design density",
        "los": "Level of service",
        "limited_by": "Limited by",
    }
    return _styled(
        data,
        styles,
        name="Crowd capacity (static)",
        marker=folium.CircleMarker(),
        tooltip=folium.GeoJsonTooltip(fields=list(aliases), aliases=list(aliases.values())),
        show=False,
    )


def arrowheads(lines: np.ndarray, length_m: float) -> np.ndarray:
    """Triangles (metric CRS) pointing at the last vertex of each line; None for empty lines."""
    total = shapely.length(lines)
    size = np.minimum(length_m, 0.6 * total)
    tip = shapely.get_coordinates(shapely.get_point(lines, -1))
    base = shapely.get_coordinates(shapely.line_interpolate_point(lines, total - size))
    direction = tip - base
    norm = np.hypot(direction[:, 0], direction[:, 1])
    ok = norm > 0
    unit = direction / np.where(ok, norm, 1.0)[:, None]
    normal = np.column_stack([-unit[:, 1], unit[:, 0]]) * (0.45 * size)[:, None]
    rings = np.stack([tip, base + normal, base - normal, tip], axis=1)
    out = np.full(len(lines), None, dtype=object)
    out[ok] = shapely.polygons(rings[ok])
    return out


_APPROACH_FIELDS = {
    "vehicle": "Vehicle",
    "speed": "Impact speed",
    "classes": "All classes",
    "run_up": "Run-up",
    "angle": "Impact angle",
    "energy": "Energy",
    "rating": "Required barrier",
}


def _fastest(approach: gpd.GeoDataFrame, per: str) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """The fastest row per ``per`` (entry_uid or space_uid), and "M1 110 · N1 100 ..." of
    every class at the kept row's entry."""
    if per not in approach.columns or "entry_uid" not in approach.columns or approach.empty:
        return approach, pd.Series(pd.NA, index=approach.index, dtype="string")
    speed = pd.to_numeric(approach["speed_kmh"], errors="coerce").fillna(-1.0)
    entry = approach["entry_uid"].astype("string")
    key = approach[per].astype("string")
    order = speed.sort_values(ascending=False, kind="stable").index
    fastest = approach.loc[order][~key.loc[order].duplicated()]
    label = approach["vehicle"].astype("string") + " " + speed.round().astype(int).astype("string")
    summary = label.groupby(entry).agg(" · ".join) + " km/h"
    classes = pd.Series(
        summary.reindex(entry.loc[fastest.index]).to_numpy(), index=fastest.index, dtype="string"
    )
    return fastest.sort_index(), classes


def _circle_styles(
    idx: pd.Index, radius: Any, colours: pd.Series, *, weight: float, fill_opacity: float
) -> dict[str, dict[str, Any]]:
    """Per-feature circle-marker styles: radius and fill colour, one dark outline."""
    return {
        str(uid): {
            "radius": float(r),
            "fillColor": c,
            "color": "#0b0f14",
            "weight": weight,
            "fillOpacity": fill_opacity,
        }
        for uid, r, c in zip(idx, radius, colours, strict=True)
    }


def approach_layer(
    approach: gpd.GeoDataFrame,
    opts: DisplayOptions,
    *,
    per: str = "entry_uid",
    name: str = "Approach paths (worst case)",
    show: bool = True,
    bounds: Mapping[str, float | None] | None = None,
) -> folium.FeatureGroup:
    """Worst-case approach paths coloured by impact speed, with an arrowhead at the entry.

    One path per ``per`` (``entry_uid``: every vehicle-permeable entry; ``space_uid``: the
    single worst approach of each space): the fastest vehicle class's path (the classes'
    paths mostly coincide); the popup lists every class's impact speed at that entry.
    """

    approach, classes = _fastest(approach, per)
    idx = approach.index
    lines = shapely.simplify(_metric(approach, opts.crs), opts.tolerance_m)
    speed = pd.to_numeric(approach["speed_kmh"], errors="coerce").astype("float64")
    colours = exposure_band(speed, **(bounds or {})).map(style.BAND_COLOURS).fillna(style.NEUTRAL)
    props = pd.DataFrame(
        {
            "vehicle": _text(_col(approach, "vehicle", idx), idx),
            "speed": _fmt(speed, "{:.0f} km/h", idx),
            "classes": classes.reindex(idx),
            "run_up": _fmt(_col(approach, "run_up_m", idx), "{:.0f} m", idx),
            "angle": _fmt(_col(approach, "impact_angle_deg", idx), "{:.0f}°", idx),
            "energy": _fmt(_col(approach, "energy_kj", idx), "{:,.0f} kJ", idx),
            "rating": _text(_col(approach, "required_rating", idx), idx),
        },
        index=idx,
    )
    line_styles = {
        str(uid): {"color": c, "weight": 3.0, "opacity": 0.9}
        for uid, c in zip(idx, colours, strict=True)
    }
    group = folium.FeatureGroup(name=name, show=show)
    _styled(
        _geojson(props, _display(lines, opts.crs, 0.0, opts.decimals)),
        line_styles,
        popup=_popup(props, _APPROACH_FIELDS, ("vehicle", "speed")),
        control=False,
    ).add_to(group)
    heads = arrowheads(lines, opts.arrow_length_m)
    has = pd.notna(heads)
    head_props = pd.DataFrame(index=idx[has])
    head_styles = {
        str(uid): {"color": c, "fillColor": c, "weight": 1, "fillOpacity": 1.0}
        for uid, c in zip(idx[has], colours[has], strict=True)
    }
    if has.any():
        _styled(
            _geojson(head_props, _display(heads[has], opts.crs, 0.0, opts.decimals)),
            head_styles,
            interactive=False,
            control=False,
        ).add_to(group)
    return group


_ENTRY_FIELDS = {
    "entry": "Entry",
    "cls": "Class",
    "speed": "Worst impact speed",
    "vehicle": "Worst vehicle",
    "rating": "Required barrier",
    "width": "Width",
}


def entry_layer(entries: gpd.GeoDataFrame, opts: DisplayOptions) -> folium.GeoJson:
    """Entry points by class, sized by worst impact speed, with the barrier class they need."""
    idx = entries.index
    cls = _text(_col(entries, "entry_class", idx), idx)
    speed = pd.to_numeric(_col(entries, "worst_speed_kmh", idx), errors="coerce").astype("float64")
    radius = np.clip(
        style.ENTRY_RADIUS["base"] + speed.fillna(0.0).to_numpy() * style.ENTRY_RADIUS["per_kmh"],
        style.ENTRY_RADIUS["base"],
        style.ENTRY_RADIUS["max"],
    )
    props = pd.DataFrame(
        {
            "entry": _text(_col(entries, "kind", idx), idx).str.replace("_", " "),
            "cls": cls.map(style.ENTRY_LABELS).fillna(cls),
            "speed": _fmt(speed, "{:.0f} km/h", idx),
            "vehicle": _text(_col(entries, "worst_vehicle", idx), idx),
            "rating": _text(_col(entries, "required_rating", idx), idx),
            "width": _fmt(_col(entries, "width_m", idx), "{:.1f} m", idx),
        },
        index=idx,
    )
    colours = cls.map(style.ENTRY_COLOURS).fillna(style.NEUTRAL)
    styles = _circle_styles(idx, radius, colours, weight=1.2, fill_opacity=0.95)
    data = _geojson(props, _display(_metric(entries, opts.crs), opts.crs, 0.0, opts.decimals))
    return _styled(
        data,
        styles,
        name="Entry points",
        marker=folium.CircleMarker(),
        popup=_popup(props, _ENTRY_FIELDS, ("entry", "cls")),
        tooltip=folium.GeoJsonTooltip(fields=["cls", "speed", "rating"], labels=False),
    )


def barrier_layer(
    barriers: gpd.GeoDataFrame, stops_vehicle: Mapping[str, str], opts: DisplayOptions
) -> folium.FeatureGroup:
    """Existing barriers (points and lines), coloured by whether they stop a vehicle."""
    idx = barriers.index
    stops = _text(barriers["kind"], idx).map(dict(stops_vehicle)).fillna("no")
    props = pd.DataFrame(
        {
            "barrier": _text(barriers["kind"], idx).str.replace("_", " "),
            "effect": stops.map(style.BARRIER_LABELS),
        },
        index=idx,
    )
    colours = stops.map(style.BARRIER_COLOURS)
    geoms = _metric(barriers, opts.crs)
    points = shapely.get_type_id(geoms) == 0
    group = folium.FeatureGroup(name="Barriers (existing)")
    tooltip_fields = ["barrier", "effect"]
    if points.any():
        styles = {
            str(u): {
                "radius": 3.5,
                "fillColor": c,
                "color": "#0b0f14",
                "weight": 0.8,
                "fillOpacity": 1.0,
            }
            for u, c in zip(idx[points], colours[points], strict=True)
        }
        _styled(
            _geojson(props[points], _display(geoms[points], opts.crs, 0.0, opts.decimals)),
            styles,
            marker=folium.CircleMarker(),
            tooltip=folium.GeoJsonTooltip(fields=tooltip_fields, labels=False),
            control=False,
        ).add_to(group)
    if (~points).any():
        outline = shapely.boundary(geoms[~points])
        lines = np.where(shapely.get_dimensions(geoms[~points]) == 2, outline, geoms[~points])
        styles = {
            str(u): {"color": c, "weight": 2.2, "opacity": 0.9}
            for u, c in zip(idx[~points], colours[~points], strict=True)
        }
        _styled(
            _geojson(props[~points], _display(lines, opts.crs, opts.tolerance_m, opts.decimals)),
            styles,
            tooltip=folium.GeoJsonTooltip(fields=tooltip_fields, labels=False),
            control=False,
        ).add_to(group)
    return group


def surveillance_layer(cameras: gpd.GeoDataFrame, opts: DisplayOptions) -> folium.GeoJson:
    """Surveillance points (cameras, guards...)."""
    idx = cameras.index
    props = pd.DataFrame({"type": "surveillance: " + _text(cameras["kind"], idx)}, index=idx)
    props.loc[props["type"] == "surveillance: ", "type"] = "surveillance"
    data = _geojson(props, _display(_metric(cameras, opts.crs), opts.crs, 0.0, opts.decimals))
    one = {
        "radius": 4.0,
        "fillColor": style.SURVEILLANCE_COLOUR,
        "color": "#0b0f14",
        "weight": 1,
        "fillOpacity": 1.0,
    }
    return folium.GeoJson(
        data,
        name="Surveillance",
        style_function=lambda f: one,
        marker=folium.CircleMarker(),
        tooltip=folium.GeoJsonTooltip(fields=["type"], labels=False),
    )


_POI_CALLBACK = """
function (row) {
  var m = L.circleMarker(new L.LatLng(row[0], row[1]), {radius: 5,
    color: '#0b0f14', weight: 1, fillColor: 'POI_COLOUR', fillOpacity: 0.95});
  var div = document.createElement('div');
  div.innerHTML = '<b></b><br><span></span>';
  div.querySelector('b').textContent = row[2];
  div.querySelector('span').textContent = row[3];
  m.bindPopup(div);
  return m;
}
""".replace("POI_COLOUR", style.POI_COLOUR)


def poi_layer(pois: gpd.GeoDataFrame, opts: DisplayOptions) -> FastMarkerCluster:
    """Crowded-place POIs, clustered (Leaflet.markercluster)."""
    idx = pois.index
    xy = shapely.get_coordinates(shapely.point_on_surface(np.asarray(pois.geometry.values)))
    lat, lon = np.round(xy[:, 1], opts.decimals), np.round(xy[:, 0], opts.decimals)
    kind = _text(pois["kind"], idx)
    name = _text(pois["name"], idx)
    name = name.where(name != "", kind)
    capacity = _fmt(_col(pois, "capacity", idx), " · capacity {:,.0f}", idx)
    tag = _text(_col(pois, "tag", idx), idx)
    detail = kind.where(tag == "", kind + " (" + tag + ")") + capacity
    rows = [
        list(r)
        for r in zip(lat.tolist(), lon.tolist(), name.tolist(), detail.tolist(), strict=True)
    ]
    return FastMarkerCluster(  # type: ignore[no-untyped-call]
        rows,
        callback=_POI_CALLBACK,
        name="Crowded places (POI)",
        options={
            "showCoverageOnHover": False,
            "maxClusterRadius": 45,
            "disableClusteringAtZoom": 18,
        },
    )
