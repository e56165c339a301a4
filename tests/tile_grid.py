"""The WebMercatorQuad grid in closed form, for the tile tests (a second implementation of
what PostGIS's ``ST_TileEnvelope`` computes)."""

from __future__ import annotations

import math


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The tile ``(x, y)`` at zoom ``z`` holding a WGS84 point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tile_bounds(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's lon/lat box, grown by ``margin`` (a fraction of the tile) on each side."""
    n = 2**z

    def lon(t: float) -> float:
        return t / n * 360.0 - 180.0

    def lat(t: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))

    return lon(x - margin), lat(y + 1 + margin), lon(x + 1 + margin), lat(y - margin)
