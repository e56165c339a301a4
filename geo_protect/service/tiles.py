"""Vector tiles of every stored layer (OGC API – Tiles, WebMercatorQuad) and TileJSON.

``/tiles/{city}/{layer}/{z}/{x}/{y}.mvt`` is cut from PostGIS at request time
(:func:`geo_protect.store.tiles.layer_tile`), so it always shows the rows stored now;
``/tiles/{city}/{layer}.json`` describes the tileset (TileJSON 3.0.0).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_protect.cities import get_city
from geo_protect.errors import UnknownCityError, ValidationError
from geo_protect.service.access import requires
from geo_protect.service.runtime import Runtime
from geo_protect.store.tiles import MAX_ZOOM, TILE_LAYERS, layer_tile

__all__ = ["router"]

router = APIRouter()

#: Most features in one tile (the first by uid; a client zooms in for the rest).
MAX_FEATURES = 20_000
MVT = "application/vnd.mapbox-vector-tile"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get(
    "/tiles/{city}/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={
        200: {"description": "a vector tile", "content": {MVT: {}}},
        204: {"description": "nothing in this tile"},
        400: {"description": "z, x or y outside the grid (the description names it)"},
        404: {"description": "no such city or layer"},
    },
    dependencies=[requires("read")],
)
async def tile(request: Request, city: str, layer: str, z: str, x: str, y: str) -> Response:
    """One tile of one layer (204 when nothing is in it)."""
    rt = _runtime(request)
    await run_in_threadpool(rt.known_city, city)
    coords = {}
    for name, text in (("z", z), ("x", x), ("y", y)):
        if not text.isdigit():
            return _bad(name, f"{text!r} is not a whole number")
        coords[name] = int(text)
    try:
        body = await run_in_threadpool(
            lambda: layer_tile(rt.engine, city, layer, **coords, max_features=MAX_FEATURES)
        )
    except ValidationError as exc:  # outside the zoom's grid
        name, _, why = str(exc).partition(": ")
        return _bad(name, why)
    headers = {"Cache-Control": "no-cache"}  # live rows: revalidate, never a stale tile
    return Response(body, status_code=200 if body else 204, media_type=MVT, headers=headers)


def _bad(parameter: str, why: str) -> JSONResponse:
    return JSONResponse(
        {"code": "InvalidParameterValue", "description": f"{parameter}: {why}"}, status_code=400
    )


@router.get(
    "/tiles/{city}/{layer}.json",
    responses={404: {"description": "no such layer"}},
    dependencies=[requires("read")],
)
async def tilejson(request: Request, city: str, layer: str) -> dict[str, Any]:
    """The TileJSON of a city's layer."""
    rt = _runtime(request)
    await run_in_threadpool(rt.known_city, city)
    if layer not in TILE_LAYERS:
        raise UnknownCityError(f"layer {layer!r} has no tiles (tiled: {', '.join(TILE_LAYERS)})")
    c = get_city(city)
    west, south, east, north = c.bbox
    base = str(request.base_url).rstrip("/")
    return {
        "tilejson": "3.0.0",
        "name": f"{c.name}: {layer}",
        "tiles": [f"{base}/tiles/{city}/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": [west, south, east, north],
        "attribution": "© OpenStreetMap contributors, ODbL",
        "vector_layers": [
            {
                "id": layer,
                "fields": {"uid": "String", **dict.fromkeys(TILE_LAYERS[layer], "String")},
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
            }
        ],
    }
