"""Live push to the browsers: Server-Sent Events fed by PostgreSQL LISTEN/NOTIFY.

Every event is a committed ``live_event`` row; its ``NOTIFY`` (same transaction) tells
every worker process that it exists. Each process keeps one listening connection
(:class:`Broadcaster`), reads the new rows of a city once per notification and hands
them to the queues of that city's open streams. A stream starts by replaying the rows
after the client's ``Last-Event-ID`` from the table, so a reconnecting browser misses
nothing; a client whose queue fills up (it stopped reading) is dropped and resumes the
same way. Comments every few seconds keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from geo_protect.store import live as live_store

__all__ = ["Broadcaster", "event_stream"]

log = logging.getLogger("geo_protect.service.push")

#: Seconds between keep-alive comments on an idle stream.
_HEARTBEAT_S = 10.0
#: Seconds between attempts to listen again after the database went away.
_RETRY_S = 1.0
#: Rows per read of the event table (``events_since``'s default limit).
_PAGE = 1000


class Broadcaster:
    """One process's listener: notifications in, events out to the city's queues."""

    def __init__(self, engine: sa.Engine, *, queue_size: int) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self.streams: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = defaultdict(set)
        self.last: dict[str, int] = {}
        self.listening = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for queues in self.streams.values():
            for q in queues:
                q.put_nowait(None)

    def subscribe(self, city: str) -> asyncio.Queue[dict[str, Any] | None]:
        # bounded by hand (qsize): one slot stays free for the None that ends a stream
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.streams[city].add(q)
        return q

    def unsubscribe(self, city: str, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        self.streams[city].discard(q)
        if not self.streams[city]:  # the next stream starts from the head again
            self.last.pop(city, None)

    async def _listen_forever(self) -> None:
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {live_store.LIVE_CHANNEL}")
                    self.listening = True
                    await self._catch_up_all()  # events committed while we were away
                    async for note in conn.notifies():
                        city, _, _ = note.payload.partition(":")
                        await self._deliver(city)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: listen again shortly
                self.listening = False
                log.warning("event listener lost the database (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def _catch_up_all(self) -> None:
        for city in list(self.streams):
            await self._deliver(city)

    async def _deliver(self, city: str) -> None:
        queues = self.streams.get(city)
        if not queues:
            return
        after = self.last.get(city)
        if after is None:  # no stream has set its start yet: its backlog covers this
            return
        rows: list[dict[str, Any]] = []
        while True:  # every page up to the head
            page = await run_in_threadpool(live_store.events_since, self.engine, city, after)
            rows += page
            if len(page) < _PAGE:
                break
            after = int(page[-1]["event_id"])
        if not rows:  # the other notifications of a burst already delivered: nothing to judge
            return
        # a stalled client has not taken what it was given before (a burst of many events
        # at once, a sweep opening many alerts, is not a stall): drop it, it resumes by id
        for q in [q for q in queues if q.qsize() >= self.queue_size]:
            queues.discard(q)
            q.put_nowait(None)
            log.warning("event stream of %s dropped: its client is not reading", city)
        for row in rows:
            self.last[city] = max(self.last.get(city, 0), int(row["event_id"]))
            for q in queues:
                q.put_nowait(row)


def _frame(row: dict[str, Any]) -> str:
    """One SSE message: ``id``, ``event`` (the kind) and the JSON payload."""
    data = json.dumps(
        {"event_id": row["event_id"], "at": str(row["at"]), **row["payload"]},
        separators=(",", ":"),
        default=str,
    )
    return f"id: {row['event_id']}\nevent: {row['kind']}\ndata: {data}\n\n"


async def event_stream(
    broadcaster: Broadcaster, city: str, last_id: int | None
) -> AsyncIterator[str]:
    """The SSE text of a city's events: those after ``last_id`` first, then live ones."""
    q = broadcaster.subscribe(city)
    try:
        head = await run_in_threadpool(live_store.last_event_id, broadcaster.engine, city)
        broadcaster.last.setdefault(city, head)  # it delivers every event after this
        sent = head if last_id is None else last_id
        yield f"retry: 1000\n: connected, events after {sent}\n\n"
        while True:  # the backlog, in pages
            rows = await run_in_threadpool(live_store.events_since, broadcaster.engine, city, sent)
            for row in rows:
                sent = int(row["event_id"])
                yield _frame(row)
            if len(rows) < _PAGE:
                break
        while True:
            try:
                item = await asyncio.wait_for(q.get(), timeout=_HEARTBEAT_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:  # dropped (too slow) or shutting down: the client resumes
                return
            if int(item["event_id"]) <= sent:
                continue
            sent = int(item["event_id"])
            yield _frame(item)
    finally:
        broadcaster.unsubscribe(city, q)
