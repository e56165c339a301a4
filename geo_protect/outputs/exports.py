"""Exports for analysts and field teams: GeoJSON, GeoPackage, CSV and printable site reports.

* GeoJSON follows RFC 7946: WGS84 longitude/latitude, no ``crs`` member, the ``uid``
  as a property (written by GDAL with ``RFC7946=YES``).
* GeoPackage: one file per city, one table per layer.
* CSV: the attributes, the ``uid``, the geometry as WKT and ``lon``/``lat`` of a
  representative point (for spreadsheets).
* Site reports: one HTML page per assessed space (Jinja2, print CSS for A4). PDF is not
  produced: no well-kept pure-Python HTML→PDF library is installed; print the HTML to PDF
  from a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.errors import ValidationError
from geo_protect.schema import WGS84
from geo_protect.store.base import Store

__all__ = [
    "EXPORTED_LAYERS",
    "EXPORT_FORMATS",
    "export_city",
    "exportable_layers",
    "write_csv",
    "write_geojson",
    "write_geopackage",
]

#: Formats :func:`export_city` can write.
EXPORT_FORMATS = ("geojson", "gpkg", "csv")

#: The layers an export holds, when the store has them.
EXPORTED_LAYERS = ("public_space", "entry_point", "approach", "space_metric", "assessment")


def exportable_layers(store: Store, city: str) -> dict[str, gpd.GeoDataFrame]:
    """The layers of :data:`EXPORTED_LAYERS` that ``store`` holds for ``city``, read at once.

    Parameters
    ----------
    store : Store
        The store to read from.
    city : str
        The city's slug.

    Returns
    -------
    dict
        Layer name to WGS84 GeoDataFrame, in :data:`EXPORTED_LAYERS` order.
    """
    present = set(store.layers(city))
    return {name: store.read_layer(city, name) for name in EXPORTED_LAYERS if name in present}


def _check(layer: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if layer.crs is None or not layer.crs.equals(WGS84):
        raise ValidationError(f"{what}: CRS must be {WGS84} for export, got {layer.crs}")
    out = layer.copy()
    out.index = out.index.astype(str).rename("uid")
    return out


def write_geojson(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, ``uid`` as a property).

    Raises
    ------
    ValidationError
        If the layer is not in WGS84.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check(layer, str(path)).reset_index().to_file(
        path, driver="GeoJSON", engine="pyogrio", RFC7946="YES", WRITE_NAME="NO"
    )
    return path


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: Path) -> Path:
    """Write layers as the tables of one GeoPackage (the file is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    for name, layer in layers.items():
        _check(layer, f"{path}, layer {name!r}").reset_index().to_file(
            path, layer=name, driver="GPKG", engine="pyogrio"
        )
    return path


def write_csv(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as CSV: ``uid``, its attributes, ``lon``, ``lat`` and ``wkt``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layer = _check(layer, str(path))
    geoms = layer.geometry.to_numpy()
    points = shapely.point_on_surface(geoms)
    frame = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    frame["lon"] = np.round(shapely.get_x(points), 7)
    frame["lat"] = np.round(shapely.get_y(points), 7)
    frame["wkt"] = shapely.to_wkt(geoms, rounding_precision=7)
    frame.to_csv(path, index=True, index_label="uid")
    return path


def export_city(
    city: str,
    layers: Mapping[str, gpd.GeoDataFrame],
    out_dir: Path,
    *,
    formats: Iterable[str] = EXPORT_FORMATS,
) -> list[Path]:
    """Export a city's layers (e.g. ``public_space``, ``entry_point``, ``assessment``).

    Writes ``<city>_<layer>.geojson`` and ``<city>_<layer>.csv`` per layer and one
    ``<city>.gpkg`` with every layer.

    Returns
    -------
    list of Path
        The files written.
    """
    fmts = list(formats)
    unknown = sorted(set(fmts) - set(EXPORT_FORMATS))
    if unknown:
        raise ValidationError(
            f"export formats: unknown {', '.join(unknown)} (known: {', '.join(EXPORT_FORMATS)})"
        )
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name, layer in layers.items():
        if "geojson" in fmts:
            written.append(write_geojson(layer, out_dir / f"{city}_{name}.geojson"))
        if "csv" in fmts:
            written.append(write_csv(layer, out_dir / f"{city}_{name}.csv"))
    if "gpkg" in fmts:
        written.append(write_geopackage(layers, out_dir / f"{city}.gpkg"))
    return written
