"""OGC API – Features, read by a real client: GDAL's OAPIF driver (``ogrinfo``,
``ogr2ogr``), on a running ``geo-protect serve``. The stored layers' counts are checked
against the layers; the live tables' and scenarios' against SQL on the same database
(counted there, not by the service's code).

Every request goes through the module's one authenticated client (``client``, the test
server's admin) and GDAL through one environment (``gdal``: the same token in
``GDAL_HTTP_HEADERS``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.live_service import Server, seeded_server
from tests.needs import unavailable

pytestmark = [pytest.mark.postgis]

T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
Z = "%Y-%m-%dT%H:%M:%SZ"
LIVE = ("readings", "alerts", "sensors", "live_state", "scenarios", "scenario_barriers")
Gdal = Callable[..., str]


@dataclass(frozen=True)
class Seeded:
    """What the module put in the live tables (beside what the service derives)."""

    spaces: tuple[str, str]  # the spaces of the sensors
    barrier: str  # a baseline barrier the scenario removes
    n_readings: int


@pytest.fixture(scope="module")
def api(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    name = f"geo_protect_api_{os.getpid()}"
    data, layers = centre_data, dict(centre_layers)
    with seeded_server(pg_admin_url, name, data, layers, workers=1, mqtt=False) as server:
        yield server


@pytest.fixture(scope="module")
def client(api: Server) -> Iterator[httpx.Client]:
    with api.client(timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def gdal(api: Server) -> Gdal:
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {api.token}"}

    def run(tool: str, *args: str) -> str:
        exe = shutil.which(tool)
        if exe is None:
            unavailable(f"{tool} (Debian package gdal-bin) is not installed")
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@pytest.fixture(scope="module")
def sql(api: Server) -> Iterator[sa.Engine]:
    engine = sa.create_engine(api.database_url)
    yield engine
    engine.dispose()


def _count(engine: sa.Engine, query: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query), params).scalar_one())


_READINGS_SQL = (
    "SELECT count(*) FROM geo_protect.reading r JOIN geo_protect.sensor s "
    "USING (sensor_id) WHERE s.city = 'brasov'"
)


@pytest.fixture(scope="module")
def seeded(
    client: httpx.Client, sql: sa.Engine, centre_data: CityData, centre_layers: dict[str, Any]
) -> Seeded:
    """Sensors and readings through the API; a sensor with no place, its readings and a
    scenario straight into the tables."""
    a, b = (str(u) for u in centre_layers["space_metric"].index[:2])
    zone = shapely.geometry.mapping(centre_data["public_space"].geometry[b].envelope)
    since = "2025-01-01T00:00:00Z"
    sensors = [
        {"sensor_id": "t-area", "kind": "area_counter", "space_uid": a, "installed_at": since},
        {"sensor_id": "t-line", "kind": "line_counter", "space_uid": a, "installed_at": since,
         "exit_width_m": 4.0},
        {"sensor_id": "t-dens", "kind": "density", "space_uid": b, "zone": zone,
         "installed_at": since},
    ]  # fmt: skip
    assert client.post("/cities/brasov/sensors", json=sensors).status_code == 201
    at = lambda minutes: (T0 + dt.timedelta(minutes=minutes)).strftime(Z)  # noqa: E731
    batch = [
        {"sensor_id": "t-area", "observed_at": at(5 * k), "present": 10 * k} for k in range(12)
    ]
    batch += [
        {"sensor_id": "t-dens", "observed_at": at(7 * k), "density": 0.1 * k} for k in range(10)
    ]
    batch += [
        {"sensor_id": "t-line", "observed_at": at(10 * k), "count_in": k, "count_out": 1,
         "interval_s": 60.0}
        for k in range(6)
    ]  # fmt: skip
    r = client.post("/cities/brasov/readings", json=batch)
    assert r.status_code == 200 and r.json()["inserted"] == len(batch), r.text
    barrier = str(centre_data["barrier"].index[0])
    edits = [
        {"action": "add", "kind": "bollard_row", "spacing_m": 1.4, "rating": None, "osm_id": None,
         "note": "", "geometry": {"type": "LineString",
                                  "coordinates": [[25.5885, 45.6418], [25.5889, 45.6418]]}},
        {"action": "remove", "kind": None, "geometry": None, "rating": None, "spacing_m": None,
         "osm_id": barrier, "note": "gone"},
        {"action": "open", "kind": None, "geometry": None, "rating": None, "spacing_m": None,
         "osm_id": "node/1", "note": "not in the baseline"},
    ]  # fmt: skip
    doc = {"name": "market day", "city": "brasov", "author": "planner", "description": "",
           "created": "2026-01-04T12:00:00+00:00", "edits": edits}  # fmt: skip
    with sql.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO geo_protect.sensor (sensor_id, city, kind, installed_at, source) "
            "VALUES ('t-nowhere', 'brasov', 'density', :t, 'tests')"), {"t": T0})  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO geo_protect.reading (sensor_id, observed_at, density) "
                    "SELECT 't-nowhere', :t + k * interval '15 min', k "
                    "FROM generate_series(0, 3) k"),
            {"t": T0},
        )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO geo_protect.scenario (city, name, author, created, n_edits, "
                    "scenario) VALUES ('brasov', :n, 'planner', :c, 3, CAST(:d AS jsonb))"),
            {"n": doc["name"], "c": doc["created"], "d": json.dumps(doc)},
        )  # fmt: skip
    return Seeded((a, b), barrier, len(batch) + 4)


def _feature_count(gdal: Gdal, url: str, collection: str) -> int:
    summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{url}/ogc", collection)
    return int(re.search(r"Feature Count: (\d+)", summary).group(1))  # type: ignore[union-attr]


def _expected_live(sql: sa.Engine, name: str) -> int:
    """The features of ``brasov.<name>``, counted in SQL."""
    queries = {
        "readings": _READINGS_SQL,
        "alerts": "SELECT count(*) FROM geo_protect.alert WHERE city = 'brasov'",
        "sensors": "SELECT count(*) FROM geo_protect.sensor WHERE city = 'brasov'",
        # the spaces with a sensor (and a row in space_metric, which the live state reads)
        "live_state": "SELECT count(DISTINCT s.space_uid) FROM geo_protect.sensor s "
        "JOIN geo_protect.space_metric m ON m.city = s.city AND m.uid = s.space_uid "
        "WHERE s.city = 'brasov'",
        "scenarios": "SELECT count(*) FROM geo_protect.scenario WHERE city = 'brasov'",
        "scenario_barriers": "SELECT sum(jsonb_array_length(scenario->'edits')) "
        "FROM geo_protect.scenario WHERE city = 'brasov'",
    }
    return _count(sql, queries[name])


def _settled(got: Callable[[], int], expected: Callable[[], int]) -> tuple[int, int]:
    """``got()`` and ``expected()`` at a moment when ``expected()`` held still around the
    read: alerts open in the background (silent sensors) while the tests run."""
    for _ in range(5):
        before = expected()
        value = got()
        if before == expected():
            break
    return value, before


def test_ogrinfo_lists_every_collection_and_counts_its_features(
    api: Server,
    gdal: Gdal,
    sql: sa.Engine,
    seeded: Seeded,
    centre_data: CityData,
    centre_layers: dict[str, gpd.GeoDataFrame],
) -> None:
    listing = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{api.url}/ogc")
    names = set(re.findall(r"^\d+: (\S+)", listing, flags=re.MULTILINE))
    layers = {**centre_data.layers, **centre_layers}
    stored = {f"brasov.{k}" for k, v in layers.items() if len(v)}
    assert stored | {f"brasov.{n}" for n in LIVE} <= names
    for layer in ("public_space", "entry_point", "barrier"):
        assert _feature_count(gdal, api.url, f"brasov.{layer}") == len(layers[layer]), layer
    assert _expected_live(sql, "readings") == seeded.n_readings
    assert _expected_live(sql, "scenario_barriers") == 3
    for name in LIVE:
        got, expected = _settled(
            lambda n=name: _feature_count(gdal, api.url, f"brasov.{n}"),  # type: ignore[misc]
            lambda n=name: _expected_live(sql, n),  # type: ignore[misc]
        )
        assert got == expected, name


def test_ogr2ogr_copies_a_collection_page_by_page(
    api: Server, gdal: Gdal, sql: sa.Engine, seeded: Seeded, centre_data: CityData, tmp_path: Path
) -> None:
    out = tmp_path / "spaces.gpkg"
    gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{api.url}/ogc", "brasov.public_space",
        "-oo", "PAGE_SIZE=7",
    )  # fmt: skip
    copied = pyogrio.read_dataframe(out)
    spaces = centre_data["public_space"]
    assert len(copied) == len(spaces)
    # the same outlines (coordinates to 7 decimals), whatever the page boundaries
    assert "id" in copied.columns  # GDAL keeps the feature id (the OSM uid) as a field
    mine = spaces.geometry.reindex(copied["id"])
    assert shapely.equals_exact(copied.geometry.values, mine.values, tolerance=1e-6).all()
    # readings: every row once, with its stable id (sensor@time), a null geometry kept
    readings = tmp_path / "readings.gpkg"
    gdal(
        "ogr2ogr", "-f", "GPKG", str(readings), f"OAPIF:{api.url}/ogc", "brasov.readings",
        "-oo", "PAGE_SIZE=9", "-nlt", "GEOMETRY",
    )  # fmt: skip
    got = pyogrio.read_dataframe(readings)
    with sql.connect() as conn:
        rows = conn.execute(
            sa.text(_READINGS_SQL.replace("count(*)", "r.sensor_id, r.observed_at"))
        )
        ids = {f"{s}@{t.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%fZ}" for s, t in rows}
    assert sorted(got["id"]) == sorted(ids)
    assert got.geometry.isna().sum() == 4  # t-nowhere's readings have no place


def test_paging_bbox_filters_and_errors(client: httpx.Client, centre_data: CityData) -> None:
    items = "/ogc/collections/brasov.public_space/items"
    page = client.get(items, params={"limit": 5}).json()
    n = len(centre_data["public_space"])
    assert page["numberMatched"] == n and page["numberReturned"] == 5
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = client.get(nxt).json()
    assert {f["id"] for f in second["features"]}.isdisjoint(f["id"] for f in page["features"])
    spaces = centre_data["public_space"]
    w, s, e, nn = 25.586, 45.640, 25.592, 45.645
    inside = shapely.intersects(spaces.geometry.values, shapely.box(w, s, e, nn)).sum()
    boxed = client.get(items, params={"bbox": f"{w},{s},{e},{nn}", "limit": 1000}).json()
    assert boxed["numberMatched"] == inside
    kind = str(spaces["kind"].iloc[0])
    by_kind = client.get(items, params={"kind": kind, "limit": 1000}).json()
    assert by_kind["numberMatched"] == int((spaces["kind"] == kind).sum())
    one = client.get(f"{items}/{spaces.index[0]}")
    assert one.status_code == 200 and one.json()["id"] == spaces.index[0]
    for params, named in (
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "0,0,10,10"}, "bbox"),
        ({"colour": "red"}, "colour"),
        ({"datetime": "2026-01-01T00:00:00Z"}, "datetime"),  # a stored layer has no time
    ):
        r = client.get(items, params=params)
        assert r.status_code == 400 and r.json()["description"].startswith(named), params
    assert client.get(f"{items}/way/0").status_code == 404
    assert client.get("/ogc/collections/brasov.nothing").status_code == 404


def _matched(client: httpx.Client, collection: str, **params: str) -> int:
    r = client.get(f"/ogc/collections/{collection}/items", params={"limit": "10000", **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberReturned"] == len(body["features"])
    return int(body["numberMatched"])


def _iso(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime(Z)


def test_datetime_selects_the_readings_in_an_interval(
    client: httpx.Client, sql: sa.Engine, seeded: Seeded
) -> None:
    def between(start: dt.datetime | None, end: dt.datetime | None) -> int:
        return _count(
            sql,
            _READINGS_SQL + " AND (CAST(:a AS timestamptz) IS NULL OR r.observed_at >= :a) "
            "AND (CAST(:b AS timestamptz) IS NULL OR r.observed_at <= :b)",
            a=start,
            b=end,
        )

    t = lambda minutes: T0 + dt.timedelta(minutes=minutes)  # noqa: E731
    cases = {
        f"{_iso(20)}/{_iso(45)}": (t(20), t(45)),
        f"../{_iso(30)}": (None, t(30)),
        f"{_iso(50)}/..": (t(50), None),
        f"{_iso(50)}/": (t(50), None),
        _iso(35): (t(35), t(35)),  # an instant: t-area at 35 min, t-dens at 35 min
        "2026-01-05T09:20:00+01:00/2026-01-05T08:40:00.5Z": (
            t(20),
            T0 + dt.timedelta(minutes=40, seconds=0.5),
        ),
    }
    for text, (start, end) in cases.items():
        expected = between(start, end)
        assert expected > 0, text
        assert _matched(client, "brasov.readings", datetime=text) == expected, text
    assert _matched(client, "brasov.readings", datetime=_iso(35)) == 2
    both = _matched(
        client, "brasov.readings", datetime=f"{_iso(20)}/{_iso(45)}", sensor_id="t-area"
    )
    assert both == 6  # 20, 25, …, 45 min
    got, expected = _settled(
        lambda: _matched(client, "brasov.alerts", datetime="2000-01-01T00:00:00Z/.."),
        lambda: _expected_live(sql, "alerts"),
    )
    assert got == expected
    assert _matched(client, "brasov.scenarios", datetime="../2026-01-04T11:59:59Z") == 0
    assert _matched(client, "brasov.scenarios", datetime="2026-01-04T12:00:00Z") == 1


def test_bad_datetime_is_a_400_naming_it(client: httpx.Client, seeded: Seeded) -> None:
    for text in (
        "yesterday",
        "2026-01-05",  # a date is not a date-time
        "2026-01-05T08:00:00",  # no offset
        "2026-13-05T08:00:00Z",
        "2026-01-05T25:00:00Z",
        "../..",
        f"{_iso(60)}/{_iso(0)}",  # ends before it starts
        f"{_iso(0)}/{_iso(5)}/{_iso(10)}",
    ):
        for name in ("readings", "alerts", "live_state"):
            r = client.get(f"/ogc/collections/brasov.{name}/items", params={"datetime": text})
            assert r.status_code == 400, (name, text, r.text)
            assert r.json()["description"].startswith("datetime"), (name, text)


def test_descriptions_ids_geometries_and_queryables(
    client: httpx.Client, sql: sa.Engine, seeded: Seeded, centre_data: CityData
) -> None:
    doc = client.get("/ogc/collections/brasov.readings").json()
    with sql.connect() as conn:
        lo, hi = conn.execute(
            sa.text(_READINGS_SQL.replace("count(*)", "min(observed_at), max(observed_at)"))
        ).one()
    stamp = lambda t: t.astimezone(dt.UTC).strftime(Z)  # noqa: E731
    assert doc["extent"]["temporal"]["interval"] == [[stamp(lo), stamp(hi)]]
    outline = centre_data["public_space"].geometry[seeded.spaces[0]]
    assert shapely.box(*doc["extent"]["spatial"]["bbox"][0]).contains(outline.envelope)
    # one reading by its id: on its sensor's space (no zone), the same feature as in a page
    fid = f"t-area@{_iso(10)[:-1]}.000000Z"
    one = client.get(f"/ogc/collections/brasov.readings/items/{fid}").json()
    assert one["id"] == fid and one["properties"]["present"] == 20
    assert one["properties"]["located_by"] == "space"
    assert shapely.equals_exact(shapely.geometry.shape(one["geometry"]), outline, tolerance=1e-6)
    listed = client.get("/ogc/collections/brasov.readings/items", params={"datetime": _iso(10)})
    assert fid in [f["id"] for f in listed.json()["features"]]
    assert client.get("/ogc/collections/brasov.readings/items/t-area@nonsense").status_code == 404
    # a sensor with no zone and no space: served, with a null geometry; a bbox leaves it out
    nowhere = client.get("/ogc/collections/brasov.sensors/items/t-nowhere").json()
    assert nowhere["geometry"] is None and nowhere["properties"]["located_by"] is None
    box = ",".join(str(v) for v in centre_data["public_space"].total_bounds)
    n_sensors = _matched(client, "brasov.sensors")
    assert _matched(client, "brasov.sensors", bbox=box) == n_sensors - 1
    zone = client.get("/ogc/collections/brasov.sensors/items/t-dens").json()
    assert zone["properties"]["located_by"] == "zone" and zone["geometry"]["type"] == "Polygon"
    # the scenario's edits: drawn, the baseline barrier, and one with no place
    edits = client.get("/ogc/collections/brasov.scenario_barriers/items").json()["features"]
    assert [f["id"] for f in edits] == [f"market day/{n}" for n in (1, 2, 3)]
    assert [f["properties"]["located_by"] for f in edits] == ["drawn", "baseline", None]
    base = centre_data["barrier"].geometry[seeded.barrier]
    assert shapely.equals_exact(shapely.geometry.shape(edits[1]["geometry"]), base, 1e-6)
    scenario = client.get("/ogc/collections/brasov.scenarios/items/market day").json()
    assert scenario["properties"]["n_edits"] == 3
    assert len(shapely.geometry.shape(scenario["geometry"]).geoms) == 2
    q = client.get("/ogc/collections/brasov.readings/queryables").json()
    assert {"sensor_id", "observed_at", "present", "density"} <= set(q["properties"])
    assert (
        client.get("/ogc/collections/brasov.readings/items", params={"x": "1"}).status_code == 400
    )


def test_a_reading_stored_after_start_is_served_at_once(
    client: httpx.Client, sql: sa.Engine, seeded: Seeded, centre_layers: dict[str, Any]
) -> None:
    before = _matched(client, "brasov.readings")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=2)
    r = client.post(
        "/cities/brasov/readings",
        json=[{"sensor_id": "t-area", "observed_at": now.strftime(Z), "present": 55}],
    )
    assert r.status_code == 200 and r.json()["inserted"] == 1
    assert _matched(client, "brasov.readings") == before + 1 == _expected_live(sql, "readings")
    fresh = client.get(
        "/ogc/collections/brasov.readings/items", params={"datetime": now.strftime(Z)}
    )
    assert [f["properties"]["present"] for f in fresh.json()["features"]] == [55]
    # the live state of its space follows on the next request
    a = seeded.spaces[0]
    state = client.get(f"/ogc/collections/brasov.live_state/items/{a}").json()
    area = float(centre_layers["space_metric"].at[a, "usable_area_m2"])
    assert state["properties"]["density"] == pytest.approx(55 / area)
    assert state["properties"]["last_reading_at"] == now.strftime(Z)
    assert _matched(client, "brasov.live_state", datetime=f"{now.strftime(Z)}/..") == 1


def test_each_collection_needs_its_permission(
    api: Server, client: httpx.Client, seeded: Seeded
) -> None:
    viewer = {"Authorization": f"Bearer {api.token_for('api-viewer', ['viewer@brasov'])}"}
    listed = client.get("/ogc/collections", headers=viewer).json()["collections"]
    ids = {c["id"] for c in listed}
    assert {"brasov.public_space", "brasov.scenarios", "brasov.scenario_barriers"} <= ids
    assert not ids & {"brasov.readings", "brasov.alerts", "brasov.sensors", "brasov.live_state"}
    for name, status in (("readings", 403), ("live_state", 403), ("scenarios", 200)):
        r = client.get(f"/ogc/collections/brasov.{name}/items", headers=viewer)
        assert r.status_code == status, name
    nobody = {"Authorization": ""}
    r = client.get("/ogc/collections/brasov.readings/items", headers=nobody)
    assert r.status_code == 401
    assert client.get("/ogc", headers=nobody).status_code == 200  # public
