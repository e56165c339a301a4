"""The audit trail (migration 0008, ``geo_protect.store.audit``, ``geo-protect audit``).

Against a real PostgreSQL with PostGIS (``GEO_PROTECT_TEST_PG``), in a scratch database of
this module's own. Tampering is done the way an intruder with the superuser's password
would: the append-only trigger disabled, the row changed or deleted, the trigger enabled.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy import URL
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from geo_protect.cli import app
from geo_protect.errors import StoreError, ValidationError
from geo_protect.scenario.model import BarrierEdit, Scenario
from geo_protect.schema import LAYERS, WGS84
from geo_protect.store import PostGISStore, live
from geo_protect.store import audit as audit_store
from geo_protect.store.audit import GENESIS, Actor, read_audit, record, verify_chain
from geo_protect.store.migrations import SCHEMA
from tests.conftest import scratch_database
from tests.store_cases import REPORT, source_layers

pytestmark = pytest.mark.postgis

ANA = Actor("ana", "10.0.0.7", "service")
CLI = Actor("ops", None, "cli")
#: Tables a test starts without rows of (TRUNCATE fires no row trigger).
TABLES = ("audit", "alert_history", "alert", "live_event", "reading", "sensor", "scenario")
INSTALLED = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def audit_url(pg_admin_url: URL) -> Iterator[str]:
    """A PostGIS database of this module's own, dropped at the end."""
    with scratch_database(pg_admin_url, f"geo_protect_audit_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def store(audit_url: str) -> Iterator[PostGISStore]:
    with PostGISStore(audit_url, reference_version="test") as opened:
        opened.replace_city("brasov", source_layers(), REPORT)
        yield opened


@pytest.fixture
def engine(store: PostGISStore) -> Engine:
    """The store's engine with an empty audit trail and no alerts, sensors or scenarios."""
    names = ", ".join(f"{SCHEMA}.{t}" for t in TABLES)
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
    return store.engine


def _write(engine: Engine, n: int, *, actor: Actor = CLI) -> list[audit_store.AuditRow]:
    rows = []
    for i in range(n):
        with engine.begin() as conn:
            rows.append(record(conn, actor, "test.write", f"thing:{i}", {"i": i}, {"i": i + 1}))
    return rows


def _tamper(engine: Engine, statement: str, **params: Any) -> None:
    """Run ``statement`` on the audit table with its append-only trigger disabled."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {SCHEMA}.audit DISABLE TRIGGER audit_append_only"))
        conn.execute(sa.text(statement), params)
        conn.execute(sa.text(f"ALTER TABLE {SCHEMA}.audit ENABLE TRIGGER audit_append_only"))


def _open_alert(engine: Engine, key: str = "los|way/1") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    f"INSERT INTO {SCHEMA}.alert (city, alert_key, kind, severity) "
                    "VALUES ('brasov', :k, 'los', 'warning') RETURNING alert_id"
                ),
                {"k": key},
            ).scalar_one()
        )


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {SCHEMA}.{table}")).scalar_one())


def _sensors(names: list[str | None]) -> gpd.GeoDataFrame:
    index = pd.Index([f"gate-{i}" for i in range(len(names))], name="sensor_id")
    data = {"kind": "line_counter", "name": names, "exit_width_m": 4.0}
    frame = pd.DataFrame(data | {"installed_at": INSTALLED}, index=index)
    return gpd.GeoDataFrame(frame, geometry=[None] * len(names), crs=WGS84)


# -- the chain ----------------------------------------------------------------------------


def test_rows_chain_from_genesis_and_read_back_as_written(engine: Engine) -> None:
    written = _write(engine, 3)
    assert [r.id for r in written] == [1, 2, 3]
    assert written[0].prev_hash == GENESIS
    assert [r.prev_hash for r in written[1:]] == [r.hash for r in written[:-1]]
    assert read_audit(engine) == written  # time to the microsecond, JSON as stored
    check = verify_chain(engine)
    assert (check.ok, check.rows, check.head_id, check.head_hash) == (True, 3, 3, written[-1].hash)
    assert verify_chain(engine, batch=1) == check  # batches do not change the walk


def test_json_is_hashed_as_the_database_stores_it(engine: Engine) -> None:
    # 1e22 comes back from jsonb as an integer, a time as text, NaN as null: the hash
    # covers the stored form, so the chain still verifies
    odd = {"big": 1e22, "tiny": 1e-7, "at": INSTALLED, "nan": math.nan, "n": np.int64(3)}
    with engine.begin() as conn:
        row = record(conn, CLI, "test.write", "thing:odd", odd, None)
    assert row.before == {
        "big": 10**22,
        "tiny": 1e-7,
        "at": "2026-04-01T00:00:00+00:00",
        "nan": None,
        "n": 3,
    }
    assert row.after is None and verify_chain(engine).ok


def test_update_delete_are_refused_even_to_the_superuser(engine: Engine) -> None:
    (row,) = _write(engine, 1)
    for statement in (
        f"UPDATE {SCHEMA}.audit SET actor = 'mallory'",
        f"DELETE FROM {SCHEMA}.audit",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="audit is append-only"), engine.begin() as c:
            c.execute(sa.text(statement))
    assert read_audit(engine) == [row]


def test_verify_names_an_altered_row(engine: Engine) -> None:
    rows = _write(engine, 4)
    _tamper(engine, f"UPDATE {SCHEMA}.audit SET actor = 'mallory' WHERE id = 2")
    check = verify_chain(engine)
    assert (check.ok, check.first_bad, check.rows, check.head_id) == (False, 2, 1, 1)
    assert "altered" in str(check.reason)
    # the intruder recomputes the hash of the row: the next row no longer links to it
    forged = {**rows[1].__dict__, "actor": "mallory"}
    new_hash = audit_store.row_hash(rows[1].prev_hash, forged)
    _tamper(engine, f"UPDATE {SCHEMA}.audit SET hash = :h WHERE id = 2", h=new_hash)
    check = verify_chain(engine)
    assert (check.ok, check.first_bad) == (False, 3)
    assert "prev_hash does not match the hash of row 2" in str(check.reason)


def test_verify_names_the_row_after_a_deleted_one(engine: Engine) -> None:
    _write(engine, 4)
    _tamper(engine, f"DELETE FROM {SCHEMA}.audit WHERE id = 2")
    check = verify_chain(engine)
    assert (check.ok, check.first_bad, check.rows) == (False, 3, 1)
    assert check.reason == "row 2 removed (row 3 follows row 1)"
    _tamper(engine, f"DELETE FROM {SCHEMA}.audit WHERE id = 1")
    assert verify_chain(engine).first_bad == 3  # rows 1-2 gone: still row 3
    assert verify_chain(engine).reason == "rows 1-2 removed (row 3 follows row 0)"


def test_concurrent_writers_form_one_chain(engine: Engine) -> None:
    per_thread, errors = 30, []

    def writer(name: str) -> None:
        try:
            for i in range(per_thread):
                with engine.begin() as conn:
                    record(conn, Actor(name, None, "test"), "test.write", f"t:{i}", None, {"i": i})
                    conn.execute(sa.text("SELECT pg_sleep(0.001)"))  # the change goes on
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2", "w3")]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert errors == []
    check = verify_chain(engine)
    assert (check.ok, check.rows) == (True, 3 * per_thread)
    rows = read_audit(engine)
    assert {r.actor for r in rows} == {"w1", "w2", "w3"}
    assert len({r.actor for r in rows[:per_thread]}) > 1  # they did interleave
    print(f"\n{3 * per_thread} audited transactions by 3 threads in {elapsed:.2f} s")


# -- the change paths ---------------------------------------------------------------------


def test_a_refused_audit_row_rolls_the_acknowledgement_back(engine: Engine) -> None:
    alert_id = _open_alert(engine)
    bad = Actor("ana", None, "Not A Surface!")  # the table's check refuses this `via`
    with pytest.raises(StoreError, match=r"audit row for alert\.acknowledge alert:\d+ refused"):
        live.acknowledge_alert(engine, alert_id, actor=bad, note="stewards sent")
    found = live.get_alert(engine, alert_id)
    assert found is not None and found["state"] == "open" and found["acknowledged_by"] is None
    assert found["history"] == [] and _count(engine, "live_event") == 0
    assert _count(engine, "audit") == 0

    live.acknowledge_alert(engine, alert_id, actor=ANA, note="stewards sent")
    live.resolve_alert(engine, alert_id, actor=Actor("bo", "10.0.0.8", "service"), note=None)
    ack, done = read_audit(engine, action="alert")
    assert (ack.action, ack.target, ack.city, ack.actor, ack.address, ack.via) == (
        *("alert.acknowledge", f"alert:{alert_id}", "brasov", "ana", "10.0.0.7", "service"),
    )
    assert ack.before["state"] == "open" and ack.before["acknowledged_by"] is None
    assert (
        ack.after["acknowledged_by"] == "ana" and ack.after["acknowledged_note"] == "stewards sent"
    )
    assert (done.action, done.before["state"], done.after["state"]) == (
        *("alert.resolve", "acknowledged", "resolved"),
    )
    assert done.after["resolved_by"] == "bo" and verify_chain(engine).ok


def test_no_insert_privilege_on_the_audit_means_no_sensor_registration(
    engine: Engine, audit_url: str
) -> None:
    role = f"geo_protect_no_audit_{os.getpid()}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN BYPASSRLS"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}"))
        conn.execute(
            sa.text(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {SCHEMA} TO {role}")
        )
        conn.execute(sa.text(f"REVOKE INSERT ON {SCHEMA}.audit FROM {role}"))
    limited = sa.create_engine(audit_url)
    sa.event.listen(limited, "connect", lambda dbapi, _: dbapi.execute(f"SET ROLE {role}"))
    try:
        with pytest.raises(StoreError, match="permission denied for table audit"):
            live.register_sensors(limited, "brasov", _sensors(["Gate"]), source="t", actor=CLI)
        assert _count(engine, "sensor") == 0 and _count(engine, "audit") == 0
    finally:
        limited.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
    # the same call with the privilege: the sensor and its row
    assert live.register_sensors(engine, "brasov", _sensors(["Gate"]), source="t", actor=CLI) == 1
    assert _count(engine, "sensor") == 1 and _count(engine, "audit") == 1


def test_sensor_registrations_record_what_changed(engine: Engine) -> None:
    live.register_sensors(engine, "brasov", _sensors(["North", "South"]), source="a", actor=CLI)
    live.register_sensors(engine, "brasov", _sensors(["North", "Renamed"]), source="a", actor=ANA)
    first, second = read_audit(engine, action="sensor.register")
    assert first.before == {} and set(first.after) == {"gate-0", "gate-1"}
    assert first.after["gate-0"]["installed_at"] == "2026-04-01T00:00:00+00:00"
    assert (second.actor, second.target) == ("ana", "sensors:brasov")
    assert second.before == {"gate-1": {**first.after["gate-1"]}}  # only the renamed one
    assert second.after["gate-1"]["name"] == "Renamed" and set(second.after) == {"gate-1"}


def _scenario(note: str) -> Scenario:
    edit = BarrierEdit(
        kind="bollard_row",
        geometry=shapely.LineString([(25.58851, 45.64231), (25.58862, 45.64229)]),
        spacing_m=1.3,
        rating="V/7200[N2A]/48/90:0.0",
        note=note,
    )
    created = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
    return Scenario(name="rows", city="brasov", author="planner", created=created, edits=[edit])


def test_scenario_saves_record_before_and_after(engine: Engine, store: PostGISStore) -> None:
    store.save_scenario("brasov", _scenario("first"), actor=ANA)
    store.save_scenario("brasov", _scenario("second"), actor=CLI)
    first, second = read_audit(engine, action="scenario")
    assert (first.action, first.target, first.before) == (
        "scenario.save",
        "scenario:brasov/rows",
        None,
    )
    assert first.after["edits"][0]["note"] == "first"
    assert second.before == first.after and second.after["edits"][0]["note"] == "second"
    with pytest.raises(StoreError, match="refused"):
        store.save_scenario("brasov", _scenario("third"), actor=Actor(" ", None, "cli"))
    assert "second" in store.read_scenario("brasov", "rows").document  # rolled back


def _assessment(risks: list[float]) -> gpd.GeoDataFrame:
    spec = LAYERS["assessment"]
    n = len(risks)
    fill = {"string": "x", "Int64": 3, "float64": 50.0, "json": "[]", "boolean": False}
    data: dict[str, Any] = {c: [fill[t]] * n for c, t in spec.columns.items()}
    data |= {"space_uid": [f"way/{i}" for i in range(n)], "risk_100": risks}
    index = pd.Index([f"way/{i}|VEHICLE_RAMMING" for i in range(n)], name="uid")
    points = [shapely.Point(25.588 + i / 1e4, 45.642) for i in range(n)]
    return gpd.GeoDataFrame(data, index=index, geometry=points, crs=WGS84)


def test_assessment_writes_need_an_actor_and_record_the_changed_scores(
    engine: Engine, store: PostGISStore
) -> None:
    store.write_layers("brasov", {"assessment": _assessment([10.0, 20.0])}, actor=CLI)
    with pytest.raises(StoreError, match="needs an actor"):
        store.write_layers("brasov", {"assessment": _assessment([99.0, 99.0])})
    assert store.read_layer("brasov", "assessment")["risk_100"].tolist() == [10.0, 20.0]
    changed = _assessment([10.0, 45.0])
    changed["overrides"] = ["[]", '[{"field": "vulnerability", "by": "ana", "to": 5}]']
    store.write_layers("brasov", {"assessment": changed}, actor=ANA)
    first, second = read_audit(engine, action="assessment.write")
    assert set(first.after) == {"way/0|VEHICLE_RAMMING", "way/1|VEHICLE_RAMMING"}
    assert first.before == {}
    assert list(second.after) == ["way/1|VEHICLE_RAMMING"]  # way/0 did not change
    assert second.before["way/1|VEHICLE_RAMMING"]["risk_100"] == 20.0
    assert second.after["way/1|VEHICLE_RAMMING"]["overrides"][0]["by"] == "ana"
    assert "evidence" not in second.after["way/1|VEHICLE_RAMMING"]


# -- reading and exporting ----------------------------------------------------------------


def test_read_audit_filters_and_exports(engine: Engine) -> None:
    _write(engine, 2, actor=CLI)
    with engine.begin() as conn:
        record(conn, ANA, "alert.acknowledge", "alert:1", None, {"state": "x"}, city="brasov")
    rows = read_audit(engine)
    middle = rows[1].at
    assert [r.id for r in read_audit(engine, since=middle)] == [2, 3]
    assert [r.id for r in read_audit(engine, until=middle)] == [1]
    assert [r.id for r in read_audit(engine, actor="ana")] == [3]
    assert [r.id for r in read_audit(engine, action="alert")] == [3]
    assert [r.id for r in read_audit(engine, action="alert.resolve")] == []
    assert [r.id for r in read_audit(engine, city="brasov", after_id=0, limit=5)] == [3]
    assert [r.id for r in read_audit(engine, after_id=1, limit=1)] == [2]
    with pytest.raises(ValidationError, match="time-zone aware"):
        read_audit(engine, since=dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="before since"):
        read_audit(engine, since=middle, until=middle - dt.timedelta(seconds=1))

    table = list(csv.DictReader(io.StringIO(audit_store.export_rows(rows, "csv"))))
    assert [int(r["id"]) for r in table] == [1, 2, 3]
    assert json.loads(table[0]["before"]) == {"i": 0} and table[2]["before"] == ""
    assert table[2]["address"] == "10.0.0.7" and table[0]["address"] == ""
    as_json = json.loads(audit_store.export_rows(rows, "json"))
    assert as_json == [r.as_dict() for r in rows] and as_json[2]["after"] == {"state": "x"}
    with pytest.raises(ValidationError, match="csv or json"):
        audit_store.export_rows(rows, "xml")


def test_record_needs_the_change_transaction(engine: Engine) -> None:
    with pytest.raises(TypeError, match="Connection"):
        record(engine, CLI, "test.write", "thing:1", None, None)  # type: ignore[arg-type]


# -- the command line ---------------------------------------------------------------------


def test_cli_verify_and_export(engine: Engine, audit_url: str) -> None:
    db = ["--database-url", audit_url]
    _write(engine, 3)
    with engine.begin() as conn:
        record(conn, ANA, "alert.resolve", "alert:7", None, {"state": "resolved"}, city="brasov")
    result = runner.invoke(app, ["audit", "verify", *db])
    assert result.exit_code == 0, result.output
    assert "audit chain holds: 4 row(s), head 4" in result.stdout

    result = runner.invoke(app, ["audit", "export", "--format", "json", "--action", "alert", *db])
    assert result.exit_code == 0, result.output
    assert [r["target"] for r in json.loads(result.stdout)] == ["alert:7"]
    result = runner.invoke(app, ["audit", "export", "--actor", "ops", "--since", "2026-01-01", *db])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["1", "2", "3"]

    for bad in (["--format", "xml"], ["--since", "yesterday"]):
        result = runner.invoke(app, ["audit", "export", *bad, *db])
        assert result.exit_code == 2, result.output
    down = ["--database-url", "postgresql+psycopg://postgres@127.0.0.1:1/none"]
    assert runner.invoke(app, ["audit", "verify", *down]).exit_code == 2


def test_cli_verify_exits_1_naming_the_first_bad_row(engine: Engine, audit_url: str) -> None:
    _write(engine, 5)
    _tamper(engine, f"UPDATE {SCHEMA}.audit SET after = '{{\"i\": 99}}' WHERE id = 3")
    command = [sys.executable, "-m", "geo_protect.cli", "audit", "verify"]
    done = subprocess.run(
        [*command, "--database-url", audit_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "audit chain broken at row 3" in done.stderr and "altered" in done.stderr
    _tamper(engine, f"DELETE FROM {SCHEMA}.audit WHERE id >= 3")  # the tail: undetectable
    done = subprocess.run(
        [*command, "--database-url", audit_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "2 row(s), head 2" in done.stdout
