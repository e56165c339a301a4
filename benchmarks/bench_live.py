"""Live-service benchmark: sustained ingest (HTTP, MQTT) and reading-to-browser latency.

Run with ``.venv/bin/python benchmarks/bench_live.py``. It seeds a throwaway PostGIS
database with the Brașov municipality (analysed and scored), starts
``geo-protect serve --workers 2`` on it, registers one area counter on each of 200
spaces and measures, in the same run:

* **HTTP ingest**: 4 clients posting batches of 500 readings for 10 s — committed
  readings per second — against a *reference*: the same rows inserted straight into the
  ``reading`` table with psycopg ``executemany`` (the database's own ceiling here);
* **MQTT ingest**: one publisher sending messages of 100 readings at QoS 1 for 10 s,
  counted as they are committed;
* **the control page**: median time from navigation to ``window.controlReady`` in headless
  Chromium (target ≤ 1.5 s);
* **latency**: 100 Server-Sent-Event clients spread over the 2 workers; one reading every
  100 ms for 20 s; for each (reading, client), the time from the POST leaving to the
  event arriving. Reference: a bare PostgreSQL ``NOTIFY`` → ``LISTEN`` round trip.

Targets (issue 11): ≥ 2,000 readings/s and p99 ≤ 250 ms. Last line, for scripts:
``live readings_per_s=… p99_ms=… p50_ms=… http_per_s=… mqtt_per_s=… raw_per_s=…``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg
from _common import console, scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live_service import Server, seed

N_SENSORS = 200
HTTP_CLIENTS, HTTP_BATCH, HTTP_S = 4, 500, 10.0
MQTT_BATCH, MQTT_S = 100, 10.0
SSE_CLIENTS, LATENCY_S, LATENCY_EVERY_S = 100, 20.0, 0.1


def _seed(dsn: str) -> list[str]:
    from geo_protect.cities import get_city
    from geo_protect.osm.ingest import ingest_city
    from geo_protect.pipeline import evaluate

    city = get_city("brasov")
    data = ingest_city(city)
    layers = evaluate(city, data)
    url = dsn.replace("postgresql://", "postgresql+psycopg://")
    seed(url, data, dict(layers))
    m = layers["space_metric"]
    return list(m.sort_values("usable_area_m2", ascending=False).index.astype(str)[:N_SENSORS])


def _register(server: Server, spaces: list[str]) -> list[str]:
    ids = [f"bench-{i:03d}" for i in range(len(spaces))]
    body = [
        {
            "sensor_id": s,
            "kind": "area_counter",
            "space_uid": u,
            "installed_at": "2024-01-01T00:00:00Z",
        }
        for s, u in zip(ids, spaces, strict=True)
    ]
    r = httpx.post(
        f"{server.url}/cities/brasov/sensors", headers=server.headers, json=body, timeout=60
    )
    r.raise_for_status()
    return ids


class _Clock:
    """Distinct, increasing observation times (µs apart), all in the recent past."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    def next(self) -> str:
        with self.lock:
            self.t += dt.timedelta(microseconds=1)
            return self.t.isoformat()


def _readings(
    ids: list[str], n: int, clock: _Clock, rng: np.random.Generator
) -> list[dict[str, Any]]:
    pick = rng.integers(len(ids), size=n)
    people = rng.integers(0, 400, size=n)
    return [
        {"sensor_id": ids[int(i)], "observed_at": clock.next(), "present": int(p)}
        for i, p in zip(pick, people, strict=True)
    ]


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM geo_protect.reading").fetchone()
    return int(row[0]) if row else 0


def _http_ingest(server: Server, ids: list[str], clock: _Clock) -> float:
    done = [0] * HTTP_CLIENTS
    stop = time.monotonic() + HTTP_S

    def client(k: int) -> None:
        rng = np.random.default_rng(k)
        with httpx.Client(base_url=server.url, timeout=60, headers=server.headers) as c:
            while time.monotonic() < stop:
                batch = _readings(ids, HTTP_BATCH, clock, rng)
                r = c.post("/cities/brasov/readings", content=orjson.dumps(batch))
                if r.status_code == 200:
                    done[k] += r.json()["inserted"]
                elif r.status_code != 429:
                    raise RuntimeError(f"HTTP ingest failed: {r.status_code} {r.text[:300]}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(HTTP_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def _mqtt_ingest(dsn: str, ids: list[str], clock: _Clock) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    rng = np.random.default_rng(99)
    start_rows = _count(dsn)
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < MQTT_S:
        info = client.publish(
            "geo_protect/brasov/readings",
            orjson.dumps(_readings(ids, MQTT_BATCH, clock, rng)),
            qos=1,
        )
        info.wait_for_publish(timeout=30)
        sent += MQTT_BATCH
    deadline = time.monotonic() + 60
    while _count(dsn) - start_rows < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    client.loop_stop()
    client.disconnect()
    return (_count(dsn) - start_rows) / elapsed


def _raw_ingest(dsn: str, ids: list[str], clock: _Clock) -> float:
    rng = np.random.default_rng(7)
    rows = _readings(ids, 20_000, clock, rng)
    t0 = time.monotonic()
    with psycopg.connect(dsn) as c, c.cursor() as cur:
        for k in range(0, len(rows), HTTP_BATCH):
            cur.executemany(
                "INSERT INTO geo_protect.reading (sensor_id, observed_at, present) "
                "VALUES (%s, %s, %s)",
                [
                    (r["sensor_id"], r["observed_at"], r["present"])
                    for r in rows[k : k + HTTP_BATCH]
                ],
            )
            c.commit()
    return len(rows) / (time.monotonic() - t0)


def _notify_latency(dsn: str, n: int = 200) -> float:
    """p99 of a bare NOTIFY → LISTEN round trip, ms."""
    times = []
    with (
        psycopg.connect(dsn, autocommit=True) as listener,
        psycopg.connect(dsn, autocommit=True) as sender,
    ):
        listener.execute("LISTEN bench")
        for i in range(n):
            t = time.perf_counter()
            sender.execute(f"NOTIFY bench, '{i}'")
            for _ in listener.notifies(timeout=5.0, stop_after=1):
                times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 99))


def _latency(server: Server, ids: list[str]) -> tuple[float, float, int]:
    sent: dict[str, float] = {}
    arrivals: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    pids: set[str] = set()
    opened = threading.Semaphore(0)

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server going away at the end
            _listen()

    def _listen() -> None:
        mine: set[str] = set()
        timeout = httpx.Timeout(10.0, read=None)
        with (
            httpx.Client(timeout=timeout, headers=server.headers) as c,
            c.stream("GET", f"{server.url}/cities/brasov/events") as r,
        ):
            with lock:
                pids.add(r.headers.get("x-served-by", ""))
            opened.release()
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if not line.startswith("data: "):
                    continue
                now = time.perf_counter()
                for s in json.loads(line[6:]).get("spaces", []):
                    key = str(s.get("last_reading_at"))
                    t = sent.get(key)
                    if t is not None and key not in mine:  # its first arrival here
                        mine.add(key)
                        with lock:
                            arrivals.append((now - t) * 1000)

    threads = [threading.Thread(target=listen, daemon=True) for _ in range(SSE_CLIENTS)]
    for t in threads:
        t.start()
    for _ in range(SSE_CLIENTS):  # every stream open before the first reading
        if not opened.acquire(timeout=120):
            raise RuntimeError("the event streams did not all open within 120 s")
    with httpx.Client(base_url=server.url, timeout=30, headers=server.headers) as c:
        t_end = time.monotonic() + LATENCY_S
        k = 0
        while time.monotonic() < t_end:
            at = pd_iso(dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1))
            sent[at] = time.perf_counter()
            c.post(
                "/cities/brasov/readings",
                json=[{"sensor_id": ids[k % len(ids)], "observed_at": at, "present": 10 + k % 50}],
            )
            k += 1
            time.sleep(LATENCY_EVERY_S)
    time.sleep(1.0)
    stop.set()
    if not arrivals:
        raise RuntimeError("no event reached the clients")
    expected = k * SSE_CLIENTS
    console.print(
        f"latency: {len(arrivals):,} of {expected:,} deliveries, "
        f"{len(pids)} worker(s) serving streams"
    )
    p50, p99 = np.percentile(arrivals, [50, 99])
    return float(p50), float(p99), len(pids)


def _page_ready(server: Server, loads: int = 5) -> float:
    """Median time from navigation to ``window.controlReady`` of /control/brasov, ms."""
    import os

    from playwright.sync_api import sync_playwright

    exe = os.environ.get("GEO_PROTECT_CHROMIUM", "/usr/bin/chromium")
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            for _ in range(loads + 1):  # the first load warms the service's caches
                page = browser.new_page()
                page.goto(f"{server.url}/control/brasov")
                times.append(float(page.evaluate("() => window.controlReady")))
                page.close()
        finally:
            browser.close()
    return float(np.median(times[1:]))


def pd_iso(t: dt.datetime) -> str:
    """The ISO text the service gives back for a timestamp (pandas' isoformat)."""
    import pandas as pd

    return pd.Timestamp(t).isoformat()


def main() -> None:
    with scratch_database("geo_protect_bench_live") as dsn:
        console.print("seeding the Brașov municipality…")
        spaces = _seed(dsn)
        url = dsn.replace("postgresql://", "postgresql+psycopg://")
        with Server(url, workers=2) as server:
            ids = _register(server, spaces)
            clock = _Clock()
            http = _http_ingest(server, ids, clock)
            console.print(f"HTTP ingest: {http:,.0f} readings/s")
            mqtt_rate = _mqtt_ingest(dsn, ids, clock)
            console.print(f"MQTT ingest: {mqtt_rate:,.0f} readings/s")
            raw = _raw_ingest(dsn, ids, clock)
            console.print(
                f"reference (bare executemany): {raw:,.0f} rows/s; "
                f"HTTP at {http / raw:.2f}×, MQTT at {mqtt_rate / raw:.2f}×"
            )
            ready = _page_ready(server)
            console.print(
                f"control page (375 spaces, 200 live): ready in {ready:.0f} ms (target ≤ 1,500)"
            )
            p50, p99, workers = _latency(server, ids)
            ref = _notify_latency(dsn)
            console.print(
                f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms (bare NOTIFY p99 {ref:.1f} ms: "
                f"{p99 / ref:.0f}×); targets ≥ 2,000/s, p99 ≤ 250 ms"
            )
    rate = min(http, mqtt_rate)
    print(
        f"live readings_per_s={rate:.0f} p99_ms={p99:.0f} p50_ms={p50:.0f} http_per_s={http:.0f} "
        f"mqtt_per_s={mqtt_rate:.0f} raw_per_s={raw:.0f} notify_p99_ms={ref:.1f} "
        f"clients={SSE_CLIENTS} workers={workers} page_ready_ms={ready:.0f}"
    )


if __name__ == "__main__":
    main()
