"""Every route's permission, checked in one place, and the store scoped to the user's cities.

A route declares what it needs with ``dependencies=[requires("live")]``; the city comes
from the ``city`` path parameter unless the route says how to find it (an alert's city,
a collection's). The dependency finds the user behind the request — an
``Authorization: Bearer`` token (API tokens for GIS clients and scripts, or a session's)
or the session cookie of the pages — and answers 401 without one, 403 when their grants
do not reach the city. Unsafe requests authenticated by cookie must carry the session's
CSRF token in ``X-CSRF-Token``.

For city data it also sets the scope of the request's database work: a context variable
that the engine's ``begin`` hook (:func:`scope_engine`) turns into ``SET LOCAL ROLE
geo_protect_scoped`` and the user's city lists, so PostgreSQL's row-level security
filters every query of the request, whatever the route forgets.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from geo_protect.access import ALL_CITIES, Permission, Scope
from geo_protect.errors import AuthenticationError, ForbiddenError
from geo_protect.store.users import Principal, lookup_credential

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "Requirement",
    "principal_of",
    "requires",
    "scope_engine",
    "spatial_index_under_scope",
    "unscoped",
]

log = logging.getLogger("geo_protect.service")

#: The session cookie of the pages.
COOKIE = "geo_protect_session"
#: The header carrying the CSRF token of a cookie session on unsafe requests.
CSRF_HEADER = "X-CSRF-Token"
#: Seconds a credential's lookup is reused by a worker (a revocation reaches every
#: worker within this time; the worker that revokes forgets at once).
CACHE_S = 2.0
#: Permissions whose database work is scoped to the user's cities (the others touch
#: no city data, or every city: accounts and administration).
_SCOPED: frozenset[Permission] = frozenset(
    {"read", "compare", "live", "ingest", "acknowledge", "plan", "assess"}
)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_SLUG = re.compile(r"^[a-z0-9_*]+$")

#: The scope of the request being served (None: background work, not scoped).
CURRENT: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("scope", default=None)

CityOf = Callable[[Request], str | None]


@contextlib.contextmanager
def unscoped() -> Iterator[None]:
    """Run the block as the service itself: for caches shared by every user's requests
    (filled under one user's scope they would serve another user a partial view)."""
    token = CURRENT.set(None)
    try:
        yield
    finally:
        CURRENT.reset(token)


def path_city(request: Request) -> str | None:
    """The ``city`` path parameter."""
    city = request.path_params.get("city")
    return None if city is None else str(city)


def blocking(resolver: CityOf) -> CityOf:
    """Mark a city resolver that reads the store (it runs in the thread pool)."""
    resolver.blocking = True  # type: ignore[attr-defined]
    return resolver


def no_city(_request: Request) -> str | None:
    """A route not about one city (lists filtered by the user's scope)."""
    return None


@dataclass
class _Cache:
    hits: dict[str, tuple[float, Principal | None]]
    lock: threading.Lock

    def get(self, secret: str) -> tuple[bool, Principal | None]:
        with self.lock:
            hit = self.hits.get(secret)
        if hit is None or time.monotonic() - hit[0] > CACHE_S:
            return False, None
        return True, hit[1]

    def put(self, secret: str, principal: Principal | None) -> None:
        with self.lock:
            if len(self.hits) > 10_000:
                self.hits.clear()
            self.hits[secret] = (time.monotonic(), principal)

    def forget(self, secret: str) -> None:
        with self.lock:
            self.hits.pop(secret, None)


_CACHE = _Cache({}, threading.Lock())


def forget(secret: str) -> None:
    """Drop a credential from this worker's cache (after a logout or revocation)."""
    _CACHE.forget(secret)


def credential_of(request: Request) -> tuple[str | None, bool]:
    """The secret the request carries and whether it came in the cookie."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, False
    cookie = request.cookies.get(COOKIE)
    return (cookie or None), cookie is not None


def _lookup(request: Request, secret: str) -> Principal | None:
    found, principal = _CACHE.get(secret)
    if not found:
        runtime = request.app.state.runtime
        principal = lookup_credential(runtime.engine, secret, key=runtime.secret)
        _CACHE.put(secret, principal)
    return principal


async def principal_of(request: Request) -> Principal | None:
    """The user behind the request's credential, None without one (or an invalid one)."""
    if "principal" in request.scope:
        found: Principal | None = request.scope["principal"]
        return found
    secret, cookie = credential_of(request)
    principal = None if secret is None else await run_in_threadpool(_lookup, request, secret)
    if principal is not None and cookie and request.method not in _SAFE:
        sent = request.headers.get(CSRF_HEADER)
        if not sent or principal.csrf is None or sent != principal.csrf:
            raise ForbiddenError(f"missing or wrong {CSRF_HEADER} header for a cookie session")
    request.scope["principal"] = principal
    return principal


class Requirement:
    """The dependency a route declares: a permission, and how to find its city."""

    def __init__(self, permission: Permission, city: CityOf) -> None:
        self.permission = permission
        self.city = city

    async def __call__(self, request: Request) -> Principal | None:
        if self.permission == "public":
            return None
        principal = await principal_of(request)
        if principal is None:
            raise AuthenticationError("log in, or send an API token: Authorization: Bearer …")
        if getattr(self.city, "blocking", False):  # it asks the store
            city = await run_in_threadpool(self.city, request)
        else:
            city = self.city(request)
        if not principal.scope.allows(self.permission, city):
            where = f" in {city}" if city else ""
            raise ForbiddenError(f"{principal.user} may not {self.permission}{where}")
        if self.permission in _SCOPED:
            CURRENT.set(principal.scope)
        return principal


def requires(permission: Permission, *, city: CityOf = path_city) -> Any:
    """The dependency declaring a route's ``permission`` (see the module docstring).

    Parameters
    ----------
    permission : Permission
        What the route does (``public``: no login).
    city : Callable[[Request], str | None]
        Finds the city the request is about; None for routes about no single city.

    Returns
    -------
    fastapi.params.Depends
    """
    return Depends(Requirement(permission, city))


def _cities(scope: Scope, permission: Permission) -> str:
    cities = scope.cities(permission)
    if ALL_CITIES in cities:
        return ALL_CITIES
    return ",".join(sorted(c for c in cities if _SLUG.match(c)))


def spatial_index_under_scope(engine: Engine) -> bool:
    """Let bounding-box filters of scoped queries use the GiST index; True if they can.

    Under row-level security PostgreSQL applies a query's own conditions only after the
    policy's, unless their functions are *leakproof*; PostGIS does not mark its ``&&``
    (``geometry_overlaps``) so, and every scoped tile or ``bbox`` query would then read all
    of a city's rows. The function reveals nothing of a row but the answer (its only
    error, mixed SRIDs, cannot happen: every column is EPSG:4326), so the service marks it
    leakproof [I] when it connects as a superuser (it must be redone after a PostGIS
    upgrade, hence at every start); otherwise it logs how to.

    Parameters
    ----------
    engine : Engine
        The service's PostGIS engine.

    Returns
    -------
    bool
    """
    probe = (
        "SELECT proleakproof FROM pg_proc "
        "WHERE oid = 'geometry_overlaps(geometry,geometry)'::regprocedure"
    )
    with engine.begin() as conn:
        if conn.exec_driver_sql(probe).scalar():
            return True
        superuser = conn.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).scalar()
        if superuser:
            conn.exec_driver_sql("ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF")
            return True
    log.warning(
        "bbox queries of logged-in users cannot use the spatial index: as a superuser, run "
        "ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF"
    )
    return False


def scope_engine(engine: Engine) -> None:
    """Make every transaction begun while a request's scope is set run scoped.

    Parameters
    ----------
    engine : Engine
        The service's engine (PostGIS, migrated to 0009 or later).
    """

    @event.listens_for(engine, "begin")
    def _scoped(conn: Connection) -> None:
        scope = CURRENT.get()
        if scope is None:
            return
        read, live = _cities(scope, "read"), _cities(scope, "live")
        conn.exec_driver_sql(
            "SET LOCAL ROLE geo_protect_scoped; "
            f"SELECT set_config('geo_protect.read_cities', '{read}', true), "
            f"set_config('geo_protect.live_cities', '{live}', true)"
        )
