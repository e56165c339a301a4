"""Mapbox vector tiles of the stored layers, cut by PostGIS (``ST_AsMVT``).

A tile (WebMercatorQuad ``z/x/y``) of one layer of one city: the rows whose geometry
meets the tile (with a 64-unit margin so that lines and outlines join across tiles),
simplified to half a tile unit at that zoom, clipped, at most ``max_features`` of them
(by uid: the same rows every time), with a few short properties per layer. The rows are
read at request time: a tile always shows what the store holds now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo_protect.errors import NotFoundError, ValidationError
from geo_protect.store.migrations import GEOMETRY_COLUMN, SCHEMA

__all__ = ["MAX_ZOOM", "TILE_EXTENT", "TILE_LAYERS", "layer_tile", "tile_tolerance_m"]

#: Tile coordinate extent and margin (the Mapbox vector tile defaults).
TILE_EXTENT, TILE_MARGIN = 4096, 64
#: Deepest zoom served.
MAX_ZOOM = 22
#: The layers served as tiles, with the properties each tile feature carries.
TILE_LAYERS: Mapping[str, tuple[str, ...]] = {
    "public_space": ("name", "kind"),
    "entry_point": ("space_uid", "entry_class", "worst_speed_kmh"),
    "approach": ("entry_uid", "vehicle", "speed_kmh"),
    "barrier": ("kind",),
    "street": ("name", "highway"),
    "building": ("kind",),
    "space_metric": ("name", "los", "worst_speed_kmh"),
    "standoff": ("space_uid", "vehicle", "closest_m"),
}
_EARTH_M = 2 * math.pi * 6378137.0  # the Web Mercator world's width, m


def tile_tolerance_m(z: int) -> float:
    """Simplification tolerance at zoom ``z``: half a tile unit, in Web Mercator metres.

    Examples
    --------
    >>> round(tile_tolerance_m(0), 2)  # the world (40,075 km) over 4,096 units, halved
    4891.97
    """
    return float(_EARTH_M / 2.0**z / TILE_EXTENT / 2)


def _check(layer: str, z: int, x: int, y: int) -> None:
    if layer not in TILE_LAYERS:
        raise NotFoundError(f"layer {layer!r} has no tiles (tiled: {', '.join(TILE_LAYERS)})")
    if not 0 <= z <= MAX_ZOOM:
        raise ValidationError(f"z: {z} is outside 0..{MAX_ZOOM}")
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < 2**z:
            raise ValidationError(f"{name}: {value} is outside 0..{2**z - 1} at zoom {z}")


def layer_tile(
    engine: Engine,
    city: str,
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    max_features: int,
) -> bytes:
    """One vector tile of one layer of a city (empty bytes when nothing is in it).

    Parameters
    ----------
    engine : Engine
        The PostGIS store's engine.
    city : str
        The city's slug.
    layer : str
        One of :data:`TILE_LAYERS`; the tile's layer has the same name.
    z, x, y : int
        The tile (WebMercatorQuad).
    max_features : int
        Most features in the tile (the first by uid).

    Returns
    -------
    bytes
        The tile, ``application/vnd.mapbox-vector-tile``; each feature has ``uid`` and the
        layer's :data:`TILE_LAYERS` properties.

    Raises
    ------
    NotFoundError
        For a layer without tiles.
    ValidationError
        For a tile outside the zoom's grid, naming the coordinate.
    """
    _check(layer, z, x, y)
    props = ", ".join(f't."{c}"' for c in TILE_LAYERS[layer])
    query = sa.text(f"""
        WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e,
                            ST_TileEnvelope(:z, :x, :y, margin => :margin) AS m),
        rows AS (
            SELECT t.uid{", " + props if props else ""},
                   ST_AsMVTGeom(
                       ST_SimplifyPreserveTopology(ST_Transform(t.{GEOMETRY_COLUMN}, 3857), :tol),
                       env.e, :extent, :buffer, true) AS geom
            FROM {SCHEMA}."{layer}" t, env
            WHERE t.city = :city AND t.{GEOMETRY_COLUMN} && ST_Transform(env.m, 4326)
            ORDER BY t.uid LIMIT :cap)
        SELECT ST_AsMVT(rows, :layer, :extent, 'geom') FROM rows WHERE geom IS NOT NULL""")
    params = {
        "z": z,
        "x": x,
        "y": y,
        "margin": TILE_MARGIN / TILE_EXTENT,
        "tol": tile_tolerance_m(z),
        "extent": TILE_EXTENT,
        "buffer": TILE_MARGIN,
        "city": city,
        "cap": int(max_features),
        "layer": layer,
    }
    with engine.connect() as conn:
        value = conn.execute(query, params).scalar_one()
    return bytes(value) if value is not None else b""
