"""The FastAPI application of the live control room.

:func:`create_app` wires the pieces: the :class:`~geo_protect.service.runtime.Runtime`
(store, rooms, ingest bounds) opened once in the lifespan, the event
:class:`~geo_protect.service.push.Broadcaster`, the MQTT consumer, a periodic sweep
(stale sensors, hold timers) run by whichever worker holds its advisory lock, the
routes, the vendored static assets and the error handlers. Errors map to statuses in
one place: validation 422, unknown city or alert 404, a bad transition 409, a busy
worker 429 and a database that does not answer 503 (with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool

from geo_protect.errors import (
    HTTP_STATUS,
    AuthenticationError,
    GeoProtectError,
    ItemsValidationError,
    ThrottledError,
)
from geo_protect.service import admin, auth, features, routes, tiles
from geo_protect.service.mqtt import MqttIngest
from geo_protect.service.push import Broadcaster
from geo_protect.service.runtime import BusyError, Runtime, open_runtime
from geo_protect.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("geo_protect.service")

STATIC = Path(__file__).resolve().parent.parent / "static"
#: Headers on every response: no framing, no sniffing, scripts and data from this origin
#: only (the pages load nothing from elsewhere), no referrer leaving the site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: Seconds between two sweeps of every city (stale sensors, holds running out).
_SWEEP_S = 5.0
#: Advisory lock of the sweep: one worker sweeps at a time.
_SWEEP_LOCK = 0x6770_5357


def create_app(settings: Settings, *, mqtt: bool = True) -> FastAPI:
    """The service app for ``settings`` (PostGIS store; MQTT unless ``mqtt`` is False).

    The store is opened (and migrated) when the app starts, not here.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(open_runtime, settings)
        runtime.start_refresher()
        broadcaster = Broadcaster(runtime.engine, queue_size=settings.sse_queue)
        await broadcaster.start()
        consumer = None
        if mqtt and settings.mqtt_host:
            consumer = await run_in_threadpool(MqttIngest, runtime)
            consumer.start()
        sweeper = asyncio.create_task(_sweep_forever(runtime))
        app.state.runtime, app.state.broadcaster, app.state.mqtt = runtime, broadcaster, consumer
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if consumer is not None:
                await run_in_threadpool(consumer.stop)
            await broadcaster.stop()
            await run_in_threadpool(runtime.stop_refresher)
            runtime.store.close()

    app = FastAPI(
        title="geo_protect live control room",
        summary="Crowd density from sensor feeds, alerts and live risk per public space.",
        lifespan=lifespan,
    )
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(routes.router)
    app.include_router(tiles.router)
    app.include_router(features.router)
    from geo_protect.service import planner  # the planner workspace (issue 14)

    app.include_router(planner.router)

    @app.middleware("http")
    async def served_by(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Served-By"] = str(os.getpid())  # which worker answered
        response.headers.update(SECURITY_HEADERS)
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    return app


def _handlers(app: FastAPI) -> None:
    def problem(status: int, detail: object, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)

    @app.exception_handler(ItemsValidationError)
    async def _items(_r: Request, exc: ItemsValidationError) -> JSONResponse:
        return problem(422, {"message": str(exc), "problems": exc.as_dicts()})

    @app.exception_handler(AuthenticationError)
    async def _who(request: Request, exc: AuthenticationError) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = urllib.parse.quote(request.url.path, safe="/")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return problem(401, str(exc), **{"WWW-Authenticate": 'Bearer realm="geo_protect"'})

    @app.exception_handler(ThrottledError)
    async def _slow(_r: Request, exc: ThrottledError) -> JSONResponse:
        return problem(429, str(exc), **{"Retry-After": str(exc.retry_after)})

    @app.exception_handler(GeoProtectError)
    async def _ours(_r: Request, exc: GeoProtectError) -> JSONResponse:
        status = next(HTTP_STATUS[k] for k in type(exc).__mro__ if k in HTTP_STATUS)
        message = str(exc.args[0]) if exc.args else str(exc)
        return problem(status, message, **({"Retry-After": "2"} if status == 503 else {}))

    @app.exception_handler(BusyError)
    async def _busy(_r: Request, exc: BusyError) -> JSONResponse:
        return problem(429, f"busy: {exc}; retry shortly", **{"Retry-After": "1"})

    async def _down(_r: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return problem(503, "the database is not answering; retry shortly", **{"Retry-After": "2"})

    for kind in (OperationalError, DBAPIError):
        app.add_exception_handler(kind, _down)


async def _sweep_forever(runtime: Runtime) -> None:
    """Every few seconds, if this worker holds the sweep lock, refresh every city."""
    while True:
        await asyncio.sleep(_SWEEP_S)
        try:
            await run_in_threadpool(_sweep_once, runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away: try again next time
            log.warning("sweep skipped: %s", exc)


def _sweep_once(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _SWEEP_LOCK})
        if not got.scalar_one():
            return
        try:
            for city in runtime.cities():
                runtime.sweep(city)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _SWEEP_LOCK})
