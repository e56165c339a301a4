"""Accounts in the PostGIS store: passwords, credentials, throttling, grants, row scoping.

Against a real PostGIS (``postgis_store`` empties every table first). The row-level
security checks take the service's own begin hook (:func:`scope_engine`) on a fresh engine
and compare what a scoped transaction sees with plain SQL counts made unscoped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from geo_protect.access import Grant, Scope
from geo_protect.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ThrottledError,
    ValidationError,
)
from geo_protect.store import users
from geo_protect.store.audit import Actor, read_audit

pytestmark = pytest.mark.postgis

KEY = "k" * 40
#: The cities grants may name (the store's, as the service passes them).
CITIES = ["brasov"]
PW = "a long enough password"
ADMIN = Actor("root", None, "cli")
LIMITS = users.LoginLimits(per_user=3, per_address=5, window_s=600)


def _engine(store: Any) -> sa.Engine:
    engine: sa.Engine = store.engine
    return engine


def _actions(engine: sa.Engine) -> list[str]:
    return [r.action for r in read_audit(engine)]


def test_password_is_hashed_and_checked(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(
        engine, "ana", PW, actor=ADMIN, cities=CITIES, grants=[Grant("viewer", "brasov")]
    )
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT password_hash FROM geo_protect.app_user WHERE name = 'ana'")
        ).scalar_one()
    assert PW not in stored and stored.startswith("$argon2id$")
    users.authenticate(engine, "ana", PW, address="10.0.0.1", limits=LIMITS)
    with pytest.raises(AuthenticationError):
        users.authenticate(engine, "ana", PW + "x", address="10.0.0.1", limits=LIMITS)
    with pytest.raises(AuthenticationError):  # an unknown user: the same error
        users.authenticate(engine, "nobody", PW, address="10.0.0.1", limits=LIMITS)
    assert _actions(engine) == ["user.add", "login.success", "login.failure", "login.failure"]


def test_bad_accounts_are_refused_with_the_field(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    with pytest.raises(ValidationError, match="password: at least 12"):
        users.add_user(engine, "bo", "short", actor=ADMIN, cities=CITIES)
    with pytest.raises(ValidationError, match="user name"):
        users.add_user(engine, "Bad Name!", PW, actor=ADMIN, cities=CITIES)
    users.add_user(engine, "bo", PW, actor=ADMIN, cities=CITIES)
    with pytest.raises(ConflictError):
        users.add_user(engine, "bo", PW, actor=ADMIN, cities=CITIES)
    with pytest.raises(NotFoundError):
        users.grant(engine, "ghost", Grant("viewer", "*"), actor=ADMIN, cities=[])
    with pytest.raises(ValidationError, match="'atlantis' is not in the store"):
        users.grant(engine, "bo", Grant("viewer", "atlantis"), actor=ADMIN, cities=["brasov"])
    with pytest.raises(ValidationError, match="'atlantis' is not in the store"):
        users.add_user(
            engine, "cy", PW, actor=ADMIN, cities=CITIES, grants=[Grant("viewer", "atlantis")]
        )
    with pytest.raises(ValueError, match="unknown role"):
        Grant("superuser", "brasov")  # type: ignore[arg-type]


def test_throttling_per_user_then_per_address(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(engine, "cy", PW, actor=ADMIN, cities=CITIES)
    for _ in range(LIMITS.per_user):
        with pytest.raises(AuthenticationError):
            users.authenticate(engine, "cy", "guess guess guess", address="1.1.1.1", limits=LIMITS)
    with pytest.raises(ThrottledError) as caught:  # even the right password is not tried now
        users.authenticate(engine, "cy", PW, address="2.2.2.2", limits=LIMITS)
    assert 0 < caught.value.retry_after <= LIMITS.window_s + 1
    # one address guessing many names: 3 failures above + 2 more reach per_address = 5
    for name in ("dee", "eve"):
        with pytest.raises(AuthenticationError):
            users.authenticate(engine, name, "x" * 12, address="1.1.1.1", limits=LIMITS)
    with pytest.raises(ThrottledError, match="this address"):
        users.authenticate(engine, "fay", "x" * 12, address="1.1.1.1", limits=LIMITS)
    assert _actions(engine).count("login.throttled") == 2


def test_credentials_are_stored_as_digests_and_expire(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(
        engine, "di", PW, actor=ADMIN, cities=CITIES, grants=[Grant("operator", "brasov")]
    )
    secret, cred = users.issue_credential(
        engine, "di", "token", key=KEY, lifetime_s=3600, label="qgis", actor=ADMIN
    )
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM geo_protect.credential")).mappings().one()
    assert secret not in {str(v) for v in row.values()}
    found = users.lookup_credential(engine, secret, key=KEY)
    assert found is not None and found.user == "di" and found.kind == "token"
    assert found.scope.allows("acknowledge", "brasov") and not found.scope.allows("plan", "brasov")
    assert users.lookup_credential(engine, secret, key="another key" * 4) is None
    assert users.lookup_credential(engine, secret + "x", key=KEY) is None
    gone, _ = users.issue_credential(engine, "di", "session", key=KEY, lifetime_s=1e-6, actor=ADMIN)
    assert users.lookup_credential(engine, gone, key=KEY) is None  # expired at once
    users.revoke_credential(engine, "di", cred.id, actor=ADMIN)
    assert users.lookup_credential(engine, secret, key=KEY) is None
    with pytest.raises(NotFoundError):
        users.revoke_credential(engine, "di", cred.id, actor=ADMIN)


def test_disable_and_password_change_end_other_credentials(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(engine, "el", PW, actor=ADMIN, cities=CITIES)
    mine, me = users.issue_credential(engine, "el", "session", key=KEY, lifetime_s=60, actor=ADMIN)
    other, _ = users.issue_credential(engine, "el", "token", key=KEY, lifetime_s=60, actor=ADMIN)
    with pytest.raises(AuthenticationError, match="current password"):
        users.change_password(engine, "el", "not it at all", PW + "2", actor=ADMIN, keep=me.id)
    users.change_password(engine, "el", PW, PW + "2", actor=ADMIN, keep=me.id)
    assert users.lookup_credential(engine, mine, key=KEY) is not None
    assert users.lookup_credential(engine, other, key=KEY) is None
    users.authenticate(engine, "el", PW + "2", address=None, limits=LIMITS)
    users.set_disabled(engine, "el", True, actor=ADMIN)
    assert users.lookup_credential(engine, mine, key=KEY) is None
    with pytest.raises(AuthenticationError):
        users.authenticate(engine, "el", PW + "2", address=None, limits=LIMITS)
    with pytest.raises(ValidationError, match="disabled"):
        users.issue_credential(engine, "el", "token", key=KEY, lifetime_s=60, actor=ADMIN)
    trail = read_audit(engine, actor="root")
    assert [r.action for r in trail][-2:] == ["user.password", "user.disable"]
    assert all(PW not in str(r.before) + str(r.after) for r in trail)


def test_grants_and_revokes_change_the_scope(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(engine, "fo", PW, actor=ADMIN, cities=CITIES)
    secret, _ = users.issue_credential(engine, "fo", "token", key=KEY, lifetime_s=60, actor=ADMIN)
    assert users.grant(engine, "fo", Grant("planner", "malaga"), actor=ADMIN, cities=["malaga"])
    assert not users.grant(engine, "fo", Grant("planner", "malaga"), actor=ADMIN, cities=["malaga"])
    assert users.grant(engine, "fo", Grant("analyst", "*"), actor=ADMIN, cities=[])
    found = users.lookup_credential(engine, secret, key=KEY)
    assert found is not None
    assert found.scope.allows("plan", "malaga") and found.scope.allows("compare", "vilnius")
    assert users.revoke(engine, "fo", Grant("planner", "malaga"), actor=ADMIN)
    assert not users.revoke(engine, "fo", Grant("planner", "malaga"), actor=ADMIN)
    found = users.lookup_credential(engine, secret, key=KEY)
    assert found is not None and not found.scope.allows("plan", "malaga")
    listed = {u["name"]: u["grants"] for u in users.list_users(engine)}
    assert listed == {"fo": ["analyst@*"]}
    last = read_audit(engine, action="grant.revoke")[-1]
    assert last.before == ["analyst@*", "planner@malaga"] and last.after == ["analyst@*"]


# -- row-level security ------------------------------------------------------------------


def _sensor(conn: sa.Connection, sensor_id: str, city: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO geo_protect.sensor (sensor_id, city, kind, space_uid, installed_at, "
            "source) VALUES (:s, :c, 'density', 'way/1', now(), 'test')"
        ),
        {"s": sensor_id, "c": city},
    )


def _count(engine: sa.Engine, table: str, scope: Scope | None) -> int:
    from geo_protect.service.access import CURRENT

    token = CURRENT.set(scope)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM geo_protect.{table}")).scalar())
    finally:
        CURRENT.reset(token)


def test_row_level_security_filters_by_the_users_cities(postgis_store: Any) -> None:
    from geo_protect.service.access import scope_engine

    engine = sa.create_engine(postgis_store.engine.url)
    scope_engine(engine)
    with engine.begin() as conn:
        for slug in ("brasov", "vilnius"):
            conn.execute(
                sa.text(
                    "INSERT INTO geo_protect.city (slug, ingested_at, reference_version, report) "
                    "VALUES (:s, now(), 'test', '{}') ON CONFLICT DO NOTHING"
                ),
                {"s": slug},
            )
        _sensor(conn, "b1", "brasov")
        _sensor(conn, "b2", "brasov")
        _sensor(conn, "v1", "vilnius")
    operator = Scope.of("op", [Grant("operator", "brasov")])
    analyst = Scope.of("an", [Grant("analyst", "*")])
    admin = Scope.of("ad", [Grant("admin", "*")])
    nobody = Scope.of("no", [])
    assert _count(engine, "sensor", None) == 3  # background work: not scoped
    assert _count(engine, "sensor", operator) == 2
    assert _count(engine, "sensor", analyst) == 0  # scores of all cities, no sensors
    assert _count(engine, "sensor", admin) == 3
    assert _count(engine, "sensor", nobody) == 0  # fails closed
    assert _count(engine, "city", analyst) == 2
    assert _count(engine, "city", operator) == 1
    from geo_protect.service.access import CURRENT

    token = CURRENT.set(operator)
    try:  # a scoped user cannot write into a city outside their scope either
        refused = pytest.raises(sa.exc.ProgrammingError, match="row-level security")
        with refused, engine.begin() as conn:
            _sensor(conn, "v2", "vilnius")
        denied = pytest.raises(sa.exc.ProgrammingError, match="permission denied")
        with denied, engine.begin() as conn:
            conn.execute(sa.text("SELECT count(*) FROM geo_protect.credential"))
    finally:
        CURRENT.reset(token)
    assert _count(engine, "sensor", None) == 3
    engine.dispose()


def test_expiry_is_reported_in_utc(postgis_store: Any) -> None:
    engine = _engine(postgis_store)
    users.add_user(engine, "gi", PW, actor=ADMIN, cities=CITIES)
    _, cred = users.issue_credential(engine, "gi", "token", key=KEY, lifetime_s=86400, actor=ADMIN)
    assert cred.expires_at is not None
    left = cred.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(days=1)


def test_scoped_bbox_queries_can_use_the_spatial_index(postgis_store: Any) -> None:
    """Without ``&&`` leakproof the planner has no index path under RLS at all."""
    from geo_protect.service.access import CURRENT, scope_engine, spatial_index_under_scope

    engine = sa.create_engine(postgis_store.engine.url)
    scope_engine(engine)
    box = "ST_MakeEnvelope(25.5, 45.6, 25.7, 45.7, 4326)"
    query = f"EXPLAIN SELECT uid FROM geo_protect.building WHERE city = 'brasov' AND geom && {box}"

    def plan() -> str:
        token = CURRENT.set(Scope.of("v", [Grant("viewer", "brasov")]))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                return "\n".join(r[0] for r in conn.exec_driver_sql(query))
        finally:
            CURRENT.reset(token)

    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER FUNCTION geometry_overlaps(geometry, geometry) NOT LEAKPROOF")
    assert "building_geom_gist" not in plan()
    assert spatial_index_under_scope(engine)
    assert "building_geom_gist" in plan()
    engine.dispose()
