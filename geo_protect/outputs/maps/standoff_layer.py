"""VBIED stand-off rings on a risk map (off by default).

Per space, the class that puts most people within its mandatory evacuation distance:
the closest point it can reach and two rings around it, the mandatory (solid) and the
preferred evacuation distance (dashed), from the ``standoff`` layer
(:mod:`geo_protect.analysis.standoff`).
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.outputs.maps.display import (
    DisplayOptions,
    _display,
    _fmt,
    _geojson,
    _metric,
    _styled,
)

__all__ = ["standoff_layer"]

_RING_COLOURS = {"mandatory": "#b2182b", "preferred": "#ef8a62"}
_FIELDS = {
    "space": "Space",
    "vehicle": "Vehicle class",
    "ring": "Distance",
    "radius": "Radius",
    "reach": "Closest reach",
    "closest": "From the outline",
    "persons": "People within",
}


def standoff_layer(
    standoff: gpd.GeoDataFrame, opts: DisplayOptions, *, name: str = "VBIED stand-off rings"
) -> folium.FeatureGroup | None:
    """Stand-off rings of the worst class per space, as a hidden overlay.

    Parameters
    ----------
    standoff : GeoDataFrame
        The ``standoff`` layer (WGS84).
    opts : DisplayOptions
        The map's display options (metric CRS, tolerance, decimals).
    name : str
        The overlay's name in the layer control.

    Returns
    -------
    folium.FeatureGroup or None
        ``show=False``; None when the layer is empty.

    Examples
    --------
    >>> from geo_protect.schema import empty_layer
    >>> opts = DisplayOptions("EPSG:32635", 1.0, 2.0, 6, 5, 10.0, 20.0)
    >>> standoff_layer(empty_layer("standoff"), opts) is None
    True
    """
    if standoff.empty:
        return None
    worst = standoff.sort_values(
        ["persons_mandatory", "mandatory_m"], ascending=False, kind="stable"
    ).drop_duplicates("space_uid")
    centres = _metric(worst, opts.crs)
    props, styles = _rings(worst)
    # a ring is an L.Circle: its centre and its radius in metres, exact and compact
    centre_pts = _display(np.concatenate([centres, centres]), opts.crs, 0.0, opts.decimals)
    group = folium.FeatureGroup(name=name, show=False)
    _styled(
        _geojson(props, centre_pts),
        styles,
        marker=folium.Circle(),
        tooltip=folium.GeoJsonTooltip(fields=list(_FIELDS), aliases=list(_FIELDS.values())),
    ).add_to(group)
    points = _geojson(
        pd.DataFrame(
            {"space": worst["space_uid"].astype(str).to_numpy()}, index=worst.index.astype(str)
        ),
        _display(centres, opts.crs, 0.0, opts.decimals),
    )
    folium.GeoJson(
        points,
        marker=folium.CircleMarker(
            radius=4, color="#0b0f14", weight=1, fill=True, fill_color="#b2182b", fill_opacity=1
        ),
        tooltip=folium.GeoJsonTooltip(fields=["space"], aliases=["Closest reach of"]),
    ).add_to(group)
    return group


def _rings(worst: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, object]]]:
    """Popup fields and circle styles (radius in metres) of the two rings of each row."""
    parts = []
    for ring in ("mandatory", "preferred"):
        radius = worst[f"{ring}_m"].to_numpy(dtype=float)
        idx = pd.Index(worst.index.astype(str) + "|" + ring)
        props = pd.DataFrame(
            {
                "space": worst["space_uid"].astype(str).to_numpy(),
                "vehicle": worst["vehicle"].astype(str).to_numpy(),
                "ring": f"{ring} evacuation",
                "radius": _fmt(radius, "{:,.0f} m", idx).to_numpy(),
                "reach": worst["reach"].astype(str).to_numpy(),
                "closest": _fmt(worst["closest_m"].to_numpy(), "{:,.0f} m", idx).to_numpy(),
                "persons": _fmt(worst[f"persons_{ring}"].to_numpy(), "~{:,.0f}", idx).to_numpy(),
            },
            index=idx,
        )
        style = {
            "color": _RING_COLOURS[ring],
            "weight": 1.6,
            "dashArray": None if ring == "mandatory" else "6 4",
            "opacity": 0.9,
            "fill": False,
        }
        radii = {u: {**style, "radius": float(r)} for u, r in zip(idx, radius, strict=True)}
        parts.append((props, radii))
    styles = {u: st for _, part in parts for u, st in part.items()}
    return pd.concat([p for p, _ in parts]), styles
