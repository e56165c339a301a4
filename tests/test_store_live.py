"""The live tables of the PostGIS store (migration 0007, ``geo_protect.store.live``).

Against a real PostgreSQL with PostGIS (``GEO_PROTECT_TEST_PG``), in a scratch database of
this module's own, so the migration test can go down and up without disturbing others.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
import sqlalchemy as sa
from alembic import command
from sqlalchemy import URL, make_url
from sqlalchemy.engine import Engine

from geo_protect.errors import AlertStateError, NotFoundError, StoreError, ValidationError
from geo_protect.live.alerts import ALERT_COLUMNS, evaluate_alerts
from geo_protect.schema import WGS84
from geo_protect.store import PostGISStore, live, migrations
from geo_protect.store.audit import Actor
from geo_protect.store.migrations import SCHEMA
from tests.conftest import libpq_url, scratch_database

pytestmark = pytest.mark.postgis

LIVE_TABLES = ("alert", "alert_history", "alert_pending", "live_event", "reading", "sensor")
T0 = dt.datetime(2026, 5, 1, 18, 0, tzinfo=dt.UTC)
INSTALLED = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
ACTOR = Actor("tester", None, "test")
SQUARE = shapely.Polygon([(25.588, 45.642), (25.590, 45.642), (25.590, 45.643), (25.588, 45.643)])


def _op(name: str) -> Actor:
    """An operator deciding on an alert."""
    return Actor(name, None, "test")


@pytest.fixture(scope="module")
def live_url(pg_admin_url: URL) -> Iterator[str]:
    """A PostGIS database of this module's own, dropped at the end."""
    with scratch_database(pg_admin_url, f"geo_protect_live_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def store(live_url: str) -> Iterator[PostGISStore]:
    with PostGISStore(live_url, reference_version="test") as opened:
        yield opened


@pytest.fixture
def engine(store: PostGISStore) -> Engine:
    """The store's engine, with every live table emptied (and its ids restarted)."""
    names = ", ".join(f"{SCHEMA}.{t}" for t in LIVE_TABLES)
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
    return store.engine


def _sensors(ids: list[str] | None = None, **changes: list[Any]) -> gpd.GeoDataFrame:
    """Three sensors of Brașov: a line counter, an area counter with a zone, a density one."""
    data: dict[str, list[Any]] = {
        "space_uid": ["way/1", None, "way/2"],
        "kind": ["line_counter", "area_counter", "density"],
        "name": ["Gate 1", "Square camera", None],
        "area_m2": [np.nan, 1200.0, 40.0],
        "exit_width_m": [4.0, np.nan, np.nan],
        "installed_at": [INSTALLED] * 3,
        "source": ["ignored"] * 3,
    } | changes
    index = pd.Index(ids or ["gate-1", "cam-1", "dens-1"], name="sensor_id")
    return gpd.GeoDataFrame(data, geometry=[None, SQUARE, None], index=index, crs=WGS84)


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {SCHEMA}.{table}")).scalar_one())


def _reading(sensor: str, minutes: float, **values: Any) -> dict[str, Any]:
    return {"sensor_id": sensor, "observed_at": T0 + dt.timedelta(minutes=minutes), **values}


# -- migration -------------------------------------------------------------------------------


def test_migration_up_down_up(store: PostGISStore) -> None:
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = :s"
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"

    def query(statement: str) -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(statement), {"s": SCHEMA})]

    assert migrations.head_revision() >= "0007"  # the live tables
    assert set(LIVE_TABLES) <= {t for (t,) in query(tables)}
    with store.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0006")
        assert migrations.current_revision(conn) == "0006"
    left = {t for (t,) in query(tables)}
    assert not set(LIVE_TABLES) & left
    assert {"city", "scenario", "street"} <= left  # 0006 and before untouched
    functions = "SELECT proname FROM pg_proc WHERE proname = 'alert_history_append_only'"
    assert query(functions) == []
    with store.engine.begin() as conn:
        migrations.upgrade(conn)
        assert migrations.current_revision(conn) == migrations.head_revision()
    assert set(LIVE_TABLES) <= {t for (t,) in query(tables)}
    defs = dict(query(indexes))
    assert "USING brin (observed_at)" in defs["reading_observed_at_brin"]
    assert defs["alert_unresolved_key"].startswith("CREATE UNIQUE INDEX")
    assert "WHERE (state <> 'resolved'::text)" in defs["alert_unresolved_key"]
    assert "(city, event_id)" in defs["live_event_city_idx"]
    assert "(city)" in defs["sensor_city_idx"]


def test_the_zone_column_is_no_layer(engine: Engine, store: PostGISStore) -> None:
    # layer writes find their tables by a `geom` column: the sensors must not be one
    from tests.store_cases import REPORT, source_layers

    live.register_sensors(engine, "brasov", _sensors(), source="test", actor=ACTOR)
    store.replace_city("brasov", {"street": source_layers()["street"]}, REPORT)
    assert _count(engine, "sensor") == 3


# -- sensors ---------------------------------------------------------------------------------


def test_register_and_read_sensors(engine: Engine) -> None:
    assert (
        live.register_sensors(engine, "brasov", _sensors(), source="sensors.csv", actor=ACTOR) == 3
    )
    got = live.city_sensors(engine, "brasov")
    assert list(got.index) == ["cam-1", "dens-1", "gate-1"]  # sorted by id
    assert got.index.name == "sensor_id"
    assert list(got.columns) == [*live.SENSOR_COLUMNS, "geometry"]
    assert got.crs == WGS84
    assert got.loc["cam-1", "geometry"].equals(SQUARE)
    assert got.loc["gate-1", "geometry"] is None
    assert got.loc["gate-1", "exit_width_m"] == 4.0
    assert math.isnan(got.loc["gate-1", "area_m2"])
    assert pd.isna(got.loc["cam-1", "space_uid"])
    assert set(got["source"]) == {"sensors.csv"}  # the argument, not the frame's column
    assert str(got["installed_at"].dtype) == "datetime64[ns, UTC]"
    assert (got["installed_at"] == pd.Timestamp(INSTALLED)).all()
    assert str(got["kind"].dtype) == "string"

    renamed = _sensors(name=["Gate one", "Square camera", "Dens"])
    assert (
        live.register_sensors(engine, "brasov", renamed, source="api", actor=ACTOR) == 3
    )  # upsert
    again = live.city_sensors(engine, "brasov")
    assert _count(engine, "sensor") == 3
    assert again.loc["gate-1", "name"] == "Gate one"
    assert set(again["source"]) == {"api"}
    assert live.city_sensors(engine, "vilnius").empty


def test_a_sensor_id_of_another_city_is_refused_whole(engine: Engine) -> None:
    live.register_sensors(engine, "brasov", _sensors(), source="test", actor=ACTOR)
    other = _sensors(["new-1", "gate-1", "new-2"])
    with pytest.raises(ValidationError, match=r"'gate-1' is a sensor of brasov"):
        live.register_sensors(engine, "vilnius", other, source="test", actor=ACTOR)
    assert live.city_sensors(engine, "vilnius").empty  # new-1, new-2 were not kept either
    assert live.city_sensors(engine, "brasov").loc["gate-1", "kind"] == "line_counter"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": ["line_counter", "camera", "density"]}, "sensor_kind_check"),
        ({"area_m2": [np.nan, -5.0, 40.0]}, "sensor_area_m2_check"),
        ({"installed_at": [INSTALLED, None, INSTALLED]}, "'installed_at' is required"),
    ],
)
def test_bad_sensors_are_refused(engine: Engine, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        live.register_sensors(engine, "brasov", _sensors(**changes), source="test", actor=ACTOR)
    assert _count(engine, "sensor") == 0


def test_a_zone_must_be_a_polygon(engine: Engine) -> None:
    frame = _sensors().set_geometry([None, shapely.Point(25.59, 45.64), None], crs=WGS84)
    with pytest.raises(ValidationError, match=r"zone of 'cam-1' is not a Polygon"):
        live.register_sensors(engine, "brasov", frame, source="test", actor=ACTOR)


# -- readings --------------------------------------------------------------------------------


def _batch() -> list[dict[str, Any]]:
    """Six readings: three minutes of the line counter and of the area counter."""
    return [
        _reading("gate-1", m, count_in=10 + m, count_out=m, interval_s=60.0) for m in (0, 1, 2)
    ] + [_reading("cam-1", m, present=100 * (m + 1)) for m in (0, 1, 2)]


def test_duplicate_readings_are_idempotent(engine: Engine) -> None:
    live.register_sensors(engine, "brasov", _sensors(), source="test", actor=ACTOR)
    with engine.begin() as conn:
        assert live.insert_readings(conn, _batch()) == (6, 0)
    with engine.begin() as conn:
        assert live.insert_readings(conn, _batch()) == (0, 6)
    mixed = [*_batch()[:2], _reading("gate-1", 3, count_in=1), _reading("gate-1", 3, count_in=2)]
    with engine.begin() as conn:
        assert live.insert_readings(conn, mixed) == (1, 3)  # a repeat within the batch too
        assert live.insert_readings(conn, []) == (0, 0)
    assert _count(engine, "reading") == 7
    latest = live.latest_readings(engine, "brasov").set_index("sensor_id")
    assert latest.loc["gate-1", "count_in"] == 1  # the first of the two, kept as it was


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"present": -1}, "reading_present_check"),
        ({"count_in": -3}, "reading_count_in_check"),
        ({"density": -0.5}, "reading_density_check"),
        ({"interval_s": 0.0}, "reading_interval_s_check"),
        ({"present": 2**31}, "out of range"),
        ({"sensor_id": "nobody"}, "reading_sensor_fkey"),
    ],
)
def test_one_bad_reading_stores_nothing_of_its_batch(
    engine: Engine, bad: dict[str, Any], message: str
) -> None:
    live.register_sensors(engine, "brasov", _sensors(), source="test", actor=ACTOR)
    batch = _batch()
    batch[4] = {**batch[4], **bad}
    with pytest.raises(ValidationError, match=message), engine.begin() as conn:
        live.insert_readings(conn, batch)
    assert _count(engine, "reading") == 0


def test_readings_of_the_wrong_shape(engine: Engine) -> None:
    with engine.begin() as conn:
        naive = [_reading("gate-1", 0) | {"observed_at": dt.datetime(2026, 5, 1, 18)}]
        with pytest.raises(ValidationError, match=r"item 0 \(gate-1\) observed_at"):
            live.insert_readings(conn, naive)
        with pytest.raises(ValidationError, match=r"wrong type"):
            live.insert_readings(conn, [_reading("gate-1", 0, count_in=1.5)])
        with pytest.raises(ValidationError, match=r"item 1 has no sensor_id"):
            live.insert_readings(conn, [_reading("gate-1", 0), {"observed_at": T0}])


def test_recent_and_latest_readings(engine: Engine) -> None:
    live.register_sensors(engine, "brasov", _sensors(), source="test", actor=ACTOR)
    live.register_sensors(
        engine, "vilnius", _sensors(["v-1", "v-2", "v-3"]), source="test", actor=ACTOR
    )
    with engine.begin() as conn:
        live.insert_readings(conn, [*_batch(), _reading("dens-1", 1, density=1.25)])
        live.insert_readings(conn, [_reading("v-1", 2, count_in=5)])
    recent = live.recent_readings(engine, "brasov", T0 + dt.timedelta(minutes=1))
    assert list(recent.columns) == list(live.READING_COLUMNS)
    # minutes 1 and 2 of gate-1 and cam-1, minute 1 of dens-1; not vilnius' reading
    assert list(zip(recent["sensor_id"], recent["observed_at"].dt.minute, strict=True)) == [
        ("cam-1", 1),
        ("cam-1", 2),
        ("dens-1", 1),
        ("gate-1", 1),
        ("gate-1", 2),
    ]
    assert str(recent["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert str(recent["present"].dtype) == "Int64"
    assert recent["present"].tolist()[:2] == [200, 300]
    assert pd.isna(recent["present"].iloc[2])
    assert recent["density"].iloc[2] == 1.25
    only = live.recent_readings(engine, "brasov", T0, sensors=["gate-1", "v-1"])
    assert only["sensor_id"].tolist() == ["gate-1"] * 3  # v-1 is not a sensor of brasov
    assert live.recent_readings(engine, "brasov", T0, sensors=[]).empty
    # at most the latest reading of each sensor: gate-1 and cam-1 at minute 2, dens-1 at 1
    last = live.recent_readings(engine, "brasov", T0, per_sensor=1)
    assert list(zip(last["sensor_id"], last["observed_at"].dt.minute, strict=True)) == [
        ("cam-1", 2),
        ("dens-1", 1),
        ("gate-1", 2),
    ]
    two = live.recent_readings(engine, "brasov", T0, sensors=["gate-1"], per_sensor=2)
    assert two["observed_at"].dt.minute.tolist() == [1, 2]  # the latest two, in time order
    with pytest.raises(ValidationError, match="since"):
        live.recent_readings(engine, "brasov", dt.datetime(2026, 5, 1))

    latest = live.latest_readings(engine, "brasov")
    assert list(zip(latest["sensor_id"], latest["observed_at"].dt.minute, strict=True)) == [
        ("cam-1", 2),
        ("dens-1", 1),
        ("gate-1", 2),
    ]
    assert latest["count_in"].tolist()[2] == 12
    assert live.latest_readings(engine, "vilnius")["sensor_id"].tolist() == ["v-1"]


def test_insert_throughput_of_5000_row_batches(engine: Engine) -> None:
    ids = [f"s-{i:03d}" for i in range(50)]
    n = len(ids)
    frame = gpd.GeoDataFrame(
        {"kind": ["area_counter"] * n, "installed_at": [INSTALLED] * n, "area_m2": [500.0] * n},
        geometry=[None] * n,
        index=pd.Index(ids, name="sensor_id"),
        crs=WGS84,
    )
    live.register_sensors(engine, "brasov", frame, source="bench", actor=ACTOR)
    rates = []
    for batch_no in range(4):
        rows = [
            _reading(s, batch_no * 100 + m, present=m, count_in=m, count_out=0, interval_s=60.0)
            for m in range(100)
            for s in ids
        ]
        start = time.perf_counter()
        with engine.begin() as conn:
            assert live.insert_readings(conn, rows) == (5000, 0)
        rates.append(len(rows) / (time.perf_counter() - start))
    with engine.begin() as conn:  # the same 5,000 again: all duplicates
        start = time.perf_counter()
        assert live.insert_readings(conn, rows) == (0, 5000)
        rates.append(len(rows) / (time.perf_counter() - start))
    print(
        f"insert_readings: 5,000-row batches at {', '.join(f'{r:,.0f}' for r in rates)} rows/s "
        "(last: all duplicates)"
    )
    assert _count(engine, "reading") == 20_000
    assert min(rates) > 2_000  # the floor for the whole service


# -- alerts ----------------------------------------------------------------------------------


def _alerts(*rows: dict[str, Any]) -> pd.DataFrame:
    """Alert rows laid out as ``evaluate_alerts`` returns them."""
    base = {c: None for c in ALERT_COLUMNS} | {"condition": "active", "evaluated_at": T0}
    frame = pd.DataFrame([base | r for r in rows], columns=list(ALERT_COLUMNS))
    for col in ("pending_since", "evaluated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


LOS = {
    "alert_key": "los|way/1",
    "kind": "los",
    "space_uid": "way/1",
    "severity": "Severe",
    "value": 3.8,
    "threshold": 3.5,
    "unit": "p/m²",
    "message": "Gate: 3.80 p/m²",
    "change": "opened",
}
STALE = {
    "alert_key": "stale|cam-1",
    "kind": "stale",
    "space_uid": "way/1",
    "sensor_id": "cam-1",
    "severity": "Minor",
    "value": math.inf,
    "change": "opened",
}


def _history(engine: Engine, alert_id: int) -> list[tuple[str, str]]:
    found = live.get_alert(engine, alert_id)
    assert found is not None
    return [(h["actor"], h["change"]) for h in found["history"]]


def test_one_unresolved_alert_per_key(engine: Engine) -> None:
    statement = sa.text(
        f"INSERT INTO {SCHEMA}.alert (city, alert_key, kind, severity, condition, state) "
        "VALUES ('brasov', 'los|way/1', 'los', 'Minor', 'active', :state) RETURNING alert_id"
    )
    with engine.begin() as conn:
        first = conn.execute(statement, {"state": "open"}).scalar_one()
    with pytest.raises(sa.exc.IntegrityError, match="alert_unresolved_key"), engine.begin() as conn:
        conn.execute(statement, {"state": "acknowledged"})
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {SCHEMA}.alert SET state = 'resolved' WHERE alert_id = :i"),
            {"i": first},
        )
        conn.execute(statement, {"state": "open"})  # the key opens again
        conn.execute(statement, {"state": "resolved"})  # resolved ones do not count
    with pytest.raises(sa.exc.IntegrityError, match="alert_unresolved_key"), engine.begin() as conn:
        conn.execute(statement, {"state": "open"})
    assert _count(engine, "alert") == 3


def test_alert_changes_and_the_state_machine(engine: Engine) -> None:
    with engine.begin() as conn:
        opened = live.apply_alert_changes(conn, "brasov", _alerts(LOS, STALE), _alerts())
    assert [(a["alert_key"], a["state"], a["severity"]) for a in opened] == [
        ("los|way/1", "open", "Severe"),
        ("stale|cam-1", "open", "Minor"),
    ]
    los, stale = (a["alert_id"] for a in opened)
    assert opened[0]["opened_at"] == T0 and opened[0]["unit"] == "p/m²"
    assert opened[1]["value"] == math.inf
    up = LOS | {"severity": "Extreme", "value": 5.2, "change": "severity_up"}
    later = T0 + dt.timedelta(seconds=30)
    with engine.begin() as conn:
        changed = live.apply_alert_changes(
            conn, "brasov", _alerts(), _alerts(up | {"evaluated_at": later})
        )
    assert [(a["alert_id"], a["severity"], a["value"]) for a in changed] == [(los, "Extreme", 5.2)]
    assert changed[0]["updated_at"] == later and changed[0]["opened_at"] == T0

    acked = live.acknowledge_alert(engine, los, actor=_op("ana"), note="steward sent")
    assert (acked["state"], acked["acknowledged_by"], acked["acknowledged_note"]) == (
        "acknowledged",
        "ana",
        "steward sent",
    )
    assert acked["acknowledged_at"] is not None
    with pytest.raises(
        AlertStateError, match=rf"alert {los} \(los\|way/1, brasov\) is acknowledged \(by ana\)"
    ):
        live.acknowledge_alert(engine, los, actor=_op("bo"), note=None)
    assert live.get_alert(engine, los)["acknowledged_by"] == "ana"  # not overwritten
    # the system keeps updating an acknowledged alert, and leaves its acknowledgement alone
    with engine.begin() as conn:
        live.apply_alert_changes(conn, "brasov", _alerts(), _alerts(up | {"change": "peak"}))
    assert live.get_alert(engine, los)["state"] == "acknowledged"
    done = live.resolve_alert(engine, los, actor=_op("ana"), note="crowd dispersed")
    assert (done["state"], done["resolved_by"], done["resolved_note"]) == (
        "resolved",
        "ana",
        "crowd dispersed",
    )
    with pytest.raises(AlertStateError, match=r"is resolved \(by ana\): it cannot be resolved"):
        live.resolve_alert(engine, los, actor=_op("bo"), note=None)
    with pytest.raises(AlertStateError, match=r"is resolved .*cannot be acknowledged"):
        live.acknowledge_alert(engine, los, actor=_op("bo"), note=None)
    assert (
        live.resolve_alert(engine, stale, actor=_op("bo"), note=None)["state"] == "resolved"
    )  # open →
    assert _history(engine, los) == [
        ("system", "opened"),
        ("system", "severity_up"),
        ("ana", "acknowledged"),
        ("system", "peak"),
        ("ana", "resolved"),
    ]
    assert _history(engine, stale) == [("system", "opened"), ("bo", "resolved")]
    detail = live.get_alert(engine, los)["history"][2]["detail"]
    assert detail["previous"] == "open" and detail["note"] == "steward sent"
    # every operator decision is an event of the city
    events = live.events_since(engine, "brasov", 0)
    assert [(e["kind"], e["payload"]["alert_id"], e["payload"]["state"]) for e in events] == [
        ("alert", los, "acknowledged"),
        ("alert", los, "resolved"),
        ("alert", stale, "resolved"),
    ]


def test_a_resolved_key_opens_again_as_a_new_alert(engine: Engine) -> None:
    with engine.begin() as conn:
        los, stale = (
            a["alert_id"]
            for a in live.apply_alert_changes(conn, "brasov", _alerts(LOS, STALE), _alerts())
        )
    with pytest.raises(ValidationError, match="user"):
        live.resolve_alert(engine, los, actor=_op(" "), note=None)
    live.resolve_alert(engine, los, actor=_op("ana"), note=None)
    live.resolve_alert(engine, stale, actor=_op("ana"), note=None)
    with pytest.raises(NotFoundError, match="alert 999 does not exist"):
        live.acknowledge_alert(engine, 999, actor=_op("ana"), note=None)
    assert live.get_alert(engine, 999) is None
    # a change for a resolved key is skipped; the key opens again as a new alert
    with engine.begin() as conn:
        assert live.apply_alert_changes(conn, "brasov", _alerts(), _alerts(STALE)) == []
        again = live.apply_alert_changes(conn, "brasov", _alerts(LOS), _alerts())
    assert again[0]["alert_id"] not in (los, stale)
    assert [a["alert_id"] for a in live.city_alerts(engine, "brasov")] == [again[0]["alert_id"]]
    resolved = live.city_alerts(engine, "brasov", states=("resolved",))
    assert sorted(a["alert_id"] for a in resolved) == [los, stale]
    with pytest.raises(ValidationError, match="'closed'"):
        live.city_alerts(engine, "brasov", states=("closed",))


def test_opening_a_key_that_is_open_updates_it(engine: Engine) -> None:
    with engine.begin() as conn:
        first = live.apply_alert_changes(conn, "brasov", _alerts(LOS), _alerts())
        second = live.apply_alert_changes(
            conn, "brasov", _alerts(LOS | {"severity": "Extreme", "change": "opened"}), _alerts()
        )
    assert second[0]["alert_id"] == first[0]["alert_id"]
    assert second[0]["severity"] == "Extreme"
    assert _count(engine, "alert") == 1
    assert _history(engine, first[0]["alert_id"]) == [("system", "opened"), ("system", "opened")]


def test_history_is_append_only(engine: Engine) -> None:
    with engine.begin() as conn:
        live.apply_alert_changes(conn, "brasov", _alerts(LOS), _alerts())
    for statement in ("UPDATE {}.alert_history SET actor = 'x'", "DELETE FROM {}.alert_history"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement.format(SCHEMA)))
    assert _count(engine, "alert_history") == 1


def test_pending_alerts_and_hold_timers_are_kept(engine: Engine) -> None:
    since = T0 + dt.timedelta(seconds=20)
    pending = {
        "alert_key": "rapid_rise|way/2",
        "kind": "rapid_rise",
        "space_uid": "way/2",
        "severity": "Moderate",
        "condition": "pending",
        "value": 0.4,
        "pending_since": since,
    }
    with engine.begin() as conn:  # pending only: no operator sees it
        live.save_tracked(conn, "brasov", _alerts(pending))
        only = live.tracked_alerts(conn, "brasov")
    assert list(zip(only["alert_key"], only["condition"], only["value"], strict=True)) == [
        ("rapid_rise|way/2", "pending", 0.4)
    ]
    assert live.unresolved_alerts(engine, "brasov").empty
    assert live.city_alerts(engine, "brasov") == []
    with engine.begin() as conn:
        live.apply_alert_changes(conn, "brasov", _alerts(LOS), _alerts())
    with engine.begin() as conn:
        live.save_tracked(conn, "brasov", _alerts(LOS | {"pending_since": since}, pending))
        tracked = live.tracked_alerts(conn, "brasov")
    assert tracked["alert_key"].tolist() == ["los|way/1", "rapid_rise|way/2"]
    assert tracked["condition"].tolist() == ["active", "pending"]
    assert (tracked["pending_since"] == pd.Timestamp(since)).all()
    assert tracked["state"].iloc[0] == "open" and pd.isna(tracked["alert_id"].iloc[1])
    assert live.unresolved_alerts(engine, "brasov")["alert_key"].tolist() == ["los|way/1"]
    # the pending alert opens: it leaves alert_pending
    with engine.begin() as conn:
        opened = pending | {"condition": "active", "pending_since": None, "change": "opened"}
        live.apply_alert_changes(conn, "brasov", _alerts(opened), _alerts())
        live.save_tracked(conn, "brasov", _alerts(LOS, opened))
    assert _count(engine, "alert_pending") == 0
    tracked = live.tracked_alerts(engine, "brasov")
    assert tracked["condition"].tolist() == ["active", "active"]
    assert tracked["pending_since"].isna().all()  # the timer was reset


def test_evaluated_alerts_round_trip_through_the_store(engine: Engine) -> None:
    state = pd.DataFrame(
        {"density": [5.4, 0.2], "area_type": ["standing", "standing"], "name": ["Sfatului", "B"]},
        index=["way/1", "way/2"],
    )
    now = pd.Timestamp(T0)
    for step in range(3):  # the same crowd, batch after batch: one alert, never a second
        with engine.begin() as conn:
            active = live.tracked_alerts(conn, "brasov")
            changes = evaluate_alerts(state, active, now=now + pd.Timedelta(seconds=10 * step))
            live.apply_alert_changes(conn, "brasov", changes.opened, changes.changed)
            live.save_tracked(conn, "brasov", changes.tracked)
        stored = live.tracked_alerts(engine, "brasov")
        assert stored["alert_key"].tolist() == changes.tracked["alert_key"].tolist()
        assert stored["condition"].tolist() == changes.tracked["condition"].tolist()
    unresolved = live.unresolved_alerts(engine, "brasov")
    assert unresolved["alert_key"].tolist() == ["los|way/1"]
    assert _count(engine, "alert") == 1


# -- events ----------------------------------------------------------------------------------


def test_notify_reaches_listeners_only_after_commit(engine: Engine, live_url: str) -> None:
    with psycopg.connect(libpq_url(make_url(live_url)), autocommit=True) as listener:
        listener.execute(f"LISTEN {live.LIVE_CHANNEL}")
        with engine.connect() as conn:
            trans = conn.begin()
            event_id = live.append_event(conn, "brasov", "state", {"spaces": []})
            assert list(listener.notifies(timeout=0.5)) == []  # not yet committed
            trans.commit()
            heard = list(listener.notifies(timeout=5, stop_after=1))
            assert [(n.channel, n.payload) for n in heard] == [
                ("geo_protect_live", f"brasov:{event_id}")
            ]
            trans = conn.begin()
            dropped = live.append_event(conn, "brasov", "state", {"spaces": [1]})
            trans.rollback()
        assert list(listener.notifies(timeout=1)) == []  # a rolled back event: no word
    assert [e["event_id"] for e in live.events_since(engine, "brasov", 0)] == [event_id]
    assert dropped > event_id


def test_events_since_in_order_and_resume(engine: Engine) -> None:
    ids: dict[str, list[int]] = {"brasov": [], "vilnius": []}
    with engine.begin() as conn:
        for i, city in enumerate(["brasov", "vilnius", "brasov", "brasov", "vilnius", "brasov"]):
            payload = {"i": i, "at": T0, "nan": float("nan"), "n": np.int64(3)}
            ids[city].append(live.append_event(conn, city, "state" if i % 2 else "alert", payload))
    got = live.events_since(engine, "brasov", 0)
    assert [e["event_id"] for e in got] == ids["brasov"] == sorted(ids["brasov"])
    assert [e["payload"]["i"] for e in got] == [0, 2, 3, 5]
    assert [e["kind"] for e in got] == ["alert", "alert", "state", "state"]
    assert got[0]["payload"] == {"i": 0, "at": "2026-05-01T18:00:00+00:00", "nan": None, "n": 3}
    assert got[0]["at"].tzinfo == dt.UTC
    resumed = live.events_since(engine, "brasov", ids["brasov"][1])
    assert [e["payload"]["i"] for e in resumed] == [3, 5]
    assert [e["payload"]["i"] for e in live.events_since(engine, "brasov", 0, limit=2)] == [0, 2]
    assert live.events_since(engine, "brasov", ids["brasov"][-1]) == []
    assert live.last_event_id(engine, "brasov") == ids["brasov"][-1]
    assert live.last_event_id(engine, "larissa") == 0
    assert [e["payload"]["i"] for e in live.events_since(engine, "vilnius", 0)] == [1, 4]
    with pytest.raises(StoreError, match="slug"), engine.begin() as conn:
        live.append_event(conn, "Bad:City", "state", {})
