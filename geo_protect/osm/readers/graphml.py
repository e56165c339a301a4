"""Reader of osmnx street graphs saved as GraphML (``osmnx.save_graphml``).

Each edge is a piece of an OSM way between two graph nodes; it becomes a way-piece
element with uid ``way/<osmid>/<u>-<v>``. The two directions of a two-way piece
(``u→v`` and ``v→u``, as in every walk graph and on two-way streets of drive graphs) are
one element. Graph nodes that carry OSM tags of interest (crossings, signals, barriers,
entrances) become node elements.

A simplified graph merges consecutive ways into one edge, so an attribute may hold a
list of values. The element keeps every way id in the tag ``osm_ids`` (``;``-separated)
and takes the first for ``osm_id``; other multi-valued attributes keep the value of the
worst case for a hostile-vehicle approach: the ``highway`` class with the highest
default speed (``data/reference/highway_classes.csv``) and the largest ``lanes``,
``width`` and ``maxspeed``; remaining ones are joined with ``;`` as OSM does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import Element, elements_frame
from geo_protect.reference import table

__all__ = ["EDGE_TAG_KEYS", "NODE_TAG_KEYS", "elements_from_graph", "read_graphml"]

#: Edge attributes of an osmnx graph that are OSM way tags (the rest are osmnx's own:
#: ``length``, ``reversed``, ``bearing``, ``speed_kph``... or a project's additions).
EDGE_TAG_KEYS = frozenset(
    {
        "access", "area", "bridge", "est_width", "highway", "junction", "landuse", "lanes",
        "maxspeed", "name", "oneway", "ref", "service", "tunnel", "width", "maxwidth",
        "motor_vehicle", "motorcar", "vehicle", "foot", "bicycle", "sidewalk", "surface",
        "layer", "footway", "cycleway", "busway", "bus", "psv", "crossing", "traffic_calming",
        "smoothness", "incline", "lit", "maxheight", "maxweight", "covered", "indoor",
        "name:en", "alt_name", "official_name", "old_name", "int_name", "loc_name",
    }
)  # fmt: skip

#: Node attributes that are OSM node tags; a node carrying any of them is an element.
NODE_TAG_KEYS = frozenset(
    {
        "highway", "barrier", "entrance", "crossing", "railway", "junction", "ref",
        "traffic_calming", "traffic_signals", "bollard", "maxwidth", "access", "man_made",
        "surveillance", "surveillance:type", "amenity", "public_transport", "name",
    }
)  # fmt: skip

#: Node attributes that alone do not make a node of interest.
_NODE_QUIET_KEYS = frozenset({"ref", "name", "junction", "access", "maxwidth"})

_NUMERIC_MAX_KEYS = ("lanes", "width", "maxspeed", "est_width", "maxwidth")

DROP_NO_OSMID = "edge without an osmid"


def read_graphml(path: Path, *, source: Source) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read an osmnx GraphML street graph into an elements frame.

    Parameters
    ----------
    path : Path
        The ``.graphml`` file written by osmnx.
    source : Source
        Its registry entry; ``network`` (walk or drive) says whether ``oneway`` is an
        OSM fact (drive) or an osmnx convention (walk graphs are all two-way, so the tag
        is left out). ``data_date`` defaults to the graph's ``created_date``.

    Returns
    -------
    tuple
        Elements (way pieces ``way/<osmid>/<u>-<v>`` as LineStrings, tagged graph nodes
        ``node/<id>`` as Points) and the counts of dropped edges by reason.

    Raises
    ------
    DataSourceError
        If the file is missing or is not an osmnx GraphML graph.

    Examples
    --------
    >>> from geo_protect.cities import get_city
    >>> city = get_city("malaga")
    >>> src = Source(kind="graphml", path=Path("osm/malaga/malaga_soho_drive_osmnx.graphml"),
    ...              network="drive")
    >>> elements, drops = read_graphml(city.path(src), source=src)
    >>> int((elements["osm_type"] == "way").sum()), int((elements["osm_type"] == "node").sum())
    (119, 5)
    """
    if not path.is_file():
        raise DataSourceError(f"{path}: GraphML file not found")
    try:
        graph = osmnx.load_graphml(path)
    except Exception as exc:  # networkx/lxml/osmnx raise many kinds on a bad file
        raise DataSourceError(f"{path}: not an osmnx GraphML graph ({exc})") from exc
    created = str(graph.graph.get("created_date", ""))[:10] or None
    elements, drops = elements_from_graph(graph, network=source.network, path=path)
    return elements_frame(elements, source=path.name, data_date=source.data_date or created), drops


def elements_from_graph(
    graph: nx.MultiDiGraph, *, network: str | None, path: Path | None = None
) -> tuple[list[Element], dict[str, int]]:
    """Way-piece and node elements of an osmnx graph (see :func:`read_graphml`).

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        An unprojected osmnx graph.
    network : str, optional
        The network the graph was downloaded for (``drive``, ``walk``...).
    path : Path, optional
        The file it came from, for messages.

    Returns
    -------
    tuple of list and dict
        The elements and the counts of dropped edges by reason.

    Raises
    ------
    DataSourceError
        If the graph is projected.
    """
    where = path or "graph"
    crs = str(graph.graph.get("crs", "epsg:4326")).lower()
    if crs not in {"epsg:4326", "wgs84", "+proj=longlat +datum=wgs84 +no_defs"}:
        raise DataSourceError(f"{where}: graph CRS is {crs}, expected epsg:4326 (unprojected)")
    speed = table("highway_classes").set_index("highway")["default_speed_kmh"].astype(float)
    drops: dict[str, int] = {}
    out: list[Element] = []

    xy = {n: (float(d["x"]), float(d["y"])) for n, d in graph.nodes(data=True)}
    for node, data in graph.nodes(data=True):
        tags = {k: _text(v) for k, v in data.items() if k in NODE_TAG_KEYS}
        if tags.keys() - _NODE_QUIET_KEYS:
            out.append((f"node/{node}", "node", int(node), tags, shapely.Point(xy[node])))

    seen: set[tuple[Any, ...]] = set()
    pieces: list[tuple[str, int, dict[str, str]]] = []
    geoms: list[BaseGeometry] = []
    # forward-drawn edges first, so a kept piece follows the way's own node order
    edges = sorted(graph.edges(keys=True, data=True), key=lambda e: _is_reversed(e[3]))
    for u, v, _k, data in edges:
        osmids = [int(i) for i in _as_list(data.get("osmid"))]
        if not osmids:
            drops[DROP_NO_OSMID] = drops.get(DROP_NO_OSMID, 0) + 1
            continue
        geom = data.get("geometry")
        if not isinstance(geom, shapely.LineString):
            geom = shapely.LineString([xy[u], xy[v]])
        key = (min(u, v), max(u, v), tuple(sorted(osmids)), shapely.normalize(geom).wkb)
        if key in seen:
            continue
        seen.add(key)
        tags = _edge_tags(data, speed=speed, network=network)
        tags["osm_ids"] = ";".join(str(i) for i in osmids)
        pieces.append((f"way/{osmids[0]}/{u}-{v}", osmids[0], tags))
        geoms.append(geom)

    counts: dict[str, int] = {}
    for uid, _, _ in pieces:
        counts[uid] = counts.get(uid, 0) + 1
    index: dict[str, int] = {}
    for (uid, osm_id, tags), geom in zip(pieces, geoms, strict=True):
        if counts[uid] > 1:  # parallel pieces of one way between the same two nodes
            index[uid] = index.get(uid, 0) + 1
            uid = f"{uid}/{index[uid]}"
        out.append((uid, "way", osm_id, tags, geom))
    return out, drops


def _edge_tags(data: Mapping[str, Any], *, speed: Any, network: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in data.items():
        if key not in EDGE_TAG_KEYS or value is None:
            continue
        if key == "oneway":
            if network == "drive":
                tags[key] = "yes" if _truthy(value) else "no"
            continue
        values = [_text(v) for v in _as_list(value)]
        if len(values) == 1:
            tags[key] = values[0]
        elif key == "highway":
            tags[key] = max(values, key=lambda h: speed.get(h, -1.0))
        elif key in _NUMERIC_MAX_KEYS:
            tags[key] = max(values, key=_number)
        else:
            tags[key] = ";".join(dict.fromkeys(values))
    return tags


def _is_reversed(data: Mapping[str, Any]) -> bool:
    return any(_truthy(v) for v in _as_list(data.get("reversed", False)))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "1", "-1"}
    return bool(value)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _number(text: str) -> float:
    match = _NUMBER.search(text)
    return float(match.group()) if match else float("-inf")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return _text(value.item())
    if isinstance(value, Iterable) and not isinstance(value, str):
        return ";".join(_text(v) for v in value)
    return str(value)
