"""What one service process holds: its store, the cities' rooms, the ingest bounds.

Built once per process in the app's lifespan (:func:`open_runtime`): the PostGIS store
(its migrations run there, once), the limits read from the reference tables, a cache of
each city's :class:`~geo_protect.live.feed.Room` and a semaphore bounding the batches
ingested at once. Routes and the MQTT consumer call :meth:`Runtime.ingest`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from geo_protect.cities import get_city
from geo_protect.errors import ConfigError, ItemsValidationError, UnknownCityError
from geo_protect.live.feed import Limits, Outcome, Room, ingest, refresh, room_spaces
from geo_protect.reference import parameter
from geo_protect.settings import Settings
from geo_protect.store import PostGISStore
from geo_protect.store import live as live_store

__all__ = ["BusyError", "Runtime", "open_runtime", "require_postgis"]

log = logging.getLogger("geo_protect.service")

#: Seconds a city's room is kept before its sensors are read again (other workers may
#: have registered some); a batch naming an unknown sensor also reloads it at once.
_ROOM_TTL_S = 30.0


class BusyError(Exception):
    """Too many batches in progress in this worker: the caller should retry later."""


@dataclass
class Runtime:
    """The service's state in one process."""

    settings: Settings
    store: PostGISStore
    limits: Limits
    gate: threading.BoundedSemaphore
    rooms: dict[str, tuple[float, Room]] = field(default_factory=dict)
    swept: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)  # per city
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def cities(self) -> list[str]:
        """The cities in the store."""
        return self.store.cities()

    def room(self, city: str, *, fresh: bool = False) -> Room:
        """The city's spaces and sensors (cached for a short while)."""
        if city not in self.cities():
            raise UnknownCityError(f"city {city!r} is not in the store (ingest it first)")
        with self.lock:
            hit = self.rooms.get(city)
        if hit and not fresh and time.monotonic() - hit[0] < _ROOM_TTL_S:
            return hit[1]
        layers = self.store.read_layers(city, ["public_space", "space_metric", "assessment"])
        spaces = room_spaces(layers["space_metric"], layers["assessment"])
        sensors = live_store.city_sensors(self.engine, city)
        outlines = dict(
            zip(
                layers["public_space"].index.astype(str),
                layers["public_space"].geometry,
                strict=True,
            )
        )
        room = Room.of(city, spaces, pd.DataFrame(sensors), outlines)
        with self.lock:
            self.rooms[city] = (time.monotonic(), room)
        return room

    def forget(self, city: str) -> None:
        """Drop the cached room (after a sensor registration)."""
        with self.lock:
            self.rooms.pop(city, None)

    def ingest(self, city: str, items: Any, *, wait: bool = False) -> Outcome:
        """Validate and commit one batch, with its state and alerts, in one transaction.

        Returns only after the commit. Raises :class:`BusyError` when the worker is at its
        bound (``wait=False``), ``ItemsValidationError`` for a bad batch.
        """
        if not self.gate.acquire(blocking=wait):
            raise BusyError(f"{self.settings.ingest_concurrency} batches already in progress")
        try:
            return self._ingest(city, items)
        finally:
            self.gate.release()

    def _ingest(self, city: str, items: Any) -> Outcome:
        room = self.room(city)
        now = dt.datetime.now(dt.UTC)
        try:
            with self.engine.begin() as conn:
                return ingest(conn, room, items, now=now, limits=self.limits)
        except ItemsValidationError as exc:
            if not any(p.field == "sensor_id" for p in exc.problems):
                raise
        room = self.room(city, fresh=True)  # a sensor registered by another worker?
        with self.engine.begin() as conn:
            return ingest(conn, room, items, now=now, limits=self.limits)

    def sweep(self, city: str) -> tuple[int, ...]:
        """The periodic pass over a city: stale sensors, holds that ran out."""
        room = self.room(city)
        if room.sensors.empty:
            return ()
        now = dt.datetime.now(dt.UTC)
        seen = dict(self.swept.get(city, {}))  # kept only once the events are committed
        with self.engine.begin() as conn:
            events = refresh(conn, room, now=now, limits=self.limits, seen=seen)
        self.swept[city] = seen
        return events


def require_postgis(settings: Settings) -> None:
    """Refuse the GeoPackage store: the live service needs PostGIS.

    Raises
    ------
    ConfigError
        With how to run PostGIS.
    """
    if settings.store != "postgis":
        raise ConfigError(
            "the live service runs on PostGIS only (the GeoPackage store has no concurrent "
            "writers or notifications): start PostgreSQL with PostGIS (bash "
            "scripts/setup-postgis.sh), then set GEO_PROTECT_STORE=postgis (and "
            "GEO_PROTECT_DATABASE_URL=postgresql+psycopg://user@host:5432/geo_protect) or "
            "pass --database-url"
        )


def open_runtime(settings: Settings) -> Runtime:
    """Open the PostGIS store (migrating it) and build the runtime.

    Raises
    ------
    ConfigError
        When the settings name the GeoPackage store: the live service needs PostGIS.
    StoreUnavailableError
        PostGIS does not answer.
    """
    require_postgis(settings)
    store = PostGISStore(settings.database_url)
    limits = Limits(
        max_items=int(parameter("readings_batch_max_items")),
        future_skew_s=parameter("readings_future_skew_s"),
        window_s=parameter("live_state_window_s"),
    )
    gate = threading.BoundedSemaphore(settings.ingest_concurrency)
    for city in store.cities():
        get_city(city)  # a slug the registry does not know is a configuration error
    return Runtime(settings=settings, store=store, limits=limits, gate=gate)
