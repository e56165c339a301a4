"""A city's study area: its bbox cut by its boundary (``.poly`` or GeoJSON), and clipping."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import City
from geo_protect.citydata import IngestReport
from geo_protect.errors import ConfigError, DataSourceError
from geo_protect.schema import WGS84

__all__ = ["DROP_OUTSIDE", "clip_to_area", "read_boundary", "study_area"]


DROP_OUTSIDE = "outside the study area"


def study_area(city: City) -> BaseGeometry:
    """The city's study area in WGS84: its bbox, cut by its boundary polygon if it has one.

    The boundary is an Osmosis ``.poly`` file or a GeoJSON file of polygons.

    Parameters
    ----------
    city : City
        The city (its ``bbox`` and optional ``boundary``).

    Returns
    -------
    BaseGeometry
        The study area.

    Raises
    ------
    ConfigError
        If the bbox is empty or the boundary does not overlap it.
    DataSourceError
        If the boundary file is missing or unreadable.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> round(study_area(get_city("eindhoven")).area, 6)
    0.000251
    """
    west, south, east, north = city.bbox
    if not (west < east and south < north):
        raise ConfigError(
            f"data/cities.toml: city {city.slug!r}: bbox {list(city.bbox)} is empty "
            "(expected [west, south, east, north] with west < east and south < north)"
        )
    area: BaseGeometry = shapely.box(west, south, east, north)
    path = city.boundary_path
    if path is None:
        return area
    clipped = shapely.intersection(area, read_boundary(path))
    if clipped.is_empty or clipped.area == 0:
        raise ConfigError(
            f"data/cities.toml: city {city.slug!r}: boundary {path.name} does not overlap "
            f"the bbox {list(city.bbox)}"
        )
    return clipped


def clip_to_area(
    name: str, layer: gpd.GeoDataFrame, area: BaseGeometry, report: IngestReport
) -> gpd.GeoDataFrame:
    """The features of a layer that touch the study area (the others counted as dropped).

    Parameters
    ----------
    name : str
        The layer's name, for the report.
    layer : GeoDataFrame
        The layer, in WGS84.
    area : BaseGeometry
        The study area (:func:`study_area`), in WGS84.
    report : IngestReport
        Counts the features dropped (:data:`DROP_OUTSIDE`).

    Returns
    -------
    GeoDataFrame
        The features kept.
    """
    if layer.empty:
        return layer
    shapely.prepare(area)
    inside = shapely.intersects(area, layer.geometry.to_numpy())
    report.drop(name, DROP_OUTSIDE, int((~inside).sum()))
    return layer[inside]


def read_boundary(path: Path) -> BaseGeometry:
    """A boundary polygon from an Osmosis ``.poly`` or a GeoJSON file, in WGS84.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    BaseGeometry
        The union of its polygons (made valid).

    Raises
    ------
    DataSourceError
        If the file is missing, unreadable or holds no polygon.
    """
    if not path.is_file():
        raise DataSourceError(f"{path}: boundary file not found")
    if path.suffix == ".poly":
        return _read_poly(path)
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several unrelated classes
        raise DataSourceError(f"{path}: boundary not readable as GeoJSON ({exc})") from exc
    if frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    geoms = frame.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not polygonal.any():
        raise DataSourceError(f"{path}: boundary holds no polygon")
    return shapely.union_all(shapely.make_valid(geoms[polygonal]))


_POLY_POINT = re.compile(r"^\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*$")


def _read_poly(path: Path) -> BaseGeometry:
    """An Osmosis ``.poly`` file: rings (``!`` sections are holes), each closed by END."""
    lines = path.read_text(encoding="utf-8").splitlines()
    outer: list[BaseGeometry] = []
    holes: list[BaseGeometry] = []
    ring: list[tuple[float, float]] | None = None
    hole = False
    for n, raw in enumerate(lines[1:], start=2):
        text = raw.strip()
        if not text:
            continue
        if ring is None:
            if text == "END":
                break
            ring, hole = [], text.startswith("!")
            continue
        if text == "END":
            if len(ring) < 3:
                raise DataSourceError(f"{path}, line {n}: a ring needs at least 3 points")
            (holes if hole else outer).append(shapely.Polygon(ring))
            ring = None
            continue
        match = _POLY_POINT.match(text)
        if match is None:
            raise DataSourceError(f"{path}, line {n}: expected 'lon lat', got {text!r}")
        ring.append((float(match[1]), float(match[2])))
    if ring is not None or not outer:
        raise DataSourceError(f"{path}: not an Osmosis .poly file (unclosed section or no ring)")
    area = shapely.union_all(shapely.make_valid(np.array(outer, dtype=object)))
    if holes:
        area = shapely.difference(area, shapely.union_all(np.array(holes, dtype=object)))
    return area
