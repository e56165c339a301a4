"""Hand-built layers for entry-point tests, in a metric CRS near the UTM 35N central meridian."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.schema import WGS84, conform

#: UTM 35N; x = 500 000 is the central meridian (27°E), where grid north = true north.
CRS = "EPSG:32635"


X0, Y0 = 500_000.0, 5_050_000.0


def at(x: float, y: float) -> tuple[float, float]:
    """Coordinates relative to the test origin."""
    return (X0 + x, Y0 + y)


def line(*pts: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([at(*p) for p in pts])


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(*at(x0, y0), *at(x1, y1))


def _provenance(n: int, uids: Sequence[str]) -> dict[str, object]:
    return {
        "osm_type": pd.array(["way"] * n, dtype="string"),
        "osm_id": pd.array(range(1, n + 1), dtype="Int64"),
        "tags": ["{}"] * n,
        "source": ["test"] * n,
        "data_date": [None] * n,
    }


def layer(name: str, rows: list[dict[str, object]], geoms: list[BaseGeometry]) -> gpd.GeoDataFrame:
    """A conformed WGS84 layer from rows (uid, kind, name, extra columns) and metric geometries."""
    uids = [str(r["uid"]) for r in rows]
    data: dict[str, object] = _provenance(len(rows), uids)
    keys = {k for r in rows for k in r if k != "uid"}
    for k in keys:
        data[k] = [r.get(k) for r in rows]
    data.setdefault("name", [None] * len(rows))
    index = pd.Index(uids, name="uid")
    frame = gpd.GeoDataFrame(
        data, geometry=gpd.GeoSeries(geoms, crs=CRS, index=index), index=index
    ).to_crs(WGS84)
    return conform(name, frame)


def streets(
    *ways: tuple[str, str, shapely.LineString], **extra: dict[str, object]
) -> gpd.GeoDataFrame:
    """``street`` layer from ``(uid, highway, geometry)``; per-uid overrides in ``extra``."""
    from geo_protect.reference import table

    classes = table("highway_classes").set_index("highway")
    rows = []
    for uid, highway, _ in ways:
        row: dict[str, object] = {
            "uid": uid,
            "kind": highway,
            "highway": highway,
            "walk": bool(classes.at[highway, "walk"]),
            "hostile_vehicle": bool(classes.at[highway, "hostile_vehicle"]),
            "width_m": np.nan,
            "lanes": np.nan,
            "maxspeed_kmh": np.nan,
        }
        row.update(extra.get(uid, {}))
        rows.append(row)
    return layer("street", rows, [g for *_, g in ways])


def spaces(*items: tuple[str, str, BaseGeometry]) -> gpd.GeoDataFrame:
    """``public_space`` layer from ``(uid, kind, polygon)``."""
    return layer(
        "public_space",
        [{"uid": u, "kind": k, "name": u} for u, k, _ in items],
        [g for *_, g in items],
    )


def barriers(*items: tuple[str, str, BaseGeometry]) -> gpd.GeoDataFrame:
    """``barrier`` layer from ``(uid, kind, geometry)``."""
    return layer(
        "barrier",
        [{"uid": u, "kind": k, "maxwidth_m": np.nan} for u, k, _ in items],
        [g for *_, g in items],
    )
