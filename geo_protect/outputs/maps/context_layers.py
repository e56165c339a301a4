"""The context layers of a risk map: basemap, barriers, surveillance and crowded places.

Each builder takes WGS84 layers and returns a folium layer (or a list of light
basemap layers); the shared display helpers are in :mod:`.display`.
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import FastMarkerCluster

from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.compact import CompactLayer, encode
from geo_protect.outputs.maps.display import (
    DisplayOptions,
    _col,
    _display,
    _fmt,
    _geojson,
    _metric,
    _styled,
    _text,
    optional_layer,
)

__all__ = [
    "barrier_layer",
    "basemap_layers",
    "poi_layer",
    "surveillance_layer",
]


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
