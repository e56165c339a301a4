"""Interactive risk maps of a city's public spaces, drawn fully offline.

A risk map shows the public spaces coloured by risk band (or, before scores exist, by
vehicle exposure: the worst speed at which a hostile vehicle reaches an entry), their
entry points, the worst-case approach paths, existing barriers and cameras, crowded-place
POIs and the static crowd capacity, over a basemap drawn from the city's own OSM layers.
Every asset is vendored (:mod:`geo_protect.outputs.maps.assets`): a map opened from disk with no
network draws completely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, Figure

from geo_protect.cities import City
from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.analysis_layers import (
    approach_layer,
    crowd_layer,
    entry_layer,
    space_layer,
)
from geo_protect.outputs.maps.assets import AssetMode, localise, save_map
from geo_protect.outputs.maps.compact import DECODER_JS
from geo_protect.outputs.maps.context_layers import (
    barrier_layer,
    basemap_layers,
    poi_layer,
    surveillance_layer,
)
from geo_protect.outputs.maps.display import DisplayOptions, optional_layer
from geo_protect.outputs.maps.exposure import exposure_band, map_setting
from geo_protect.outputs.maps.standoff_layer import standoff_layer
from geo_protect.reference import table
from geo_protect.schema import SOURCE_LAYERS

__all__ = [
    "risk_map",
    "space_risk",
    "write_city_map",
]

# Basemap panes under the overlay pane. Interactive layers all share the overlay pane
# (one canvas): a canvas in a higher pane would swallow the clicks meant for lower ones.
_PANES = {  # name: (z-index, receives pointer events)
    "gp-landcover": (210, False),
    "gp-building": (220, False),
    "gp-street": (230, False),
}


def space_risk(
    spaces: gpd.GeoDataFrame,
    *,
    space_metric: pd.DataFrame | None = None,
    assessment: pd.DataFrame | None = None,
    entry_point: pd.DataFrame | None = None,
    **bounds: float | None,
) -> pd.DataFrame:
    """The band each space is drawn with, and what it rests on.

    The band comes from the worst threat of ``assessment`` when the space has scores;
    otherwise from its vehicle exposure (worst entry speed, from ``space_metric`` or the
    entry points); otherwise it is NA (drawn neutral, never as low risk).

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer.
    space_metric, assessment, entry_point : DataFrame, optional
        Analysis layers, each optional.
    **bounds : float, optional
        ``medium_kmh``, ``high_kmh``, ``critical_kmh`` for :func:`exposure_band`.

    Returns
    -------
    pandas.DataFrame
        Index of ``spaces``; columns ``band``, ``basis`` (``assessment``, ``vehicle exposure``
        or ``none``), ``worst_threat``, ``risk_100``, ``why``, ``worst_speed_kmh``.
    """
    out = pd.DataFrame(index=spaces.index)
    out["band"] = pd.Series(pd.NA, index=spaces.index, dtype="string")
    out["basis"] = "none"
    out["worst_threat"] = pd.Series(pd.NA, index=spaces.index, dtype="string")
    out["risk_100"] = np.nan
    out["why"] = pd.Series(pd.NA, index=spaces.index, dtype="string")
    speed = pd.Series(np.nan, index=spaces.index)
    if space_metric is not None and "worst_speed_kmh" in space_metric:
        speed = pd.to_numeric(space_metric["worst_speed_kmh"], errors="coerce").reindex(
            spaces.index
        )
    if entry_point is not None and len(entry_point) and "worst_speed_kmh" in entry_point:
        by_space = pd.to_numeric(entry_point["worst_speed_kmh"], errors="coerce").fillna(0.0)
        worst = by_space.groupby(entry_point["space_uid"].to_numpy()).max()
        speed = speed.fillna(worst.reindex(spaces.index))
    out["worst_speed_kmh"] = speed.astype("float64")
    exposure = exposure_band(speed, **bounds)
    has_exposure = exposure.notna()
    out.loc[has_exposure, "band"] = exposure[has_exposure]
    out.loc[has_exposure, "basis"] = "vehicle exposure"
    if assessment is not None and len(assessment):
        scores = _worst_assessment(assessment).reindex(spaces.index)
        scored = scores["band"].notna()
        for col in ("band", "worst_threat", "risk_100", "why"):
            out.loc[scored, col] = scores.loc[scored, col]
        out.loc[scored, "basis"] = "assessment"
    return out


def _worst_assessment(assessment: pd.DataFrame) -> pd.DataFrame:
    """Per space, the assessment row with the highest ``risk_100``."""
    uid = assessment.index.astype("string").str.split("|", n=1)
    frame = pd.DataFrame(
        {
            "space_uid": assessment["space_uid"]
            if "space_uid" in assessment
            else uid.str[0].to_numpy(),
            "threat": assessment["threat"] if "threat" in assessment else uid.str[1].to_numpy(),
            "risk_100": pd.to_numeric(assessment["risk_100"], errors="coerce").to_numpy(),
            "band": assessment["band"].astype("string").str.lower().to_numpy(),
            "why": _why(assessment).to_numpy(),
        }
    )
    frame = frame.sort_values("risk_100", ascending=False, na_position="last", kind="stable")
    worst = frame.drop_duplicates("space_uid").set_index("space_uid")
    return worst.rename(columns={"threat": "worst_threat"})


def _why(assessment: pd.DataFrame) -> pd.Series:
    for col in ("why", "rationale", "explanation", "evidence"):
        if col in assessment:
            text = assessment[col].astype("string")
            return text.where(text.str.len() <= 300, text.str.slice(0, 297) + "…")
    return pd.Series(pd.NA, index=assessment.index, dtype="string")


def _legend(
    risk: pd.DataFrame,
    layers: Mapping[str, gpd.GeoDataFrame | None],
    bounds: Sequence[float],
) -> list[style.LegendSection]:
    sections: list[style.LegendSection] = []
    bands = [(style.BAND_COLOURS[b], b, "") for b in style.BAND_ORDER]
    lo, mid, hi = (f"{v:.0f}" for v in bounds)
    speed_rows = [
        (style.BAND_COLOURS["low"], f"< {lo} km/h", "line"),
        (style.BAND_COLOURS["medium"], f"{lo}–{mid} km/h", "line"),
        (style.BAND_COLOURS["high"], f"{mid}–{hi} km/h", "line"),
        (style.BAND_COLOURS["very high"], f"≥ {hi} km/h", "line"),
    ]
    basis = set(risk["basis"])
    if "assessment" in basis:
        sections.append(("Risk band (worst threat)", bands))
    if "vehicle exposure" in basis:
        sections.append(
            (
                "Vehicle exposure (worst entry speed)",
                [
                    (c, f"{b}: {t}", "")
                    for (c, b, _), (_, t, _) in zip(bands, speed_rows, strict=True)
                ],
            )
        )
    if len(risk):
        sections.append(("Spaces", [(style.NEUTRAL, "not assessed", "")]))
    if layers.get("entry_point") is not None:
        rows = [(c, style.ENTRY_LABELS[k], "circle") for k, c in style.ENTRY_COLOURS.items()]
        sections.append(("Entry points (size: impact speed)", rows))
    if layers.get("approach") is not None:
        sections.append(("Approach path impact speed ▶", speed_rows))
    if layers.get("space_metric") is not None:
        rows = [(c, f"LOS {k}", "circle") for k, c in style.LOS_COLOURS.items()]
        sections.append(("Crowd: level of service (size: capacity)", rows))
    if layers.get("barrier") is not None:
        rows = [(style.BARRIER_COLOURS[k], v, "circle") for k, v in style.BARRIER_LABELS.items()]
        sections.append(("Barriers", rows))
    points = []
    if layers.get("surveillance") is not None:
        points.append((style.SURVEILLANCE_COLOUR, "surveillance camera / post", "circle"))
    if layers.get("poi") is not None:
        points.append((style.POI_COLOUR, "crowded place (clustered)", "circle"))
    if points:
        sections.append(("Points", points))
    return sections


def risk_map(
    city: City,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    tile_url: str | None = None,
    tile_attribution: str | None = None,
    assets: AssetMode = "inline",
    asset_prefix: str = "static/vendor",
    tolerance_m: float | None = None,
    basemap_tolerance_m: float | None = None,
    decimals: int | None = None,
    basemap_decimals: int | None = None,
    arrow_length_m: float | None = None,
    min_building_area_m2: float | None = None,
    medium_kmh: float | None = None,
    high_kmh: float | None = None,
    critical_kmh: float | None = None,
) -> folium.Map:
    """Interactive risk map of a city's public spaces, with no network dependency.

    All numeric defaults come from the ``risk_map`` reference table.

    Parameters
    ----------
    city : City
        The city (its metric CRS is used for simplification, areas and arrowheads).
    layers : Mapping of str to GeoDataFrame
        WGS84 layers by name: the source layers (``public_space``, ``street``, ``entrance``,
        ``barrier``, ``poi``, ``building``, ``surveillance``, ``landcover``) and, when present,
        ``space_metric``, ``entry_point``, ``approach``, ``assessment``. Missing or empty
        layers are left out.
    tile_url, tile_attribution : str, optional
        An XYZ tile server for deployments that run one; without it the basemap is drawn
        from the city's own buildings, streets and landcover.
    assets : {"inline", "relative"}
        ``inline`` (one self-contained HTML file) or ``relative`` (links ``asset_prefix``;
        :func:`write_city_map` copies the files).
    asset_prefix : str
        URL folder of the vendored scripts for ``relative`` assets.
    tolerance_m, basemap_tolerance_m : float, optional
        Simplification of analysis and basemap geometries for display, in metres.
    decimals, basemap_decimals : int, optional
        Decimal places of the coordinates written.
    arrow_length_m : float, optional
        Arrowhead length of the approach paths.
    min_building_area_m2 : float, optional
        Smaller buildings are not drawn.
    medium_kmh, high_kmh, critical_kmh : float, optional
        Vehicle-exposure band bounds (see :func:`exposure_band`).

    Returns
    -------
    folium.Map
        Save it with ``.save(path)`` (inline assets) or use :func:`write_city_map`.

    Raises
    ------
    ValidationError
        If a layer is not in WGS84.
    """
    opts = _display_options(
        city,
        tolerance_m,
        basemap_tolerance_m,
        decimals,
        basemap_decimals,
        arrow_length_m,
        min_building_area_m2,
    )
    bounds = {"medium_kmh": medium_kmh, "high_kmh": high_kmh, "critical_kmh": critical_kmh}
    present = {name: optional_layer(layers, name) for name in _ALL_LAYERS}
    fmap = _offline_map(city, tile_url, tile_attribution)
    _add_basemap(fmap, present, opts)
    risk = _risk_of_spaces(present, bounds)
    space_var = _add_space_layers(fmap, present, risk, opts)
    _add_approach_layers(fmap, present["approach"], opts, bounds)
    _add_point_layers(fmap, present, opts)
    _add_controls(fmap, city, risk, present, bounds, space_var)
    localise(fmap, mode=assets, prefix=asset_prefix)
    return fmap


def _display_options(
    city: City,
    tolerance_m: float | None,
    basemap_tolerance_m: float | None,
    decimals: int | None,
    basemap_decimals: int | None,
    arrow_length_m: float | None,
    min_building_area_m2: float | None,
) -> DisplayOptions:
    """The map's generalisation: the values given, else the ``risk_map`` table's."""
    return DisplayOptions(
        crs=city.crs,
        tolerance_m=map_setting("display_tolerance_m", tolerance_m),
        basemap_tolerance_m=map_setting("basemap_tolerance_m", basemap_tolerance_m),
        decimals=int(map_setting("coordinate_decimals", decimals)),
        basemap_decimals=int(map_setting("basemap_decimals", basemap_decimals)),
        arrow_length_m=map_setting("arrow_length_m", arrow_length_m),
        min_building_area_m2=map_setting("min_building_area_m2", min_building_area_m2),
    )


def _offline_map(city: City, tile_url: str | None, tile_attribution: str | None) -> folium.Map:
    """An empty map on the city centre: basemap panes, the geometry decoder, tiles if any."""
    fmap = folium.Map(
        location=list(city.centre),
        zoom_start=16,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_snap=0.5,
        min_zoom=11,
    )
    fmap.options["maxZoom"] = 20  # markercluster needs it on the map (folium gives it to tiles)
    for pane, (z_index, pointer) in _PANES.items():
        folium.map.CustomPane(pane, z_index=z_index, pointer_events=pointer).add_to(fmap)
    root = fmap.get_root()
    assert isinstance(root, Figure)  # folium.Map always belongs to a Figure
    root.header.add_child(Element(f"<script>{DECODER_JS}</script>"), name="gp_decoder")
    if tile_url:
        folium.TileLayer(
            tile_url, attr=tile_attribution or style.ATTRIBUTION, name="Tiles", overlay=False
        ).add_to(fmap)
    return fmap


def _add_basemap(
    fmap: folium.Map, present: Mapping[str, gpd.GeoDataFrame | None], opts: DisplayOptions
) -> None:
    """Add the basemap drawn from the city's landcover, buildings and streets."""
    for layer in basemap_layers(present, opts):
        layer.add_to(fmap)


def _risk_of_spaces(
    present: Mapping[str, gpd.GeoDataFrame | None], bounds: Mapping[str, float | None]
) -> pd.DataFrame:
    """:func:`space_risk` of the map's spaces (an empty frame when there are none)."""
    spaces = present["public_space"]
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    return space_risk(
        spaces if spaces is not None else empty,
        space_metric=present["space_metric"],
        assessment=present["assessment"],
        entry_point=present["entry_point"],
        **bounds,
    )


def _add_space_layers(
    fmap: folium.Map,
    present: Mapping[str, gpd.GeoDataFrame | None],
    risk: pd.DataFrame,
    opts: DisplayOptions,
) -> str | None:
    """Add the spaces (fitting the map to them) and their crowd capacity.

    Returns the JavaScript name of the spaces layer, None when there are no spaces.
    """
    spaces = present["public_space"]
    metric = present["space_metric"]
    space_var = None
    if spaces is not None:
        space_geojson = space_layer(spaces, risk, metric, opts).add_to(fmap)
        space_var = space_geojson.get_name()
        fmap.fit_bounds(_bounds(spaces), padding=(20, 20))
    if metric is not None and (crowd := crowd_layer(metric, opts)) is not None:
        crowd.add_to(fmap)
    return space_var


def _add_approach_layers(
    fmap: folium.Map,
    approach: gpd.GeoDataFrame | None,
    opts: DisplayOptions,
    bounds: Mapping[str, float | None],
) -> None:
    """Add the worst approach of each space, and (hidden) the worst of every entry."""
    if approach is None:
        return
    approach_layer(
        approach,
        opts,
        per="space_uid",
        name="Worst approach per space",
        bounds=bounds,
    ).add_to(fmap)
    approach_layer(
        approach,
        opts,
        per="entry_uid",
        name="Approach paths (every entry)",
        show=False,
        bounds=bounds,
    ).add_to(fmap)


def _add_point_layers(
    fmap: folium.Map, present: Mapping[str, gpd.GeoDataFrame | None], opts: DisplayOptions
) -> None:
    """Add the barriers, entry points, surveillance and crowded places present."""
    if present["barrier"] is not None:
        stops = table("barrier_types").set_index("barrier")["stops_vehicle"].astype(str)
        barrier_layer(present["barrier"], stops.to_dict(), opts).add_to(fmap)
    if present["entry_point"] is not None:
        entry_layer(present["entry_point"], opts).add_to(fmap)
    if present["surveillance"] is not None:
        surveillance_layer(present["surveillance"], opts).add_to(fmap)
    if present["poi"] is not None:
        poi_layer(present["poi"], opts).add_to(fmap)
    if present["standoff"] is not None and (rings := standoff_layer(present["standoff"], opts)):
        rings.add_to(fmap)


def _add_controls(
    fmap: folium.Map,
    city: City,
    risk: pd.DataFrame,
    present: Mapping[str, gpd.GeoDataFrame | None],
    bounds: Mapping[str, float | None],
    space_var: str | None,
) -> None:
    """Add the layer control, then the title, subtitle and legend of the map."""
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    lo, mid, hi = (
        map_setting(f"exposure_{b}_kmh", bounds[f"{b}_kmh"]) for b in ("medium", "high", "critical")
    )
    subtitle = _subtitle(risk, present)
    style.MapChrome(
        title=f"{city.label} · public-space risk",
        subtitle=subtitle,
        legend=_legend(risk, present, (lo, mid, hi)),
        spaces=space_var,
    ).add_to(fmap)


#: Every layer a map can draw: the source layers and the analysis layers.
_ALL_LAYERS = (*SOURCE_LAYERS, "space_metric", "entry_point", "approach", "assessment", "standoff")


def _bounds(layer: gpd.GeoDataFrame) -> list[list[float]]:
    west, south, east, north = layer.total_bounds
    return [
        [round(float(south), 6), round(float(west), 6)],
        [round(float(north), 6), round(float(east), 6)],
    ]


def _subtitle(risk: pd.DataFrame, present: Mapping[str, gpd.GeoDataFrame | None]) -> str:
    n = len(risk)
    if "assessment" in set(risk["basis"]):
        basis = "risk bands from the assessment; indicative"
    elif "vehicle exposure" in set(risk["basis"]):
        basis = "no scores yet: coloured by vehicle exposure"
    else:
        basis = "no analysis yet: spaces not assessed"
    dates = (
        present["public_space"]["data_date"].dropna().unique()
        if present["public_space"] is not None and "data_date" in present["public_space"]
        else []
    )
    when = f" · OSM {max(dates)}" if len(dates) else ""
    return f"{n} public spaces · {basis}{when}"


def write_city_map(
    city: City,
    layers: Mapping[str, gpd.GeoDataFrame],
    out_dir: Path,
    **options: Any,
) -> Path:
    """Write ``out_dir/<slug>.html`` with the vendored assets under ``out_dir/static``.

    Parameters
    ----------
    city : City
        As for :func:`risk_map`.
    layers : Mapping of str to GeoDataFrame
        As for :func:`risk_map`.
    out_dir : Path
        Folder of the maps (created if needed).
    **options : Any
        Passed to :func:`risk_map`; ``assets`` defaults to ``relative`` here.

    Returns
    -------
    Path
        The HTML file.
    """
    return save_map(risk_map, city, layers, out_dir, options)
