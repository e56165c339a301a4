"""Fetch a city's OSM elements from an Overpass API server, through osmnx.

The query asks for every tag of the taxonomy (``data/reference/osm_taxonomy.csv``)
within the study area; osmnx builds the query, sends it and draws the features, and the
result is turned into an elements frame like the file readers return. osmnx's global
settings are set for the call and restored afterwards (so calls must not run
concurrently in one process). Server errors never lead to osmnx's sleep-and-retry:
any HTTP error status, refused connection or time-out raises
:class:`~geo_protect.DataSourceError` naming the URL.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmnx
import pandas as pd
import requests
import shapely
from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

from geo_protect.cities import City
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import Element, elements_frame
from geo_protect.reference import table

__all__ = ["OVERPASS_SOURCE", "fetch_elements", "taxonomy_tags"]

#: ``source`` of the elements fetched from Overpass.
OVERPASS_SOURCE = "overpass"

Tags = dict[str, bool | str | list[str]]

_OSM_BASE = re.compile(rb'"timestamp_osm_base"\s*:\s*"(\d{4}-\d{2}-\d{2})')
_NO_FEATURES = "No matching features"


class _ServerError(Exception):
    """An HTTP error answer, raised from inside the request to stop osmnx retrying."""


def taxonomy_tags(data_dir: Path | None = None) -> Tags:
    """The osmnx ``tags`` query of the taxonomy: ``{key: True}`` or ``{key: [values]}``.

    Parameters
    ----------
    data_dir : Path, optional
        Data folder whose ``reference/osm_taxonomy.csv`` is read; the active one by default.

    Returns
    -------
    dict
        The query, by OSM key.

    Examples
    --------
    >>> taxonomy_tags()["place"], taxonomy_tags()["barrier"]
    (['square'], True)
    """
    rules = table("osm_taxonomy", data_dir)
    tags: Tags = {}
    for key, values in zip(rules["key"], rules["values"], strict=True):
        wanted = str(values).split("|")
        known = tags.get(str(key))
        if known is True or "*" in wanted:
            tags[str(key)] = True
        else:
            merged = [*(known if isinstance(known, list) else []), *wanted]
            tags[str(key)] = list(dict.fromkeys(merged))
    return tags


def fetch_elements(
    city: City,
    *,
    url: str,
    timeout: float,
    bbox: tuple[float, float, float, float] | None = None,
    tags: Mapping[str, bool | str | list[str]] | None = None,
) -> gpd.GeoDataFrame:
    """Fetch the OSM elements of a city's study area from an Overpass server.

    Parameters
    ----------
    city : City
        The city; its ``bbox`` is the study area.
    url : str
        The Overpass interpreter URL (``https://overpass-api.de/api/interpreter``) or
        its base (``.../api``).
    timeout : float
        Seconds for each network operation (connect, each read) and the server-side
        ``[timeout:]`` of the query.
    bbox : tuple of float, optional
        ``(west, south, east, north)`` to fetch instead of the city's bbox.
    tags : Mapping, optional
        osmnx tag query; the taxonomy's (:func:`taxonomy_tags`) by default.

    Returns
    -------
    geopandas.GeoDataFrame
        An elements frame (tagged nodes as Points, ways as LineStrings, multipolygon
        relations as (Multi)Polygons), ``source="overpass"``, ``data_date`` from the
        server's ``timestamp_osm_base`` (today if it gives none). ``attrs["drops"]``
        counts features that could not be drawn.

    Raises
    ------
    DataSourceError
        If the server answers an HTTP error (429, 5xx...), cannot be reached, times out
        or does not answer Overpass JSON.
    """
    west, south, east, north = bbox or city.bbox
    area = shapely.box(west, south, east, north)
    query = dict(tags) if tags is not None else taxonomy_tags()
    base = url.rstrip("/").removesuffix("/interpreter")
    stamps: list[str] = []
    with _osmnx_settings(base, timeout, stamps):
        try:
            features = osmnx.features_from_polygon(area, tags=query)
        except _ServerError as exc:
            raise DataSourceError(f"Overpass server {url}: {exc}") from None
        except requests.Timeout as exc:
            raise DataSourceError(f"Overpass server {url}: no answer within {timeout} s") from exc
        except requests.RequestException as exc:
            raise DataSourceError(f"Overpass server {url} cannot be reached: {exc}") from exc
        except ResponseStatusCodeError as exc:
            raise DataSourceError(f"Overpass server {url}: {exc}") from exc
        except InsufficientResponseError as exc:
            if _NO_FEATURES not in str(exc):
                raise DataSourceError(f"Overpass server {url}: {exc}") from exc
            features = None
    date = stamps[0] if stamps else dt.datetime.now(dt.UTC).date().isoformat()
    elements, drops = _elements_from_features(features)
    frame = elements_frame(elements, source=OVERPASS_SOURCE, data_date=date)
    frame.attrs["drops"] = drops
    return frame


def _elements_from_features(
    features: gpd.GeoDataFrame | None,
) -> tuple[list[Element], dict[str, int]]:
    """osmnx features (index ``element, id``; tag columns) → element tuples.

    osmnx draws closed ways it deems areas as Polygons; elements keep ways as OSM draws
    them, so such a way becomes the closed LineString of its ring.
    """
    drops: dict[str, int] = {}
    if features is None or features.empty:
        return [], drops
    kinds = features.index.get_level_values("element").astype(str).to_numpy()
    ids = features.index.get_level_values("id").astype(np.int64).to_numpy()
    geoms = features.geometry.to_numpy()
    type_ids = shapely.get_type_id(geoms)
    is_way_poly = (kinds == "way") & (type_ids == 3)
    geoms = geoms.copy()
    geoms[is_way_poly] = shapely.get_exterior_ring(geoms[is_way_poly])
    bad_way = (kinds == "way") & ~np.isin(shapely.get_type_id(geoms), (1, 2))
    if bad_way.any():
        drops["way whose area osmnx could not draw"] = int(bad_way.sum())
    ring = shapely.get_type_id(geoms) == 2  # LinearRing -> closed LineString
    if ring.any():
        geoms[ring] = shapely.linestrings(
            shapely.get_coordinates(geoms[ring]), indices=_ring_indices(geoms[ring])
        )
    tag_frame = features.drop(columns=features.geometry.name)
    tags = _row_tags(tag_frame)
    out: list[Element] = []
    for i in np.flatnonzero(~bad_way):
        out.append((f"{kinds[i]}/{ids[i]}", str(kinds[i]), int(ids[i]), tags[i], geoms[i]))
    return out, drops


def _ring_indices(rings: np.ndarray) -> np.ndarray:
    counts = shapely.get_num_coordinates(rings)
    return np.repeat(np.arange(len(rings)), counts)


def _row_tags(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Per row, the non-null tag columns as ``{key: text}``."""
    columns = [str(c) for c in frame.columns]
    values = frame.to_numpy(dtype=object)
    present = frame.notna().to_numpy()
    return [
        {columns[j]: str(values[i, j]) for j in np.flatnonzero(present[i])}
        for i in range(len(frame))
    ]


@contextmanager
def _osmnx_settings(base_url: str, timeout: float, stamps: list[str]) -> Iterator[None]:
    """Point osmnx at ``base_url`` with bounded time-outs, no cache, no pauses, no retries."""

    def on_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code >= 400:
            raise _ServerError(f"HTTP {response.status_code} {response.reason}")
        match = _OSM_BASE.search(response.content[:2000])
        if match:
            stamps.append(match.group(1).decode())

    names = (
        "overpass_url", "requests_timeout", "use_cache", "overpass_rate_limit",
        "requests_kwargs", "log_console", "log_file",
    )  # fmt: skip
    saved = {name: getattr(osmnx.settings, name) for name in names}
    getaddrinfo = socket.getaddrinfo  # osmnx pins the server's IP by patching it
    level = logging.getLogger("OSMnx").level
    osmnx.settings.overpass_url = base_url
    osmnx.settings.requests_timeout = timeout
    osmnx.settings.use_cache = False
    osmnx.settings.overpass_rate_limit = False
    osmnx.settings.log_console = False
    osmnx.settings.log_file = False
    osmnx.settings.requests_kwargs = {
        **saved["requests_kwargs"],
        "hooks": {"response": [on_response]},
    }
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(osmnx.settings, name, value)
        socket.getaddrinfo = getaddrinfo
        logging.getLogger("OSMnx").setLevel(level)
