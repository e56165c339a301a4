"""Small hand-built layers for unit tests (synthetic geometry, not real data)."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
from shapely.geometry.base import BaseGeometry

from geo_protect.schema import conform

__all__ = ["barriers", "streets"]


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
