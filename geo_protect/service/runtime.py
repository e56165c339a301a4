"""What one service process holds: its store, the cities' rooms, the ingest bounds.

Built once per process in the app's lifespan (:func:`open_runtime`): the PostGIS store
(its migrations run there, once), the limits read from the reference tables, a cache of
each city's :class:`~geo_protect.live.feed.Room` and a semaphore bounding the batches
ingested at once. Routes and the MQTT consumer call :meth:`Runtime.ingest`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from geo_protect.cities import get_city
from geo_protect.errors import (
    ConfigError,
    ItemsValidationError,
    StoreError,
    StoreUnavailableError,
    UnknownCityError,
)
from geo_protect.live.feed import Limits, Outcome, Room, refresh, room_spaces, store_readings
from geo_protect.live.state import default_stale_after_s
from geo_protect.reference import parameter
from geo_protect.service.access import scope_engine, spatial_index_under_scope, unscoped
from geo_protect.settings import Settings
from geo_protect.store import PostGISStore
from geo_protect.store import live as live_store
from geo_protect.store.users import LoginLimits

__all__ = ["BusyError", "Runtime", "open_runtime", "require_postgis"]

log = logging.getLogger("geo_protect.service")

#: Seconds before a refresh that failed (the database away) is tried again.
_REFRESH_RETRY_S = 0.5
#: Seconds the list of cities is kept before the store is asked again.
_CITIES_TTL_S = 5.0
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
    secret: str = field(repr=False, default="")
    logins: LoginLimits = field(default_factory=LoginLimits)
    rooms: dict[str, tuple[float, Room]] = field(default_factory=dict)
    swept: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)  # per city
    _cities: tuple[float, tuple[str, ...]] | None = None
    dirty: dict[str, set[str]] = field(default_factory=dict)  # city -> sensors to refresh
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    _refresher: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def cities(self) -> list[str]:
        """The cities in the store."""
        with _unavailable_if_cut_off(), unscoped():  # a cache shared by every user
            return self.store.cities()

    def room(self, city: str, *, fresh: bool = False) -> Room:
        """The city's spaces and sensors (cached for a short while)."""
        self.known_city(city)
        with self.lock:
            hit = self.rooms.get(city)
        if hit and not fresh and time.monotonic() - hit[0] < _ROOM_TTL_S:
            return hit[1]
        with _unavailable_if_cut_off(), unscoped():  # a cache shared by every user
            layers = self.store.read_layers(city, ["public_space", "space_metric", "assessment"])
            sensors = live_store.city_sensors(self.engine, city)
        spaces = room_spaces(layers["space_metric"], layers["assessment"])
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
        with self.slot(wait=wait):
            return self.ingest_held(city, items)

    @contextlib.contextmanager
    def slot(self, *, wait: bool = False) -> Iterator[None]:
        """One of the worker's ingest slots, for the length of the block.

        Raises :class:`BusyError` at once when none is free (``wait=False``): taken
        before a request body is read, it bounds the memory of bodies in flight too.
        """
        if not self.gate.acquire(blocking=wait):
            raise BusyError(f"{self.settings.ingest_concurrency} batches already in progress")
        try:
            yield
        finally:
            self.gate.release()

    def known_city(self, city: str) -> str:
        """``city`` if it is in the store (looked up at most every few seconds)."""
        now = time.monotonic()
        if self._cities is None or now - self._cities[0] > _CITIES_TTL_S:
            self._cities = (now, tuple(self.cities()))
        if city not in self._cities[1]:
            raise UnknownCityError(f"city {city!r} is not in the store (ingest it first)")
        return city

    def ingest_held(self, city: str, items: Any) -> Outcome:
        """:meth:`ingest` for a caller that holds a :meth:`slot` already."""
        room = self.room(city)
        now = dt.datetime.now(dt.UTC)
        try:
            with self.engine.begin() as conn:
                outcome = store_readings(conn, room, items, now=now, limits=self.limits)
        except ItemsValidationError as exc:
            if not any(p.field == "sensor_id" for p in exc.problems):
                raise
            room = self.room(city, fresh=True)  # a sensor registered by another worker?
            with self.engine.begin() as conn:
                outcome = store_readings(conn, room, items, now=now, limits=self.limits)
        self._mark(city, outcome.sensors)  # committed: the state follows in the background
        return outcome

    # -- the background refresh: state, alerts and events after the readings ------------

    def _mark(self, city: str, sensors: tuple[str, ...]) -> None:
        if sensors:
            with self.lock:
                self.dirty.setdefault(city, set()).update(sensors)
            self.wake.set()

    def start_refresher(self) -> None:
        """Start the thread that refreshes the state of the cities with new readings.

        Batches arriving while a refresh runs are refreshed together next: the state
        follows the readings at once when they are few, and costs one refresh per
        round, not one per batch, when they are many.
        """
        self._refresher = threading.Thread(target=self._refresh_forever, daemon=True)
        self._refresher.start()

    def stop_refresher(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self._refresher is not None:
            self._refresher.join(timeout=10)

    def _refresh_forever(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            with self.lock:
                work, self.dirty = self.dirty, {}
            for city, sensors in work.items():
                try:
                    room = self.room(city)
                    now = dt.datetime.now(dt.UTC)
                    with self.engine.begin() as conn:
                        refresh(conn, room, now=now, limits=self.limits, sensors=sorted(sensors))
                except Exception as exc:  # the database is away: keep the work for later
                    log.warning("live state of %s not refreshed yet: %s", city, exc)
                    with self.lock:
                        self.dirty.setdefault(city, set()).update(sensors)
                    time.sleep(_REFRESH_RETRY_S)

    def sweep(self, city: str) -> tuple[int, ...]:
        """The periodic pass over a city: stale sensors, holds that ran out."""
        room = self.room(city)
        if room.sensors.empty:
            return ()
        now = dt.datetime.now(dt.UTC)
        seen = dict(self.swept.get(city, {}))  # kept only once the events are committed
        with self.engine.begin() as conn:
            due = _due(conn, room, now, self.limits.stale_after_s)
            if not due:
                return ()
            events = refresh(conn, room, now=now, limits=self.limits, sensors=due, seen=seen)
        self.swept[city] = seen
        return events


def _due(conn: Connection, room: Room, now: dt.datetime, stale_after_s: float | None) -> list[str]:
    """The sensors a sweep must look at: the silent ones (gone stale, or still), and
    those of the spaces where an alert's hold is running. The others changed only with
    their own readings, whose refresh followed at once."""
    silence = default_stale_after_s() if stale_after_s is None else stale_after_s
    last = live_store.latest_readings(conn, room.city).set_index("sensor_id")["observed_at"]
    last = last.reindex(room.sensors.index)
    cutoff = pd.Timestamp(now) - pd.Timedelta(seconds=silence)
    silent = set(room.sensors.index[(last.isna() | (last <= cutoff)).to_numpy()])
    tracked = live_store.tracked_alerts(conn, room.city)
    if len(tracked):
        held = tracked[tracked["pending_since"].notna()]
        spaces = set(held["space_uid"].dropna().astype(str))
        on = room.sensors["space_uid"].astype(str).isin(spaces).to_numpy()
        silent |= set(room.sensors.index[on]) | set(held["sensor_id"].dropna().astype(str))
    return sorted(silent & set(room.sensors.index))


@contextlib.contextmanager
def _unavailable_if_cut_off() -> Iterator[None]:
    """A store read cut off by the database going away (a lost connection, the server
    shutting down) is :class:`StoreUnavailableError` (503, retry), not a failed read (500).
    """
    try:
        yield
    except StoreError as exc:
        if isinstance(exc, StoreUnavailableError) or not isinstance(
            exc.__cause__, OperationalError | InterfaceError
        ):
            raise
        raise StoreUnavailableError(str(exc)) from exc


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
    secret = settings.checked_secret()  # production refuses the default before anything
    store = PostGISStore(settings.database_url)
    scope_engine(store.engine)
    spatial_index_under_scope(store.engine)
    limits = Limits(
        max_items=int(parameter("readings_batch_max_items")),
        future_skew_s=parameter("readings_future_skew_s"),
        window_s=parameter("live_state_window_s"),
        per_sensor=int(parameter("live_state_readings_per_sensor")),
    )
    gate = threading.BoundedSemaphore(settings.ingest_concurrency)
    for city in store.cities():
        get_city(city)  # a slug the registry does not know is a configuration error
    logins = LoginLimits(
        per_user=settings.login_failures_per_user,
        per_address=settings.login_failures_per_address,
        window_s=settings.login_window_s,
    )
    return Runtime(
        settings=settings, store=store, limits=limits, gate=gate, secret=secret, logins=logins
    )
