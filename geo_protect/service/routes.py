"""The HTTP routes of the live service: validate, call the library, serialise.

Sync handlers run in the thread pool (database work); the event stream is async.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import orjson
import shapely
import shapely.geometry
import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from geo_protect.cities import get_city
from geo_protect.errors import NotFoundError, ValidationError
from geo_protect.live.cap import cap_alert
from geo_protect.live.feed import current_state
from geo_protect.live.sensors import sensor_frame
from geo_protect.service.access import blocking, no_city, requires
from geo_protect.service.auth import NO_NUL, actor_of
from geo_protect.service.pages import control_page, spaces_geojson
from geo_protect.service.push import event_stream
from geo_protect.service.runtime import Runtime
from geo_protect.store import live as live_store

__all__ = ["router"]

router = APIRouter()

#: Largest request body of a batch of readings, bytes (more: 413, before parsing).
MAX_BODY = 4 * 1024 * 1024


class Decision(BaseModel):
    """An operator's acknowledgement or resolution of an alert (by the logged-in user)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _json(value: Any, status: int = 200) -> Response:
    body = orjson.dumps(
        value, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return Response(body, status_code=status, media_type="application/json")


@router.get("/healthz", dependencies=[requires("public")])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[requires("public")])
def readyz(request: Request) -> JSONResponse:
    """The database (and the MQTT broker, when configured) answer."""
    rt = _rt(request)
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    consumer = request.app.state.mqtt
    if consumer is not None:
        checks["broker"] = "ok" if consumer.connected.is_set() else "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)


@router.get("/cities", dependencies=[requires("read", city=no_city)])
def cities(request: Request) -> list[dict[str, str]]:
    """The cities in the store."""
    principal = request.scope["principal"]
    readable = [c for c in _rt(request).cities() if principal.scope.allows("read", c)]
    return [{"slug": c, "name": get_city(c).name} for c in readable]


@router.get("/cities/{city}/spaces.geojson", dependencies=[requires("read")])
def spaces(request: Request, city: str) -> Response:
    """The city's spaces with their baseline risk: the layer the control page draws."""
    rt = _rt(request)
    return Response(spaces_geojson(rt, rt.known_city(city)), media_type="application/geo+json")


@router.get("/cities/{city}/sensors", dependencies=[requires("live")])
def sensors(request: Request, city: str) -> Response:
    """The sensor register of a city, with each sensor's last reading."""
    rt = _rt(request)
    frame = live_store.city_sensors(rt.engine, rt.known_city(city))
    last = live_store.latest_readings(rt.engine, city).set_index("sensor_id")
    rows = []
    for sid, row in frame.drop(columns="geometry").iterrows():
        item = {"sensor_id": str(sid), **row.to_dict()}
        item["last"] = last.loc[sid].to_dict() if sid in last.index else None
        rows.append(item)
    return _json(rows)


class SensorIn(BaseModel):
    """A sensor to register: the fields of a sensor file's row; ``zone`` a GeoJSON Polygon."""

    model_config = ConfigDict(extra="forbid")

    sensor_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    kind: Literal["line_counter", "area_counter", "density"]
    space_uid: str | None = None
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    area_m2: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    exit_width_m: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    installed_at: AwareDatetime
    zone: dict[str, Any] | None = None


@router.post("/cities/{city}/sensors", status_code=201, dependencies=[requires("ingest")])
def register(
    request: Request, city: str, body: Annotated[list[SensorIn], Body(max_length=10_000)]
) -> Response:
    """Register or update sensors, all or none; each on a space of the city."""
    rt = _rt(request)
    room = rt.room(city)
    records = [_sensor_record(i, s, room.outlines) for i, s in enumerate(body)]
    frame = sensor_frame(records, source="api")
    actor = actor_of(request)
    n = live_store.register_sensors(rt.engine, city, frame, source="api", actor=actor)
    rt.forget(city)
    return _json({"registered": n}, status=201)


def _sensor_record(i: int, s: SensorIn, outlines: Mapping[str, Any]) -> dict[str, Any]:
    """A checked record for :func:`sensor_frame`: the zone parsed, the space found."""
    zone = None
    if s.zone is not None:
        try:
            zone = shapely.geometry.shape(s.zone)
        except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
            where = f"sensors: item {i} ({s.sensor_id}), field 'zone'"
            raise ValidationError(f"{where}: {exc}") from exc
        if zone.geom_type != "Polygon" or not zone.is_valid or zone.is_empty:
            raise ValidationError(
                f"sensors: item {i} ({s.sensor_id}), field 'zone': a valid Polygon is needed"
            )
    space = s.space_uid
    if space is None and zone is not None:
        overlap = {u: zone.intersection(g).area for u, g in outlines.items() if zone.intersects(g)}
        space = max(sorted(overlap), key=overlap.__getitem__) if overlap else None
    if space is None or space not in outlines:
        raise ValidationError(
            f"sensors: item {i} ({s.sensor_id}), field 'space_uid': "
            f"{space!r} is not a space of this city"
        )
    return {
        "sensor_id": s.sensor_id,
        "kind": s.kind,
        "space_uid": space,
        "name": s.name,
        "area_m2": s.area_m2 if s.area_m2 is not None else float("nan"),
        "exit_width_m": s.exit_width_m if s.exit_width_m is not None else float("nan"),
        "installed_at": s.installed_at,
        "zone": zone,
    }


@router.post("/cities/{city}/readings", dependencies=[requires("ingest")])
async def readings(request: Request, city: str) -> Response:
    """Ingest a batch (JSON list) of readings; 200 only once it is committed."""
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_BODY:
        return _json({"detail": f"batch of {length} bytes: the limit is {MAX_BODY}"}, 413)
    rt = _rt(request)
    await run_in_threadpool(rt.known_city, city)
    with rt.slot():  # before the body is read: bodies in flight are bounded too
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _json({"detail": f"batch of {len(raw)} bytes: the limit is {MAX_BODY}"}, 413)
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"readings: the body is not valid JSON ({exc})") from exc
        del raw
        outcome = await run_in_threadpool(rt.ingest_held, city, items)
    return _json({"inserted": outcome.inserted, "duplicates": outcome.duplicates})


@router.get("/cities/{city}/state", dependencies=[requires("live")])
def state(request: Request, city: str) -> Response:
    """The live state of every space with a sensor, computed now."""
    rt = _rt(request)
    room = rt.room(city)
    with rt.engine.connect() as conn:
        rows = current_state(conn, room, now=dt.datetime.now(dt.UTC), limits=rt.limits)
    return _json({"city": city, "spaces": rows})


@router.get("/cities/{city}/alerts", dependencies=[requires("live")])
def alerts(
    request: Request,
    city: str,
    state: Annotated[str, Query(pattern="^[a-z,]+$")] = "open,acknowledged",
) -> Response:
    """The city's alerts in the given states (comma-separated)."""
    rt = _rt(request)
    wanted = tuple(s for s in state.split(",") if s)
    bad = sorted(set(wanted) - {"open", "acknowledged", "resolved"})
    if bad:
        raise ValidationError(f"state: {bad[0]!r} is not open, acknowledged or resolved")
    return _json(live_store.city_alerts(rt.engine, rt.known_city(city), states=wanted))


@blocking
def alert_city(request: Request) -> str | None:
    """The city of the alert in the path (None if there is no such alert: the route 404s)."""
    raw = str(request.path_params.get("alert_id", ""))
    return live_store.alert_city(_rt(request).engine, int(raw)) if raw.isdigit() else None


def _alert(rt: Runtime, alert_id: int) -> dict[str, Any]:
    found = live_store.get_alert(rt.engine, alert_id)
    if found is None:
        raise NotFoundError(f"alert {alert_id} does not exist")
    return found


@router.get("/alerts/{alert_id}.cap", dependencies=[requires("live", city=alert_city)])
def alert_cap(request: Request, alert_id: int) -> Response:
    """The alert as an OASIS CAP 1.2 message."""
    rt = _rt(request)
    found = _alert(rt, alert_id)
    city = get_city(str(found["city"]))
    outline = None
    if found.get("space_uid"):
        outline = rt.room(city.slug).outlines.get(str(found["space_uid"]))
        if outline is not None and outline.geom_type == "MultiPolygon":
            outline = max(outline.geoms, key=lambda g: g.area)  # CAP: one ring per polygon
    xml = cap_alert(
        found, sender=f"geo-protect@{city.slug}", city_name=city.name, area_polygon=outline
    )
    return Response(xml, media_type="application/cap+xml")


@router.get("/alerts/{alert_id}", dependencies=[requires("live", city=alert_city)])
def alert(request: Request, alert_id: int) -> Response:
    """One alert with its history."""
    return _json(_alert(_rt(request), alert_id))


@router.post(
    "/alerts/{alert_id}/acknowledge", dependencies=[requires("acknowledge", city=alert_city)]
)
def acknowledge(request: Request, alert_id: int, decision: Decision) -> Response:
    """An operator acknowledges an open alert."""
    return _decide(request, alert_id, decision, live_store.acknowledge_alert)


@router.post("/alerts/{alert_id}/resolve", dependencies=[requires("acknowledge", city=alert_city)])
def resolve(request: Request, alert_id: int, decision: Decision) -> Response:
    """An operator resolves an alert (open or acknowledged)."""
    return _decide(request, alert_id, decision, live_store.resolve_alert)


def _decide(
    request: Request, alert_id: int, decision: Decision, step: Callable[..., dict[str, Any]]
) -> Response:
    """Check the alert exists, then take the operator's step (its history and event included)."""
    rt = _rt(request)
    _alert(rt, alert_id)
    actor = actor_of(request)
    return _json(step(rt.engine, alert_id, actor=actor, note=decision.note))


@router.get("/cities/{city}/events", dependencies=[requires("live")])
async def events(
    request: Request,
    city: str,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Server-Sent Events of the city: state changes and alerts, resumable by id."""
    rt = _rt(request)
    await run_in_threadpool(rt.known_city, city)
    start = after
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise ValidationError(f"Last-Event-ID: {last_event_id!r} is not an event id")
        start = int(last_event_id)
    if start is None:  # read before the response starts: a client that has the headers
        # may make events at once, and those must follow, not be taken for the past
        start = await run_in_threadpool(live_store.last_event_id, rt.engine, city)
    stream = event_stream(request.app.state.broadcaster, city, start)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/control/{city}", response_class=HTMLResponse, dependencies=[requires("live")])
def control(request: Request, city: str) -> HTMLResponse:
    """The control-room page of a city."""
    rt = _rt(request)
    return HTMLResponse(control_page(get_city(rt.known_city(city))))
