"""Small hand-built layers for unit tests (synthetic geometry, not real data)."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.schema import conform

__all__ = ["BRASOV_CENTRE_ENTRY", "barriers", "line_across", "streets"]


def _provenance(n: int, prefix: str, kind: str) -> dict[str, list[object]]:
    return {
        "osm_type": [prefix] * n,
        "osm_id": list(range(n)),
        "name": [None] * n,
        "kind": [kind] * n,
        "tags": ["{}"] * n,
        "source": ["synthetic"] * n,
        "data_date": [None] * n,
    }


def streets(
    lines: Sequence[BaseGeometry],
    *,
    highway: str = "residential",
    width: float | None = None,
    crs: str = "EPSG:32635",
    walk: bool = True,
    hostile_vehicle: bool = True,
) -> gpd.GeoDataFrame:
    """A ``street`` layer from metric lines (returned in WGS84, like a stored layer)."""
    n = len(lines)
    frame = gpd.GeoDataFrame(
        {
            **_provenance(n, "way", highway),
            "highway": [highway] * n,
            "walk": [walk] * n,
            "hostile_vehicle": [hostile_vehicle] * n,
            "width_m": [np.nan if width is None else width] * n,
            "lanes": [np.nan] * n,
            "maxspeed_kmh": [np.nan] * n,
        },
        geometry=list(lines),
        index=[f"way/{i}" for i in range(n)],
        crs=crs,
    )
    return conform("street", frame.to_crs("EPSG:4326"))


def barriers(
    geoms: Sequence[BaseGeometry], kind: str = "bollard", *, crs: str = "EPSG:32635"
) -> gpd.GeoDataFrame:
    """A ``barrier`` layer from metric geometries (returned in WGS84)."""
    n = len(geoms)
    frame = gpd.GeoDataFrame(
        {**_provenance(n, "node", kind), "maxwidth_m": [np.nan] * n},
        geometry=list(geoms),
        index=[f"node/{i}" for i in range(n)],
        crs=crs,
    )
    return conform("barrier", frame.to_crs("EPSG:4326"))


#: Brașov as the centre clip (the box it was cut with), a ``cities.toml`` entry.
BRASOV_CENTRE_ENTRY = """
[cities.brasov]
name = "Brașov"
name_en = "Brasov"
country = "RO"
centre = [45.6427, 25.5887]
bbox = [25.575, 45.633, 25.605, 45.652]
crs = "EPSG:32635"
timezone = "Europe/Bucharest"

[[cities.brasov.sources]]
kind = "osm"
path = "osm/brasov_centre.osm.bz2"
data_date = "2024-08-21"
"""


def line_across(
    entry: pd.Series, crs: str, *, back_m: float, length_m: float
) -> shapely.LineString:
    """A line (WGS84) ``back_m`` outside an entry point, perpendicular to its
    ``bearing_deg`` (into the space, clockwise from north), centred on its way."""
    p = gpd.GeoSeries([entry.geometry], crs="EPSG:4326").to_crs(crs).iloc[0]
    b = np.radians(float(entry["bearing_deg"]))
    into = np.array([np.sin(b), np.cos(b)])
    across = np.array([into[1], -into[0]])
    c = np.array([p.x, p.y]) - back_m * into
    ends = [c - across * length_m / 2, c + across * length_m / 2]
    return gpd.GeoSeries([shapely.LineString(ends)], crs=crs).to_crs("EPSG:4326").iloc[0]
