"""OGC API – Features (Part 1: Core, GeoJSON) over every stored layer, live table and
scenario of every city.

Collections are ``{city}.{layer}`` (``brasov.public_space``) for the stored layers
(permission ``read``) and the collections of :mod:`geo_protect.service.features_live`
(``brasov.readings`` …); items come in pages of at most :data:`~geo_protect.service.ogc.MAX_LIMIT`
with ``next`` links, filtered by ``bbox``, ``datetime`` (where a collection has time) and
simple property equality (``?kind=square``), with ``numberMatched`` counted in the same
snapshot. Read at request time from PostGIS (:mod:`geo_protect.store.features`): never a
stale copy. Bad parameters get a 400 naming the parameter. The collection list shows only
the collections the user may read.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from geo_protect.access import Permission
from geo_protect.cities import get_city
from geo_protect.errors import NotFoundError
from geo_protect.schema import LAYERS
from geo_protect.service import features_live
from geo_protect.service.access import no_city, requires
from geo_protect.service.ogc import (
    CONFORMS,
    FEATURES,
    GEOJSON,
    MISSING,
    PROBLEM,
    QUERYABLES,
    Query,
    base_url,
    check_query,
    collection_doc,
    json_response,
    page,
    queryables_doc,
)
from geo_protect.service.runtime import Runtime
from geo_protect.store.features import collection_extent, feature, items

__all__ = ["router"]

router = APIRouter()
# first: the live collections' routes would otherwise be taken by {collection} below
router.include_router(features_live.router)

_KINDS = {"string": "string", "json": "string", "Int64": "integer", "float64": "number"}


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def collection_city(request: Request) -> str | None:
    """The city of a ``/ogc/collections/{collection}`` request: the id before the dot."""
    collection = request.path_params.get("collection")
    return None if collection is None else str(collection).partition(".")[0]


def _split(rt: Runtime, collection: str) -> tuple[str, str]:
    city, _, layer = collection.partition(".")
    if layer not in LAYERS:
        raise NotFoundError(f"no collection {collection!r} (city.layer, e.g. brasov.public_space)")
    rt.known_city(city)
    return city, layer


@router.get("/ogc", dependencies=[requires("public")])
def landing(request: Request) -> Response:
    """The landing page of the Features API."""
    base = base_url(request)
    return json_response(
        {
            "title": "geo_protect: public spaces, entries, approaches, barriers, scores, "
            "live feeds and scenarios",
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


@router.get("/ogc/conformance", dependencies=[requires("public")])
def conformance() -> Response:
    """The conformance classes implemented."""
    return json_response({"conformsTo": CONFORMS})


def _layer_doc(rt: Runtime, base: str, city: str, layer: str) -> dict[str, object]:
    _, extent = collection_extent(rt.engine, city, layer)
    return collection_doc(
        base,
        f"{city}.{layer}",
        title=f"{get_city(city).name}: {layer.replace('_', ' ')}",
        description=LAYERS[layer].description,
        bbox=extent,
    )


def _permitted(request: Request, city: str) -> dict[Permission, bool]:
    """What the request's user may see of ``city`` (its principal, set by ``requires``)."""
    principal = request.scope.get("principal")
    if principal is None:
        return {"read": False, "live": False}
    return {p: principal.scope.allows(p, city) for p in ("read", "live")}


@router.get("/ogc/collections", dependencies=[requires("read", city=no_city)])
def collections(request: Request) -> Response:
    """Every collection of every city the user may read: layers, live tables, scenarios."""
    rt, base = _rt(request), base_url(request)
    out = []
    for city in rt.cities():
        permitted = _permitted(request, city)
        if permitted["read"]:
            out += [_layer_doc(rt, base, city, layer) for layer in rt.store.layers(city)]
        out += features_live.live_collection_docs(rt, base, city, permitted)
    links = [{"href": f"{base}/ogc/collections", "rel": "self", "type": "application/json"}]
    return json_response({"links": links, "collections": out})


_READ = [requires("read", city=collection_city)]


@router.get("/ogc/collections/{collection}", responses={404: MISSING}, dependencies=_READ)
def collection(request: Request, collection: str) -> Response:
    """One collection."""
    rt = _rt(request)
    city, layer = _split(rt, collection)
    return json_response(_layer_doc(rt, base_url(request), city, layer))


@router.get(
    "/ogc/collections/{collection}/items",
    response_class=Response,
    responses={200: FEATURES, 400: PROBLEM, 404: MISSING},
    dependencies=_READ,
)
async def collection_items(
    request: Request,
    collection: str,
    bbox: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    datetime: str | None = None,
) -> Response:
    """A page of features: ``bbox``, ``limit`` (≤ 10,000), ``offset``, ``property=value``
    (stored layers have no time: ``datetime`` is refused)."""
    rt = _rt(request)
    city, layer = await run_in_threadpool(_split, rt, collection)
    props = {*LAYERS[layer].columns, "uid"}
    q = check_query(request, collection, props, has_time=False)
    if not isinstance(q, Query):
        return q
    found, matched = await run_in_threadpool(
        lambda: items(
            rt.engine, city, layer, bbox=q.bbox, equals=q.equals, limit=q.limit, offset=q.offset
        )
    )
    return page(request, found, matched, q.offset, q.limit)


@router.get(
    "/ogc/collections/{collection}/items/{feature_id:path}",
    response_class=Response,
    responses={200: FEATURES, 404: MISSING},
    dependencies=_READ,
)
def collection_item(request: Request, collection: str, feature_id: str) -> Response:
    """One feature by its uid (the OSM id for source layers)."""
    rt = _rt(request)
    city, layer = _split(rt, collection)
    return json_response(feature(rt.engine, city, layer, feature_id), GEOJSON)


@router.get(
    "/ogc/collections/{collection}/queryables",
    response_class=Response,
    responses={200: QUERYABLES, 404: MISSING},
    dependencies=_READ,
)
def queryables(request: Request, collection: str) -> Response:
    """The properties a client may filter on (``?name=value``)."""
    rt = _rt(request)
    _, layer = _split(rt, collection)
    props = {c: {"type": _KINDS.get(str(t), "string")} for c, t in LAYERS[layer].columns.items()}
    return queryables_doc(base_url(request), collection, {"uid": {"type": "string"}, **props})
