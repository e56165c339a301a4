"""Readers of local data files, one per source kind, all returning an elements frame.

Each reader has the signature ``read(path, *, source) -> (elements, drops)``: ``elements``
is a frame as described in :mod:`geo_protect.osm.elements` and ``drops`` counts what could
not be read, by reason (``{"way with nodes outside the extract": 171}``). Readers raise
:class:`~geo_protect.DataSourceError` naming the file for a missing, truncated or
wrong-kind file.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import geopandas as gpd

from geo_protect.cities import Source

__all__ = ["READERS", "read_source"]

Reader = Callable[..., tuple[gpd.GeoDataFrame, dict[str, int]]]

#: source kind -> "module:function" of its reader (imported on first use).
READERS: dict[str, str] = {
    "osm": "geo_protect.osm.readers.osm:read_osm",
    "overpass_json": "geo_protect.osm.readers.overpass_json:read_overpass_json",
    "graphml": "geo_protect.osm.readers.graphml:read_graphml",
    "geojson": "geo_protect.osm.readers.geojson:read_geojson",
    "csv": "geo_protect.osm.readers.csv_points:read_csv_points",
}


def read_source(path: Path, source: Source) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read one registry source with the reader of its kind.

    Parameters
    ----------
    path : Path
        The file.
    source : Source
        Its registry entry (``kind`` picks the reader).

    Returns
    -------
    tuple of GeoDataFrame and dict
        The elements frame and the counts of what the reader dropped, by reason.
    """
    module, func = READERS[source.kind].split(":")
    reader: Reader = getattr(import_module(module), func)
    return reader(path, source=source)
