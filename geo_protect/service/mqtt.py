"""Sensor readings over MQTT: QoS 1, acknowledged only after they are committed.

One consumer per worker process, on a shared subscription (``$share/<group>/<topic>``)
so the broker gives each message to one worker. The topic names the city
(``geo_protect/<city>/readings``); the payload is one reading or a JSON list of them.

paho's network thread only queues messages (the queue is bounded: when it is full the
thread waits, the broker stops sending, nothing piles up in memory). A second thread
takes what has arrived — up to a few hundred messages — and commits each city's share
in one transaction through :meth:`~geo_protect.service.runtime.Runtime.ingest`, then
sends the ``PUBACK`` of every message of it (``manual_ack``). A message that cannot be
stored (the database is down) is not acknowledged: the commit is retried with back-off,
and if the connection drops meanwhile the broker redelivers it to the persistent session.
A message that is invalid (bad UTF-8, bad JSON, an unknown sensor, a negative count)
is logged with its topic and reason, and acknowledged so that it is not redelivered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from geo_protect.errors import (
    ConfigError,
    GeoProtectError,
    StoreError,
    UnknownCityError,
    ValidationError,
)
from geo_protect.live.readings import decode_mqtt_payload
from geo_protect.service.runtime import Runtime

__all__ = ["MqttIngest"]

log = logging.getLogger("geo_protect.service.mqtt")

#: Messages waiting for their commit, per worker (then paho's thread waits).
_QUEUE = 5000
#: Messages committed together at most.
_BATCH = 500
#: Seconds between two attempts to commit while the database is away (doubling, capped).
_BACKOFF_S = (0.2, 5.0)
#: Seconds the broker keeps a worker's session after it went away.
_SESSION_S = 300
#: Consumer slots: each worker holds one (a PostgreSQL advisory lock) as its client id.
_SLOTS = 64


@dataclass(frozen=True)
class _Message:
    mid: int
    qos: int
    topic: str
    payload: bytes


class MqttIngest:
    """The MQTT consumer of one worker."""

    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.topic = f"$share/{s.mqtt_group}/{s.mqtt_topic}"
        self.queue: queue.Queue[_Message] = queue.Queue(_QUEUE)
        self._slot = _claim_slot(runtime, s.mqtt_group)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{s.mqtt_group}-{self._slot[0]}",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.rejected = 0
        self.stored = 0
        self._worker = threading.Thread(target=self._drain, name="mqtt-ingest", daemon=True)

    def start(self) -> None:
        s = self.runtime.settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # the broker keeps the session (and the messages not acknowledged yet) while the
        # worker reconnects or restarts in the same slot
        props.SessionExpiryInterval = _SESSION_S
        props.ReceiveMaximum = _QUEUE  # messages in flight to us before our PUBACKs
        self.client.connect_async(
            s.mqtt_host, s.mqtt_port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()
        self._worker.start()

    def stop(self) -> None:
        self.stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        self._worker.join(timeout=10)
        self._slot[1].close()  # frees the slot for the next worker

    # -- paho's thread ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        # again after every reconnect: a broker that restarted may have lost the session
        client.subscribe(self.topic, qos=1)
        log.info("MQTT connected, subscribing to %s", self.topic)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _m: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.warning("MQTT broker refused the subscription to %s: %s", self.topic, reasons)
            return
        self.connected.set()  # ready: messages flow from here on
        log.info("MQTT subscribed to %s", self.topic)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.queue.put(_Message(msg.mid, msg.qos, msg.topic, bytes(msg.payload)))

    # -- the commit thread -----------------------------------------------------------

    def _drain(self) -> None:
        while not self.stopping.is_set():
            try:
                first = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Message]) -> None:
        by_city: dict[str, list[tuple[_Message, list[Any]]]] = defaultdict(list)
        for m in batch:
            try:
                city, decoded = _city_of(m.topic), decode_mqtt_payload(m.payload, m.topic)
            except ValidationError as exc:
                self._reject(m, str(exc))
                continue
            by_city[city].append((m, decoded))
        for city, messages in by_city.items():
            try:
                for chunk in _chunks(messages, self.runtime.limits.max_items):
                    self._commit_city(city, chunk)
            except Exception:  # a bug, not bad input: keep consuming, leave these unacked
                log.exception("MQTT batch of %s could not be processed", city)

    def _commit_city(self, city: str, messages: list[tuple[_Message, list[Any]]]) -> None:
        items = [item for _, decoded in messages for item in decoded]
        delay = _BACKOFF_S[0]
        while not self.stopping.is_set():
            try:
                self.runtime.ingest(city, items, wait=True)
            except (OperationalError, DBAPIError, StoreError) as exc:  # database away: retry
                log.warning("MQTT batch of %s not stored yet (%s); retrying", city, exc)
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_S[1])
                continue
            except (UnknownCityError, GeoProtectError) as exc:
                if len(messages) > 1:  # one bad message must not sink the others
                    for one in messages:
                        self._commit_city(city, [one])
                    return
                self._reject(messages[0][0], str(exc))
                return
            self.stored += len(items)
            for m, _ in messages:
                self._ack(m)
            return

    def _reject(self, m: _Message, reason: str) -> None:
        self.rejected += 1
        log.warning("MQTT message on %s rejected: %s", m.topic, reason)
        self._ack(m)

    def _ack(self, m: _Message) -> None:
        if m.qos > 0:
            self.client.ack(m.mid, m.qos)


def _chunks(
    messages: list[tuple[_Message, list[Any]]], max_items: int
) -> list[list[tuple[_Message, list[Any]]]]:
    """Consecutive runs of messages of at most ``max_items`` readings in all (a message
    alone when it has more: the batch limit then refuses it, alone)."""
    out: list[list[tuple[_Message, list[Any]]]] = []
    size = 0
    for m in messages:
        if not out or size + len(m[1]) > max_items:
            out.append([])
            size = 0
        out[-1].append(m)
        size += len(m[1])
    return out


def _claim_slot(runtime: Runtime, group: str) -> tuple[int, Connection]:
    """The first free consumer slot of ``group``, held by a session advisory lock.

    A worker that restarts takes a free slot again — usually its own — and so the
    broker's session of that client id, with the messages it had not acknowledged.
    """
    conn = runtime.engine.connect()
    base = zlib.crc32(f"geo_protect.mqtt:{group}".encode()) & 0x7FFF_0000
    for slot in range(_SLOTS):
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": base + slot})
        if got.scalar_one():
            conn.commit()
            return slot, conn
    conn.close()
    raise ConfigError(f"MQTT: all {_SLOTS} consumer slots of group {group!r} are taken")


def _city_of(topic: str) -> str:
    """The city slug of a readings topic ``.../<city>/readings``."""
    parts = topic.split("/")
    if len(parts) < 2 or not parts[-2]:
        raise ValidationError(f"MQTT topic {topic!r}: expected <prefix>/<city>/readings")
    return parts[-2]
