"""Reader of OSM files (XML ``.osm``, ``.osm.bz2``, ``.osm.gz`` and PBF ``.osm.pbf``).

pyosmium streams the file in C++; a key filter keeps only the objects carrying a key
the taxonomy uses, so untagged nodes never reach Python (their locations are still
cached to draw the ways). Nodes become Points, ways LineStrings (closed ways stay
closed; the taxonomy decides whether they are areas) and multipolygon/boundary
relations MultiPolygons assembled by libosmium.

Ways and relations that reference objects outside the extract (a municipal cut made
without complete ways) are dropped and counted, never drawn with holes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import osmium.filter
import pandas as pd
import shapely
from osmium.geom import WKBFactory, use_nodes

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import ELEMENT_COLUMNS
from geo_protect.osm.taxonomy import Shape, layers_of, osm_keys
from geo_protect.schema import WGS84

__all__ = ["OSM_SUFFIXES", "read_osm"]

#: File name endings pyosmium can read, with the format it reads them as.
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".osm.xml")

DROP_WAY_NODES = "way with nodes outside the extract"
DROP_WAY_SHORT = "way with fewer than 2 distinct nodes"
DROP_NODE_LOCATION = "node without a location"
DROP_RELATION = "multipolygon with members outside the extract or rings that do not close"
DROP_RELATION_TYPE = "relation that is not a multipolygon"

_AREA_RELATION_TYPES = frozenset({"multipolygon", "boundary"})
_REPLICATION_KEY = "osmosis_replication_timestamp"


def read_osm(
    path: Path, *, source: Source, keys: Iterable[str] | None = None
) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read an OSM XML or PBF file into an elements frame.

    Parameters
    ----------
    path : Path
        The file (``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf``).
    source : Source
        Its registry entry. The data date is ``source.data_date``, else the PBF header's
        ``osmosis_replication_timestamp``, else the newest timestamp of the objects read.
    keys : Iterable of str, optional
        Read only objects with one of these keys (default: the keys of the taxonomy).

    Returns
    -------
    tuple
        The elements frame (uids ``node/<id>``, ``way/<id>``, ``relation/<id>``) and the
        dropped objects counted by ``"<layer>: <reason>"`` (the layers the taxonomy would
        have put them in; objects no layer wants are not counted).

    Raises
    ------
    DataSourceError
        If the file is missing, empty, truncated or corrupt, or is not OSM data.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> city = get_city("brasov")
    >>> src = city.sources[0].model_copy(update={"data_date": None})
    >>> els, drops = read_osm(city.data_dir / "osm/brasov/brasov_centre.osm.bz2", source=src)
    >>> els.loc["way/1020310740", "tags"]["name"], els["data_date"].iloc[0]
    ('Piața Sfatului', '2024-08-17')
    """
    _check_file(path)
    key_list = sorted(set(osm_keys() if keys is None else keys))
    key_filter = osmium.filter.KeyFilter(*key_list)
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_areas(osmium.filter.KeyFilter(*key_list))
        .with_filter(key_filter)
    )
    try:
        header_date = processor.header.get(_REPLICATION_KEY, "")
        elements, wkb, drops, newest, area_relations = _scan(processor, need_dates=not header_date)
    except (RuntimeError, osmium.InvalidLocationError) as exc:
        raise DataSourceError(f"{path}: not readable as OSM data ({exc})") from exc
    if not elements and not drops and not area_relations:
        raise DataSourceError(f"{path}: holds no OSM objects with tags geo_protect uses (empty?)")

    data_date = source.data_date or _date(header_date) or newest
    return _frame(elements, wkb, source=path.name, data_date=data_date), drops


def _frame(
    elements: list[tuple[str, int, dict[str, str]]],
    wkb: list[str],
    *,
    source: str,
    data_date: str | None,
) -> gpd.GeoDataFrame:
    """The elements frame, built column-wise (the layout of :func:`elements_frame`)."""
    osm_type = [t for t, _, _ in elements]
    osm_id = [i for _, i, _ in elements]
    tags = np.empty(len(elements), dtype=object)
    tags[:] = [d for _, _, d in elements]
    index = pd.Index([f"{t}/{i}" for t, i in zip(osm_type, osm_id, strict=True)], dtype="string")
    frame = pd.DataFrame(
        {
            "osm_type": pd.array(osm_type, dtype="string"),
            "osm_id": pd.array(osm_id, dtype="Int64"),
            "tags": tags,
            "source": pd.array([source] * len(elements), dtype="string"),
            "data_date": pd.array([data_date] * len(elements), dtype="string"),
        },
        index=index.rename("uid"),
    )
    geoms = shapely.from_wkb([bytes.fromhex(w) for w in wkb]) if wkb else []
    frame = frame[list(ELEMENT_COLUMNS)]
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataSourceError(f"{path}: OSM file not found")
    if not path.is_file():
        raise DataSourceError(f"{path}: not a file")
    if not path.name.lower().endswith(OSM_SUFFIXES):
        raise DataSourceError(
            f"{path}: not an OSM file name (expected one of {', '.join(OSM_SUFFIXES)})"
        )
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: the file is empty")


def _scan(
    processor: osmium.FileProcessor, *, need_dates: bool
) -> tuple[list[tuple[str, int, dict[str, str]]], list[str], dict[str, int], str | None, set[int]]:
    """One pass over the filtered objects: element rows, their WKB, drops, newest date."""
    factory = WKBFactory()
    elements: list[tuple[str, int, dict[str, str]]] = []
    wkb: list[str] = []
    dropped: list[tuple[dict[str, str], Shape, str]] = []
    newest: datetime | None = None
    area_relations: dict[int, dict[str, str]] = {}
    assembled: set[int] = set()
    for obj in processor:
        if isinstance(obj, osmium.osm.Area):
            if obj.from_way():
                continue  # closed ways are read as ways; the taxonomy polygonises them
            assembled.add(obj.orig_id())
            elements.append(("relation", obj.orig_id(), _tags(obj)))
            wkb.append(factory.create_multipolygon(obj))
            continue
        if not isinstance(obj, osmium.osm.Node | osmium.osm.Way | osmium.osm.Relation):
            continue
        if need_dates and obj.timestamp.year > 1970:
            newest = obj.timestamp if newest is None else max(newest, obj.timestamp)
        if isinstance(obj, osmium.osm.Node):
            if not obj.location.valid():
                dropped.append((_tags(obj), "node", DROP_NODE_LOCATION))
                continue
            elements.append(("node", obj.id, _tags(obj)))
            wkb.append(factory.create_point(obj))
        elif isinstance(obj, osmium.osm.Way):
            try:
                # ALL: raises on any missing node (UNIQUE would silently skip them)
                line = factory.create_linestring(obj, use_nodes.ALL)
            except osmium.InvalidLocationError:
                dropped.append((_tags(obj), _way_shape(obj), DROP_WAY_NODES))
                continue
            except RuntimeError:
                dropped.append((_tags(obj), _way_shape(obj), DROP_WAY_SHORT))
                continue
            elements.append(("way", obj.id, _tags(obj)))
            wkb.append(line)
        elif isinstance(obj, osmium.osm.Relation):
            tags = _tags(obj)
            if tags.get("type") in _AREA_RELATION_TYPES:
                area_relations[obj.id] = tags
            else:
                dropped.append((tags, "area", DROP_RELATION_TYPE))
    for rel_id, tags in area_relations.items():
        if rel_id not in assembled:
            dropped.append((tags, "area", DROP_RELATION))
    drops: dict[str, int] = {}
    layers = layers_of([t for t, _, _ in dropped], shapes=[s for _, s, _ in dropped])
    for (_, _, reason), names in zip(dropped, layers, strict=True):
        for layer in names:
            drops[f"{layer}: {reason}"] = drops.get(f"{layer}: {reason}", 0) + 1
    day = None if newest is None else newest.astimezone(UTC).date().isoformat()
    return elements, wkb, drops, day, set(area_relations)


def _tags(
    obj: osmium.osm.Node | osmium.osm.Way | osmium.osm.Relation | osmium.osm.Area,
) -> dict[str, str]:
    """The object's tags as a dict.

    pyosmium's public ``TagList`` iterator costs a Python frame per tag (0.5 s of the 1.3 s
    a municipal PBF takes); the C++ accessors it wraps are used directly when present.
    """
    data = getattr(obj, "_pyosmium_data", None)
    if data is None or not hasattr(data, "tags_next"):
        return {tag.k: tag.v for tag in obj.tags}
    out: dict[str, str] = {}
    it = data.tags_begin()
    nxt = data.tags_next
    for _ in range(data.tags_size()):
        tag = nxt(it)
        out[tag.k] = tag.v
    return out


def _way_shape(way: osmium.osm.Way) -> Shape:
    nodes = way.nodes
    closed = len(nodes) >= 4 and nodes[0].ref == nodes[len(nodes) - 1].ref
    return "closed_line" if closed else "line"


def _date(timestamp: str) -> str | None:
    return timestamp[:10] if len(timestamp) >= 10 else None
