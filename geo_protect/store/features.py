"""The stored layers as OGC API – Features collections: extents, pages of items, one item.

A collection is one layer of one city (``brasov.public_space``). Items are read at
request time, ordered by uid (stable pages), filtered by a WGS84 bounding box and by
simple property equality, with the number of matching rows counted in the same snapshot.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo_protect.errors import NotFoundError
from geo_protect.schema import LAYERS
from geo_protect.store.migrations import GEOMETRY_COLUMN, SCHEMA

__all__ = ["collection_extent", "feature", "filter_clauses", "items"]

BBox = tuple[float, float, float, float]


def _columns(layer: str) -> list[str]:
    if layer not in LAYERS:
        raise NotFoundError(f"no layer {layer!r}")
    return list(LAYERS[layer].columns)


def collection_extent(engine: Engine, city: str, layer: str) -> tuple[int, BBox | None]:
    """How many rows a city's layer has, and their WGS84 extent (None when empty)."""
    _columns(layer)
    ext = f"ST_Extent({GEOMETRY_COLUMN})"
    query = sa.text(
        f"SELECT count(*), ST_XMin({ext}), ST_YMin({ext}), ST_XMax({ext}), ST_YMax({ext}) "
        f'FROM {SCHEMA}."{layer}" WHERE city = :city'
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"city": city}).one()
    n = int(row[0])
    if row is None or row[1] is None:
        return n, None
    return n, (float(row[1]), float(row[2]), float(row[3]), float(row[4]))


def filter_clauses(
    geometry: str,
    bbox: BBox | None,
    equals: Mapping[str, str],
    queryables: Collection[str],
    collection: str,
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions (and their parameters) of a box and of property equalities.

    Parameters
    ----------
    geometry : str
        The geometry column.
    bbox : tuple of float or None
        West, south, east, north (WGS84): rows whose geometry meets it.
    equals : Mapping[str, str]
        ``{property: value}``, compared as text.
    queryables : Collection[str]
        The properties that may be compared; any other is a :class:`NotFoundError`.
    collection : str
        Named in that error.

    Returns
    -------
    tuple[list[str], dict[str, Any]]

    Examples
    --------
    >>> filter_clauses("geom", None, {"kind": "square"}, {"kind"}, "brasov.public_space")
    (['"kind"::text = :p0'], {'p0': 'square'})
    """
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if bbox is not None:
        clauses.append(f"{geometry} && ST_MakeEnvelope(:w, :s, :e, :n, 4326)")
        clauses.append(f"ST_Intersects({geometry}, ST_MakeEnvelope(:w, :s, :e, :n, 4326))")
        params.update(dict(zip(("w", "s", "e", "n"), bbox, strict=True)))
    for k, (name, value) in enumerate(sorted(equals.items())):
        if name not in queryables:
            raise NotFoundError(f"property {name!r} is not a queryable of {collection!r}")
        clauses.append(f'"{name}"::text = :p{k}')
        params[f"p{k}"] = value
    return clauses, params


def _where(layer: str, bbox: BBox | None, equals: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    known = {*_columns(layer), "uid"}
    clauses, params = filter_clauses(GEOMETRY_COLUMN, bbox, equals, known, layer)
    return " AND ".join(["city = :city", *clauses]), params


def items(
    engine: Engine,
    city: str,
    layer: str,
    *,
    bbox: BBox | None = None,
    equals: Mapping[str, str] | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of GeoJSON features of a city's layer, and how many match in all.

    Parameters
    ----------
    engine : Engine
        The PostGIS store's engine.
    city, layer : str
        The collection.
    bbox : tuple of float, optional
        West, south, east, north (WGS84): features that intersect it.
    equals : mapping, optional
        Property name → value (compared as text).
    limit, offset : int
        The page.

    Returns
    -------
    tuple
        The features (``id`` the uid) and ``numberMatched``.
    """
    cols = _columns(layer)
    where, params = _where(layer, bbox, equals or {})
    props = ", ".join(f'"{c}"' for c in cols)
    page = sa.text(
        f"SELECT uid, {props}, ST_AsGeoJSON({GEOMETRY_COLUMN}, 7) AS geojson "
        f'FROM {SCHEMA}."{layer}" WHERE {where} '
        'ORDER BY uid COLLATE "C" LIMIT :limit OFFSET :offset'
    )
    count = sa.text(f'SELECT count(*) FROM {SCHEMA}."{layer}" WHERE {where}')
    params.update(city=city, limit=int(limit), offset=int(offset))
    # the isolation level is set on the connection, before BEGIN: a hook of the engine's
    # (the request's city scope) may run statements first in the transaction
    snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with snapshot as conn, conn.begin():
        matched = int(conn.execute(count, params).scalar_one())
        rows = conn.execute(page, params).mappings().all()
    return [_feature(dict(r), cols) for r in rows], matched


def feature(engine: Engine, city: str, layer: str, uid: str) -> dict[str, Any]:
    """One feature by its uid.

    Raises
    ------
    NotFoundError
        When the collection has no such feature.
    """
    found, _ = items(engine, city, layer, equals={"uid": uid}, limit=1)
    if not found:
        raise NotFoundError(f"{city}.{layer} has no feature {uid!r}")
    return found[0]


def _feature(row: Mapping[str, Any], cols: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": row["uid"],
        "geometry": orjson.loads(row["geojson"]),
        "properties": {c: _plain(row[c]) for c in cols},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
