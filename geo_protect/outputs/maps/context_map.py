"""The map of a city that has data but no public spaces: what exists, and no risk.

A city whose offline data holds no streets or public spaces (Larissa: OSM nodes only)
cannot be analysed, but what it does have — its boundary, crowded-place POIs, cameras,
barriers — is still worth a look. This map draws those layers over the same offline
basemap as the risk map and says plainly, in its title panel, that no streets or public
spaces are available offline, so no risk is computed. The ODbL attribution is shown as
on every map.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from geo_protect.cities import City
from geo_protect.osm.study_area import study_area
from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.assets import AssetMode, localise, save_map
from geo_protect.outputs.maps.city_map import _display_options, _offline_map
from geo_protect.outputs.maps.context_layers import (
    barrier_layer,
    basemap_layers,
    poi_layer,
    surveillance_layer,
)
from geo_protect.outputs.maps.display import _display, optional_layer
from geo_protect.reference import table
from geo_protect.schema import WGS84

__all__ = ["CONTEXT_LAYERS", "context_map", "has_context", "no_spaces_notice", "write_context_map"]

#: The layers a context map draws (besides the basemap and the boundary).
CONTEXT_LAYERS = ("poi", "surveillance", "barrier")

_BOUNDARY_COLOUR = "#8fa1b5"
_BOUNDARY_STYLE = {"color": _BOUNDARY_COLOUR, "weight": 1.5, "dashArray": "6 4", "fill": False}


def no_spaces_notice(city: City, *, has_streets: bool = False) -> str:
    """The plain statement a context map carries.

    Parameters
    ----------
    city : City
        The city.
    has_streets : bool
        Whether the city has street data (Málaga: drivable roads, but no public spaces).

    Returns
    -------
    str
        One sentence.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> no_spaces_notice(get_city("larissa"))
    'No streets or public spaces are available offline for Larissa, so no risk is computed.'
    """
    what = "public spaces are" if has_streets else "streets or public spaces are"
    return f"No {what} available offline for {city.name_en}, so no risk is computed."


def has_context(layers: Mapping[str, gpd.GeoDataFrame]) -> bool:
    """True when any of :data:`CONTEXT_LAYERS` holds a feature.

    Parameters
    ----------
    layers : Mapping of str to GeoDataFrame
        A city's layers.

    Returns
    -------
    bool
        Whether a context map would show anything but the boundary.

    Examples
    --------
    >>> from geo_protect.schema import empty_layer
    >>> has_context({"poi": empty_layer("poi")})
    False
    """
    return any(optional_layer(layers, name) is not None for name in CONTEXT_LAYERS)


def context_map(
    city: City,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    tile_url: str | None = None,
    tile_attribution: str | None = None,
    assets: AssetMode = "inline",
    asset_prefix: str = "static/vendor",
) -> folium.Map:
    """Map of what a city without public spaces has: boundary, POIs, cameras, barriers.

    Parameters
    ----------
    city : City
        The city (its study area is drawn as the boundary).
    layers : Mapping of str to GeoDataFrame
        Its WGS84 source layers; missing or empty ones are left out.
    tile_url, tile_attribution : str, optional
        An XYZ tile server, as for :func:`~.city_map.risk_map`.
    assets : {"inline", "relative"}
        As for :func:`~.city_map.risk_map`.
    asset_prefix : str
        URL folder of the vendored scripts for ``relative`` assets.

    Returns
    -------
    folium.Map
        The map, with :func:`no_spaces_notice` in its title panel.

    Raises
    ------
    ValidationError
        If a layer is not in WGS84.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> from geo_protect.osm.ingest import ingest_city
    >>> larissa = get_city("larissa")
    >>> fmap = context_map(larissa, ingest_city(larissa).layers)
    >>> no_spaces_notice(larissa) in fmap.get_root().render()
    True
    """
    opts = _display_options(city, None, None, None, None, None, None)
    present = {name: optional_layer(layers, name) for name in ("landcover", "building", "street")}
    points = {name: optional_layer(layers, name) for name in CONTEXT_LAYERS}
    fmap = _offline_map(city, tile_url, tile_attribution)
    for layer in basemap_layers({k: v for k, v in present.items() if v is not None}, opts):
        layer.add_to(fmap)
    area = gpd.GeoSeries([study_area(city)], crs=WGS84)
    outline = _display(
        np.asarray(area.to_crs(city.crs).values), city.crs, opts.tolerance_m, opts.decimals
    )
    folium.GeoJson(
        outline.__geo_interface__,
        name="Study area (boundary)",
        style_function=lambda f: _BOUNDARY_STYLE,
        interactive=False,
    ).add_to(fmap)
    if points["barrier"] is not None:
        stops = table("barrier_types").set_index("barrier")["stops_vehicle"].astype(str)
        barrier_layer(points["barrier"], stops.to_dict(), opts).add_to(fmap)
    if points["surveillance"] is not None:
        surveillance_layer(points["surveillance"], opts).add_to(fmap)
    if points["poi"] is not None:
        poi_layer(points["poi"], opts).add_to(fmap)
    fmap.fit_bounds(_bounds([g for g in points.values() if g is not None] or [area]))
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    style.MapChrome(
        title=f"{city.label} · what exists offline (no risk computed)",
        subtitle=f"{no_spaces_notice(city, has_streets=present['street'] is not None)} "
        f"{_shown(points)}",
        legend=_legend(points),
        spaces=None,
    ).add_to(fmap)
    localise(fmap, mode=assets, prefix=asset_prefix)
    return fmap


def _shown(points: Mapping[str, gpd.GeoDataFrame | None]) -> str:
    """``Shown: 99 crowded-place POIs, 221 cameras (OSM 2019-09-11).``"""
    words = {"poi": "crowded-place POIs", "surveillance": "cameras", "barrier": "barriers"}
    parts = [f"{len(g):,} {words[n]}" for n, g in points.items() if g is not None]
    dates = sorted(
        {str(d) for g in points.values() if g is not None for d in g["data_date"].dropna()}
    )
    when = f" (OSM {', '.join(dates)})" if dates else ""
    return f"Shown: {', '.join(parts) or 'the boundary only'}{when}."


def _legend(points: Mapping[str, gpd.GeoDataFrame | None]) -> list[style.LegendSection]:
    sections: list[style.LegendSection] = [("Study area", [(_BOUNDARY_COLOUR, "boundary", "line")])]
    if points["barrier"] is not None:
        rows = [(style.BARRIER_COLOURS[k], v, "circle") for k, v in style.BARRIER_LABELS.items()]
        sections.append(("Barriers", rows))
    rows = []
    if points["surveillance"] is not None:
        rows.append((style.SURVEILLANCE_COLOUR, "surveillance camera / post", "circle"))
    if points["poi"] is not None:
        rows.append((style.POI_COLOUR, "crowded place (clustered)", "circle"))
    if rows:
        sections.append(("Points", rows))
    return sections


def _bounds(frames: list[gpd.GeoDataFrame] | list[gpd.GeoSeries]) -> list[list[float]]:
    boxes = np.array([shapely.bounds(shapely.union_all(f.geometry.values)) for f in frames])
    west, south = boxes[:, 0].min(), boxes[:, 1].min()
    east, north = boxes[:, 2].max(), boxes[:, 3].max()
    return [
        [round(float(south), 6), round(float(west), 6)],
        [round(float(north), 6), round(float(east), 6)],
    ]


def write_context_map(
    city: City, layers: Mapping[str, gpd.GeoDataFrame], out_dir: Path, **options: Any
) -> Path:
    """Write ``out_dir/<slug>.html`` (the context map) with the vendored assets.

    Parameters
    ----------
    city : City
        As for :func:`context_map`.
    layers : Mapping of str to GeoDataFrame
        As for :func:`context_map`.
    out_dir : Path
        Folder of the maps (created if needed).
    **options : Any
        Passed to :func:`context_map`; ``assets`` defaults to ``relative`` here.

    Returns
    -------
    Path
        The HTML file.

    Examples
    --------
    >>> import tempfile
    >>> from geo_protect import get_city
    >>> from geo_protect.osm.ingest import ingest_city
    >>> larissa = get_city("larissa")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_context_map(larissa, ingest_city(larissa).layers, Path(tmp)).name
    'larissa.html'
    """
    return save_map(context_map, city, layers, out_dir, options)
