"""Reader of raw Overpass API JSON answers (``[out:json]`` with ``out body`` or ``out geom``).

Tagged nodes become Points, ways LineStrings (closed when the way is closed) built from
their node references or their inline ``geometry``, and ``multipolygon``/``boundary``
relations (Multi)Polygons assembled from their member ways. Elements that cannot be
drawn from the answer are dropped and counted by reason.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import Source
from geo_protect.errors import DataSourceError
from geo_protect.osm.elements import Element, elements_frame

__all__ = [
    "AREA_RELATION_TYPES",
    "elements_from_overpass",
    "load_overpass_json",
    "read_overpass_json",
]

#: Relation ``type`` values drawn as areas (the others are not elements of the model).
AREA_RELATION_TYPES = frozenset({"multipolygon", "boundary"})

DROP_WAY_NODES = "way with nodes missing from the answer"
DROP_WAY_SHORT = "way with fewer than 2 nodes"
DROP_RELATION_MEMBERS = "multipolygon with member ways missing from the answer"
DROP_RELATION_RINGS = "multipolygon whose rings do not close"
DROP_RELATION_TYPE = "relation that is not a multipolygon or boundary"


def read_overpass_json(path: Path, *, source: Source) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Read a raw Overpass API JSON answer into an elements frame.

    Parameters
    ----------
    path : Path
        The ``.json`` file (``.json.bz2`` / ``.json.gz`` are decompressed).
    source : Source
        Its registry entry; ``data_date`` defaults to the answer's
        ``osm3s.timestamp_osm_base``.

    Returns
    -------
    tuple
        The elements frame (uids ``node/<id>``, ``way/<id>``, ``relation/<id>``) and the
        counts of dropped elements by reason.

    Raises
    ------
    DataSourceError
        If the file is missing, is not JSON or is not an Overpass answer.
    """
    answer = load_overpass_json(path)
    data_date = source.data_date or _osm_base_date(answer)
    elements, drops = elements_from_overpass(answer["elements"])
    return elements_frame(elements, source=path.name, data_date=data_date), drops


def load_overpass_json(path: Path) -> dict[str, Any]:
    """Parse an Overpass JSON file and check that it holds an ``elements`` list.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    dict
        The parsed response.
    """
    opener: Any = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix, open)
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            answer = json.load(fh)
    except FileNotFoundError as exc:
        raise DataSourceError(f"{path}: Overpass JSON file not found") from exc
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("elements"), list):
        raise DataSourceError(f"{path}: not an Overpass API answer (no `elements` list)")
    return answer


def elements_from_overpass(
    raw: Sequence[Mapping[str, Any]],
) -> tuple[list[Element], dict[str, int]]:
    """Turn the ``elements`` of an Overpass answer into element tuples.

    Parameters
    ----------
    raw : Sequence of Mapping of str to Any
        Overpass elements (``type``, ``id``, ``lat``/``lon``, ``nodes`` or ``geometry``,
        ``members``, ``tags``).

    Returns
    -------
    tuple
        ``(uid, osm_type, osm_id, tags, geometry)`` tuples (tagged nodes, drawable ways,
        area relations) and the counts of dropped elements by reason.
    """
    drops: dict[str, int] = {}
    nodes = [e for e in raw if e.get("type") == "node" and "lat" in e and "lon" in e]
    ways = [e for e in raw if e.get("type") == "way"]
    relations = [e for e in raw if e.get("type") == "relation"]

    node_ids = np.fromiter((n["id"] for n in nodes), dtype=np.int64, count=len(nodes))
    node_xy = np.array([(n["lon"], n["lat"]) for n in nodes], dtype=float).reshape(-1, 2)
    order = np.argsort(node_ids, kind="stable")
    node_ids, node_xy = node_ids[order], node_xy[order]
    points = shapely.points(node_xy)

    out: list[Element] = []
    for i in np.flatnonzero([bool(n.get("tags")) for n in nodes]):
        node = nodes[order[i]]
        out.append((f"node/{node['id']}", "node", int(node["id"]), dict(node["tags"]), points[i]))

    way_geoms = _way_geometries(ways, node_ids, node_xy, drops)
    for way in ways:
        geom = way_geoms.get(int(way["id"]))
        if geom is not None and way.get("tags"):
            out.append((f"way/{way['id']}", "way", int(way["id"]), dict(way["tags"]), geom))

    for rel in relations:
        tags = dict(rel.get("tags") or {})
        if tags.get("type") not in AREA_RELATION_TYPES:
            _count(drops, DROP_RELATION_TYPE)
            continue
        area = _relation_area(rel.get("members") or [], way_geoms, drops)
        if area is not None:
            out.append((f"relation/{rel['id']}", "relation", int(rel["id"]), tags, area))
    return out, drops


def _way_geometries(
    ways: Sequence[Mapping[str, Any]],
    node_ids: np.ndarray,
    node_xy: np.ndarray,
    drops: dict[str, int],
) -> dict[int, BaseGeometry]:
    """LineStrings of every drawable way (tagged or not), by way id, built in one pass."""
    ids: list[int] = []
    coords: list[np.ndarray] = []
    by_ref = [w for w in ways if w.get("geometry") is None]
    refs = [np.asarray(w.get("nodes") or [], dtype=np.int64) for w in by_ref]
    found = _resolve(refs, node_ids)
    for way, way_refs, pos in zip(by_ref, refs, found, strict=True):
        if len(way_refs) < 2:
            _count(drops, DROP_WAY_SHORT)
        elif pos is None:
            _count(drops, DROP_WAY_NODES)
        else:
            ids.append(int(way["id"]))
            coords.append(node_xy[pos])
    for way in ways:
        inline = way.get("geometry")
        if inline is None:
            continue
        if any(p is None for p in inline):
            _count(drops, DROP_WAY_NODES)
        elif len(inline) < 2:
            _count(drops, DROP_WAY_SHORT)
        else:
            ids.append(int(way["id"]))
            coords.append(np.array([(p["lon"], p["lat"]) for p in inline], dtype=float))
    if not ids:
        return {}
    lengths = np.fromiter((len(c) for c in coords), dtype=np.int64, count=len(coords))
    lines = shapely.linestrings(
        np.concatenate(coords), indices=np.repeat(np.arange(len(ids)), lengths)
    )
    return dict(zip(ids, lines, strict=True))


def _resolve(refs: Sequence[np.ndarray], node_ids: np.ndarray) -> list[np.ndarray | None]:
    """Positions of each way's node refs in the sorted ``node_ids``; ``None`` if any is missing."""
    if not refs:
        return []
    flat = np.concatenate(refs) if refs else np.empty(0, dtype=np.int64)
    if len(node_ids) == 0:
        return [None] * len(refs)
    pos = np.minimum(np.searchsorted(node_ids, flat), len(node_ids) - 1)
    hit = node_ids[pos] == flat
    bounds = np.cumsum([0, *(len(r) for r in refs)])
    out: list[np.ndarray | None] = []
    for a, b in itertools.pairwise(bounds):
        out.append(pos[a:b] if hit[a:b].all() else None)
    return out


def _relation_area(
    members: Iterable[Mapping[str, Any]],
    way_geoms: Mapping[int, BaseGeometry],
    drops: dict[str, int],
) -> BaseGeometry | None:
    """A multipolygon's area: polygonised outer rings minus polygonised inner rings."""
    outer: list[BaseGeometry] = []
    inner: list[BaseGeometry] = []
    for member in members:
        if member.get("type") != "way":
            continue
        line = way_geoms.get(int(member["ref"]))
        if line is None and member.get("geometry"):
            pts = [(p["lon"], p["lat"]) for p in member["geometry"] if p is not None]
            line = shapely.linestrings(pts) if len(pts) >= 2 else None
        if line is None:
            _count(drops, DROP_RELATION_MEMBERS)
            return None
        (inner if member.get("role") == "inner" else outer).append(line)
    area = multipolygon_from_rings(outer, inner)
    if area is None:
        _count(drops, DROP_RELATION_RINGS)
    return area


def multipolygon_from_rings(
    outer: Sequence[BaseGeometry], inner: Sequence[BaseGeometry]
) -> BaseGeometry | None:
    """Assemble an area from ring pieces (way lines); ``None`` if no ring closes.

    Parameters
    ----------
    outer, inner : Sequence of BaseGeometry
        The lines of the outer and inner members.

    Returns
    -------
    BaseGeometry or None
        The (multi)polygon, or ``None`` if no ring closes.
    """
    if not outer:
        return None
    shells = shapely.get_parts(shapely.polygonize(np.asarray(outer, dtype=object)))
    if len(shells) == 0:
        return None
    area = shapely.union_all(shells)
    if inner:
        holes = shapely.get_parts(shapely.polygonize(np.asarray(inner, dtype=object)))
        if len(holes):
            area = shapely.difference(area, shapely.union_all(holes))
    if not shapely.is_valid(area):
        area = shapely.make_valid(area, method="structure", keep_collapsed=False)
    if shapely.is_empty(area) or shapely.get_type_id(area) not in (3, 6):
        return None
    return area


def _osm_base_date(answer: Mapping[str, Any]) -> str | None:
    stamp = (answer.get("osm3s") or {}).get("timestamp_osm_base")
    return str(stamp)[:10] if stamp else None


def _count(drops: dict[str, int], reason: str) -> None:
    drops[reason] = drops.get(reason, 0) + 1
