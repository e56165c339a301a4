"""The live service under failure: its database and its broker restarted, overload, bad input.

Real components only: ``geo-protect serve`` in a subprocess (uvicorn workers), PostgreSQL
with PostGIS and Mosquitto. The database and the broker that get restarted here are
private to this module — a PostgreSQL instance ``initdb``-ed into a temporary directory
and a ``mosquitto`` on a free port, run from the machine's own binaries — so stopping them
cannot break the rest of the session (or anyone else's tests on the machine): only the
processes this module started are stopped, by their pid.

* PostgreSQL stopped (``pg_ctl stop -m fast``) for 3 s during continuous ingest over HTTP
  and MQTT: 503 with ``Retry-After`` while it is down, never 500; the service recovers by
  itself; every reading acknowledged (HTTP 200, broker-acknowledged QoS 1 publish) is
  stored — checked as exact sets of ``(sensor, observed_at)``.
* Mosquitto stopped and started again: ``/readyz`` reports the broker unavailable, the
  consumers reconnect and resubscribe by themselves, a reading published afterwards is
  stored.
* Overload: one ingest slot per worker: 429 with ``Retry-After`` rather than a queue, no
  5xx, bounded memory; a client that stops reading its event stream is dropped without
  holding up the others.
* Malformed MQTT messages are logged with their topic and reason, nothing of them stored,
  and they do not sink the good messages committed with them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import httpx
import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from geo_protect.citydata import CityData
from tests.live_service import Server, free_port, mqtt_answers, seeded_database
from tests.needs import unavailable

pytestmark = [pytest.mark.postgis, pytest.mark.mqtt]

T = TypeVar("T")
TOPIC = "geo_protect/brasov/readings"
#: Sensors installed long before any reading here.
SINCE = "2024-01-01T00:00:00+00:00"


# -- a private PostgreSQL and a private broker ------------------------------------------


def _pg_bindir() -> Path:
    """The newest Debian PostgreSQL whose share directory has PostGIS."""
    for initdb in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True):
        version = initdb.parent.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").is_file():
            return initdb.parent
    unavailable("no PostgreSQL server binaries with PostGIS under /usr/lib/postgresql")


class ScratchPostgres:
    """A PostgreSQL instance of this module: ``initdb`` in a temporary directory, a free port.

    Run as the ``postgres`` user when the tests run as root (the server refuses root).
    """

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="geo_protect_pg_"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                shutil.chown(self.root, "postgres", "postgres")
            except LookupError:
                unavailable("running as root and there is no postgres user to run PostgreSQL as")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def admin_url(self) -> URL:
        return make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._as, *args], check=True, timeout=timeout, capture_output=True, cwd=self.root
        )

    def init(self) -> ScratchPostgres:
        self._run(
            str(self.bindir / "initdb"),
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"),
            *("-E", "UTF8", "--locale=C.UTF-8"),
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\nmax_connections = 100\n"
            )
        return self.start()

    def start(self) -> ScratchPostgres:
        """Start and wait until it accepts connections."""
        if self.running():
            return self
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-w",
            "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast``: sessions are terminated, transactions rolled back."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        status = subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            cwd=self.root,
            check=False,
        )
        return status.returncode == 0

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Broker:
    """A ``mosquitto`` of this module on a free port, configured like the machine's."""

    def __init__(self) -> None:
        exe = shutil.which("mosquitto")
        if exe is None:
            unavailable("mosquitto (Debian package mosquitto) is not installed")
        self.exe = exe
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="geo_protect_mqtt_"))
        self.conf = self.root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.root}/\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        )
        if os.geteuid() == 0:  # mosquitto drops root for its own user, which must write here
            with contextlib.suppress(KeyError):
                pwd.getpwnam("mosquitto")
                shutil.chown(self.root, "mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        with (self.root / "mosquitto.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        if not _wait(lambda: mqtt_answers(port=self.port), 10):
            raise RuntimeError(f"mosquitto did not start: {self.log()}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: it saves its persistent sessions; SIGKILL: they are lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[ScratchPostgres]:
    instance = ScratchPostgres()
    try:
        instance.init()
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = Broker()
    try:
        yield b.start()
    finally:
        b.close()


@pytest.fixture(scope="module")
def db(
    pg: ScratchPostgres, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[str]:
    with seeded_database(pg.admin_url, "geo_protect_rel", centre_data, dict(centre_layers)) as url:
        yield url


@pytest.fixture(scope="module")
def uids(centre_layers: dict[str, gpd.GeoDataFrame]) -> list[str]:
    """The centre clip's spaces, largest usable area first."""
    m = centre_layers["space_metric"]
    m = m[m["usable_area_m2"].astype(float) > 0]
    return list(m.sort_values("usable_area_m2", ascending=False).index.astype(str))


@pytest.fixture(scope="module")
def server(db: str, broker: Broker, uids: list[str]) -> Iterator[Server]:
    """Two workers on the private database and broker, with a density sensor per feed."""
    with Server(db, workers=2, env={"GEO_PROTECT_MQTT_PORT": str(broker.port)}) as s:
        names = ["rel-http", "rel-mqtt", "rel-broker", "rel-bad"]
        _register(s, [_sensor(n, uids[i]) for i, n in enumerate(names)])
        yield s


@pytest.fixture(scope="module")
def busy(db: str, uids: list[str]) -> Iterator[Server]:
    """One worker with one ingest slot and event queues of 8."""
    env = {"GEO_PROTECT_INGEST_CONCURRENCY": "1", "GEO_PROTECT_SSE_QUEUE": "8"}
    with Server(db, workers=1, mqtt=False, env=env) as s:
        _register(s, [_sensor("rel-load", uids[0])])
        yield s


# -- helpers ----------------------------------------------------------------------------


def _sensor(sensor_id: str, space: str) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "kind": "density", "space_uid": space, "installed_at": SINCE}


def _register(server: Server, body: list[dict[str, Any]]) -> None:
    r = httpx.post(
        f"{server.url}/cities/brasov/sensors", headers=server.headers, json=body, timeout=30
    )
    assert r.status_code == 201, r.text


def _wait(check: Callable[[], T], timeout: float = 5.0, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return check()


def _epoch(ago_s: float = 600.0) -> dt.datetime:
    """A whole second ``ago_s`` ago: readings are at ``epoch + i ms``."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago_s)).replace(microsecond=0)


def _reading(sensor: str, epoch: dt.datetime, i: int, density: float = 0.5) -> dict[str, Any]:
    at = epoch + dt.timedelta(milliseconds=i)
    return {"sensor_id": sensor, "observed_at": at.isoformat(), "density": density}


def _stored(url: str, sensor: str, epoch: dt.datetime) -> set[int]:
    """The ``i`` of every stored reading of ``sensor`` at ``epoch + i ms``."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        rows = c.execute(
            "SELECT observed_at FROM geo_protect.reading WHERE sensor_id = %s", (sensor,)
        ).fetchall()
    return {(at - epoch) // dt.timedelta(milliseconds=1) for (at,) in rows}


def _log_lines(server: Server) -> list[dict[str, Any]]:
    out = []
    for line in server.log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


def _readyz(server: Server) -> tuple[int, dict[str, Any], str]:
    """``/readyz``: its status, its checks and the worker that answered."""
    r = httpx.get(f"{server.url}/readyz", headers=server.headers, timeout=5)
    return r.status_code, r.json(), r.headers["x-served-by"]


class _Publisher:
    """A paho client publishing QoS 1; a message counts once the broker acknowledged it."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rel-pub-{os.getpid()}-{port}"
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent: list[tuple[Any, list[int]]] = []
        self.times: list[float] = []  # monotonic time of each publish

    def publish(self, payload: bytes, keys: list[int] | None = None, topic: str = TOPIC) -> Any:
        info = self.client.publish(topic, payload, qos=1)
        self.sent.append((info, keys or []))
        self.times.append(time.monotonic())
        return info

    def acked(self, timeout: float = 10.0) -> set[int]:
        """The keys of the messages the broker acknowledged (waiting for those in flight)."""
        deadline = time.monotonic() + timeout
        for info, _ in self.sent:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
        return {k for info, keys in self.sent if info.is_published() for k in keys}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class _Answer:
    at: float  # monotonic time of the answer
    status: int  # 0: no HTTP answer (transport error)
    keys: list[int]
    retry_after: str | None = None
    detail: str = ""


@dataclass
class _HttpFeed:
    """A thread posting batches of readings of one sensor, each at a new time, until told."""

    server: Server
    sensor: str
    epoch: dt.datetime
    batch: int = 20
    answers: list[_Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _HttpFeed:
        self._thread.start()
        return self

    def join(self) -> None:
        self.stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        i = 0
        url = f"{self.server.url}/cities/brasov/readings"
        with httpx.Client(timeout=20, headers=self.server.headers) as client:
            while not self.stop.is_set():
                keys = list(range(i, i + self.batch))
                i += self.batch
                body = [_reading(self.sensor, self.epoch, k) for k in keys]
                try:
                    r = client.post(url, json=body)
                except httpx.HTTPError as exc:
                    self.answers.append(_Answer(time.monotonic(), 0, keys, detail=repr(exc)))
                    time.sleep(0.05)
                    continue
                self.answers.append(
                    _Answer(time.monotonic(), r.status_code, keys, r.headers.get("retry-after"),
                            r.text[:300])
                )  # fmt: skip
                time.sleep(0.01 if r.status_code == 200 else 0.05)

    def acked(self) -> set[int]:
        return {k for a in self.answers if a.status == 200 for k in a.keys}


# -- 1. PostgreSQL restarted during ingest ---------------------------------------------


def test_postgresql_restart_during_ingest_loses_no_acknowledged_reading(
    server: Server, db: str, pg: ScratchPostgres, broker: Broker
) -> None:
    epoch = _epoch()
    feed = _HttpFeed(server, "rel-http", epoch).start()
    pub = _Publisher(broker.port)
    publishing = threading.Event()

    def publish_forever() -> None:
        k = 0
        while not publishing.is_set():
            pub.publish(json.dumps([_reading("rel-mqtt", epoch, k)]).encode(), [k])
            k += 1
            time.sleep(0.01)

    mq = threading.Thread(target=publish_forever, daemon=True)
    mq.start()
    try:
        time.sleep(1.5)  # steady ingest first
        down = time.monotonic()
        try:
            pg.stop("fast")
            not_ready = _wait(lambda: (r := _readyz(server))[0] == 503 and r[1], timeout=2)
            time.sleep(max(0.0, down + 3.0 - time.monotonic()))
        finally:
            pg.start()  # whatever happened: the database runs again
        up = time.monotonic()
        first_ok = _wait(
            lambda: next((a.at for a in list(feed.answers) if a.status == 200 and a.at > up), 0.0),
            timeout=15,
        )
        ready = _wait(lambda: _readyz(server)[0] == 200, timeout=15)
        time.sleep(1.0)  # and steady again
    finally:
        publishing.set()
        mq.join(timeout=10)
        feed.join()
    mqtt_acked = pub.acked()
    pub.close()
    # the readings published while PostgreSQL was down: the consumer held them and retried
    in_outage = {
        k for t, (_, keys) in zip(pub.times, pub.sent, strict=True) if down < t < up for k in keys
    }

    statuses = Counter(a.status for a in feed.answers)
    during = [a for a in feed.answers if down <= a.at <= (first_ok or up)]
    n503 = sum(1 for a in during if a.status == 503)
    http_acked = feed.acked()
    stored_http = _stored(db, "rel-http", epoch)
    mqtt_stored = _wait(
        lambda: (s := _stored(db, "rel-mqtt", epoch)) >= mqtt_acked and s, timeout=20, every=0.2
    ) or _stored(db, "rel-mqtt", epoch)
    print(
        f"\nPG restart: statuses {dict(statuses)}, 503 during the outage {n503}, "
        f"recovered {first_ok - up if first_ok else float('nan'):.2f} s after the start "
        f"(outage {up - down:.2f} s); HTTP acked {len(http_acked)} stored {len(stored_http)}; "
        f"MQTT published {len(pub.sent)} ({len(in_outage)} during the outage) broker-acked "
        f"{len(mqtt_acked)} stored {len(mqtt_stored)}"
    )
    bad = [a for a in feed.answers if a.status not in (200, 503)]
    assert not bad, [(a.status, a.detail) for a in bad[:5]]
    assert n503 > 0, statuses
    assert all(a.retry_after for a in feed.answers if a.status == 503)
    assert not_ready and not_ready["database"].startswith("unavailable"), not_ready
    assert first_ok, "no batch was accepted within 15 s of PostgreSQL starting again"
    assert ready, "/readyz did not come back to 200 within 15 s"
    assert statuses[200] > 0 and http_acked <= stored_http, sorted(http_acked - stored_http)[:10]
    assert mqtt_acked, "the broker acknowledged no publish"
    assert in_outage & mqtt_acked, "no reading was published during the outage"
    assert mqtt_acked <= mqtt_stored, (
        f"{len(mqtt_acked - mqtt_stored)} broker-acknowledged readings are not stored: "
        f"{sorted(mqtt_acked - mqtt_stored)[:10]}"
    )
    # handled as an outage throughout: no traceback, no "Exception in ASGI application"
    errors = [e for e in _log_lines(server) if e["level"] in ("ERROR", "CRITICAL")]
    assert not errors, errors[:3]


# -- 2. the broker restarted -----------------------------------------------------------


def test_broker_restart_consumers_reconnect_and_resubscribe(
    server: Server, db: str, broker: Broker
) -> None:
    workers = _wait(
        lambda: len(s := {_readyz(server)[2] for _ in range(20)}) == 2 and s, timeout=10
    )
    assert workers, "both workers should answer /readyz"
    assert all(_readyz(server)[0] == 200 for _ in range(4))
    # killed: it comes back without the consumers' sessions and subscriptions (it saves
    # them only when stopped cleanly), so only a consumer that subscribes again gets data
    broker.stop(signal.SIGKILL)
    (broker.root / "mosquitto.db").unlink(missing_ok=True)
    stopped = time.monotonic()
    try:
        down = _wait(lambda: (r := _readyz(server))[0] == 503 and r, timeout=5)
        assert down, "/readyz stayed 200 with the broker down"
        assert down[1]["broker"] == "unavailable" and down[1]["database"] == "ok", down
        time.sleep(1.0)
    finally:
        broker.start()
    restarted = time.monotonic()
    ok: set[str] = set()

    def every_worker_ready() -> bool:
        status, _, pid = _readyz(server)
        if status == 200:
            ok.add(pid)
        return ok >= workers

    assert _wait(every_worker_ready, timeout=10, every=0.1), ok
    reconnected = time.monotonic() - restarted
    epoch = _epoch()
    pub = _Publisher(broker.port)
    try:
        for k in range(4):  # shared subscription: the broker hands them round the workers
            pub.publish(json.dumps(_reading("rel-broker", epoch, k)).encode(), [k])
        assert pub.acked() == {0, 1, 2, 3}
    finally:
        pub.close()
    assert _wait(lambda: _stored(db, "rel-broker", epoch) == {0, 1, 2, 3}, timeout=10)
    stored_after = time.monotonic() - restarted
    print(
        f"\nbroker restart: down {restarted - stopped:.2f} s, every worker subscribed again "
        f"{reconnected:.2f} s after the start, readings stored {stored_after:.2f} s after it"
    )
    assert stored_after < 10


# -- 3. overload ------------------------------------------------------------------------


def _group_memory_kb(pgid: int) -> dict[int, tuple[int, int]]:
    """``pid: (VmRSS, VmHWM)`` in kB of every process of the process group ``pgid``."""
    out: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        kb = {m[1]: int(m[2]) for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
        out[int(stat.parent.name)] = (kb.get("VmRSS", 0), kb.get("VmHWM", 0))
    return out


def test_overload_answers_429_not_a_queue_and_memory_stays_bounded(busy: Server, db: str) -> None:
    assert busy.proc is not None
    epoch = _epoch() - dt.timedelta(hours=2)  # outside the state window: cheap to store
    n, size = 30, 4000  # 30 concurrent batches of 4,000 readings (about 400 kB each)
    bodies = [
        json.dumps([_reading("rel-load", epoch, k * size + j) for j in range(size)]).encode()
        for k in range(n)
    ]
    before = _group_memory_kb(busy.proc.pid)
    barrier = threading.Barrier(n)

    def post(body: bytes) -> httpx.Response:
        with httpx.Client(timeout=60, headers=busy.headers) as client:
            barrier.wait()
            return client.post(
                f"{busy.url}/cities/brasov/readings",
                content=body,
                headers={"content-type": "application/json"},
            )

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(post, bodies))
    after = _group_memory_kb(busy.proc.pid)
    statuses = Counter(r.status_code for r in answers)
    peak_mb = max(hwm for _, hwm in after.values()) / 1024
    print(
        f"\noverload: {dict(statuses)}; RSS MB before "
        f"{[round(v[0] / 1024) for v in before.values()]}, after "
        f"{[round(v[0] / 1024) for v in after.values()]}, peak {peak_mb:.0f}"
    )
    assert set(statuses) <= {200, 429}, [(r.status_code, r.text[:200]) for r in answers]
    assert statuses[429] > 0 and statuses[200] > 0, statuses
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 429)
    assert all(
        r.json() == {"inserted": size, "duplicates": 0} for r in answers if r.status_code == 200
    )
    # what was acknowledged is stored, what was refused is not
    accepted = {k for k, r in enumerate(answers) if r.status_code == 200}
    assert _stored(db, "rel-load", epoch) == {k * size + j for k in accepted for j in range(size)}
    assert peak_mb < 600, after


def test_overload_of_large_bodies_is_bounded_by_the_gate(db: str) -> None:
    """40 clients at once, each with a 3.4 MB body (under the 4 MB limit; 39,000 readings:
    more than a batch may hold, so the one that gets the slot is refused with 422).
    """
    one = _reading("rel-load", _epoch(), 0)
    body = json.dumps([one] * 39_000).encode()
    env = {"GEO_PROTECT_INGEST_CONCURRENCY": "1"}
    n = 40
    with Server(db, workers=1, mqtt=False, env=env) as s:
        assert s.proc is not None
        barrier = threading.Barrier(n)

        def post(_: int) -> int:
            with httpx.Client(timeout=120, headers=s.headers) as client:
                barrier.wait()
                r = client.post(
                    f"{s.url}/cities/brasov/readings",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                return r.status_code

        before = _group_memory_kb(s.proc.pid)
        with ThreadPoolExecutor(n) as pool:
            statuses = Counter(pool.map(post, range(n)))
        after = _group_memory_kb(s.proc.pid)
    grown_mb = (max(h for _, h in after.values()) - max(r for r, _ in before.values())) / 1024
    print(f"\nlarge bodies: {dict(statuses)}; peak RSS grew by {grown_mb:.0f} MB")
    assert set(statuses) <= {422, 429} and statuses[429] > 0, statuses
    assert grown_mb < 250  # 40 x 3.4 MB of bodies; the gate admits one at a time


class _RawStream:
    """An event stream on a bare socket that reads its head, then stops reading."""

    def __init__(self, server: Server, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        auth = server.headers["Authorization"]
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.head = b""
        while b"connected, events after" not in self.head:  # the stream is subscribed
            chunk = self.sock.recv(1024)
            assert chunk, "the stream closed at once"
            self.head += chunk

    def read_all(self, timeout: float = 20.0) -> bytes:
        """Everything until the server closes the connection."""
        self.sock.settimeout(timeout)
        chunks = [self.head]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
        raise AssertionError(f"the stream was not closed within {timeout} s")

    def close(self) -> None:
        self.sock.close()


class _Reader:
    """An event stream read continuously in a thread (the ids of its events)."""

    def __init__(self, url: str, auth: dict[str, str]) -> None:
        self.ids: list[int] = []
        self.ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None), headers=auth)
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the stream did not open"

    def _read(self, url: str) -> None:
        with contextlib.suppress(httpx.HTTPError), self._client.stream("GET", url) as r:
            self.ready.set()
            for line in r.iter_lines():
                if line.startswith("id: "):
                    self.ids.append(int(line[4:]))

    def close(self) -> None:
        self._client.close()


def test_a_stalled_event_stream_is_dropped_and_others_keep_receiving(busy: Server, db: str) -> None:
    """A client that stops reading fills the socket buffers (a few MB on loopback), then
    its queue: it is dropped, and a live reader on the same worker misses nothing. A burst
    of more events than a queue holds (a sweep opening many alerts at once) drops no one.

    The events are appended to the store's event log as any worker of any process does
    (``append_event``: a row and its NOTIFY), 100 kB each, so that the buffers fill in a
    second rather than after thousands of batches.
    """
    import sqlalchemy as sa

    from geo_protect.store import live as live_store

    assert busy.proc is not None
    path = "/cities/brasov/events"
    reader = _Reader(f"{busy.url}{path}", busy.headers)
    stalled = _RawStream(busy, path)
    engine = sa.create_engine(db)
    ids: list[int] = []
    try:
        with engine.begin() as conn:  # a burst: 24 events in one transaction, queues of 8
            ids += [live_store.append_event(conn, "brasov", "test", {"b": b}) for b in range(24)]
        assert _wait(lambda: set(ids) <= set(reader.ids), timeout=10), "the burst did not arrive"
        assert not any("dropped" in e["message"] for e in _log_lines(busy))
        for k in range(80):  # 8 MB: more than the loopback buffers and 8 queued events
            with engine.begin() as conn:
                ids.append(
                    live_store.append_event(conn, "brasov", "test", {"k": k, "pad": "x" * 100_000})
                )
            time.sleep(0.02)
        got_all = _wait(lambda: reader.ids[-1:] == ids[-1:], timeout=15)
        dropped = _wait(lambda: any("dropped" in e["message"] for e in _log_lines(busy)), timeout=5)
        rss_mb = max(rss for rss, _ in _group_memory_kb(busy.proc.pid).values()) / 1024
        got = stalled.read_all()  # reading again: what was buffered and queued, then the end
    finally:
        reader.close()
        stalled.close()
        engine.dispose()
    mine = set(ids)  # the sweep may add events of its own in between
    seen = [i for m in re.findall(rb"\nid: (\d+)\n", got) if (i := int(m)) in mine]
    live = [i for i in reader.ids if i in mine]
    print(
        f"\nstalled stream: {len(seen)} of {len(ids)} events ({len(got) / 1e6:.1f} MB) "
        f"buffered, then closed; the live reader got {len(live)}; "
        f"server RSS {rss_mb:.0f} MB"
    )
    assert got_all, f"the live reader got {len(reader.ids)} events"
    assert live == ids  # every event, in order
    assert dropped, "the server did not log dropping the stalled stream"
    assert seen == ids[: len(seen)] and len(seen) < len(ids), (len(seen), len(ids))
    assert rss_mb < 600


# -- 4. malformed MQTT input --------------------------------------------------------------


def test_malformed_mqtt_messages_are_logged_and_nothing_of_them_stored(
    server: Server, db: str, broker: Broker
) -> None:
    epoch = _epoch()
    good = [_reading("rel-bad", epoch, k) for k in range(3)]
    negative = {**_reading("rel-bad", epoch, 3), "density": -1.0}
    unknown = _reading("rel-nobody", epoch, 4)
    pub = _Publisher(broker.port)
    try:
        # back to back, so a consumer may take several into one commit: the bad ones must
        # not sink the good one (it falls back to one message at a time)
        pub.publish(b'{"sensor_id": "rel-bad", "density": ')  # invalid JSON
        pub.publish(json.dumps([*good, negative]).encode())  # one bad item: none stored
        pub.publish(json.dumps([good[0], unknown]).encode())  # an unknown sensor
        pub.publish(json.dumps(_reading("rel-bad", epoch, 10)).encode(), [10])  # good
        pub.publish(b"[1, 2")  # cut short
        pub.acked()
        assert all(info.is_published() for info, _ in pub.sent)
    finally:
        pub.close()
    assert _wait(lambda: _stored(db, "rel-bad", epoch) == {10}, timeout=10)

    def rejections() -> list[str]:
        return [e["message"] for e in _log_lines(server) if "rejected" in e["message"]]

    wanted = ("not valid JSON", "rel-nobody", "greater than or equal to 0")
    log = _wait(lambda: all(any(w in m for m in rejections()) for w in wanted) and rejections())
    assert log, rejections()
    for w in wanted:
        line = next(m for m in log if w in m)
        assert TOPIC in line, line
    negative_line = next(m for m in log if "greater than or equal to 0" in m)
    assert "item 3" in negative_line and "'density'" in negative_line, negative_line
    time.sleep(0.5)  # nothing else arrives late
    assert _stored(db, "rel-bad", epoch) == {10}
