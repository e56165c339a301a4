"""What every layer of a risk map shares: display options and GeoJSON helpers.

The builders of :mod:`.analysis_layers` and :mod:`.context_layers` take WGS84 layers,
simplify and round geometries for display in the city's metric CRS (:func:`_display`),
keep only the properties their popup or tooltip shows (formatted by :func:`_fmt` and
:func:`_text`) and style each feature by its id (:func:`_styled`).
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

from geo_protect.errors import ValidationError
from geo_protect.schema import WGS84

__all__ = ["DisplayOptions", "optional_layer"]


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


def _popup(
    props: pd.DataFrame, aliases: Mapping[str, str], always: tuple[str, ...]
) -> folium.GeoJsonPopup:
    fields = [c for c in aliases if c in always or (props[c].astype(str) != "").any()]
    return folium.GeoJsonPopup(fields=fields, aliases=[aliases[c] for c in fields], max_width=340)


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
