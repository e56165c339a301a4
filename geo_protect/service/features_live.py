"""OGC API – Features collections of each city's live tables and scenarios.

Per city: ``{city}.readings``, ``{city}.alerts``, ``{city}.sensors`` and ``{city}.live_state``
(permission ``live``), ``{city}.scenarios`` and ``{city}.scenario_barriers`` (``read``),
each with its description (spatial and temporal extent), items (``bbox``, ``datetime``,
``limit``, ``offset``, property filters, ``next`` links, ``numberMatched``), one item by id
and queryables. The tables are read at request time (:mod:`geo_protect.store.features_live`):
a reading stored a moment ago is in the next page. The live state is computed from the
recent readings on each request (:func:`geo_protect.live.feed.current_state`), as
``/cities/{city}/state`` does, on the spaces' outlines.

The routes are registered ahead of the stored layers' ``/ogc/collections/{collection}``
routes, which would otherwise take these ids too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import shapely
import shapely.geometry
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from geo_protect.access import Permission
from geo_protect.cities import get_city
from geo_protect.errors import NotFoundError
from geo_protect.live.feed import current_state
from geo_protect.live.state_features import STATE_PROPERTIES, select_page, state_features
from geo_protect.service.access import requires
from geo_protect.service.ogc import (
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
from geo_protect.store.features_live import (
    LIVE_COLLECTIONS,
    live_extent,
    live_feature,
    live_items,
)

__all__ = ["COLLECTIONS", "live_collection_docs", "router"]

router = APIRouter()

_STATE = "live_state"
#: Every collection of this module and the permission it needs.
COLLECTIONS: dict[str, Permission] = {
    "readings": "live",
    "alerts": "live",
    _STATE: "live",
    "sensors": "live",
    "scenarios": "read",
    "scenario_barriers": "read",
}
_STATE_TITLE = "live state"
_STATE_TEXT = (
    "The live density, level of service, alert band, rise, exit flow and live risk of each "
    "space with a sensor, computed from the recent readings when asked (time: "
    "last_reading_at), on the space's outline."
)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _properties(name: str) -> Mapping[str, Mapping[str, str]]:
    return STATE_PROPERTIES if name == _STATE else LIVE_COLLECTIONS[name].properties


def _state(rt: Runtime, city: str) -> list[dict[str, Any]]:
    """The city's live state as features, computed now."""
    room = rt.room(city)
    with rt.engine.connect() as conn:
        rows = current_state(conn, room, now=dt.datetime.now(dt.UTC), limits=rt.limits)
    return state_features(rows, room.outlines)


def _state_extent(
    features: list[dict[str, Any]],
) -> tuple[tuple[float, ...] | None, tuple[dt.datetime, dt.datetime] | None]:
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features if f["geometry"]]
    box = tuple(float(v) for v in shapely.total_bounds(shapes)) if shapes else None
    times = [
        dt.datetime.fromisoformat(t)
        for f in features
        if (t := f["properties"]["last_reading_at"]) is not None
    ]
    return box, ((min(times), max(times)) if times else None)


def _doc(rt: Runtime, base: str, city: str, name: str) -> dict[str, Any]:
    """The description of ``{city}.{name}``, its extent read now."""
    if name == _STATE:
        box, span = _state_extent(_state(rt, city))
        title, text = _STATE_TITLE, _STATE_TEXT
    else:
        box, span = live_extent(rt.engine, city, name)
        title, text = LIVE_COLLECTIONS[name].title, LIVE_COLLECTIONS[name].description
    return collection_doc(
        base,
        f"{city}.{name}",
        title=f"{get_city(city).name}: {title}",
        description=text,
        bbox=box,
        interval=span,
    )


def live_collection_docs(
    rt: Runtime, base: str, city: str, permitted: Mapping[Permission, bool]
) -> list[dict[str, Any]]:
    """The descriptions of the city's collections of this module that ``permitted`` allows."""
    return [_doc(rt, base, city, n) for n, p in COLLECTIONS.items() if permitted.get(p)]


def _read(rt: Runtime, city: str, name: str, q: Query) -> tuple[list[dict[str, Any]], int]:
    if name == _STATE:
        return select_page(
            _state(rt, city),
            bbox=q.bbox,
            equals=q.equals,
            during=q.during,
            limit=q.limit,
            offset=q.offset,
        )
    return live_items(
        rt.engine,
        city,
        name,
        bbox=q.bbox,
        equals=q.equals,
        during=q.during,
        limit=q.limit,
        offset=q.offset,
    )


def _one(rt: Runtime, city: str, name: str, fid: str) -> dict[str, Any]:
    rt.known_city(city)
    if name != _STATE:
        return live_feature(rt.engine, city, name, fid)
    found = [f for f in _state(rt, city) if f["id"] == fid]
    if not found:
        raise NotFoundError(f"{city}.{name} has no feature {fid!r} (a space with a sensor)")
    return found[0]


def _add_routes(name: str, permission: Permission) -> None:
    """The four routes of collection ``{city}.{name}``."""
    path = f"/ogc/collections/{{city}}.{name}"
    deps = [requires(permission)]

    async def describe(request: Request, city: str) -> Response:
        rt = _rt(request)
        await run_in_threadpool(rt.known_city, city)
        return json_response(await run_in_threadpool(_doc, rt, base_url(request), city, name))

    async def items(
        request: Request,
        city: str,
        bbox: str | None = None,
        limit: str | None = None,
        offset: str | None = None,
        datetime: str | None = None,
    ) -> Response:
        rt = _rt(request)
        await run_in_threadpool(rt.known_city, city)
        q = check_query(request, f"{city}.{name}", _properties(name), has_time=True)
        if not isinstance(q, Query):
            return q
        found, matched = await run_in_threadpool(_read, rt, city, name, q)
        return page(request, found, matched, q.offset, q.limit)

    def item(request: Request, city: str, feature_id: str) -> Response:
        return json_response(_one(_rt(request), city, name, feature_id), GEOJSON)

    def queryables(request: Request, city: str) -> Response:
        _rt(request).known_city(city)
        return queryables_doc(base_url(request), f"{city}.{name}", _properties(name))

    described: dict[str, Any] = {"200": {"description": "the collection"}, "404": MISSING}
    for suffix, endpoint, responses, what in (
        ("", describe, described, "the collection, its extent read now"),
        ("/items", items, {200: FEATURES, 400: PROBLEM, 404: MISSING}, "a page of features"),
        ("/items/{feature_id:path}", item, {200: FEATURES, 404: MISSING}, "one feature by id"),
        ("/queryables", queryables, {200: QUERYABLES, 404: MISSING}, "the queryables"),
    ):
        router.add_api_route(
            path + suffix,
            endpoint,
            methods=["GET"],
            dependencies=deps,
            responses=responses,  # type: ignore[arg-type]
            name=f"{name}{suffix.split('/{')[0].replace('/', '_')}",
            summary=f"{name}: {what}",
            response_class=Response,
        )


for _name, _permission in COLLECTIONS.items():
    _add_routes(_name, _permission)
