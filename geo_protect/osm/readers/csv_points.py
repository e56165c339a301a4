"""Reader of OSM objects listed as CSV points (Overpass ``out center`` exports).

One row per OSM object: ``osm_type`` (``node``, ``way``, ``relation``) and ``osm_id``,
``lat`` and ``lon`` (WGS84; a way or relation by its Overpass centre), and one column per
OSM tag key the export kept (``name``, ``amenity``, ``shop``, ...). An empty cell is an
absent tag. Every object becomes a Point; the taxonomy decides its layer (a way exported
as its centre is a point here, so area-only rules do not take it).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import elements_frame

__all__ = ["CSV_ID_COLUMNS", "read_csv_points"]

#: Columns that place and identify a row, never OSM tags.
CSV_ID_COLUMNS = ("osm_type", "osm_id", "lat", "lon")

DROP_NO_POSITION = "row without a valid lat/lon"
DROP_DUPLICATE = "row repeating an OSM id already read"

_OSM_TYPES = ("node", "way", "relation")


def read_csv_points(path: Path, *, source: Source) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read a CSV of OSM objects (``osm_type, osm_id, lat, lon`` + tag columns).

    Parameters
    ----------
    path : Path
        The ``.csv`` file (UTF-8, header row).
    source : Source
        Its registry entry (``data_date`` is kept per element).

    Returns
    -------
    tuple
        The elements frame (Points, uid ``<osm_type>/<osm_id>``) and the counts of
        dropped rows by reason.

    Raises
    ------
    DataSourceError
        If the file is missing or unreadable, lacks one of :data:`CSV_ID_COLUMNS`, or
        names an OSM type other than node, way or relation.

    Examples
    --------
    >>> from geo_protect.cities import get_city
    >>> city = get_city("vilnius")
    >>> src = next(s for s in city.sources if s.kind == "csv")
    >>> pois, drops = read_csv_points(city.path(src), source=src)
    >>> len(pois), drops
    (8228, {})
    >>> pois.loc["node/31453209", "tags"]
    {'name': 'Neringa Restoranas', 'amenity': 'restaurant'}
    """
    table = _load(path)
    drops: dict[str, int] = {}
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if (~ok).any():
        drops[DROP_NO_POSITION] = int((~ok).sum())
    table, lat, lon = table[ok], lat[ok], lon[ok]
    uids = table["osm_type"] + "/" + table["osm_id"]
    dup = uids.duplicated(keep="first").to_numpy()
    if dup.any():
        drops[DROP_DUPLICATE] = int(dup.sum())
    table, lat, lon, uids = table[~dup], lat[~dup], lon[~dup], uids[~dup]
    tag_columns = [c for c in table.columns if c not in CSV_ID_COLUMNS]
    values = table[tag_columns].to_numpy(dtype=object)
    tags = [
        {k: v for k, v in zip(tag_columns, row, strict=True) if isinstance(v, str) and v}
        for row in values
    ]
    points = shapely.points(lon, lat)
    elements = zip(
        uids.tolist(),
        table["osm_type"].tolist(),
        table["osm_id"].astype(int).tolist(),
        tags,
        points.tolist(),
        strict=True,
    )
    return elements_frame(elements, source=path.name, data_date=source.data_date), drops


def _load(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataSourceError(f"{path}: CSV file not found") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: not readable as CSV ({exc})") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataSourceError(f"{path}: empty CSV file") from exc
    missing = [c for c in CSV_ID_COLUMNS if c not in table.columns]
    if missing:
        raise DataSourceError(f"{path}: CSV lacks the column(s) {', '.join(missing)}")
    bad_type = ~table["osm_type"].isin(_OSM_TYPES)
    if bad_type.any():
        row = int(np.flatnonzero(bad_type.to_numpy())[0]) + 2  # header is line 1
        raise DataSourceError(
            f"{path}: line {row}: osm_type {table['osm_type'].iloc[row - 2]!r} is not "
            "node, way or relation"
        )
    bad_id = ~table["osm_id"].str.fullmatch(r"\d+")
    if bad_id.any():
        row = int(np.flatnonzero(bad_id.to_numpy())[0]) + 2
        raise DataSourceError(f"{path}: line {row}: osm_id {table['osm_id'].iloc[row - 2]!r}")
    return table
