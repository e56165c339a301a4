"""OGC API – Features (Part 1: Core, GeoJSON) over every stored layer of every city.

Collections are ``{city}.{layer}`` (``brasov.public_space``); items come in pages of at
most :data:`MAX_LIMIT` with ``next`` links, filtered by ``bbox`` and by simple property
equality (``?kind=square``), with ``numberMatched`` counted in the same snapshot. Read at
request time from PostGIS (:mod:`geo_protect.store.features`): never a stale copy. Bad
parameters get a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_protect.cities import get_city
from geo_protect.errors import NotFoundError
from geo_protect.schema import LAYERS
from geo_protect.service.runtime import Runtime
from geo_protect.store.features import collection_extent, feature, items

__all__ = ["router"]

router = APIRouter()

#: Default and largest page (the standard lets a server cap ``limit``).
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
#: Largest bbox served, degrees² (about a city region; beyond it: 400).
MAX_BBOX_DEG2 = 4.0
GEOJSON = "application/geo+json"
CONFORMS = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
_RESERVED = {"bbox", "limit", "offset", "f", "datetime"}
_PROBLEM = {"description": "a parameter is invalid (the description names it)"}
_MISSING = {"description": "no such collection or feature"}
_FEATURES = {"description": "GeoJSON", "content": {GEOJSON: {"schema": {"type": "object"}}}}


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _bad(parameter: str, why: str) -> JSONResponse:
    return JSONResponse(
        {"code": "InvalidParameterValue", "description": f"{parameter}: {why}"}, status_code=400
    )


def _json(value: Any, media: str = "application/json") -> Response:
    return Response(orjson.dumps(value, default=str), media_type=media)


def _split(rt: Runtime, collection: str) -> tuple[str, str]:
    city, _, layer = collection.partition(".")
    if layer not in LAYERS:
        raise NotFoundError(f"no collection {collection!r} (city.layer, e.g. brasov.public_space)")
    rt.known_city(city)
    return city, layer


@router.get("/ogc")
def landing(request: Request) -> Response:
    """The landing page of the Features API."""
    base = _base(request)
    return _json(
        {
            "title": "geo_protect: public spaces, entries, approaches, barriers and scores",
            "links": [
                {"href": f"{base}/ogc", "rel": "self", "type": "application/json"},
                {"href": f"{base}/openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
                {"href": f"{base}/ogc/conformance", "rel": "conformance",
                 "type": "application/json"},
                {"href": f"{base}/ogc/collections", "rel": "data", "type": "application/json"},
            ],
        }
    )  # fmt: skip


@router.get("/ogc/conformance")
def conformance() -> Response:
    """The conformance classes implemented."""
    return _json({"conformsTo": CONFORMS})


def _collection(base: str, city: str, layer: str, extent: Any) -> dict[str, Any]:
    cid = f"{city}.{layer}"
    out: dict[str, Any] = {
        "id": cid,
        "title": f"{get_city(city).name}: {layer.replace('_', ' ')}",
        "description": LAYERS[layer].description,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "links": [
            {"href": f"{base}/ogc/collections/{cid}", "rel": "self", "type": "application/json"},
            {"href": f"{base}/ogc/collections/{cid}/items", "rel": "items", "type": GEOJSON},
        ],
    }
    if extent is not None:
        out["extent"] = {"spatial": {"bbox": [list(extent)]}}
    return out


@router.get("/ogc/collections")
def collections(request: Request) -> Response:
    """Every city × layer stored."""
    rt, base = _rt(request), _base(request)
    out = []
    for city in rt.cities():
        for layer in rt.store.layers(city):
            _, extent = collection_extent(rt.engine, city, layer)
            out.append(_collection(base, city, layer, extent))
    links = [{"href": f"{base}/ogc/collections", "rel": "self", "type": "application/json"}]
    return _json({"links": links, "collections": out})


@router.get("/ogc/collections/{collection}", responses={404: _MISSING})
def collection(request: Request, collection: str) -> Response:
    """One collection."""
    rt = _rt(request)
    city, layer = _split(rt, collection)
    _, extent = collection_extent(rt.engine, city, layer)
    return _json(_collection(_base(request), city, layer, extent))


def _bbox(text: str) -> tuple[float, float, float, float] | str:
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        return "four numbers west,south,east,north are needed"
    if len(parts) != 4:
        return "four numbers west,south,east,north are needed"
    w, s, e, n = parts
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90 and w <= e):
        return "west ≤ east within ±180, south ≤ north within ±90"
    if (e - w) * (n - s) > MAX_BBOX_DEG2:
        return f"larger than the limit of {MAX_BBOX_DEG2:g} square degrees"
    return w, s, e, n


def _int(text: str | None, default: int, low: int, high: int) -> int | str:
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        return f"an integer {low}..{high} is needed"
    return int(text)


@router.get(
    "/ogc/collections/{collection}/items",
    response_class=Response,
    responses={200: _FEATURES, 400: _PROBLEM, 404: _MISSING},
)
async def collection_items(
    request: Request,
    collection: str,
    bbox: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> Response:
    """A page of features: ``bbox``, ``limit`` (≤ 10,000), ``offset``, ``property=value``."""
    rt = _rt(request)
    city, layer = await run_in_threadpool(_split, rt, collection)
    q = request.query_params
    size = _int(limit, DEFAULT_LIMIT, 1, MAX_LIMIT)
    if isinstance(size, str):
        return _bad("limit", size)
    start = _int(offset, 0, 0, 10**9)
    if isinstance(start, str):
        return _bad("offset", start)
    box = _bbox(bbox) if bbox is not None else None
    if isinstance(box, str):
        return _bad("bbox", box)
    equals = {k: v for k, v in q.items() if k not in _RESERVED}
    unknown = sorted(set(equals) - set(LAYERS[layer].columns) - {"uid"})
    if unknown:
        return _bad(unknown[0], f"not a property of {collection} (see /queryables)")
    found, matched = await run_in_threadpool(
        lambda: items(rt.engine, city, layer, bbox=box, equals=equals, limit=size, offset=start)
    )
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if start + len(found) < matched:
        nxt = request.url.include_query_params(offset=start + len(found), limit=size)
        links.append({"href": str(nxt), "rel": "next", "type": GEOJSON})
    body = {
        "type": "FeatureCollection",
        "features": found,
        "numberMatched": matched,
        "numberReturned": len(found),
        "links": links,
    }
    return _json(body, GEOJSON)


@router.get(
    "/ogc/collections/{collection}/items/{feature_id:path}",
    response_class=Response,
    responses={200: _FEATURES, 404: _MISSING},
)
def collection_item(request: Request, collection: str, feature_id: str) -> Response:
    """One feature by its uid (the OSM id for source layers)."""
    rt = _rt(request)
    city, layer = _split(rt, collection)
    return _json(feature(rt.engine, city, layer, feature_id), GEOJSON)


@router.get(
    "/ogc/collections/{collection}/queryables",
    response_class=Response,
    responses={
        200: {"description": "JSON Schema", "content": {"application/schema+json": {}}},
        404: _MISSING,
    },
)
def queryables(request: Request, collection: str) -> Response:
    """The properties a client may filter on (``?name=value``)."""
    rt = _rt(request)
    _, layer = _split(rt, collection)
    kinds = {"string": "string", "json": "string", "Int64": "integer", "float64": "number"}
    props = {c: {"type": kinds.get(str(t), "string")} for c, t in LAYERS[layer].columns.items()}
    return _json(
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"{_base(request)}/ogc/collections/{collection}/queryables",
            "type": "object",
            "title": collection,
            "properties": {"uid": {"type": "string"}, **props},
        },
        "application/schema+json",
    )
