"""Raw OSM elements: the common currency between file readers and the taxonomy.

Every reader (PBF/XML, Overpass JSON, GraphML, GeoJSON, Overpass API) returns an
*elements frame*: a GeoDataFrame in WGS84 indexed by ``uid`` with the columns of
:data:`ELEMENT_COLUMNS`. Geometries are as OSM draws them: nodes are Points, ways are
LineStrings (closed when the way is closed), multipolygon relations are (Multi)Polygons;
GeoJSON polygons stay polygons. The taxonomy (:mod:`geo_protect.osm.taxonomy`) then decides
which layer and class each element belongs to, so every source is classified by one set
of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from geo_protect.schema import WGS84

__all__ = ["ELEMENT_COLUMNS", "Element", "elements_frame"]

#: uid is the index: ``{osm_type}/{osm_id}`` for OSM objects, ``{file stem}/{n}`` otherwise.
ELEMENT_COLUMNS = ("osm_type", "osm_id", "tags", "source", "data_date")

Element = tuple[str, str | None, int | None, Mapping[str, str], BaseGeometry]
"""(uid, osm_type, osm_id, tags, geometry) of one element."""


def elements_frame(
    elements: Iterable[Element], *, source: str, data_date: str | None
) -> gpd.GeoDataFrame:
    """Build an elements frame from ``(uid, osm_type, osm_id, tags, geometry)`` tuples.

    ``tags`` stay Python dicts here (the stores turn them into JSON).

    Parameters
    ----------
    elements : Iterable of Element
        ``(uid, osm_type, osm_id, tags, geometry)`` tuples, geometries in WGS84.
    source : str
        The source the elements were read from (kept per element).
    data_date : str or None
        Date of the OSM data, when known.

    Returns
    -------
    GeoDataFrame
        The elements frame, indexed by uid, in WGS84.
    """
    rows: list[dict[str, Any]] = []
    geoms: list[BaseGeometry] = []
    uids: list[str] = []
    for uid, osm_type, osm_id, tags, geom in elements:
        uids.append(uid)
        rows.append({"osm_type": osm_type, "osm_id": osm_id, "tags": dict(tags)})
        geoms.append(geom)
    frame = pd.DataFrame(rows, columns=["osm_type", "osm_id", "tags"])
    frame["osm_type"] = frame["osm_type"].astype("string")
    frame["osm_id"] = frame["osm_id"].astype("Int64")
    frame["source"] = pd.Series([source] * len(frame), dtype="string")
    frame["data_date"] = pd.Series([data_date] * len(frame), dtype="string")
    frame.index = pd.Index(uids, dtype="string", name="uid")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))
