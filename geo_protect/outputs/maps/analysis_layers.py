"""The analysis layers of a risk map: public spaces, crowd capacity, approaches, entries.

Each builder takes WGS84 layers and returns a folium layer (or None when it has nothing
to draw); the shared display helpers are in :mod:`.display`.
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.display import (
    DisplayOptions,
    _circle_styles,
    _col,
    _display,
    _fmt,
    _geojson,
    _metric,
    _popup,
    _styled,
    _text,
)
from geo_protect.outputs.maps.exposure import exposure_band

__all__ = [
    "approach_layer",
    "arrowheads",
    "crowd_layer",
    "entry_layer",
    "space_layer",
]


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
    label = _text(_col(metric, "label", idx), idx)  # "park by Strada X" for unnamed ones
    name = name.where(name != "", label)
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
            "name": _text(_col(metric, "label", idx), idx).where(
                lambda t: t != "", _text(_col(metric, "name", idx), idx)
            ),
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


def speed_range(frame: pd.DataFrame, low: str, high: str) -> pd.Series:
    """``"41–58 km/h"`` from two speed columns ("" where either is missing).

    Examples
    --------
    >>> speed_range(pd.DataFrame({"lo": [41.2, None], "hi": [58.0, 60.0]}), "lo", "hi").tolist()
    ['41–58 km/h', '']
    """
    idx = frame.index
    lo = pd.to_numeric(_col(frame, low, idx), errors="coerce").astype("float64")
    hi = pd.to_numeric(_col(frame, high, idx), errors="coerce").astype("float64")
    text = [
        f"{a:.0f}–{b:.0f} km/h" if np.isfinite(a) and np.isfinite(b) else ""
        for a, b in zip(lo, hi, strict=True)
    ]
    return pd.Series(text, index=idx, dtype=object)


_APPROACH_FIELDS = {
    "vehicle": "Vehicle",
    "speed": "Impact speed",
    "range": "Range (low–high sets)",
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
            "range": speed_range(approach, "speed_low_kmh", "speed_high_kmh"),
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
    "range": "Range (low–high sets)",
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
            "range": speed_range(entries, "worst_speed_low_kmh", "worst_speed_high_kmh"),
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
