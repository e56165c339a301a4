"""What the OGC API – Features routes share: their parameters, responses and documents.

The query parameters are checked here, once: ``bbox`` (four numbers, within the area cap),
``limit`` and ``offset`` (whole numbers in range) and ``datetime`` (OGC API – Features
Part 1 §7.15.4: an RFC 3339 instant, a closed interval ``t1/t2`` or a half-bounded one
``../t`` or ``t/..``). A bad one is a 400 naming it (:func:`bad`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from geo_protect.store.features_live import Interval

__all__ = [
    "CONFORMS",
    "DEFAULT_LIMIT",
    "FEATURES",
    "GEOJSON",
    "MAX_BBOX_DEG2",
    "MAX_LIMIT",
    "MISSING",
    "PROBLEM",
    "QUERYABLES",
    "RESERVED",
    "Query",
    "bad",
    "base_url",
    "check_query",
    "collection_doc",
    "json_response",
    "page",
    "parse_bbox",
    "parse_datetime",
    "parse_int",
    "queryables_doc",
]

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
#: Query parameters that are not property filters.
RESERVED = frozenset({"bbox", "limit", "offset", "f", "datetime"})
PROBLEM = {"description": "a parameter is invalid (the description names it)"}
MISSING = {"description": "no such collection or feature"}
FEATURES = {"description": "GeoJSON", "content": {GEOJSON: {"schema": {"type": "object"}}}}
QUERYABLES = {"description": "JSON Schema", "content": {"application/schema+json": {}}}
_CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: RFC 3339 ``date-time`` (section 5.6): full date, time, offset; ``T``/``t``/space.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def base_url(request: Request) -> str:
    """The service's root URL as the client reached it."""
    return str(request.base_url).rstrip("/")


def bad(parameter: str, why: str) -> JSONResponse:
    """A 400 whose description starts with the parameter's name."""
    return JSONResponse(
        {"code": "InvalidParameterValue", "description": f"{parameter}: {why}"}, status_code=400
    )


def json_response(value: Any, media: str = "application/json") -> Response:
    """``value`` as JSON (timestamps as RFC 3339 text)."""
    return Response(orjson.dumps(value, default=str), media_type=media)


def parse_bbox(text: str) -> tuple[float, float, float, float] | str:
    """West, south, east, north from ``bbox``, or why it is refused.

    Examples
    --------
    >>> parse_bbox("25.5,45.6,25.6,45.7")
    (25.5, 45.6, 25.6, 45.7)
    >>> parse_bbox("0,0,10,10")
    'larger than the limit of 4 square degrees'
    """
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


def parse_int(text: str | None, default: int, low: int, high: int) -> int | str:
    """A whole number in ``low..high`` (``default`` when absent), or why it is refused."""
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        return f"an integer {low}..{high} is needed"
    return int(text)


def _instant(text: str) -> dt.datetime | str:
    if not _RFC3339.fullmatch(text):
        return f"{text!r} is not an RFC 3339 date-time such as 2026-05-01T09:30:00Z"
    try:
        return dt.datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError as exc:
        return f"{text!r} is not a valid date-time ({exc})"


def parse_datetime(text: str) -> Interval | str:
    """The interval of a ``datetime`` parameter (``None``: open end), or why it is refused.

    An instant ``t`` is the interval ``t/t``; both ends are inclusive.

    Examples
    --------
    >>> parse_datetime("2026-05-01T09:00:00Z/..")[1] is None
    True
    >>> a, b = parse_datetime("2026-05-01T09:00:00+02:00")
    >>> a == b, a.isoformat()
    (True, '2026-05-01T09:00:00+02:00')
    >>> parse_datetime("2026-05-02T00:00:00Z/2026-05-01T00:00:00Z")
    'the interval ends before it starts'
    >>> parse_datetime("yesterday")
    "'yesterday' is not an RFC 3339 date-time such as 2026-05-01T09:30:00Z"
    """
    parts = text.split("/")
    if len(parts) > 2:
        return "an instant or one interval start/end is needed"
    if len(parts) == 1:
        t = _instant(parts[0])
        return t if isinstance(t, str) else (t, t)
    ends: list[dt.datetime | None] = []
    for part in parts:
        if part in ("..", ""):
            ends.append(None)
            continue
        t = _instant(part)
        if isinstance(t, str):
            return t
        ends.append(t)
    start, end = ends
    if start is None and end is None:
        return "an interval needs at least one end (../.. is not one)"
    if start is not None and end is not None and end < start:
        return "the interval ends before it starts"
    return start, end


def page(
    request: Request, found: list[dict[str, Any]], matched: int, start: int, size: int
) -> Response:
    """A FeatureCollection page with its ``self`` and (when more match) ``next`` links."""
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
    return json_response(body, GEOJSON)


def collection_doc(
    base: str,
    cid: str,
    *,
    title: str,
    description: str,
    bbox: Sequence[float] | None,
    interval: tuple[dt.datetime | None, dt.datetime | None] | None = None,
) -> dict[str, Any]:
    """The description of collection ``cid`` (extent: WGS84 box, and time when it has one)."""
    out: dict[str, Any] = {
        "id": cid,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [_CRS84],
        "links": [
            {"href": f"{base}/ogc/collections/{cid}", "rel": "self", "type": "application/json"},
            {"href": f"{base}/ogc/collections/{cid}/items", "rel": "items", "type": GEOJSON},
            {
                "href": f"{base}/ogc/collections/{cid}/queryables",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
            },
        ],
    }
    extent: dict[str, Any] = {}
    if bbox is not None:
        extent["spatial"] = {"bbox": [list(bbox)], "crs": _CRS84}
    if interval is not None:
        ends = [None if t is None else _rfc3339(t) for t in interval]
        extent["temporal"] = {
            "interval": [ends],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    if extent:
        out["extent"] = extent
    return out


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def queryables_doc(base: str, cid: str, properties: Mapping[str, Mapping[str, str]]) -> Response:
    """The JSON Schema of the properties a client may filter on (``?name=value``)."""
    return json_response(
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"{base}/ogc/collections/{cid}/queryables",
            "type": "object",
            "title": cid,
            "properties": {k: dict(v) for k, v in properties.items()},
        },
        "application/schema+json",
    )


@dataclass(frozen=True)
class Query:
    """The checked parameters of an items request."""

    limit: int
    offset: int
    bbox: tuple[float, float, float, float] | None
    equals: dict[str, str]
    during: Interval | None


def check_query(
    request: Request, cid: str, properties: Collection[str], *, has_time: bool
) -> Query | JSONResponse:
    """The items parameters of ``request``, or the 400 naming the first bad one.

    ``properties`` are the queryables of collection ``cid`` (any other parameter not in
    :data:`RESERVED` is refused); ``datetime`` is refused where the collection has no time.
    """
    q = request.query_params
    size = parse_int(q.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    if isinstance(size, str):
        return bad("limit", size)
    start = parse_int(q.get("offset"), 0, 0, 10**9)
    if isinstance(start, str):
        return bad("offset", start)
    box = parse_bbox(q["bbox"]) if "bbox" in q else None
    if isinstance(box, str):
        return bad("bbox", box)
    during = parse_datetime(q["datetime"]) if "datetime" in q else None
    if isinstance(during, str):
        return bad("datetime", during)
    if during is not None and not has_time:
        return bad("datetime", f"{cid} has no time to filter on")
    equals = {k: v for k, v in q.items() if k not in RESERVED}
    unknown = sorted(set(equals) - set(properties))
    if unknown:
        return bad(unknown[0], f"not a property of {cid} (see /queryables)")
    return Query(size, start, box, equals, during)
